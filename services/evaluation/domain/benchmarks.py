"""Benchmarks B_i per pool (domain §7.2 `benchmark`, §7.3 step 3), exact Decimal."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, ZERO

TWO = Decimal(2)


def aggregate_ratio(numerators: Sequence[Decimal], denominators: Sequence[Decimal], scale: Decimal) -> Decimal | None:
    """Σnum / Σden × scale over the firms that have the indicator (the published "平均亩均税收")."""
    total_den = sum(denominators, ZERO)
    if total_den <= 0:
        return None
    total_num = sum((max(value, ZERO) for value in numerators), ZERO)
    return DECIMAL_CONTEXT.multiply(DECIMAL_CONTEXT.divide(total_num, total_den), scale)


def mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return DECIMAL_CONTEXT.divide(sum(values, ZERO), Decimal(len(values)))


def winsorized_mean(values: Sequence[Decimal], limit: Decimal) -> Decimal | None:
    """Mean after winsorizing each tail (§7.2 `pool_mean_winsorized_5_95`): the ⌊n·limit⌋ lowest values are
    raised to the next one and the ⌊n·limit⌋ highest lowered to the one before, as
    scipy.stats.mstats.winsorize(limits=(limit, limit)) does. One outlier cannot move the benchmark."""
    if not values:
        return None
    ordered = sorted(values)
    cut = int(len(ordered) * limit)  # ⌊n·limit⌋, limit ≥ 0
    low, high = ordered[cut], ordered[len(ordered) - 1 - cut]
    return mean([min(max(value, low), high) for value in ordered])


def median(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return DECIMAL_CONTEXT.divide(ordered[middle - 1] + ordered[middle], TWO)


def apply_multiplier(value: Decimal | None, multiplier: Decimal) -> Decimal | None:
    """Huai'an sets B ≈ 2 × the average; the default multiplier 1 leaves the statistic unchanged."""
    if value is None or multiplier == 1:
        return value
    return DECIMAL_CONTEXT.multiply(value, multiplier)
