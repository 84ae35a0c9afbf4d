"""Vectorised scoring, classification and roll-ups for large runs (province scale, benchmarks).

Scores and totals are exact: they are kept in integer hundredths (units of 10^-rounding), and any
float score that lands within 1e-6 of a rounding boundary — or a ratio that sits on the cap or an
absolute floor — is recomputed with the Decimal reference rules of `scoring` / `benchmarks`. Float
inputs are read back as their shortest decimal text (`repr`), which restores decimal inputs of up to
15 significant digits exactly. Roll-up ratios are floats (they are displays, not scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from . import benchmarks as bm
from .bulk_rollups import BulkRollup, bulk_rollups
from .classification import class_counts
from .columns import EnterpriseColumns
from .errors import InputError, RowViolation
from .numbers import DECIMAL_CONTEXT
from .policy import SIZE_CLASSES, Policy
from .results import PoolKey
from .scoring import indicator_value, score_indicator

GRADED, NOT_GRADED, TENANT, OUT_OF_SCOPE = 0, 1, 2, 3
CLASS_CODES = ("A", "B", "C", "D", "T")
CLASS_T = 4
AMBIGUITY = 1e-6  # in units of the last reported decimal


@dataclass(frozen=True)
class BulkResult:
    status: np.ndarray  # int8: GRADED, NOT_GRADED, TENANT, OUT_OF_SCOPE
    pool: np.ndarray  # int32 index into pool_keys, -1 = none
    pool_keys: tuple[PoolKey, ...]
    indicator_cents: dict[str, np.ndarray]  # int64 score × 10^rounding (0 where not in the profile)
    capped: dict[str, np.ndarray]
    total_cents: np.ndarray  # int64
    initial_class: np.ndarray  # int8 index into CLASS_CODES, -1 = none
    final_class: np.ndarray
    rank_in_pool: np.ndarray  # int32, 0 = not ranked
    consecutive_d_years: np.ndarray
    rollups: dict[str, BulkRollup]
    exact_fallbacks: int  # rows re-scored with Decimal because a float sat on a boundary
    places: int

    def total(self, row: int) -> Decimal:
        return Decimal(int(self.total_cents[row])).scaleb(-self.places)


def evaluate_bulk(policy: Policy, columns: EnterpriseColumns, prior_pool_means=None) -> BulkResult:
    return _BulkRun(policy, columns, prior_pool_means or {}).run()


def _exact(value: float) -> Decimal | None:
    return None if np.isnan(value) else Decimal(repr(float(value)))


class _BulkRun:
    def __init__(self, policy: Policy, columns: EnterpriseColumns, prior_pool_means):
        self.policy, self.cols, self.prior_pool_means = policy, columns, prior_pool_means
        self.n = len(columns)
        self.places = policy.scoring.rounding
        self.scale = 10**self.places
        self.fallbacks = 0
        self._values: dict[str, np.ndarray] = {}
        self._decimal_benchmarks: dict[tuple[int, str], Decimal | None] = {}

    # --- placement and pools ---------------------------------------------------------------------

    def run(self) -> BulkResult:
        self._validate()
        self._place()
        self._pools()
        cents, capped = self._score()
        total = self._adjust(sum(cents.values(), np.zeros(self.n, dtype=np.int64)))
        initial, rank = self._classify(total)
        final = self._hard_rules(initial)
        consecutive = np.where(final == 3, self.cols.prior_consecutive_d + 1, 0).astype(np.int16)
        rollups = bulk_rollups(self.policy, self.cols, self.scored, final, consecutive)
        return BulkResult(self.status, self.pool, self.pool_keys, cents, capped, total, initial, final, rank,
                          consecutive, rollups, self.fallbacks, self.places)

    def _validate(self) -> None:
        land = self.cols.values["land_mu"]
        problems = []
        for row in np.flatnonzero(np.isnan(land))[:100]:
            problems.append(RowViolation(int(row), "", "land_mu", "is required"))
        for name in ("land_mu", "energy_tce", "pollutant_t", "cod_t", "water_t", "kwh", "avg_employees"):
            for row in np.flatnonzero(self.cols.values[name] < 0)[:100]:
                problems.append(RowViolation(int(row), "", name, "must not be negative"))
        if problems:
            raise InputError(problems)

    def _place(self) -> None:
        cols, scope = self.cols, self.policy.scope
        land = cols.values["land_mu"]
        tenant = (land == 0) if "tenant_no_land" in scope.separate_lists else np.zeros(self.n, dtype=bool)
        in_scope = np.zeros(self.n, dtype=bool)
        for rule in scope.include:
            rows = cols.size_class == SIZE_CLASSES.index(rule.size_class)
            if rule.min_land_mu is not None:
                rows &= land >= float(rule.min_land_mu)
            in_scope |= rows
        not_graded = np.zeros(self.n, dtype=bool)
        for rule in scope.not_graded_T:
            if rule.industry_in is not None:
                for code in rule.industry_in:
                    digits = code.lstrip("ABCDEFGHIJKLMNOPQRST")
                    prefix = cols.industry_code4 // 10 ** (4 - len(digits))
                    not_graded |= (prefix == int(digits)) & (cols.industry_digits >= len(digits))
            elif rule.years_since_production_lt is not None:
                years = cols.years_since_production
                not_graded |= (years >= 0) & (years < rule.years_since_production_lt)
            elif rule.flag in cols.flags:
                not_graded |= cols.flags[rule.flag]
        scored = in_scope & ~tenant
        self.status = np.full(self.n, OUT_OF_SCOPE, dtype=np.int8)
        self.status[tenant] = TENANT
        self.status[scored] = np.where(not_graded[scored], NOT_GRADED, GRADED)
        self.scored, self.graded = scored, scored & ~not_graded

    def _pools(self) -> None:
        cols = self.cols
        split = self.policy.classification.industry_split
        group_names: list[str] = [""]
        group = np.zeros(self.n, dtype=np.int64)
        if split is not None:
            group_names = [*split.groups, split.other_group]
            table = np.full(100, len(split.groups), dtype=np.int64)
            for index, prefixes in reversed(list(enumerate(split.groups.values()))):
                for prefix in prefixes:
                    digits = prefix.lstrip("ABCDEFGHIJKLMNOPQRST")
                    for division in range(100):
                        if f"{division:02d}".startswith(digits):
                            table[division] = index
            group = table[cols.industry_code4 // 100]
        years = cols.year.astype(np.int64) - 1900
        key = ((cols.region.astype(np.int64) * 1000 + years) * 2 + cols.size_class) * len(group_names) + group
        key = np.where(self.scored, key, -1)
        unique, inverse = np.unique(key[self.scored], return_inverse=True)
        self.pool = np.full(self.n, -1, dtype=np.int32)
        self.pool[self.scored] = inverse
        self.n_pools = len(unique)
        group_of, rest = unique % len(group_names), unique // len(group_names)
        size_of, rest = rest % 2, rest // 2
        year_of, region_of = rest % 1000 + 1900, rest // 1000
        self.pool_size_class = size_of
        self.pool_keys = tuple(
            PoolKey(cols.region_names[int(r)], int(y), SIZE_CLASSES[int(s)], group_names[int(g)])
            for r, y, s, g in zip(region_of, year_of, size_of, group_of, strict=True)
        )

    # --- indicators and scores -------------------------------------------------------------------

    def values_of(self, name: str) -> np.ndarray:
        if name not in self._values:
            definition = self.policy.indicators[name]
            num, den = self.cols.values[definition.num], self.cols.values[definition.den]
            ok = ~np.isnan(num) & (den > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.where(ok, np.maximum(num, 0.0) / den * float(definition.scale), np.nan)
            self._values[name] = value
        return self._values[name]

    def _profiles(self):
        return {size: self.policy.profile_of(SIZE_CLASSES[size])[1] for size in range(2)
                if SIZE_CLASSES[size] in self.policy.profile_for}

    def _score(self):
        policy, scoring = self.policy, self.policy.scoring
        profiles = self._profiles()
        cents_by_indicator, capped_by_indicator = {}, {}
        rejected: list[RowViolation] = []
        for name in policy.scored_indicators():
            definition = policy.indicators[name]
            weight_by_size = np.array([float(profiles[s].weights.get(name, 0)) if s in profiles else 0.0
                                       for s in range(2)])
            rows_weight = np.where(self.scored, weight_by_size[self.cols.size_class], 0.0)
            in_profile = rows_weight > 0
            value = self.values_of(name)
            valid = in_profile & ~np.isnan(value)
            benchmark = self._benchmarks(name, profiles, valid & self.graded)
            pool_bench = np.where(self.pool >= 0, benchmark[np.maximum(self.pool, 0)], np.nan)
            usable = valid & (pool_bench > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(usable, value / pool_bench, np.nan)
                cap = float(scoring.cap_ratio) if scoring.cap_ratio is not None else np.inf
                linear = definition.direction == "lower_better" and scoring.alt_lower_better_linear
                if linear:
                    effective = np.clip((2.0 - ratio) / 2.0, 0.0, 1.0)
                    capped = np.zeros(self.n, dtype=bool)
                    near_cap = np.zeros(self.n, dtype=bool)
                else:
                    effective = ratio if definition.direction == "higher_better" else np.where(
                        value > 0, pool_bench / value, np.inf)
                    capped = usable & (effective > cap)
                    near_cap = usable & (np.abs(effective - cap) <= 1e-9 * cap)
                    effective = np.minimum(cap, np.maximum(float(scoring.floor_ratio), effective))
                scaled = np.where(usable, rows_weight * effective * self.scale, 0.0)
            cents = np.floor(scaled + 0.5).astype(np.int64)
            fraction = scaled - np.floor(scaled)
            ambiguous = usable & ((np.abs(fraction - 0.5) < AMBIGUITY) | near_cap)
            for row in np.flatnonzero(ambiguous):
                cents[row], capped[row] = self._exact_score(int(row), name, profiles)
            self.fallbacks += int(ambiguous.sum())
            missing = in_profile & ~valid
            if missing.any():
                rule = policy.missing_rule(name)
                if rule == "reject":
                    for row in np.flatnonzero(missing)[:100]:
                        rejected.append(RowViolation(int(row), "", definition.den, f"{name} cannot be computed"))
                elif rule == "pool_average_score":
                    graded_valid = valid & self.graded
                    sums = np.bincount(self.pool[graded_valid], weights=cents[graded_valid], minlength=self.n_pools)
                    counts = np.bincount(self.pool[graded_valid], minlength=self.n_pools)
                    sums = np.rint(sums).astype(np.int64)  # exact: integer hundredths, far below 2^53
                    average = np.where(counts > 0, (2 * sums + counts) // np.maximum(2 * counts, 1), 0)
                    cents[missing] = average[self.pool[missing]]
            cents_by_indicator[name], capped_by_indicator[name] = cents, capped
        if rejected:
            raise InputError(rejected)
        return cents_by_indicator, capped_by_indicator

    def _benchmarks(self, name: str, profiles, members: np.ndarray) -> np.ndarray:
        policy, definition = self.policy, self.policy.indicators[name]
        benchmark = np.full(self.n_pools, np.nan)
        for size, profile in profiles.items():
            if name not in profile.weights:
                continue
            pools_of_size = self.pool_size_class == size
            method = policy.benchmark_method_of(profile)
            if method == "fixed":
                benchmark[pools_of_size] = float(profile.fixed_benchmarks[name])
                continue
            rows = members & (self.cols.size_class == size)
            pool = self.pool[rows]
            if method == "pool_aggregate_ratio":
                num = np.bincount(pool, weights=np.maximum(self.cols.values[definition.num][rows], 0.0),
                                  minlength=self.n_pools)
                den = np.bincount(pool, weights=self.cols.values[definition.den][rows], minlength=self.n_pools)
                with np.errstate(divide="ignore", invalid="ignore"):
                    stat = np.where(den > 0, num / den * float(definition.scale), np.nan)
            elif method == "pool_mean":
                total = np.bincount(pool, weights=self.values_of(name)[rows], minlength=self.n_pools)
                count = np.bincount(pool, minlength=self.n_pools)
                with np.errstate(divide="ignore", invalid="ignore"):
                    stat = np.where(count > 0, total / count, np.nan)
            elif method == "pool_median":
                stat = self._medians(pool, self.values_of(name)[rows])
            else:
                stat = np.array([float(self.prior_pool_means.get(
                    (k.region_code, k.size_class, k.industry_group, name), np.nan)) for k in self.pool_keys])
            benchmark[pools_of_size] = (stat * float(policy.benchmark.multiplier))[pools_of_size]
        return benchmark

    def _medians(self, pool: np.ndarray, values: np.ndarray) -> np.ndarray:
        order = np.lexsort((values, pool))
        pool, values = pool[order], values[order]
        counts = np.bincount(pool, minlength=self.n_pools)
        starts = np.cumsum(counts) - counts
        result = np.full(self.n_pools, np.nan)
        has = counts > 0
        low = starts + (counts - 1) // 2
        high = starts + counts // 2
        result[has] = (values[low[has]] + values[high[has]]) / 2.0
        return result

    def _exact_score(self, row: int, name: str, profiles) -> tuple[int, bool]:
        """The Decimal reference score of one row whose float score sat on a boundary."""
        policy, definition = self.policy, self.policy.indicators[name]
        size = int(self.cols.size_class[row])
        profile = profiles[size]
        value = indicator_value(definition, _exact(self.cols.values[definition.num][row]),
                                _exact(self.cols.values[definition.den][row]))
        benchmark = self._decimal_benchmark(int(self.pool[row]), name, profile)
        outcome = score_indicator(value, benchmark, profile.weights[name], definition.direction, policy.scoring)
        return int(outcome.score.scaleb(self.places)), outcome.capped

    def _decimal_benchmark(self, pool: int, name: str, profile) -> Decimal | None:
        key = (pool, name)
        if key in self._decimal_benchmarks:
            return self._decimal_benchmarks[key]
        policy, definition = self.policy, self.policy.indicators[name]
        method = policy.benchmark_method_of(profile)
        if method == "fixed":
            result = profile.fixed_benchmarks[name]
        elif method == "multiple_of_prior_year_mean":
            pool_key = self.pool_keys[pool]
            result = bm.apply_multiplier(self.prior_pool_means.get(
                (pool_key.region_code, pool_key.size_class, pool_key.industry_group, name)), policy.benchmark.multiplier)
        else:
            rows = np.flatnonzero((self.pool == pool) & self.graded & ~np.isnan(self.values_of(name)))
            rows = rows[np.argsort(self.cols.credit_order[rows])]  # the reference sums in credit-code order
            nums = [_exact(self.cols.values[definition.num][r]) for r in rows]
            dens = [_exact(self.cols.values[definition.den][r]) for r in rows]
            values = [indicator_value(definition, n, d) for n, d in zip(nums, dens, strict=True)]
            if method == "pool_aggregate_ratio":
                stat = bm.aggregate_ratio(nums, dens, definition.scale)
            elif method == "pool_mean":
                stat = bm.mean(values)
            else:
                stat = bm.median(values)
            result = bm.apply_multiplier(stat, policy.benchmark.multiplier)
        self._decimal_benchmarks[key] = result
        return result

    # --- adjustments, classes, hard rules ---------------------------------------------------------

    def _adjust(self, raw_total: np.ndarray) -> np.ndarray:
        settings, scale = self.policy.adjustments, self.scale
        bonus = np.zeros(self.n, dtype=np.int64)
        deductions = np.zeros(self.n, dtype=np.int64)
        for item in settings.items:
            counts = self.cols.adjustment_counts.get(item.id)
            if counts is None:
                continue
            points = int(item.points * scale)
            if item.per_unit:
                charged = np.maximum(counts.astype(np.int64) - item.free_units, 0)
                first = int(item.first_unit_points * scale) if item.first_unit_points is not None else points
                value = np.where(charged > 0, first + (charged - 1) * points, 0)
            else:
                value = np.where(counts > 0, points, 0)
            if points > 0:
                bonus += value
            else:
                deductions += value
        if settings.bonus_cap_points is not None:
            bonus = np.minimum(bonus, int(settings.bonus_cap_points * scale))
        penalty = int(self.policy.scoring.implausible_zero_penalty * scale)
        if penalty:
            for size, profile in self._profiles().items():
                denominators = {self.policy.indicators[name].den for name in profile.weights}
                for field_name in self.policy.scoring.implausible_zero_fields:
                    if field_name in denominators:
                        hit = (self.cols.size_class == size) & (self.cols.values[field_name] == 0)
                        deductions += np.where(hit, penalty, 0)
        return np.where(self.scored, raw_total + bonus + deductions, 0)

    def _tie_key(self, name: str) -> np.ndarray:
        values = self.values_of(name) if name in self.policy.indicators else self.cols.values[name]
        return np.where(np.isnan(values), np.inf, -values)

    def _classify(self, total: np.ndarray):
        graded_rows = np.flatnonzero(self.graded)
        keys = [self.cols.credit_order[graded_rows]]
        for name in reversed(self.policy.classification.tie_break[:-1]):
            keys.append(self._tie_key(name)[graded_rows])
        keys += [-total[graded_rows], self.pool[graded_rows]]
        order = graded_rows[np.lexsort(keys)]
        pool_sorted = self.pool[order]
        counts = np.bincount(pool_sorted, minlength=self.n_pools)
        starts = np.cumsum(counts) - counts
        rank_sorted = np.arange(len(order)) - starts[pool_sorted] + 1
        classification = self.policy.classification
        bounds = np.zeros((self.n_pools, 3), dtype=np.int64)
        for pool, key in enumerate(self.pool_keys):
            share = class_counts(int(counts[pool]), classification.shares[key.size_class],
                                 classification.min_pool_size_for_shares)
            bounds[pool] = (share.A, share.A + share.B, share.A + share.B + share.C)
        limits = bounds[pool_sorted]
        label = (rank_sorted > limits[:, 0]).astype(np.int8) + (rank_sorted > limits[:, 1]) + (
            rank_sorted > limits[:, 2])
        initial = np.full(self.n, -1, dtype=np.int8)
        initial[order] = label
        initial[self.scored & ~self.graded] = CLASS_T
        rank = np.zeros(self.n, dtype=np.int32)
        rank[order] = rank_sorted
        return initial, rank

    def _hard_rules(self, initial: np.ndarray) -> np.ndarray:
        final = initial.copy()
        graded = self.graded
        for floor in self.policy.adjustments.absolute_floor:
            values = self.values_of(floor.indicator)
            threshold = float(floor.lt)
            below = graded & (values < threshold)
            near = graded & ~np.isnan(values) & (np.abs(values - threshold) <= 1e-9 * max(1.0, abs(threshold)))
            definition = self.policy.indicators[floor.indicator]
            for row in np.flatnonzero(near):
                exact = indicator_value(definition, _exact(self.cols.values[definition.num][row]),
                                        _exact(self.cols.values[definition.den][row]))
                below[row] = exact is not None and exact < floor.lt
            self.fallbacks += int(near.sum())
            to_class = CLASS_CODES.index(floor.to_class)
            final = np.where(below & (final < to_class), to_class, final).astype(np.int8)
        final = np.where(self.scored & self.cols.veto, 3, final).astype(np.int8)
        steps = self.cols.downgrade_count.astype(np.int8)
        if not self.policy.adjustments.downgrades_stack:
            steps = np.minimum(steps, 1)
        final = np.where(graded, np.minimum(final + steps, 3), final).astype(np.int8)
        return final

def decimal_total(cents: int, places: int) -> Decimal:
    return DECIMAL_CONTEXT.multiply(Decimal(cents), Decimal(1).scaleb(-places))
