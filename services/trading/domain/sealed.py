"""A value that cannot be read before its opening: repr/str never show it, accessors raise."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SealedError


@dataclass(frozen=True, slots=True)
class Sealed:
    """Wraps a confidential integer (底价, tender amount) so that it never leaks by accident.

    Only the owning state machine reveals it, after opening. `for_persistence()` is the one
    explicit door for the adapter that encrypts it at rest; it is named so that a grep finds it.
    """

    _value: int = field(repr=False)
    label: str = "sealed value"

    def __repr__(self) -> str:
        return f"Sealed({self.label}, ***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):  # pickling would copy the secret out of the domain's control
        raise SealedError(self.label)

    def reveal(self, opened: bool) -> int:
        if not opened:
            raise SealedError(self.label)
        return self._value

    def for_persistence(self) -> int:
        return self._value
