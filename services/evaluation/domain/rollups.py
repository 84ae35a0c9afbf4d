"""Region / park / industry roll-ups (domain §3.2): ratios of sums, class distributions, YoY change,
and a composite score ranking peer units with the firms' weights against the mean over peer units."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, HUNDRED, ZERO, round_half_up
from .policy import GRADE_LABELS, RAW_FIELDS, Policy
from .records import PriorYear
from .results import STATUS_GRADED, STATUS_NOT_GRADED, EnterpriseResult, Rollup
from .scoring import score_indicator

DIMENSIONS = ("region", "park", "industry")


def unit_key(dimension: str, result: EnterpriseResult) -> str | None:
    if dimension == "region":
        return result.region_code
    if dimension == "park":
        return result.park
    return result.industry_division


def build_rollups(
    policy: Policy, results: Sequence[EnterpriseResult], prior: PriorYear | None = None
) -> tuple[tuple[Rollup, ...], dict[str, tuple[str, ...]]]:
    """Roll-ups of evaluated firms (graded and T) plus rankings `"<dimension>:<year>" -> keys best first`."""
    groups: dict[tuple[str, int, str], list[EnterpriseResult]] = defaultdict(list)
    for result in results:
        if result.status not in (STATUS_GRADED, STATUS_NOT_GRADED):
            continue
        for dimension in DIMENSIONS:
            key = unit_key(dimension, result)
            if key:
                groups[(dimension, result.year, key)].append(result)
    drafts = {group: _draft(policy, members, prior, group) for group, members in sorted(groups.items())}
    composites = _composites(policy, drafts)
    rollups = []
    rankings: dict[str, list[str]] = defaultdict(list)
    ordered = sorted(drafts, key=lambda g: (g[0], g[1], _rank_order(composites[g]), g[2]))
    ranks: dict[tuple[str, int, str], int] = {}
    for group in ordered:
        dimension, year, key = group
        ranking = rankings[f"{dimension}:{year}"]
        ranking.append(key)
        ranks[group] = len(ranking)
    for group, draft in drafts.items():
        draft = {k: v for k, v in draft.items() if k != "exact_indicators"}
        rollups.append(Rollup(**draft, composite_score=composites[group], rank=ranks[group]))
    return tuple(rollups), {name: tuple(keys) for name, keys in sorted(rankings.items())}


def _rank_order(composite: Decimal | None) -> tuple:
    return (1, ZERO) if composite is None else (0, -composite)


def _draft(policy: Policy, members: list[EnterpriseResult], prior: PriorYear | None, group) -> dict:
    dimension, year, key = group
    sums = {name: sum((v for m in members if (v := m.raw[name]) is not None), ZERO) for name in RAW_FIELDS}
    exact = {name: ratio_of_sums(policy, name, members) for name in sorted(policy.indicators)}
    places = policy.rollups.indicator_places
    indicators = {name: None if value is None else round_half_up(value, places) for name, value in exact.items()}
    previous = prior.rollups.get((dimension, key), {}) if prior is not None else {}
    yoy = {name: _change_pct(value, previous.get(name)) for name, value in indicators.items()}
    counts = {label: 0 for label in GRADE_LABELS}
    land_c_d = surcharge = relief = ZERO
    for member in members:
        counts[member.final_class or "T"] += 1
        if member.final_class in ("C", "D") and member.raw["land_mu"] is not None:
            land_c_d += member.raw["land_mu"]
        for measure in member.measures:
            if measure.estimated_yearly_amount is None:
                continue
            if measure.lever == "electricity_surcharge":
                surcharge += measure.estimated_yearly_amount
            elif measure.lever == "land_use_tax_relief":
                relief += measure.estimated_yearly_amount
    size = Decimal(len(members))
    shares = {label: round_half_up(DECIMAL_CONTEXT.divide(Decimal(n), size), 4) for label, n in counts.items()}
    return dict(dimension=dimension, key=key, year=year, firms=len(members), sums=sums, indicators=indicators,
                exact_indicators=exact,
                yoy_change_pct=yoy, class_counts=counts, class_shares=shares, land_in_c_d_mu=land_c_d,
                electricity_surcharge_yuan=surcharge, land_use_tax_relief_yuan=relief)


def ratio_of_sums(policy: Policy, indicator: str, members: Sequence[EnterpriseResult]) -> Decimal | None:
    """Σnum / Σden × scale over members reporting both (a firm without energy data must not dilute VA/energy).

    Unrounded; reports round to rollups.indicator_places, composites use the exact value."""
    definition = policy.indicators[indicator]
    total_num = total_den = ZERO
    for member in members:
        num, den = member.raw[definition.num], member.raw[definition.den]
        if num is not None and den is not None and den > 0:
            total_num += num
            total_den += den
    if total_den == 0:
        return None
    return DECIMAL_CONTEXT.multiply(DECIMAL_CONTEXT.divide(total_num, total_den), definition.scale)


def _change_pct(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    if current is None or previous is None or previous == 0:
        return None
    return round_half_up(DECIMAL_CONTEXT.divide((current - previous) * HUNDRED, abs(previous)), 2)


def _composites(policy: Policy, drafts: dict) -> dict:
    """Composite per unit: firm weights, benchmark = mean of the unit values over peer units (§3.2)."""
    _, profile = policy.profile_of(policy.rollups.composite_size_class)
    peers: dict[tuple[str, int], list] = defaultdict(list)
    for group in drafts:
        peers[(group[0], group[1])].append(group)
    composites: dict = {}
    for peer_groups in peers.values():
        means = {}
        for name in profile.weights:
            values = [v for g in peer_groups if (v := drafts[g]["exact_indicators"][name]) is not None and v > 0]
            means[name] = DECIMAL_CONTEXT.divide(sum(values, ZERO), Decimal(len(values))) if values else None
        for group in peer_groups:
            total = ZERO
            for name, weight in sorted(profile.weights.items()):
                value = drafts[group]["exact_indicators"][name]
                if value is not None:
                    direction = policy.indicators[name].direction
                    total += score_indicator(max(value, ZERO), means[name], weight, direction, policy.scoring).score
            composites[group] = total
    return composites
