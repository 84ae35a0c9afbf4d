"""Vectorised roll-ups of a bulk run (domain §3.2), the same units as the Decimal reference (`rollups`):
the region tree up to the run's total, parks, GB/T 4754 divisions, each split by size class.

Rows are first reduced to cells (year × region × park × size class, and year × division × size class: one
bincount per quantity over the rows); every unit and split is then a sum of cells, so the hierarchy costs
nothing per row. Ratios, amounts and composites are floats: they are displays, not scores (the reference
gives the exact Decimals)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .columns import EnterpriseColumns
from .hierarchy import region_level, region_tree
from .numbers import SQUARE_METRES_PER_MU
from .policy import RAW_FIELDS, ClassRates, Policy
from .rollups import DIVISION, PARK, UnitId, composite_size_class, peer_group, sort_key

CLASS_CODES = ("A", "B", "C", "D", "T")  # column order of class_counts
DIVISIONS = 100  # GB/T 4754 two-digit divisions 00-99


@dataclass(frozen=True)
class BulkRollup:
    """The units of one peer group (dimension, level, size class), every year of the run."""

    dimension: str
    level: str
    size_class: str  # "" = all firms
    keys: tuple[str, ...]  # as the reference's Rollup.key
    units: tuple[str, ...]
    parents: tuple[str, ...]  # as the reference's Rollup.parent
    years: np.ndarray
    firms: np.ndarray
    sums: dict[str, np.ndarray]
    indicators: dict[str, np.ndarray]  # ratio of sums, NaN when no denominator
    yoy_change_pct: dict[str, np.ndarray]  # NaN without a prior value
    class_counts: np.ndarray  # (units, 5): A, B, C, D, T
    land_in_c_d_mu: np.ndarray
    electricity_surcharge_yuan: np.ndarray
    land_use_tax_relief_yuan: np.ndarray
    composite_cents: np.ndarray
    rank: np.ndarray  # 1 = best within the group and year


def bulk_rollups(policy: Policy, cols: EnterpriseColumns, scored: np.ndarray, final: np.ndarray,
                 consecutive: np.ndarray, prior_indicators: Mapping[tuple[str, str], Mapping] | None = None
                 ) -> dict[str, BulkRollup]:
    """Roll-ups by group name (the peer group without its year: "region:city", "park:above_size", …).

    `prior_indicators` (dimension, key) → indicator → last year's value gives the YoY change."""
    rows = _Rows(policy, cols, np.flatnonzero(scored), final, consecutive)
    regions = len(cols.region_names)
    geography, divisions = _Cells.reduce(
        rows, ((rows.year * regions + rows.region) * (len(cols.park_names) + 1) + rows.park + 1) * 2 + rows.size,
        (rows.year * DIVISIONS + rows.division) * 2 + rows.size)
    units: list[UnitId] = []
    layers = _geography_layers(cols, rows, geography, units) + [_division_layer(rows, divisions, units)]
    totals = _Totals.of(layers, 3 * len(units))
    every = _all_units(units)
    groups: dict[str, list[int]] = {}
    for position in sorted(np.flatnonzero(totals.firms > 0).tolist(), key=lambda p: sort_key(every[p])):
        unit = every[position]
        groups.setdefault(peer_group(unit.dimension, unit.level, unit.size_class), []).append(position)
    return {name: _group(policy, [every[p] for p in positions], np.array(positions), totals, prior_indicators or {})
            for name, positions in groups.items()}


def _all_units(units: list[UnitId]) -> list[UnitId]:
    """Unit u at u, its above_size split at U + 2u, its below_size split at U + 2u + 1."""
    splits = [unit.split(size) for unit in units for size in ("above_size", "below_size")]
    return [*units, *splits]


