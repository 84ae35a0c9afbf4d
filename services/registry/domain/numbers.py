"""Decimal numbers from the wire, checked before they reach arithmetic or a BIGINT column.

Every amount the registry stores is an integer of a minor unit in a signed 64-bit column, so a number is
refused — with the field it came in — when it is not a finite decimal, not positive where it must be,
has more decimals than kept, or does not fit. Python's Decimal would take "1_000", non-ASCII digits and
exponents of any size; none of those belongs in a quantity, and a huge exponent would cost unbounded time.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from services.common.errors import InvalidArgument

INT64_MAX = 2**63 - 1
MAX_TEXT = 100
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?", re.ASCII)
_NOT_FINITE = re.compile(r"[+-]?(s?nan\d*|inf(inity)?)", re.ASCII | re.IGNORECASE)


def parse_decimal(text: str, field: str) -> Decimal:
    """A finite decimal written in plain ASCII (an exponent of at most four digits is accepted)."""
    value = text.strip()
    if len(value) > MAX_TEXT:
        raise InvalidArgument.field(field, f"is too long: a decimal number of at most {MAX_TEXT} characters")
    if _NOT_FINITE.fullmatch(value):
        raise InvalidArgument.field(field, "must be a finite decimal number")
    if not _DECIMAL.fullmatch(value):
        raise InvalidArgument.field(field, "must be a decimal number")
    try:
        return Decimal(value)
    except InvalidOperation:  # the pattern admits only what Decimal reads; kept as a last line of defence
        raise InvalidArgument.field(field, "must be a decimal number") from None


def to_scaled(value: Decimal, places: int, field: str, *, maximum: int = INT64_MAX, positive: bool = True) -> int:
    """The exact integer value × 10^places, refused when it has more decimals or exceeds `maximum`."""
    if (value < 0) or (positive and value == 0):
        raise InvalidArgument.field(field, "must be greater than zero" if positive else "must not be negative")
    if value == 0:
        return 0
    if value.adjusted() + places + 1 > len(str(maximum)):  # more digits than the largest value has
        raise InvalidArgument.field(field, _too_large(maximum, places))
    if value.adjusted() < -places:
        raise InvalidArgument.field(field, f"has more than {places} decimal places")
    _, digits, exponent = value.as_tuple()
    coefficient = int("".join(map(str, digits)))
    shift = exponent + places
    if shift >= 0:
        scaled = coefficient * 10**shift
    else:
        scaled, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            raise InvalidArgument.field(field, f"has more than {places} decimal places")
    if scaled > maximum:
        raise InvalidArgument.field(field, _too_large(maximum, places))
    return scaled


def _too_large(maximum: int, places: int) -> str:
    return f"is too large: at most {Decimal(maximum).scaleb(-places):f}"
