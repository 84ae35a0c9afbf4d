from __future__ import annotations

import shutil

import pytest


def require_binary(name: str, package: str) -> str:
    """Path of a binary the deploy tests run; skip with the reason (and the fix) when it is absent."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not installed: it comes from Debian's `{package}` package "
                    f"(`make browser` or `apt-get install -y {package}`); the test needs the real binary.")
    return path
