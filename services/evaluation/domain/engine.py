"""The reference run (domain §7.3) in exact Decimal: pools → indicators → benchmarks → scores →
adjustments → rank-share classes → floor, vetoes, downgrades → T → measures → roll-ups → digests.

Every collection is processed in (credit_code, year) order, so results and digests do not depend on
the order of the input rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from . import benchmarks as bm
from .classification import class_counts, two_stage_labels
from .digest import sha256_of
from .errors import InputError, RowViolation
from .firm_rules import adjustments_of, hard_rules_of
from .measures import measures_for
from .numbers import DECIMAL_CONTEXT, HUNDRED, ZERO, round_half_up
from .placement import Placement, place
from .policy import CLASS_ORDER, MISSING_CAUSES, RAW_FIELDS, WINSORIZE_LIMITS, Policy, Profile
from .records import EnterpriseYear, PriorYear, validate_records
from .results import (
    STATUS_GRADED,
    STATUS_NOT_GRADED,
    AppliedAdjustment,
    EnterpriseResult,
    EvaluationRun,
    IndicatorResult,
    PoolKey,
    PoolSummary,
    RuleFiring,
)
from .rollups import build_rollups
from .scoring import indicator_value, pool_average_score, score_indicator, score_min_max
from .snapshot import input_digest


@dataclass(slots=True)
class _Scored:
    """Mutable working state of one pool member while the pipeline runs."""

    placement: Placement
    values: dict[str, Decimal | None]
    indicators: list[IndicatorResult] = field(default_factory=list)
    raw_total: Decimal = ZERO
    bonus: Decimal = ZERO
    deductions: Decimal = ZERO
    adjustments: tuple[AppliedAdjustment, ...] = ()
    total: Decimal = ZERO
    rules: list[RuleFiring] = field(default_factory=list)
    rank: int | None = None
    initial_class: str | None = None
    final_class: str | None = None
    gap: Decimal | None = None

    @property
    def record(self) -> EnterpriseYear:
        return self.placement.record


@dataclass(frozen=True, slots=True)
class RunProgress:
    """How far a run is: pools scored and classified, and the rows in them."""

    pools_done: int
    pools_total: int
    rows_done: int
    rows_total: int


def run_evaluation(
    policy: Policy, records: Sequence[EnterpriseYear], prior: PriorYear | None = None,
    progress: Callable[[RunProgress], None] | None = None,
) -> EvaluationRun:
    """Evaluate every row under `policy`; raise InputError (all problems at once) on bad rows.

    `progress`, when given, hears after each pool how far the run is (and once more at the end)."""
    validate_records(policy, records)
    ordered = sorted(records, key=lambda record: (record.credit_code, record.year))
    placements = [place(policy, record) for record in ordered]
    members: dict[PoolKey, list[_Scored]] = defaultdict(list)
    for placement in placements:
        if placement.pool is not None:
            # a graded placement's own rules (the tenant list) lead its record; T reasons join after scoring
            rules = list(placement.rules) if placement.status == STATUS_GRADED else []
            members[placement.pool].append(_Scored(placement, {}, rules=rules))

    rejected: list[RowViolation] = []
    row_of = {id(record): row for row, record in enumerate(records)}
    summaries = []
    report = progress or (lambda _: None)
    pools_total, rows_done = len(members), len(records) - sum(len(m) for m in members.values())
    report(RunProgress(0, pools_total, rows_done, len(records)))
    for pool in sorted(members, key=pool_order):
        summaries.append(_evaluate_pool(policy, pool, members[pool], prior, rejected, row_of))
        rows_done += len(members[pool])
        report(RunProgress(len(summaries), pools_total, rows_done, len(records)))
    if rejected:
        raise InputError(rejected)

    scored = {id(item.placement): item for pool_members in members.values() for item in pool_members}
    industry_ranks = _industry_ranks(members)
    ranked_sizes = {pool: sum(1 for m in pool_members if m.rank is not None) for pool, pool_members in members.items()}
    results = tuple(
        _result(policy, placement, scored.get(id(placement)), industry_ranks, ranked_sizes, prior)
        for placement in placements
    )
    rollups, rankings = build_rollups(policy, results, prior)
    digest_in = input_digest(policy, records, prior)
    pools = tuple(summaries)
    digest_out = sha256_of(
        {"policy_ref": policy.ref, "input_digest": digest_in, "results": results, "pools": pools,
         "rollups": rollups, "rankings": rankings}
    )
    return EvaluationRun(policy.ref, digest_in, digest_out, results, pools, rollups, rankings)


def pool_order(key: PoolKey) -> tuple:
    """The order pools are summarised in (and digested)."""
    return (key.region_code, key.year, key.size_class, key.industry_group, key.roster)


def prior_year_from_run(run: EvaluationRun) -> PriorYear:
    """The context next year's run needs: classes, D streaks, pool means and roll-ups."""
    return PriorYear(
        final_classes={r.credit_code: r.final_class for r in run.results if r.final_class},
        consecutive_d_years={r.credit_code: r.consecutive_d_years for r in run.results},
        pool_means={
            pool.key.prior_key(indicator): mean
            for pool in run.pools
            for indicator, mean in pool.means.items()
            if mean is not None
        },
        pool_benchmarks={
            pool.key.prior_key(indicator): benchmark
            for pool in run.pools
            for indicator, benchmark in pool.benchmarks.items()
            if benchmark is not None
        },
        rollups={(rollup.dimension, rollup.key): dict(rollup.indicators) for rollup in run.rollups},
    )


