"""Domain errors: a stable machine code plus a human message; nothing half-applied when raised."""
from __future__ import annotations


class DomainError(Exception):
    """A command was refused by a rule. `code` is stable (UPPER_SNAKE) for APIs and audit."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class SealedError(DomainError):
    """A sealed value (secret reserve 底价, tender bid) was read before its opening."""

    def __init__(self, what: str) -> None:
        super().__init__("SEALED", f"{what} is sealed until opening")
