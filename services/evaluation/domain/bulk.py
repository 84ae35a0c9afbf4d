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
from .classification import class_counts, two_stage_labels
from .columns import EnterpriseColumns
from .errors import InputError, RowViolation
from .numbers import DECIMAL_CONTEXT
from .placement import MIXED_TYPE_FLAG
from .policy import SIZE_CLASSES, TENANT_ROSTER, WINSORIZE_LIMITS, Policy
from .records import PriorYear
from .results import PoolKey
from .scoring import adjustment_points, indicator_value, score_indicator, score_min_max

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


def evaluate_bulk(policy: Policy, columns: EnterpriseColumns, prior: PriorYear | None = None) -> BulkResult:
    return _BulkRun(policy, columns, prior or PriorYear()).run()


def _exact(value: float) -> Decimal | None:
    return None if np.isnan(value) else Decimal(repr(float(value)))


class _BulkRun:
    def __init__(self, policy: Policy, columns: EnterpriseColumns, prior: PriorYear):
        self.policy, self.cols, self.prior = policy, columns, prior
        self.n = len(columns)
        self.places = policy.scoring.rounding
        self.scale = 10**self.places
        self.fallbacks = 0
        self._values: dict[str, np.ndarray] = {}
        self._decimal_benchmarks: dict[tuple[int, str], Decimal | None] = {}
        self._decimal_extremes_of: dict[tuple[int, str], tuple[Decimal | None, Decimal | None]] = {}

    # --- placement and pools ---------------------------------------------------------------------

    def run(self) -> BulkResult:
        self._validate()
        self._place()
        self._pools()
        cents, capped = self._score()
        total = self._adjust(sum(cents.values(), np.zeros(self.n, dtype=np.int64)))
        initial, rank = self._classify(total, cents)
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
        mixed = cols.flags.get(MIXED_TYPE_FLAG, np.zeros(self.n, dtype=bool))
        included = np.isin(cols.size_class, [SIZE_CLASSES.index(rule.size_class) for rule in scope.include])
        listed = tenant & included & (scope.tenant_list is not None)  # ranked on the 租赁企业 list
        scored = ((in_scope & ~tenant) | listed) & ~mixed
        self.status = np.full(self.n, OUT_OF_SCOPE, dtype=np.int8)
        self.status[tenant & ~listed & ~mixed] = TENANT
        self.status[scored] = np.where(not_graded[scored], NOT_GRADED, GRADED)
        self.scored, self.graded = scored, scored & ~not_graded
        # profile slot: size class, plus 2 on the tenant list (each slot has its own profile and shares)
        self.slot = (cols.size_class + 2 * (listed & scored)).astype(np.int8)

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
        key = ((cols.region.astype(np.int64) * 1000 + years) * 4 + self.slot) * len(group_names) + group
        key = np.where(self.scored, key, -1)
        unique, inverse = np.unique(key[self.scored], return_inverse=True)
        self.pool = np.full(self.n, -1, dtype=np.int32)
        self.pool[self.scored] = inverse
        self.n_pools = len(unique)
        group_of, rest = unique % len(group_names), unique // len(group_names)
        slot_of, rest = rest % 4, rest // 4
        year_of, region_of = rest % 1000 + 1900, rest // 1000
        self.pool_slot = slot_of
        self.pool_keys = tuple(
            PoolKey(cols.region_names[int(r)], int(y), SIZE_CLASSES[int(s) % 2], group_names[int(g)],
                    TENANT_ROSTER if s >= 2 else "")
            for r, y, s, g in zip(region_of, year_of, slot_of, group_of, strict=True)
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
        """Profile per slot: 0/1 the size classes' lists, 2/3 their tenant lists."""
        policy = self.policy
        profiles = {size: policy.profile_of(SIZE_CLASSES[size])[1] for size in range(2)
                    if SIZE_CLASSES[size] in policy.profile_for}
        if policy.scope.tenant_list is not None:
            profiles |= {2 + size: policy.profile_of(SIZE_CLASSES[size], TENANT_ROSTER)[1] for size in range(2)}
        return profiles

    def _score(self):
        policy, scoring = self.policy, self.policy.scoring
        profiles = self._profiles()
        cents_by_indicator, capped_by_indicator = {}, {}
        rejected: list[RowViolation] = []
        for name in policy.scored_indicators():
            definition = policy.indicators[name]
            weight_by_slot = np.array([float(profiles[s].weights.get(name, 0)) if s in profiles else 0.0
                                       for s in range(4)])
            rows_weight = np.where(self.scored, weight_by_slot[self.slot], 0.0)
            in_profile = rows_weight > 0
            value = self.values_of(name)
            valid = in_profile & ~np.isnan(value)
            benchmark = self._benchmarks(name, profiles, valid & self.graded)
            pool_bench = self._at_rows(benchmark)
            usable = valid & (pool_bench > 0)
            if scoring.function == "min_max":
                usable, scaled, capped, near_cap = self._min_max_scaled(name, value, valid, rows_weight)
            else:
                scaled, capped, near_cap = self._ratio_scaled(definition, value, usable, pool_bench, rows_weight)
            cents = np.floor(scaled + 0.5).astype(np.int64)
            fraction = scaled - np.floor(scaled)
            ambiguous = usable & ((np.abs(fraction - 0.5) < AMBIGUITY) | near_cap)
            for row in np.flatnonzero(ambiguous):
                cents[row], capped[row] = self._exact_score(int(row), name, profiles)
            self.fallbacks += int(ambiguous.sum())
            missing = in_profile & ~valid
            if missing.any():
                num, den = self.cols.values[definition.num], self.cols.values[definition.den]
                causes = {"no_numerator": missing & np.isnan(num),
                          "no_denominator": missing & ~np.isnan(num) & np.isnan(den),
                          "zero_denominator": missing & ~np.isnan(num) & ~np.isnan(den)}
                for cause, rows in causes.items():
                    rule = policy.missing_rule(name, cause)
                    if rule == "reject":
                        field_name = definition.num if cause == "no_numerator" else definition.den
                        for row in np.flatnonzero(rows)[:100]:
                            rejected.append(RowViolation(int(row), "", field_name, f"{name} cannot be computed"))
                    elif rule == "pool_average_score" and rows.any():
                        graded_valid = valid & self.graded
                        sums = np.bincount(self.pool[graded_valid], weights=cents[graded_valid],
                                           minlength=self.n_pools)
                        counts = np.bincount(self.pool[graded_valid], minlength=self.n_pools)
                        sums = np.rint(sums).astype(np.int64)  # exact: integer hundredths, far below 2^53
                        average = np.where(counts > 0, (2 * sums + counts) // np.maximum(2 * counts, 1), 0)
                        cents[rows] = average[self.pool[rows]]
            cents_by_indicator[name], capped_by_indicator[name] = cents, capped
        if rejected:
            raise InputError(rejected)
        return cents_by_indicator, capped_by_indicator

    def _ratio_scaled(self, definition, value, usable, pool_bench, rows_weight):
        """Float scores × 10^places of the ratio function, with the rows whose cap decision needs Decimal."""
        scoring = self.policy.scoring
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
        return scaled, capped, near_cap

    def _min_max_scaled(self, name: str, value, valid, rows_weight):
        """Float scores × 10^places of min–max scoring over each pool's graded firms (§1.3b)."""
        direction, scoring = self.policy.indicators[name].direction, self.policy.scoring
        low, high = self._pool_extremes(value, valid & self.graded)
        row_low, row_high = self._at_rows(low), self._at_rows(high)
        usable = valid & ~np.isnan(row_low)
        span = row_high - row_low
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = value - row_low if direction == "higher_better" else row_high - value
            position = np.where(span > 0, np.clip(distance / span, 0.0, 1.0), 1.0)
        floor = float(scoring.min_max_floor_pct)
        scaled = np.where(usable, rows_weight * (floor + (100.0 - floor) * position) / 100.0 * self.scale, 0.0)
        no_cap = np.zeros(self.n, dtype=bool)
        return usable, scaled, no_cap, no_cap.copy()

    def _at_rows(self, per_pool: np.ndarray) -> np.ndarray:
        """A per-pool value spread to the pool's rows; NaN for rows in no pool (and when there is none)."""
        if self.n_pools == 0:
            return np.full(self.n, np.nan)
        return np.where(self.pool >= 0, per_pool[np.maximum(self.pool, 0)], np.nan)

    def _pool_extremes(self, value, members):
        low = np.full(self.n_pools, np.inf)
        high = np.full(self.n_pools, -np.inf)
        np.minimum.at(low, self.pool[members], value[members])
        np.maximum.at(high, self.pool[members], value[members])
        return np.where(np.isinf(low), np.nan, low), np.where(np.isinf(high), np.nan, high)

    def _benchmarks(self, name: str, profiles, members: np.ndarray) -> np.ndarray:
        policy, definition = self.policy, self.policy.indicators[name]
        benchmark = np.full(self.n_pools, np.nan)
        for slot, profile in profiles.items():
            if name not in profile.weights:
                continue
            pools_of_size = self.pool_slot == slot
            method = policy.benchmark_method_of(profile)
            if method == "fixed":
                benchmark[pools_of_size] = float(profile.fixed_benchmarks[name])
                continue
            if policy.benchmark.source_year == "prior_year" or method == "multiple_of_prior_year_mean":
                benchmark[pools_of_size] = self._prior_statistic(name, pools_of_size)[pools_of_size]
                continue
            rows = members & (self.slot == slot)
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
            elif method in WINSORIZE_LIMITS:
                stat = self._winsorized_means(pool, self.values_of(name)[rows], float(WINSORIZE_LIMITS[method]))
            else:
                stat = self._medians(pool, self.values_of(name)[rows])
            benchmark[pools_of_size] = (stat * float(policy.benchmark.multiplier))[pools_of_size]
        return benchmark

    def _prior_statistic(self, name: str, pools: np.ndarray) -> np.ndarray:
        """B from last year's published run: its benchmark (source_year prior_year) or its mean × multiplier."""
        published = self.policy.benchmark.source_year == "prior_year"
        table = self.prior.pool_benchmarks if published else self.prior.pool_means
        label = "prior.pool_benchmarks" if published else "prior.pool_means"
        values = []
        for key, wanted in zip(self.pool_keys, pools, strict=True):
            if not wanted:
                values.append(np.nan)
                continue
            value = table.get(key.prior_key(name))
            if value is None:
                what = "published prior-year benchmark" if published else "prior-year mean"
                raise InputError([RowViolation(-1, "", label, f"no {what} of {name} for pool {key.label()}")])
            values.append(float(value) if published else float(value) * float(self.policy.benchmark.multiplier))
        return np.array(values)

    def _winsorized_means(self, pool: np.ndarray, values: np.ndarray, limit: float) -> np.ndarray:
        """Per pool: ⌊n·limit⌋ values of each tail clipped to the next one in, then the mean."""
        order = np.lexsort((values, pool))
        pool, values = pool[order], values[order]
        counts = np.bincount(pool, minlength=self.n_pools)
        starts = np.cumsum(counts) - counts
        cut = np.floor(counts * limit + 1e-9).astype(np.int64)
        has = counts > 0
        low = np.full(self.n_pools, np.nan)
        high = np.full(self.n_pools, np.nan)
        low[has] = values[(starts + cut)[has]]
        high[has] = values[(starts + counts - 1 - cut)[has]]
        clipped = np.clip(values, low[pool], high[pool])
        total = np.bincount(pool, weights=clipped, minlength=self.n_pools)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(has, total / np.maximum(counts, 1), np.nan)

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
        profile = profiles[int(self.slot[row])]
        value = indicator_value(definition, _exact(self.cols.values[definition.num][row]),
                                _exact(self.cols.values[definition.den][row]))
        if policy.scoring.function == "min_max":
            low, high = self._decimal_extremes(int(self.pool[row]), name)
            outcome = score_min_max(value, low, high, profile.weights[name], definition.direction, policy.scoring)
        else:
            benchmark = self._decimal_benchmark(int(self.pool[row]), name, profile)
            outcome = score_indicator(value, benchmark, profile.weights[name], definition.direction, policy.scoring)
        return int(outcome.score.scaleb(self.places)), outcome.capped

    def _decimal_values(self, pool: int, name: str) -> list[Decimal]:
        """Exact values of the pool's graded firms that have the indicator."""
        definition = self.policy.indicators[name]
        rows = np.flatnonzero((self.pool == pool) & self.graded & ~np.isnan(self.values_of(name)))
        return [indicator_value(definition, _exact(self.cols.values[definition.num][r]),
                                _exact(self.cols.values[definition.den][r])) for r in rows]

    def _decimal_extremes(self, pool: int, name: str) -> tuple[Decimal | None, Decimal | None]:
        key = (pool, name)
        if key not in self._decimal_extremes_of:
            values = self._decimal_values(pool, name)
            self._decimal_extremes_of[key] = (min(values), max(values)) if values else (None, None)
        return self._decimal_extremes_of[key]

    def _decimal_benchmark(self, pool: int, name: str, profile) -> Decimal | None:
        key = (pool, name)
        if key in self._decimal_benchmarks:
            return self._decimal_benchmarks[key]
        policy, definition = self.policy, self.policy.indicators[name]
        method = policy.benchmark_method_of(profile)
        pool_key = self.pool_keys[pool]
        prior_key = pool_key.prior_key(name)
        if method == "fixed":
            result = profile.fixed_benchmarks[name]
        elif policy.benchmark.source_year == "prior_year":
            result = self.prior.pool_benchmarks.get(prior_key)
        elif method == "multiple_of_prior_year_mean":
            result = bm.apply_multiplier(self.prior.pool_means.get(prior_key), policy.benchmark.multiplier)
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
            elif method in WINSORIZE_LIMITS:
                stat = bm.winsorized_mean(values, WINSORIZE_LIMITS[method])
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
            value = self._adjustment_cents(item, counts.astype(np.int64), raw_total)
            if item.is_bonus:
                bonus += value
            else:
                deductions += value
        if settings.bonus_cap_points is not None:
            bonus = np.minimum(bonus, int(settings.bonus_cap_points * scale))
        penalty = int(self.policy.scoring.implausible_zero_penalty * scale)
        if penalty:
            for slot, profile in self._profiles().items():
                denominators = {self.policy.indicators[name].den for name in profile.weights}
                for field_name in self.policy.scoring.implausible_zero_fields:
                    if field_name in denominators:
                        hit = (self.slot == slot) & (self.cols.values[field_name] == 0)
                        deductions += np.where(hit, penalty, 0)
        return np.where(self.scored, raw_total + bonus + deductions, 0)

    def _adjustment_cents(self, item, counts: np.ndarray, raw_total: np.ndarray) -> np.ndarray:
        scale = self.scale
        if item.schedule is not None:
            value = np.zeros(self.n, dtype=np.int64)
            for size_class, steps in item.schedule.items():
                cents = [int(step * scale) for step in steps]
                prefix = np.cumsum([0, *cents])
                rows = self.cols.size_class == SIZE_CLASSES.index(size_class)
                listed = np.minimum(counts, len(cents))
                value += np.where(rows, prefix[listed] + np.maximum(counts - len(cents), 0) * cents[-1], 0)
            return value
        units = counts if item.per_unit else np.minimum(counts, 1)
        if item.points is not None:
            return units * int(item.points * scale)
        # A percentage of the indicator total: exact per firm that has the fact (few), as the reference does.
        value = np.zeros(self.n, dtype=np.int64)
        for row in np.flatnonzero(units > 0):
            share = adjustment_points(item, 1, "", decimal_total(int(raw_total[row]), self.places), self.places)
            value[row] = int(share.scaleb(self.places)) * int(units[row])
        return value

    def _tie_key(self, name: str) -> np.ndarray:
        values = self.values_of(name) if name in self.policy.indicators else self.cols.values[name]
        return np.where(np.isnan(values), np.inf, -values)

    def _classify(self, total: np.ndarray, cents: dict[str, np.ndarray]):
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
        if classification.method == "two_stage":
            label = self._two_stage(order, starts, counts, cents)
        else:
            bounds = np.zeros((self.n_pools, 3), dtype=np.int64)
            for pool, key in enumerate(self.pool_keys):
                share = class_counts(int(counts[pool]), self.policy.shares_of(key.size_class, key.roster),
                                     classification.min_pool_size_for_shares, classification.rounding)
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

    def _two_stage(self, order, starts, counts, cents: dict[str, np.ndarray]) -> np.ndarray:
        """Labels in `order` (pools consecutive, best first) under two-stage ranking, pool by pool."""
        classification = self.policy.classification
        stages = classification.two_stage
        top = sum((cents[name] for name in stages.top.rerank_by), np.zeros(self.n, dtype=np.int64))[order]
        bottom = sum((cents[name] for name in stages.bottom.rerank_by), np.zeros(self.n, dtype=np.int64))[order]
        label = np.zeros(len(order), dtype=np.int8)
        for pool in range(self.n_pools):
            span = slice(int(starts[pool]), int(starts[pool] + counts[pool]))
            labels = two_stage_labels(top[span].tolist(), bottom[span].tolist(), stages, classification.rounding,
                                      classification.min_pool_size_for_shares)
            label[span] = [CLASS_CODES.index(name) for name in labels]
        return label

    def _hard_rules(self, initial: np.ndarray) -> np.ndarray:
        final = initial.copy()
        graded, reach = self.graded, self.policy.scope.T_hard_rules
        not_graded = self.scored & ~graded
        floor_rows = graded | not_graded if reach.absolute_floor else graded
        for floor in self.policy.adjustments.absolute_floor:
            values = self.values_of(floor.indicator)
            threshold = float(floor.lt)
            below = floor_rows & (values < threshold)
            near = floor_rows & ~np.isnan(values) & (np.abs(values - threshold) <= 1e-9 * max(1.0, abs(threshold)))
            definition = self.policy.indicators[floor.indicator]
            for row in np.flatnonzero(near):
                exact = indicator_value(definition, _exact(self.cols.values[definition.num][row]),
                                        _exact(self.cols.values[definition.den][row]))
                below[row] = exact is not None and exact < floor.lt
            self.fallbacks += int(near.sum())
            to_class = CLASS_CODES.index(floor.to_class)
            final = np.where(below & ((final < to_class) | (final == CLASS_T)), to_class, final).astype(np.int8)
        veto_rows = graded | not_graded if reach.vetoes_to_D else graded
        final = np.where(veto_rows & self.cols.veto, 3, final).astype(np.int8)
        steps = self.cols.downgrade_count.astype(np.int8)
        if not self.policy.adjustments.downgrades_stack:
            steps = np.minimum(steps, 1)
        down_rows = graded | not_graded if reach.downgrade_one_class else graded
        managed_as = CLASS_CODES.index(self.policy.scope.T_treated_as)
        start = np.where(final == CLASS_T, managed_as, final)
        final = np.where(down_rows & (steps > 0), np.minimum(start + steps, 3), final).astype(np.int8)
        return final


def decimal_total(cents: int, places: int) -> Decimal:
    return DECIMAL_CONTEXT.multiply(Decimal(cents), Decimal(1).scaleb(-places))
