"""The digest of a trading request: what a key is bound to. The write engine (services/common/write_engine.py)
stores each keyed command's answer with it and answers a retry from there; a key reused for another request
(another digest) is refused."""

from __future__ import annotations

import hashlib
from typing import Any

from services.trading.adapters.db.repository import dumps


def digest(operation: str, args: dict[str, Any]) -> str:
    return hashlib.sha256(dumps({"operation": operation, **args}).encode()).hexdigest()
