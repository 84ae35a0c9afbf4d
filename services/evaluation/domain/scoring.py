"""Indicator values and per-indicator scores (domain §1.3, §7.3 steps 2 and 4), in exact Decimal.

These functions are the reference rules; the numpy bulk path falls back to them whenever a float result
sits too close to a rounding boundary to be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, ONE, ZERO, round_half_up
from .policy import IndicatorDef, Scoring

TWO = Decimal(2)


def indicator_value(definition: IndicatorDef, numerator: Decimal | None, denominator: Decimal | None) -> Decimal | None:
    """num / den × scale; None where the denominator is missing or 0; a negative numerator counts as 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    numerator = max(numerator, ZERO)
    return DECIMAL_CONTEXT.multiply(DECIMAL_CONTEXT.divide(numerator, denominator), definition.scale)


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    ratio: Decimal | None  # x / B (as published, before floor/cap or inversion)
    score: Decimal  # rounded to scoring.rounding
    capped: bool


def score_indicator(
    value: Decimal, benchmark: Decimal | None, weight: Decimal, direction: str, scoring: Scoring
) -> ScoreOutcome:
    """Ratio-to-benchmark scoring `w × clip(x/B, floor, cap)` with the lower-better variants of §1.3(c)."""
    places = scoring.rounding
    if benchmark is None or benchmark <= 0:
        return ScoreOutcome(None, round_half_up(ZERO, places), False)
    ratio = DECIMAL_CONTEXT.divide(value, benchmark)
    cap = scoring.cap_ratio
    if direction == "lower_better" and scoring.alt_lower_better_linear:
        # fsou.net: at the benchmark half the points, at 2B or worse nothing, at zero everything.
        share = min(ONE, max(ZERO, DECIMAL_CONTEXT.divide(TWO - ratio, TWO)))
        return ScoreOutcome(ratio, round_half_up(DECIMAL_CONTEXT.multiply(weight, share), places), False)
    if direction == "lower_better":
        # Inversion (Linhai): score (1/x) against (1/B), i.e. B/x; a zero value is best and hits the cap.
        effective = DECIMAL_CONTEXT.divide(benchmark, value) if value > 0 else None
    else:
        effective = ratio
    if effective is None or (cap is not None and effective > cap):
        clipped, capped = cap, True
    else:
        clipped, capped = max(scoring.floor_ratio, effective), False
    assert clipped is not None  # policy validation demands a cap for inverted indicators
    return ScoreOutcome(ratio, round_half_up(DECIMAL_CONTEXT.multiply(weight, clipped), places), capped)


def adjustment_points(points: Decimal, count: int, per_unit: bool, free_units: int, first_unit_points: Decimal | None) -> Decimal:
    """Points an adjustment item contributes for `count` facts (Wenling rental rules need the extras)."""
    charged = count - free_units if per_unit else min(count, 1)
    if charged <= 0:
        return ZERO
    if not per_unit:
        return points
    if first_unit_points is not None:
        return first_unit_points + points * (charged - 1)
    return points * charged


def pool_average_score(scores: list[Decimal], places: int) -> Decimal:
    """Mean of the rounded scores of firms that have the indicator (Huangyan's missing-emission rule)."""
    if not scores:
        return round_half_up(ZERO, places)
    total = sum(scores, ZERO)
    return round_half_up(DECIMAL_CONTEXT.divide(total, Decimal(len(scores))), places)