class _Rows:
    """The evaluated rows (graded and T) and what each contributes to its units."""

    def __init__(self, policy: Policy, cols: EnterpriseColumns, rows: np.ndarray, final: np.ndarray,
                 consecutive: np.ndarray):
        self.policy, self.cols, self.rows = policy, cols, rows
        self.year_values, self.year = np.unique(cols.year[rows], return_inverse=True)
        self.region = cols.region[rows].astype(np.int64)
        self.park = cols.park[rows].astype(np.int64)  # -1: no park
        self.division = (cols.industry_code4[rows] // 100).astype(np.int64)
        self.size = cols.size_class[rows].astype(np.int64)
        self.grade = final[rows].astype(np.int64)
        self.consecutive = consecutive[rows]

    def value(self, name: str) -> np.ndarray:
        return self.cols.values[name][self.rows]

    def weights(self) -> Iterator[tuple[str, np.ndarray]]:
        """(quantity, per-row weight) for every summed quantity, computed as needed to spare memory."""
        for name in RAW_FIELDS:
            yield f"sum:{name}", np.nan_to_num(self.value(name))
        for name, definition in sorted(self.policy.indicators.items()):
            num, den = self.value(definition.num), self.value(definition.den)
            both = ~np.isnan(num) & (den > 0)
            yield f"num:{name}", np.where(both, num, 0.0)
            yield f"den:{name}", np.where(both, den, 0.0)
        land = np.nan_to_num(self.value("land_mu"))
        yield "land_c_d", np.where((self.grade == 2) | (self.grade == 3), land, 0.0)
        measures = self.policy.differentiated_measures
        kwh = np.nan_to_num(self.value("kwh"))
        yield "surcharge", self._rate(measures.electricity_surcharge_yuan_per_kwh) * kwh
        if measures.land_use_tax_yuan_per_m2 is not None:
            per_mu = float(SQUARE_METRES_PER_MU * measures.land_use_tax_yuan_per_m2) / 100.0
            yield "relief", self._rate(measures.land_use_tax_relief_pct) * land * per_mu
        else:
            yield "relief", np.zeros(len(self.rows))

    def _rate(self, rates: ClassRates) -> np.ndarray:
        """Per row: the class's rate (T as scope.T_treated_as; D escalated after three consecutive years)."""
        treated = self.policy.scope.T_treated_as
        table = np.array([float(rates.rate(label if label != "T" else treated, 0)[0]) for label in CLASS_CODES])
        rate = table[self.grade]
        if rates.D_consecutive_3y is not None:
            rate = np.where((self.grade == 3) & (self.consecutive >= 3), float(rates.D_consecutive_3y), rate)
        return rate


class _Cells:
    """The rows reduced to cells of equal key (see `reduce`)."""

    def __init__(self, rows: _Rows, key: np.ndarray):
        if len(key) and int(key.max()) < 4 * len(key):  # few possible keys: count them instead of sorting
            present = np.flatnonzero(np.bincount(key))
            index = np.zeros(int(present[-1]) + 1, dtype=np.int64)
            index[present] = np.arange(len(present))
            self.keys, self.cell = present, index[key]
        else:
            self.keys, self.cell = np.unique(key, return_inverse=True)
        n = len(self.keys)
        self.firms = np.bincount(self.cell, minlength=n).astype(np.float64)
        self.class_counts = np.bincount(self.cell * 5 + rows.grade, minlength=n * 5).reshape(n, 5).astype(np.float64)
        self.quantities: dict[str, np.ndarray] = {}
        first = np.zeros(n, dtype=np.int64)
        first[self.cell] = np.arange(len(self.cell))  # some row of each cell: its attributes are the cell's
        self.year, self.region, self.park = rows.year[first], rows.region[first], rows.park[first]
        self.division, self.size = rows.division[first], rows.size[first]

    @staticmethod
    def reduce(rows: _Rows, *keys: np.ndarray) -> list[_Cells]:
        """Cells of each key, every per-row quantity computed once and summed into all of them."""
        cell_sets = [_Cells(rows, key) for key in keys]
        for name, weights in rows.weights():
            for cells in cell_sets:
                cells.quantities[name] = np.bincount(cells.cell, weights=weights, minlength=len(cells.keys))
        return cell_sets


@dataclass(frozen=True)
class _Layer:
    """For each cell of a cell set, the unit it counts in at one step of membership (-1: none)."""

    cells: _Cells
    unit: np.ndarray


def _unit_index(units: list[UnitId], index: dict[UnitId, int], unit: UnitId) -> int:
    if unit not in index:
        index[unit] = len(units)
        units.append(unit)
    return index[unit]


def _geography_layers(cols: EnterpriseColumns, rows: _Rows, cells: _Cells, units: list[UnitId]) -> list[_Layer]:
    """The region chain bottom up (one layer per step) and the park, from (year, region, park) cells."""
    index: dict[UnitId, int] = {}
    chain = [np.full(len(cells.keys), -1, dtype=np.int64) for _ in range(3)]
    parks = np.full(len(cells.keys), -1, dtype=np.int64)
    for y, year in enumerate(rows.year_values.tolist()):
        in_year = np.flatnonzero(cells.year == y)
        region, park = cells.region[in_year], cells.park[in_year]
        codes = {r: cols.region_names[r] for r in np.unique(region).tolist()}
        tree = region_tree(codes.values())
        for depth, layer in enumerate(chain):
            table = np.full(len(cols.region_names), -1, dtype=np.int64)
            for r, code in codes.items():
                if depth < len(tree.chains[code]):
                    unit = tree.chains[code][depth]
                    table[r] = _unit_index(units, index, UnitId("region", year, region_level(unit), unit, "",
                                                                tree.parent(unit)))
            layer[in_year] = table[region]
        regions_of: dict[int, set[str]] = {}
        for p, r in zip(park.tolist(), region.tolist(), strict=True):
            if p >= 0:
                regions_of.setdefault(p, set()).add(cols.region_names[r])
        table = np.full(len(cols.park_names) + 1, -1, dtype=np.int64)  # the last entry stands for "no park"
        for p, park_codes in regions_of.items():
            table[p] = _unit_index(units, index, UnitId("park", year, PARK, cols.park_names[p], "",
                                                        tree.common(park_codes)))
        parks[in_year] = table[park]
    return [*(_Layer(cells, layer) for layer in chain), _Layer(cells, parks)]


def _division_layer(rows: _Rows, cells: _Cells, units: list[UnitId]) -> _Layer:
    """GB/T 4754 divisions, each under the run's total of its year."""
    index: dict[UnitId, int] = {}
    layer = np.full(len(cells.keys), -1, dtype=np.int64)
    for y, year in enumerate(rows.year_values.tolist()):
        in_year = np.flatnonzero(cells.year == y)
        tree = region_tree(rows.cols.region_names[r] for r in np.unique(rows.region[rows.year == y]).tolist())
        table = np.full(DIVISIONS, -1, dtype=np.int64)
        for d in np.unique(cells.division[in_year]).tolist():
            table[d] = _unit_index(units, index, UnitId("industry", year, DIVISION, f"{d:02d}", "", tree.top or ""))
        layer[in_year] = table[cells.division[in_year]]
    return _Layer(cells, layer)


@dataclass(frozen=True)
class _Totals:
    """Per unit position (see `_all_units`): the sums of the cells of every membership layer."""

    firms: np.ndarray
    class_counts: np.ndarray
    quantities: dict[str, np.ndarray]

    @classmethod
    def of(cls, layers: list[_Layer], size: int) -> _Totals:
        units = size // 3
        parts = []
        for layer in layers:
            at = np.flatnonzero(layer.unit >= 0)
            unit = layer.unit[at]
            position = np.concatenate([unit, units + 2 * unit + layer.cells.size[at]])
            parts.append((layer.cells, np.concatenate([at, at]), position))

        def total(read) -> np.ndarray:
            return sum((np.bincount(position, weights=read(cells)[pick], minlength=size)
                        for cells, pick, position in parts), np.zeros(size))

        counts = np.stack([total(lambda cells, g=g: cells.class_counts[:, g]) for g in range(5)], axis=1)
        names = layers[0].cells.quantities
        return cls(np.rint(total(lambda cells: cells.firms)).astype(np.int64), np.rint(counts).astype(np.int64),
                   {name: total(lambda cells, name=name: cells.quantities[name]) for name in names})


def _group(policy: Policy, units: list[UnitId], positions: np.ndarray, totals: _Totals,
           prior: Mapping[tuple[str, str], Mapping]) -> BulkRollup:
    first = units[0]
    indicators = {}
    for name, definition in sorted(policy.indicators.items()):
        num, den = totals.quantities[f"num:{name}"][positions], totals.quantities[f"den:{name}"][positions]
        with np.errstate(divide="ignore", invalid="ignore"):
            indicators[name] = np.where(den > 0, num / den * float(definition.scale), np.nan)
    yoy = {name: _change_pct(values, [_prior(prior, unit, name) for unit in units])
           for name, values in indicators.items()}
    years = np.array([unit.year for unit in units], dtype=np.int64)
    composite = np.zeros(len(units), dtype=np.int64)
    rank = np.zeros(len(units), dtype=np.int32)
    _, profile = policy.profile_of(composite_size_class(policy, first.size_class))
    for year in np.unique(years).tolist():
        at = np.flatnonzero(years == year)
        composite[at] = _composite(policy, profile.weights, {k: v[at] for k, v in indicators.items()},
                                   10**policy.scoring.rounding)
        order = sorted(range(len(at)), key=lambda i: (-int(composite[at[i]]), units[at[i]].key))
        rank[at[order]] = np.arange(1, len(at) + 1)
    return BulkRollup(
        first.dimension, first.level, first.size_class, tuple(u.key for u in units), tuple(u.unit for u in units),
        tuple(u.parent for u in units), years, totals.firms[positions],
        {name: totals.quantities[f"sum:{name}"][positions] for name in RAW_FIELDS}, indicators, yoy,
        totals.class_counts[positions], totals.quantities["land_c_d"][positions],
        totals.quantities["surcharge"][positions], totals.quantities["relief"][positions], composite, rank)


def _prior(prior: Mapping[tuple[str, str], Mapping], unit: UnitId, name: str) -> float:
    value: Decimal | None = prior.get((unit.dimension, unit.key), {}).get(name)
    return np.nan if value is None else float(value)


def _change_pct(current: np.ndarray, previous: list[float]) -> np.ndarray:
    before = np.array(previous, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before != 0, (current - before) * 100.0 / np.abs(before), np.nan)


def _composite(policy: Policy, weights: Mapping[str, Decimal], indicators: dict[str, np.ndarray],
               scale: int) -> np.ndarray:
    """Firm weights against the mean over the group's units, as `rollups._composites` (floats)."""
    scoring = policy.scoring
    count = len(next(iter(indicators.values())))
    composite = np.zeros(count, dtype=np.int64)
    cap = float(scoring.cap_ratio) if scoring.cap_ratio is not None else np.inf
    for name, weight in sorted(weights.items()):
        values = np.maximum(indicators[name], 0.0)
        usable = ~np.isnan(values) & (values > 0)
        if not usable.any():
            continue
        mean = values[usable].mean()
        direction = policy.indicators[name].direction
        with np.errstate(divide="ignore", invalid="ignore"):
            if direction == "lower_better" and scoring.alt_lower_better_linear:
                effective = np.clip((2.0 - values / mean) / 2.0, 0.0, 1.0)
            elif direction == "lower_better":
                inverted = np.minimum(cap, np.maximum(float(scoring.floor_ratio), mean / values))
                effective = np.where(values > 0, inverted, cap)
            else:
                effective = np.minimum(cap, np.maximum(float(scoring.floor_ratio), values / mean))
        scaled = float(weight) * effective * scale
        composite += np.where(~np.isnan(values), np.floor(scaled + 0.5), 0).astype(np.int64)
    return composite
