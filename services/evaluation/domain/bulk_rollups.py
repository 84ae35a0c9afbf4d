"""Vectorised region / park / industry roll-ups of a bulk run (domain §3.2): ratios of sums, class
counts, land in C/D, surcharge totals and a composite rank. Ratios are floats: they are displays, not scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .columns import EnterpriseColumns
from .policy import RAW_FIELDS, Policy

DIMENSIONS = ("region", "park", "industry")
CLASS_CODES = ("A", "B", "C", "D", "T")  # column order of class_counts


@dataclass(frozen=True)
class BulkRollup:
    keys: tuple[str, ...]
    firms: np.ndarray
    sums: dict[str, np.ndarray]
    indicators: dict[str, np.ndarray]  # ratio of sums, NaN when no denominator
    class_counts: np.ndarray  # (units, 5): A, B, C, D, T
    land_in_c_d_mu: np.ndarray
    electricity_surcharge_yuan: np.ndarray
    composite_cents: np.ndarray
    rank: np.ndarray  # 1 = best


def bulk_rollups(policy: Policy, cols: EnterpriseColumns, scored: np.ndarray, final: np.ndarray,
                 consecutive: np.ndarray) -> dict[str, BulkRollup]:
    places = policy.scoring.rounding
    return {dimension: _rollup(policy, cols, scored, dimension, final, consecutive, places)
            for dimension in DIMENSIONS}


def _rollup(policy: Policy, cols: EnterpriseColumns, scored: np.ndarray, dimension: str, final: np.ndarray,
            consecutive: np.ndarray, places: int) -> BulkRollup:
    if dimension == "region":
        unit, keys = cols.region.astype(np.int64), cols.region_names
    elif dimension == "park":
        unit, keys = cols.park.astype(np.int64), cols.park_names
    else:
        unit = (cols.industry_code4 // 100).astype(np.int64)
        keys = tuple(f"{d:02d}" for d in range(100))
    members = scored & (unit >= 0)
    u = unit[members]
    size = len(keys)
    firms = np.bincount(u, minlength=size)
    sums = {name: np.bincount(u, weights=np.nan_to_num(cols.values[name][members]), minlength=size)
            for name in RAW_FIELDS}
    indicators = {}
    for name, definition in sorted(policy.indicators.items()):
        num, den = cols.values[definition.num][members], cols.values[definition.den][members]
        both = ~np.isnan(num) & (den > 0)
        total_num = np.bincount(u[both], weights=num[both], minlength=size)
        total_den = np.bincount(u[both], weights=den[both], minlength=size)
        with np.errstate(divide="ignore", invalid="ignore"):
            indicators[name] = np.where(total_den > 0, total_num / total_den * float(definition.scale), np.nan)
    grade = final[members].astype(np.int64)
    class_counts_ = np.bincount(u * 5 + grade, minlength=size * 5).reshape(size, 5)
    land = np.nan_to_num(cols.values["land_mu"][members])
    land_c_d = np.bincount(u, weights=np.where((grade == 2) | (grade == 3), land, 0.0), minlength=size)
    surcharge = _surcharge(policy, grade, consecutive[members], np.nan_to_num(cols.values["kwh"][members]))
    surcharge_by_unit = np.bincount(u, weights=surcharge, minlength=size)
    composite = _composite(policy, indicators, firms > 0, 10**places)
    present = firms > 0
    order = np.lexsort((np.arange(size), -composite, ~present))
    rank = np.zeros(size, dtype=np.int32)
    rank[order] = np.arange(1, size + 1)
    rank[~present] = 0
    keep = np.flatnonzero(present)
    return BulkRollup(tuple(keys[i] for i in keep), firms[keep], {k: v[keep] for k, v in sums.items()},
                      {k: v[keep] for k, v in indicators.items()}, class_counts_[keep], land_c_d[keep],
                      surcharge_by_unit[keep], composite[keep], rank[keep])

def _surcharge(policy: Policy, grade: np.ndarray, consecutive: np.ndarray, kwh: np.ndarray) -> np.ndarray:
    rates = policy.differentiated_measures.electricity_surcharge_yuan_per_kwh
    treated = policy.scope.T_treated_as
    table = np.array([float(rates.rate(label if label != "T" else treated, 0)[0]) for label in CLASS_CODES])
    rate = table[grade]
    if rates.D_consecutive_3y is not None:
        rate = np.where((grade == 3) & (consecutive >= 3), float(rates.D_consecutive_3y), rate)
    return rate * kwh

def _composite(policy: Policy, indicators: dict[str, np.ndarray], present: np.ndarray, scale: int) -> np.ndarray:
    scoring = policy.scoring
    _, profile = policy.profile_of(policy.rollups.composite_size_class)
    composite = np.zeros(len(present), dtype=np.int64)
    cap = float(scoring.cap_ratio) if scoring.cap_ratio is not None else np.inf
    for name, weight in sorted(profile.weights.items()):
        values = np.maximum(indicators[name], 0.0)
        usable = present & ~np.isnan(values) & (values > 0)
        if not usable.any():
            continue
        mean = values[usable].mean()
        direction = policy.indicators[name].direction
        with np.errstate(divide="ignore", invalid="ignore"):
            if direction == "lower_better" and scoring.alt_lower_better_linear:
                effective = np.clip((2.0 - values / mean) / 2.0, 0.0, 1.0)
            elif direction == "lower_better":
                effective = np.minimum(cap, mean / values)
            else:
                effective = np.minimum(cap, np.maximum(float(scoring.floor_ratio), values / mean))
        scaled = float(weight) * effective * scale
        composite += np.where(usable, np.floor(scaled + 0.5), 0).astype(np.int64)
    return composite
