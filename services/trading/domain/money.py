"""Integer money helpers. Money is integer fen (分) everywhere; rates are integer basis points."""
from __future__ import annotations

BASIS_POINTS = 10_000


def ceil_div(numerator: int, denominator: int) -> int:
    return -((-numerator) // denominator)


def band_limits(reference_fen: int, band_bp: int) -> tuple[int, int]:
    """Inclusive [lower, upper] price limits of ±band_bp around a reference price.

    Rounded inwards (lower up, upper down) so no accepted price is ever outside the band.
    """
    lower = ceil_div(reference_fen * (BASIS_POINTS - band_bp), BASIS_POINTS)
    upper = reference_fen * (BASIS_POINTS + band_bp) // BASIS_POINTS
    return max(lower, 1), upper


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, integers only (for VWAP in fen)."""
    return (2 * numerator + denominator) // (2 * denominator)


def require_fen(value: int, field: str) -> int:
    # bool is an int subclass; floats are never money.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be integer fen, got {type(value).__name__}")
    return value