# --- one pool ---------------------------------------------------------------------------------------


def _evaluate_pool(policy, pool, pool_members, prior, rejected, row_of) -> PoolSummary:
    profile_name, profile = policy.profile_of(pool.size_class, pool.roster)
    graded = [item for item in pool_members if item.placement.status == STATUS_GRADED]
    for item in pool_members:
        item.values = {
            name: indicator_value(policy.indicators[name], item.record.raw(policy.indicators[name].num),
                                  item.record.raw(policy.indicators[name].den))
            for name in profile.weights
        }
    benchmarks = {name: pool_benchmark(policy, profile, pool, name, graded, prior) for name in profile.weights}
    means = {name: bm.mean([v for item in graded if (v := item.values[name]) is not None]) for name in profile.weights}
    _score(policy, profile, benchmarks, pool_members, graded, rejected, row_of)
    for item in pool_members:
        _adjust(policy, profile, item)
    ranked = sorted(graded, key=lambda item: _rank_key(policy, item))
    labels = _initial_labels(policy, pool, ranked)
    lowest_total: dict[str, Decimal] = {}
    for rank, (item, label) in enumerate(zip(ranked, labels, strict=True), start=1):
        item.rank = rank
        item.initial_class = label
        lowest_total[item.initial_class] = item.total  # ranked best first, so the last one stays
    for item in ranked:
        item.gap = gap_to_better(item.initial_class, item.total, lowest_total)
        _apply_hard_rules(policy, item)
    for item in pool_members:
        if item.placement.status == STATUS_NOT_GRADED:
            item.initial_class = "T"
            item.rules.extend(item.placement.rules)
            _apply_hard_rules(policy, item)
    final_counts = {label: 0 for label in (*CLASS_ORDER, "T")}
    for item in pool_members:
        final_counts[item.final_class or "T"] += 1
    share_counts = {label: labels.count(label) for label in CLASS_ORDER}
    return PoolSummary(pool, len(graded), len(pool_members) - len(graded), benchmarks, means,
                       share_counts, final_counts, lowest_total)


def _initial_labels(policy: Policy, pool: PoolKey, ranked: list[_Scored]) -> list[str]:
    """Classes by rank before hard rules: rank shares, or two-stage re-ranking (§1.3f)."""
    classification = policy.classification
    if classification.method == "two_stage":
        stages = classification.two_stage

        def sums(names):
            return [sum((i.score for i in item.indicators if i.indicator in names), ZERO) for item in ranked]

        return two_stage_labels(sums(stages.top.rerank_by), sums(stages.bottom.rerank_by), stages,
                                classification.rounding, classification.min_pool_size_for_shares)
    counts = class_counts(len(ranked), policy.shares_of(pool.size_class, pool.roster),
                          classification.min_pool_size_for_shares, classification.rounding)
    return [counts.label_for_rank(rank) for rank in range(1, len(ranked) + 1)]


