"""The full result of a bulk run, firm by firm, exactly as the reference engine states it (domain §3.3).

The bulk engine decides pools, scores, totals, ranks and classes for every firm at once; a firm's detail
(indicator values, benchmarks, ratios, percentiles, adjustments, every rule that fired, gap, measures) is
built here when it is asked for, from the firm's own record and its pool's context. Pool context (exact
benchmarks, sorted values, ranks) is computed once per pool on first use, so reading one firm costs one
pool's work, not the run's. `RunDetail.run()` builds every firm and must equal `run_evaluation` — the
reference engine is the oracle of the bulk path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from . import benchmarks as bm
from .bulk import CLASS_CODES, GRADED, BulkResult, evaluate_bulk
from .columns import columns_from_records
from .digest import sha256_of
from .engine import (
    gap_to_better,
    missing_cause,
    pool_benchmark,
    pool_order,
    rank_percentile,
    value_percentile,
)
from .firm_rules import adjustments_of, hard_rules_of
from .measures import measures_for
from .numbers import DECIMAL_CONTEXT, ZERO, round_half_up
from .placement import place
from .policy import CLASS_ORDER, MISSING_CAUSES, RAW_FIELDS, Policy
from .records import EnterpriseYear, PriorYear
from .results import (
    STATUS_GRADED,
    EnterpriseResult,
    EvaluationRun,
    IndicatorResult,
    PoolKey,
    PoolSummary,
    RuleFiring,
)
from .rollups import build_rollups
from .scoring import indicator_value, score_indicator, score_min_max
from .snapshot import input_digest


@dataclass(slots=True)
class _Member:
    """What pool_benchmark reads of a pool member."""

    record: EnterpriseYear
    values: dict[str, Decimal | None]


@dataclass(frozen=True, slots=True)
class _PoolContext:
    key: PoolKey
    rows: np.ndarray  # every row of the pool (graded and T)
    ranked: np.ndarray  # graded rows, best first
    benchmarks: dict[str, Decimal | None]
    means: dict[str, Decimal | None]
    sorted_values: dict[str, list[Decimal]]  # graded values, ascending (percentiles)
    extremes: dict[str, tuple[Decimal | None, Decimal | None]]  # graded min, max (min–max scoring)
    averages: dict[str, Decimal | None]  # mean rounded score of graded firms with the value
    lowest_total: dict[str, Decimal]  # per initial class: the boundary firm's total
    industry_ranks: dict[int, tuple[int, int]]  # row -> (rank among the pool's division, division size)


class RunDetail:
    """Firm-level results of a bulk run over `records` (the rows of the columns the run was given)."""

    def __init__(self, policy: Policy, records: Sequence[EnterpriseYear], bulk: BulkResult,
                 prior: PriorYear | None = None) -> None:
        self.policy, self.records, self.bulk, self.prior = policy, records, bulk, prior
        self.scale = Decimal(1).scaleb(-bulk.places)
        self._pools: dict[int, _PoolContext] = {}
        self._rows: dict[tuple[str, int], int] | None = None

    @classmethod
    def of(cls, policy: Policy, records: Sequence[EnterpriseYear], prior: PriorYear | None = None) -> RunDetail:
        """Evaluate `records` with the bulk engine and keep them for reading firm by firm."""
        return cls(policy, records, evaluate_bulk(policy, columns_from_records(policy, records, prior), prior), prior)

    def row_of(self, credit_code: str, year: int) -> int | None:
        """The row of an enterprise-year among the records, None when the run did not evaluate it."""
        if self._rows is None:
            self._rows = {(record.credit_code, record.year): row for row, record in enumerate(self.records)}
        return self._rows.get((credit_code, year))

    # --- one firm -------------------------------------------------------------------------------------

    def result(self, row: int) -> EnterpriseResult:
        policy, bulk = self.policy, self.bulk
        record = self.records[row]
        placement = place(policy, record)
        raw = {name: record.raw(name) for name in RAW_FIELDS}
        common = dict(credit_code=record.credit_code, name=record.name, year=record.year,
                      region_code=record.region_code, park=record.park, industry_code=record.industry_code,
                      industry_division=record.industry_division, size_class=record.size_class,
                      status=placement.status, pool=placement.pool, raw=raw)
        if placement.pool is None:
            zero = round_half_up(ZERO, policy.scoring.rounding)
            return EnterpriseResult(**common, profile=None, indicators=(), raw_total=zero, bonus=zero,
                                    deductions=zero, adjustments=(), total=zero, initial_class=None,
                                    final_class=None, managed_as=None, rules_fired=placement.rules,
                                    rank_in_pool=None, pool_size=None, percentile_in_pool=None,
                                    rank_in_industry=None, industry_size=None, percentile_in_industry=None,
                                    gap_to_next_class=None, consecutive_d_years=0, measures=())
        context = self._pool(int(bulk.pool[row]))
        profile_name, profile = policy.profile_of(record.size_class, placement.pool.roster)
        graded = placement.status == STATUS_GRADED
        rules: list[RuleFiring] = list(placement.rules) if graded else []
        values, indicators = {}, []
        for name, weight in sorted(profile.weights.items()):
            indicator, firing = self._indicator(context, record, name, weight)
            values[name] = indicator.value
            indicators.append(indicator)
            if firing is not None:
                rules.append(firing)
        raw_total = sum((i.score for i in indicators), ZERO)
        adjusted = adjustments_of(policy, profile, record, raw_total)
        rules.extend(adjusted.firings)
        total = raw_total + adjusted.bonus + adjusted.deductions
        initial = CLASS_CODES[int(bulk.initial_class[row])]
        if not graded:
            rules.extend(placement.rules)
        final, firings = hard_rules_of(policy, record, values, initial)
        rules.extend(firings)
        rank = int(bulk.rank_in_pool[row]) or None
        pool_size = len(context.ranked) if rank else None
        industry_rank, industry_size = context.industry_ranks.get(row, (None, None))
        managed_as = policy.scope.T_treated_as if final == "T" else final
        consecutive_d = int(bulk.consecutive_d_years[row])
        return EnterpriseResult(
            **common, profile=profile_name, indicators=tuple(indicators), raw_total=raw_total,
            bonus=adjusted.bonus, deductions=adjusted.deductions, adjustments=adjusted.applied, total=total,
            initial_class=initial, final_class=final, managed_as=managed_as, rules_fired=tuple(rules),
            rank_in_pool=rank, pool_size=pool_size, percentile_in_pool=rank_percentile(rank, pool_size),
            rank_in_industry=industry_rank, industry_size=industry_size,
            percentile_in_industry=rank_percentile(industry_rank, industry_size),
            gap_to_next_class=gap_to_better(initial, total, context.lowest_total) if graded else None,
            consecutive_d_years=consecutive_d,
            measures=measures_for(policy.differentiated_measures, managed_as, consecutive_d, raw),
        )

    def _indicator(self, context: _PoolContext, record: EnterpriseYear, name: str,
                   weight: Decimal) -> tuple[IndicatorResult, RuleFiring | None]:
        policy = self.policy
        definition = policy.indicators[name]
        value = indicator_value(definition, record.raw(definition.num), record.raw(definition.den))
        benchmark = context.benchmarks[name]
        if value is None:
            cause, _, message = missing_cause(record, definition)
            rule = policy.missing_rule(name, cause)
            average = context.averages[name]
            score = average if rule == "pool_average_score" and average is not None else round_half_up(
                ZERO, policy.scoring.rounding)
            firing = RuleFiring(f"scoring.missing.{name}", "missing_value", f"{name}: {rule} ({message})")
            return IndicatorResult(name, definition.unit, definition.direction, weight, None, benchmark, None,
                                   score, False, rule, None), firing
        if policy.scoring.function == "min_max":
            low, high = context.extremes[name]
            outcome = score_min_max(value, low, high, weight, definition.direction, policy.scoring)
        else:
            outcome = score_indicator(value, benchmark, weight, definition.direction, policy.scoring)
        percentile = value_percentile(value, context.sorted_values[name], definition.direction)
        return IndicatorResult(name, definition.unit, definition.direction, weight, value, benchmark,
                               outcome.ratio, outcome.score, outcome.capped, None, percentile), None

    # --- one pool -------------------------------------------------------------------------------------

    def _pool(self, pool: int) -> _PoolContext:
        if pool not in self._pools:
            self._pools[pool] = self._build_pool(pool)
        return self._pools[pool]

    def _build_pool(self, pool: int) -> _PoolContext:
        policy, bulk = self.policy, self.bulk
        key = bulk.pool_keys[pool]
        rows = np.flatnonzero(bulk.pool == pool)
        graded_rows = rows[bulk.status[rows] == GRADED]
        ranked = graded_rows[np.argsort(bulk.rank_in_pool[graded_rows], kind="stable")]
        _, profile = policy.profile_of(key.size_class, key.roster)
        members: dict[int, _Member] = {}  # graded rows in credit-code order, as the reference sums them
        for row in sorted(graded_rows.tolist(), key=lambda r: (self.records[r].credit_code, self.records[r].year)):
            record = self.records[row]
            members[row] = _Member(record, {
                name: indicator_value(policy.indicators[name], record.raw(policy.indicators[name].num),
                                      record.raw(policy.indicators[name].den)) for name in profile.weights})
        benchmarks, means, sorted_values, extremes, averages = {}, {}, {}, {}, {}
        for name in profile.weights:
            benchmarks[name] = pool_benchmark(policy, profile, key, name, list(members.values()), self.prior)
            present = [v for member in members.values() if (v := member.values[name]) is not None]
            means[name] = bm.mean(present)
            sorted_values[name] = sorted(present)
            extremes[name] = (min(present), max(present)) if present else (None, None)
            averages[name] = self._average_score(name, members) if any(
                policy.missing_rule(name, cause) == "pool_average_score" for cause in MISSING_CAUSES) else None
        lowest_total: dict[str, Decimal] = {}
        for row in ranked.tolist():
            lowest_total[CLASS_CODES[int(bulk.initial_class[row])]] = self._total(row)
        divisions: dict[str, list[int]] = defaultdict(list)
        for row in ranked.tolist():
            divisions[self.records[row].industry_division].append(row)
        industry_ranks = {row: (position, len(group)) for group in divisions.values()
                          for position, row in enumerate(group, start=1)}
        return _PoolContext(key, rows, ranked, benchmarks, means, sorted_values, extremes, averages,
                            lowest_total, industry_ranks)

    def _average_score(self, name: str, members: dict[int, _Member]) -> Decimal:
        """Huangyan's pool average: the mean rounded score of graded firms that have the value."""
        have = [row for row, member in members.items() if member.values[name] is not None]
        places = self.policy.scoring.rounding
        if not have:
            return round_half_up(ZERO, places)
        total = sum(int(self.bulk.indicator_cents[name][row]) for row in have)
        return round_half_up(DECIMAL_CONTEXT.divide(Decimal(total) * self.scale, Decimal(len(have))), places)

    def _total(self, row: int) -> Decimal:
        return DECIMAL_CONTEXT.multiply(Decimal(int(self.bulk.total_cents[row])), self.scale)

    def pool_summary(self, pool: int) -> PoolSummary:
        context, bulk = self._pool(pool), self.bulk
        graded = len(context.ranked)
        initial = [CLASS_CODES[int(bulk.initial_class[row])] for row in context.ranked.tolist()]
        share_counts = {label: initial.count(label) for label in CLASS_ORDER}
        final_counts = {label: 0 for label in (*CLASS_ORDER, "T")}
        for row in context.rows.tolist():
            final_counts[CLASS_CODES[int(bulk.final_class[row])]] += 1
        return PoolSummary(context.key, graded, len(context.rows) - graded, context.benchmarks, context.means,
                           share_counts, final_counts, context.lowest_total)

    # --- every firm -----------------------------------------------------------------------------------

    def run(self) -> EvaluationRun:
        """The whole run as the reference engine would give it (small runs and the oracle test)."""
        policy, records = self.policy, self.records
        order = sorted(range(len(records)), key=lambda row: (records[row].credit_code, records[row].year))
        results = tuple(self.result(row) for row in order)
        pools = tuple(sorted((self.pool_summary(pool) for pool in range(len(self.bulk.pool_keys))),
                             key=lambda summary: pool_order(summary.key)))
        rollups, rankings = build_rollups(policy, results, self.prior)
        digest_in = input_digest(policy, records, self.prior)
        digest_out = sha256_of({"policy_ref": policy.ref, "input_digest": digest_in, "results": results,
                                "pools": pools, "rollups": rollups, "rankings": rankings})
        return EvaluationRun(policy.ref, digest_in, digest_out, results, pools, rollups, rankings)
