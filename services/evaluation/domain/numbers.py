"""Exact decimal arithmetic shared by every rule, independent of the caller's decimal context."""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

# One fixed context so that results never depend on a caller's decimal.getcontext().
DECIMAL_CONTEXT = Context(
    prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
# 1 亩 = 10000/15 m² (666.67 m²), used when estimating land-use-tax relief.
SQUARE_METRES_PER_MU = Decimal(10000) / Decimal(15)


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_half_up(value: Decimal, places: int) -> Decimal:
    """四舍五入 to `places` decimals, as published score tables do."""
    return value.quantize(quantum(places), rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT)


def floor_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def ceil_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def round_half_up_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def within_bounds(value: Decimal, digits: int, places: int) -> bool:
    """Finite, below 10^digits in magnitude, and with at most `places` decimals (trailing zeros aside).
    Decided from the representation, so that even 1E+999999 is judged without arithmetic."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    sign, coefficient, exponent = value.as_tuple()
    trailing_zeros = len(coefficient) - len("".join(map(str, coefficient)).rstrip("0"))
    return value.adjusted() < digits and exponent + trailing_zeros >= -places


def canonical_text(value: Decimal) -> str:
    """The same text for numerically equal values (1.0, 1.00, 1) so digests ignore formatting."""
    if value.is_zero():
        return "0"
    return format(value.normalize(DECIMAL_CONTEXT), "f")