def pool_benchmark(policy: Policy, profile: Profile, pool: PoolKey, name: str, graded, prior) -> Decimal | None:
    method = policy.benchmark_method_of(profile)
    definition = policy.indicators[name]
    if method == "fixed":
        return profile.fixed_benchmarks[name]
    key = pool.prior_key(name)
    if policy.benchmark.source_year == "prior_year":
        published = prior.pool_benchmarks.get(key) if prior is not None else None
        if published is None:
            raise InputError([RowViolation(-1, "", "prior.pool_benchmarks",
                                           f"no published prior-year benchmark of {name} for pool {pool.label()}")])
        return published
    present = [item for item in graded if item.values[name] is not None]
    if method == "multiple_of_prior_year_mean":
        value = prior.pool_means.get(key) if prior is not None else None
        if value is None:
            raise InputError([RowViolation(-1, "", "prior.pool_means",
                                           f"no prior-year mean of {name} for pool {pool.label()}")])
    elif method == "pool_aggregate_ratio":
        value = bm.aggregate_ratio([item.record.raw(definition.num) for item in present],
                                   [item.record.raw(definition.den) for item in present], definition.scale)
    elif method == "pool_mean":
        value = bm.mean([item.values[name] for item in present])
    elif method in WINSORIZE_LIMITS:
        value = bm.winsorized_mean([item.values[name] for item in present], WINSORIZE_LIMITS[method])
    else:
        value = bm.median([item.values[name] for item in present])
    return bm.apply_multiplier(value, policy.benchmark.multiplier)


def _score(policy, profile, benchmarks, pool_members, graded, rejected, row_of) -> None:
    scoring = policy.scoring
    places = scoring.rounding
    for name, weight in sorted(profile.weights.items()):
        definition = policy.indicators[name]
        outcomes = {}
        graded_values = [v for item in graded if (v := item.values[name]) is not None]
        low, high = (min(graded_values), max(graded_values)) if graded_values else (None, None)
        for item in pool_members:
            value = item.values[name]
            if value is None:
                continue
            if scoring.function == "min_max":
                outcomes[id(item)] = score_min_max(value, low, high, weight, definition.direction, scoring)
            else:
                outcomes[id(item)] = score_indicator(value, benchmarks[name], weight, definition.direction, scoring)
        average = None
        if any(policy.missing_rule(name, cause) == "pool_average_score" for cause in MISSING_CAUSES):
            average = pool_average_score([outcomes[id(i)].score for i in graded if id(i) in outcomes], places)
        # Ascending, so a percentile is two bisections instead of a pass over the pool (O(n log n) per pool).
        ranked_values = sorted(v for item in graded if (v := item.values[name]) is not None)
        for item in pool_members:
            outcome = outcomes.get(id(item))
            if outcome is None:
                cause, field_name, message = missing_cause(item.record, definition)
                rule = policy.missing_rule(name, cause)
                if rule == "reject":
                    rejected.append(RowViolation(row_of.get(id(item.record), -1), item.record.credit_code,
                                                 field_name, f"{message}; {name} cannot be computed"))
                score = average if rule == "pool_average_score" and average is not None else round_half_up(ZERO, places)
                item.rules.append(RuleFiring(f"scoring.missing.{name}", "missing_value", f"{name}: {rule} ({message})"))
                item.indicators.append(IndicatorResult(name, definition.unit, definition.direction, weight, None,
                                                       benchmarks[name], None, score, False, rule, None))
            else:
                item.indicators.append(IndicatorResult(
                    name, definition.unit, definition.direction, weight, item.values[name], benchmarks[name],
                    outcome.ratio, outcome.score, outcome.capped, None,
                    value_percentile(item.values[name], ranked_values, definition.direction)))
        for item in pool_members:
            item.raw_total += item.indicators[-1].score


def missing_cause(record: EnterpriseYear, definition) -> tuple[str, str, str]:
    """(cause, field, message) of an indicator without a value; a missing numerator decides first."""
    if record.raw(definition.num) is None:
        return "no_numerator", definition.num, "missing numerator"
    if record.raw(definition.den) is None:
        return "no_denominator", definition.den, "missing denominator"
    return "zero_denominator", definition.den, "denominator is 0"


def value_percentile(value: Decimal, ranked_values: list[Decimal], direction: str) -> Decimal:
    """Share of the pool's other values that are strictly worse, in percent (100 = best).

    `ranked_values` is sorted ascending."""
    if len(ranked_values) <= 1:
        return Decimal(100)
    if direction == "higher_better":
        worse = bisect_left(ranked_values, value)
    else:
        worse = len(ranked_values) - bisect_right(ranked_values, value)
    return round_half_up(DECIMAL_CONTEXT.divide(HUNDRED * worse, Decimal(len(ranked_values) - 1)), 2)


def _adjust(policy: Policy, profile: Profile, item: _Scored) -> None:
    adjusted = adjustments_of(policy, profile, item.record, item.raw_total)
    item.rules.extend(adjusted.firings)
    item.bonus, item.deductions, item.adjustments = adjusted.bonus, adjusted.deductions, adjusted.applied
    item.total = item.raw_total + adjusted.bonus + adjusted.deductions


