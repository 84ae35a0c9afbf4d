"""Indicator values and per-indicator scores (domain §1.3, §7.3 steps 2 and 4), in exact Decimal.

These functions are the reference rules; the numpy bulk path falls back to them whenever a float result
sits too close to a rounding boundary to be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, HUNDRED, ONE, ZERO, round_half_up
from .policy import AdjustmentItem, IndicatorDef, Scoring

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


def score_min_max(value: Decimal, low: Decimal | None, high: Decimal | None, weight: Decimal, direction: str,
                  scoring: Scoring) -> ScoreOutcome:
    """Min–max with a floor (§1.3b, Jingde): w × [f + (100 − f) × position] / 100 where position is
    (x − min)/(max − min), reversed for a lower-better indicator, and clipped to [0, 1] for a firm outside the
    graded range (a T firm). A pool whose extremes are equal puts everyone at the top (position 1)."""
    places = scoring.rounding
    if low is None or high is None:
        return ScoreOutcome(None, round_half_up(ZERO, places), False)
    if high == low:
        position = ONE
    else:
        distance = value - low if direction == "higher_better" else high - value
        position = min(ONE, max(ZERO, DECIMAL_CONTEXT.divide(distance, high - low)))
    floor = scoring.min_max_floor_pct
    share = DECIMAL_CONTEXT.divide(floor + DECIMAL_CONTEXT.multiply(HUNDRED - floor, position), HUNDRED)
    return ScoreOutcome(position, round_half_up(DECIMAL_CONTEXT.multiply(weight, share), places), False)


def adjustment_points(item: AdjustmentItem, count: int, size_class: str, raw_total: Decimal, places: int) -> Decimal:
    """Points an adjustment item gives a firm with `count` facts (0 when it has none).

    Schedules follow the firm's size class and each unit's ordinal, the last step repeating (Wenling rental);
    percentages are of the firm's indicator total, rounded to the scores' places (Lishui 加减分比例)."""
    if count <= 0:
        return ZERO
    if item.schedule is not None:
        steps = item.schedule.get(size_class)  # type: ignore[call-overload]
        if not steps:
            return ZERO  # refused at validation; kept total for safety
        listed = min(count, len(steps))
        return sum(steps[:listed], ZERO) + steps[-1] * (count - listed)
    units = count if item.per_unit else 1
    if item.percent is not None:
        share = DECIMAL_CONTEXT.divide(DECIMAL_CONTEXT.multiply(raw_total, item.percent), HUNDRED)
        return round_half_up(share, places) * units
    return item.points * units


def pool_average_score(scores: list[Decimal], places: int) -> Decimal:
    """Mean of the rounded scores of firms that have the indicator (Huangyan's missing-emission rule)."""
    if not scores:
        return round_half_up(ZERO, places)
    total = sum(scores, ZERO)
    return round_half_up(DECIMAL_CONTEXT.divide(total, Decimal(len(scores))), places)
