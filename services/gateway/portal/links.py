"""Which stored document links a page may render as links: http(s) URLs and paths on this site. Anything
else (javascript:, data:, vbscript:, protocol-relative //host, links hiding control characters) is shown
as inert text, whatever older data the services hold."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Browsers drop tabs and newlines inside URLs and strip leading controls and spaces ("java\tscript:"):
# a link with any of them is not rendered as a link at all.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


def is_safe_link(value: object) -> bool:
    if not isinstance(value, str) or not value or len(value) > 2048 or _CONTROL_OR_SPACE.search(value):
        return False
    parts = urlsplit(value)
    if parts.scheme:
        return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
    return value.startswith("/") and not value.startswith("//") and not parts.netloc