def _rank_key(policy: Policy, item: _Scored) -> tuple:
    """Best first: higher total, then the policy's tie-break keys (higher first, missing last), then credit code."""
    key: list = [-item.total]
    for name in policy.classification.tie_break:
        if name == "credit_code":
            key.append(item.record.credit_code)
            continue
        value = item.values.get(name) if name in policy.indicators else item.record.raw(name)
        if name in policy.indicators and name not in item.values:
            definition = policy.indicators[name]
            value = indicator_value(definition, item.record.raw(definition.num), item.record.raw(definition.den))
        key.append((1, ZERO) if value is None else (0, -value))
    return tuple(key)


def gap_to_better(initial_class: str, total: Decimal, lowest_total: dict[str, Decimal]) -> Decimal | None:
    """Points to tie the lowest firm of the next better class present in the pool."""
    index = CLASS_ORDER.index(initial_class)
    for better in reversed(CLASS_ORDER[:index]):
        if better in lowest_total:
            return max(ZERO, lowest_total[better] - total)
    return None


def _apply_hard_rules(policy: Policy, item: _Scored) -> None:
    item.final_class, firings = hard_rules_of(policy, item.record, item.values, item.initial_class)
    item.rules.extend(firings)


def _industry_ranks(members: dict[PoolKey, list[_Scored]]) -> dict[int, tuple[int, int]]:
    """Rank among graded firms of the same pool and GB/T 4754 division (scores of one profile only)."""
    groups: dict[tuple[PoolKey, str], list[_Scored]] = defaultdict(list)
    for pool, pool_members in members.items():
        for item in pool_members:
            if item.rank is not None:
                groups[(pool, item.record.industry_division)].append(item)
    ranks: dict[int, tuple[int, int]] = {}
    for group in groups.values():
        for rank, item in enumerate(sorted(group, key=lambda i: i.rank), start=1):
            ranks[id(item.placement)] = (rank, len(group))
    return ranks


def rank_percentile(rank: int | None, size: int | None) -> Decimal | None:
    if rank is None or not size:
        return None
    if size == 1:
        return Decimal(100)
    return round_half_up(DECIMAL_CONTEXT.divide(HUNDRED * (size - rank), Decimal(size - 1)), 2)


def _result(policy, placement: Placement, item: _Scored | None, industry_ranks, ranked_sizes, prior) -> EnterpriseResult:
    record = placement.record
    raw = {name: record.raw(name) for name in RAW_FIELDS}
    common = dict(credit_code=record.credit_code, name=record.name, year=record.year, region_code=record.region_code,
                  park=record.park, industry_code=record.industry_code, industry_division=record.industry_division,
                  size_class=record.size_class, status=placement.status, pool=placement.pool, raw=raw)
    if item is None:
        zero = round_half_up(ZERO, policy.scoring.rounding)
        return EnterpriseResult(**common, profile=None, indicators=(), raw_total=zero, bonus=zero, deductions=zero,
                                adjustments=(), total=zero, initial_class=None, final_class=None, managed_as=None,
                                rules_fired=placement.rules, rank_in_pool=None, pool_size=None,
                                percentile_in_pool=None, rank_in_industry=None, industry_size=None,
                                percentile_in_industry=None, gap_to_next_class=None, consecutive_d_years=0,
                                measures=())
    final = item.final_class
    managed_as = policy.scope.T_treated_as if final == "T" else final
    previous = prior.consecutive_d_years.get(record.credit_code, 0) if prior is not None else 0
    consecutive_d = previous + 1 if final == "D" else 0
    pool_size = ranked_sizes[placement.pool] if item.rank else None
    industry_rank, industry_size = industry_ranks.get(id(placement), (None, None))
    profile_name, _ = policy.profile_of(record.size_class, placement.pool.roster)
    return EnterpriseResult(
        **common, profile=profile_name, indicators=tuple(item.indicators), raw_total=item.raw_total,
        bonus=item.bonus, deductions=item.deductions, adjustments=item.adjustments, total=item.total,
        initial_class=item.initial_class, final_class=final, managed_as=managed_as, rules_fired=tuple(item.rules),
        rank_in_pool=item.rank, pool_size=pool_size, percentile_in_pool=rank_percentile(item.rank, pool_size),
        rank_in_industry=industry_rank, industry_size=industry_size,
        percentile_in_industry=rank_percentile(industry_rank, industry_size), gap_to_next_class=item.gap,
        consecutive_d_years=consecutive_d,
        measures=measures_for(policy.differentiated_measures, managed_as, consecutive_d, raw),
    )
