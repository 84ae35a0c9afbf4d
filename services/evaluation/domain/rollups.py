"""Roll-ups above the firm (domain §3.2), the exact Decimal reference: ratios of sums, class distributions,
YoY change, land in C+D, surcharge and relief totals, and a composite score ranking peer units with the
firms' weights against the mean over peer units.

Units: the region tree of `hierarchy` (county → city → province, up to the run's total), parks (parent: the
lowest region unit holding all their firms) and GB/T 4754 divisions (parent: the run's total); every unit
also split by size class. Peers are the units of one dimension, level, size class and year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .hierarchy import REGION_LEVELS, region_chain, region_level, region_tree
from .numbers import DECIMAL_CONTEXT, HUNDRED, ZERO, round_half_up
from .policy import GRADE_LABELS, RAW_FIELDS, Policy
from .records import PriorYear
from .results import STATUS_GRADED, STATUS_NOT_GRADED, EnterpriseResult, Rollup
from .scoring import score_indicator

DIMENSIONS = ("region", "park", "industry")
PARK, DIVISION = "park", "division"
LEVEL_ORDER = (*REGION_LEVELS, PARK, DIVISION)  # top down within a dimension


@dataclass(frozen=True)
class UnitId:
    """Where a roll-up sits: its dimension, level and unit, the size class of a split, and its parent unit."""

    dimension: str
    year: int
    level: str
    unit: str
    size_class: str = ""  # "" = all firms of the unit
    parent_unit: str = ""

    @property
    def key(self) -> str:
        return split_key(self.unit, self.size_class)

    @property
    def parent(self) -> str:
        return split_key(self.parent_unit, self.size_class) if self.parent_unit else ""

    @property
    def peer_group(self) -> str:
        return peer_group(self.dimension, self.level, self.size_class, self.year)

    def split(self, size_class: str) -> UnitId:
        return UnitId(self.dimension, self.year, self.level, self.unit, size_class, self.parent_unit)


def split_key(unit: str, size_class: str) -> str:
    return f"{unit}/{size_class}" if size_class else unit


def peer_group(dimension: str, level: str, size_class: str, year: int | None = None) -> str:
    """The rankings entry of a unit: "region:county:2024", "region:city:above_size:2024", "park:2024"
    (without the year when `year` is None: the name of the group over all years)."""
    parts = [dimension]
    if dimension == "region":
        parts.append(level)
    if size_class:
        parts.append(size_class)
    if year is not None:
        parts.append(str(year))
    return ":".join(parts)


def sort_key(unit: UnitId) -> tuple:
    """Dimension, year, level from the top down, all firms before the splits, then the key."""
    return (unit.dimension, unit.year, LEVEL_ORDER.index(unit.level), unit.size_class, unit.key)


def rollup_keys_of(result: EnterpriseResult) -> list[tuple[str, str]]:
    """Every (dimension, key) a firm can count in, splits included; a run holds those its tree reached."""
    units = [("region", code) for code in region_chain(result.region_code)]
    if result.park:
        units.append(("park", result.park))
    units.append(("industry", result.industry_division))
    return [(dimension, split_key(unit, size)) for dimension, unit in units for size in ("", result.size_class)]


class _Sums:
    """Exact sums over a set of firms, from which every output of a unit follows.

    Firms are summed once into cells (year × region × park × size class, and year × division × size class);
    a unit is the sum of its cells, so a firm costs the same however many units it counts in."""

    __slots__ = ("firms", "raw", "num", "den", "classes", "land_c_d", "surcharge", "relief")

    def __init__(self, indicators: Sequence[str]):
        self.firms = 0
        self.raw = dict.fromkeys(RAW_FIELDS, ZERO)
        self.num = dict.fromkeys(indicators, ZERO)
        self.den = dict.fromkeys(indicators, ZERO)
        self.classes = dict.fromkeys(GRADE_LABELS, 0)
        self.land_c_d = self.surcharge = self.relief = ZERO

    def add_firm(self, policy: Policy, member: EnterpriseResult) -> None:
        raw = member.raw
        self.firms += 1
        for name in RAW_FIELDS:
            if (value := raw[name]) is not None:
                self.raw[name] += value
        for name in self.num:
            # Only firms reporting both: a firm without energy data must not dilute VA/energy.
            definition = policy.indicators[name]
            num, den = raw[definition.num], raw[definition.den]
            if num is not None and den is not None and den > 0:
                self.num[name] += num
                self.den[name] += den
        self.classes[member.final_class or "T"] += 1
        if member.final_class in ("C", "D") and raw["land_mu"] is not None:
            self.land_c_d += raw["land_mu"]
        for measure in member.measures:
            if measure.estimated_yearly_amount is None:
                continue
            if measure.lever == "electricity_surcharge":
                self.surcharge += measure.estimated_yearly_amount
            elif measure.lever == "land_use_tax_relief":
                self.relief += measure.estimated_yearly_amount

    def add(self, other: _Sums) -> None:
        self.firms += other.firms
        for mine, theirs in ((self.raw, other.raw), (self.num, other.num), (self.den, other.den),
                             (self.classes, other.classes)):
            for name, value in theirs.items():
                mine[name] += value
        self.land_c_d += other.land_c_d
        self.surcharge += other.surcharge
        self.relief += other.relief


def unit_sums(policy: Policy, results: Sequence[EnterpriseResult]) -> dict[UnitId, _Sums]:
    """The sums of every unit and split over firms with a class (graded or T, on whichever list they are
    ranked); a firm set aside without one (a tenant on no list, out of scope) counts nowhere."""
    indicators = sorted(policy.indicators)
    geography: dict[tuple[int, str, str, str], _Sums] = {}
    divisions: dict[tuple[int, str, str], _Sums] = {}
    for result in results:
        if result.status not in (STATUS_GRADED, STATUS_NOT_GRADED):
            continue
        cell = (result.year, result.region_code, result.park or "", result.size_class)
        geography.setdefault(cell, _Sums(indicators)).add_firm(policy, result)
        if result.industry_division:
            cell = (result.year, result.industry_division, result.size_class)
            divisions.setdefault(cell, _Sums(indicators)).add_firm(policy, result)
    units: dict[UnitId, _Sums] = {}

    def add(unit: UnitId, size_class: str, sums: _Sums) -> None:
        for target in (unit, unit.split(size_class)):
            units.setdefault(target, _Sums(indicators)).add(sums)

    for year in sorted({cell[0] for cell in geography}):
        cells = sorted((cell, sums) for cell, sums in geography.items() if cell[0] == year)
        tree = region_tree(region for (_, region, _, _), _ in cells)
        park_regions: dict[str, set[str]] = defaultdict(set)
        for (_, region, park, _), _ in cells:
            if park:
                park_regions[park].add(region)
        for (_, region, park, size), sums in cells:
            for code in tree.chains[region]:
                add(UnitId("region", year, region_level(code), code, "", tree.parent(code)), size, sums)
            if park:
                add(UnitId("park", year, PARK, park, "", tree.common(park_regions[park])), size, sums)
        for (cell_year, division, size), sums in sorted(divisions.items()):
            if cell_year == year:
                add(UnitId("industry", year, DIVISION, division, "", tree.top or ""), size, sums)
    return units


def build_rollups(
    policy: Policy, results: Sequence[EnterpriseResult], prior: PriorYear | None = None
) -> tuple[tuple[Rollup, ...], dict[str, tuple[str, ...]]]:
    """Roll-ups of evaluated firms (graded and T) plus rankings `peer group -> keys best first`."""
    drafts = {unit: _draft(policy, sums, prior, unit) for unit, sums in unit_sums(policy, results).items()}
    peers: dict[str, list[UnitId]] = defaultdict(list)
    for unit in sorted(drafts, key=sort_key):
        peers[unit.peer_group].append(unit)
    composites: dict[UnitId, Decimal] = {}
    rankings: dict[str, tuple[str, ...]] = {}
    ranks: dict[UnitId, int] = {}
    for name, units in peers.items():
        composites.update(_composites(policy, units, drafts))
        ordered = sorted(units, key=lambda unit: (-composites[unit], unit.key))
        rankings[name] = tuple(unit.key for unit in ordered)
        ranks.update({unit: rank for rank, unit in enumerate(ordered, start=1)})
    rollups = tuple(
        Rollup(dimension=unit.dimension, key=unit.key, year=unit.year, level=unit.level, unit=unit.unit,
               size_class=unit.size_class, parent=unit.parent, name=unit.unit if unit.dimension == "park" else "",
               **{k: v for k, v in drafts[unit].items() if k != "exact_indicators"},
               composite_score=composites[unit], rank=ranks[unit], peer_group=unit.peer_group,
               peers=len(peers[unit.peer_group]))
        for unit in sorted(drafts, key=sort_key)
    )
    return rollups, dict(sorted(rankings.items()))


def _draft(policy: Policy, sums: _Sums, prior: PriorYear | None, unit: UnitId) -> dict:
    exact = {name: ratio_of_sums(policy, name, sums.num[name], sums.den[name]) for name in sorted(policy.indicators)}
    places = policy.rollups.indicator_places
    indicators = {name: None if value is None else round_half_up(value, places) for name, value in exact.items()}
    previous = prior.rollups.get((unit.dimension, unit.key), {}) if prior is not None else {}
    yoy = {name: change_pct(value, previous.get(name)) for name, value in indicators.items()}
    return dict(firms=sums.firms, sums=dict(sums.raw), indicators=indicators, exact_indicators=exact,
                yoy_change_pct=yoy, class_counts=dict(sums.classes), class_shares=class_shares(sums.classes, sums.firms),
                land_in_c_d_mu=sums.land_c_d, electricity_surcharge_yuan=sums.surcharge,
                land_use_tax_relief_yuan=sums.relief)


def class_shares(counts: dict[str, int], firms: int) -> dict[str, Decimal]:
    size = Decimal(firms)
    return {label: round_half_up(DECIMAL_CONTEXT.divide(Decimal(n), size), 4) for label, n in counts.items()}


def ratio_of_sums(policy: Policy, indicator: str, total_num: Decimal, total_den: Decimal) -> Decimal | None:
    """Σnum / Σden × scale (sums over the firms reporting both); None without a denominator.

    Unrounded; reports round to rollups.indicator_places, composites use the exact value."""
    if total_den == 0:
        return None
    scale = policy.indicators[indicator].scale
    return DECIMAL_CONTEXT.multiply(DECIMAL_CONTEXT.divide(total_num, total_den), scale)


def change_pct(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    if current is None or previous is None or previous == 0:
        return None
    return round_half_up(DECIMAL_CONTEXT.divide((current - previous) * HUNDRED, abs(previous)), 2)


def composite_size_class(policy: Policy, size_class: str) -> str:
    """Whose weights score a unit: the split's own size class, else the policy's rollups.composite_size_class."""
    return size_class or policy.rollups.composite_size_class


def _composites(policy: Policy, units: list[UnitId], drafts: dict) -> dict[UnitId, Decimal]:
    """Composite per unit of one peer group: firm weights, benchmark = mean of the unit values (§3.2)."""
    _, profile = policy.profile_of(composite_size_class(policy, units[0].size_class))
    means = {}
    for name in profile.weights:
        values = [v for unit in units if (v := drafts[unit]["exact_indicators"][name]) is not None and v > 0]
        means[name] = DECIMAL_CONTEXT.divide(sum(values, ZERO), Decimal(len(values))) if values else None
    composites = {}
    for unit in units:
        total = ZERO
        for name, weight in sorted(profile.weights.items()):
            value = drafts[unit]["exact_indicators"][name]
            if value is not None:
                direction = policy.indicators[name].direction
                total += score_indicator(max(value, ZERO), means[name], weight, direction, policy.scoring).score
        composites[unit] = total
    return composites
