"""Improvement hints for the 一企一单 report (§3.3 item 7): where a unit of improvement gains most points.

Marginal analysis with the benchmark held fixed (one firm barely moves a pool benchmark). Units differ
between indicators, so the ranking uses points per 1 % relative improvement; points per natural unit
are reported alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, ZERO, round_half_up
from .policy import Policy
from .results import EnterpriseResult

ONE_PERCENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class ImprovementHint:
    indicator: str
    unit: str
    direction: str  # higher_better: raise the value; lower_better: reduce it
    value: Decimal | None
    benchmark: Decimal | None
    score: Decimal
    max_score: Decimal  # weight × cap (weight when uncapped scoring is bounded by construction)
    points_per_unit: Decimal | None  # per unit of the indicator in the improving direction
    points_per_percent: Decimal | None  # per 1 % relative improvement
    value_for_next_class: Decimal | None  # value that alone closes the gap to the next class, if reachable
    note: str


def improvement_hints(policy: Policy, result: EnterpriseResult) -> tuple[ImprovementHint, ...]:
    """Hints ordered by points per 1 % improvement (largest first); missing data first of all."""
    scoring = policy.scoring
    hints = []
    for indicator in result.indicators:
        cap = scoring.cap_ratio
        linear = indicator.direction == "lower_better" and scoring.alt_lower_better_linear
        max_score = indicator.weight if linear or cap is None and indicator.direction == "lower_better" else (
            indicator.weight * cap if cap is not None else indicator.weight * Decimal(10) ** 6)
        value, benchmark = indicator.value, indicator.benchmark
        if value is None or benchmark is None or benchmark <= 0:
            hints.append(ImprovementHint(indicator.indicator, indicator.unit, indicator.direction, value, benchmark,
                                         indicator.score, max_score, None, None, None,
                                         "no value: supplying complete data scores this indicator"))
            continue
        per_unit, per_percent, target = _marginal(indicator.weight, value, benchmark, indicator.direction, linear,
                                                  indicator.capped, result.gap_to_next_class, max_score, cap)
        note = "at the cap: improving further gains nothing" if indicator.capped else ""
        hints.append(ImprovementHint(indicator.indicator, indicator.unit, indicator.direction, value, benchmark,
                                     indicator.score, max_score, _r(per_unit), _r(per_percent), _r(target), note))
    return tuple(sorted(hints, key=lambda h: (h.points_per_percent is not None,
                                              -(h.points_per_percent or ZERO), h.indicator)))


def _marginal(weight, value, benchmark, direction, linear, capped, gap, max_score, cap):
    divide, multiply = DECIMAL_CONTEXT.divide, DECIMAL_CONTEXT.multiply
    if capped:
        return ZERO, ZERO, None
    if direction == "higher_better":
        score = divide(multiply(weight, value), benchmark)
        per_unit = divide(weight, benchmark)
        target = divide(multiply(score + gap, benchmark), weight) if gap and score + gap <= max_score else None
        return per_unit, multiply(score, ONE_PERCENT), target
    if linear:
        per_unit = divide(weight, benchmark * 2)
        score = multiply(weight, divide(2 - divide(value, benchmark), Decimal(2)))
        target = None
        if gap and score + gap <= weight:
            target = max(ZERO, multiply(benchmark, 2 - divide((score + gap) * 2, weight)))
        return per_unit, multiply(multiply(per_unit, value), ONE_PERCENT), target
    score = divide(multiply(weight, benchmark), value)  # inversion: w × B / x
    per_unit = divide(score, value)  # |d/dx (wB/x)| = wB/x²
    target = divide(multiply(weight, benchmark), score + gap) if gap and score + gap <= max_score else None
    return per_unit, multiply(score, ONE_PERCENT), target


def _r(value: Decimal | None) -> Decimal | None:
    return None if value is None else round_half_up(value, 4)
