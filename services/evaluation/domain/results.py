"""Result records of a run: what the 一企一单 report, roll-ups and events are built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

STATUS_GRADED = "graded"  # ranked in a pool, class A-D
STATUS_NOT_GRADED = "not_graded"  # class T (不定等级), scored for the report but not ranked
STATUS_TENANT = "tenant_list"  # no titled land: Cixi's separate 租赁企业 list, no class
STATUS_OUT_OF_SCOPE = "out_of_scope"  # e.g. 规下 below the minimum land area


@dataclass(frozen=True, slots=True)
class PoolKey:
    region_code: str
    year: int
    size_class: str
    industry_group: str = ""  # "" unless classification.industry_split is configured
    roster: str = ""  # "" for the main lists, "tenant" for the 租赁企业 list (scope.tenant_list)

    def label(self) -> str:
        group = f"/{self.industry_group}" if self.industry_group else ""
        roster = f"/{self.roster}" if self.roster else ""
        return f"{self.region_code}/{self.year}/{self.size_class}{group}{roster}"

    def prior_key(self, indicator: str) -> tuple[str, str, str, str]:
        """The same pool in another year (PriorYear.pool_means / pool_benchmarks)."""
        group = f"{self.industry_group}#{self.roster}" if self.roster else self.industry_group
        return (self.region_code, self.size_class, group, indicator)


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    indicator: str
    unit: str
    direction: str
    weight: Decimal
    value: Decimal | None  # None: denominator missing or 0
    benchmark: Decimal | None
    ratio: Decimal | None  # value / benchmark
    score: Decimal  # rounded to policy scoring.rounding
    capped: bool
    missing_rule: str | None  # the rule that produced the score when value is None
    percentile_in_pool: Decimal | None  # of the value among graded firms in the pool (100 = best)


@dataclass(frozen=True, slots=True)
class AppliedAdjustment:
    item_id: str
    count: int
    points: Decimal  # before the bonus cap


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """One rule that changed or explains a result, in the order it was applied."""

    rule_id: str
    kind: str  # not_graded | absolute_floor | veto | downgrade | manual_override | missing_value | implausible_zero | bonus_cap | scope
    detail: str
    from_class: str | None = None
    to_class: str | None = None


@dataclass(frozen=True, slots=True)
class AppliedMeasure:
    """A differentiated measure (差别化政策) in force for the firm, with its estimated yearly effect."""

    lever: str
    rule: str  # policy path that decided, e.g. differentiated_measures.electricity_surcharge_yuan_per_kwh.D
    rate: Decimal | None
    rate_unit: str
    basis_quantity: Decimal | None
    basis_unit: str | None
    estimated_yearly_amount: Decimal | None  # None when the basis or a reference price is unknown
    amount_unit: str | None
    effect: str  # cost | benefit | quota | priority | access


@dataclass(frozen=True, slots=True)
class EnterpriseResult:
    credit_code: str
    name: str | None
    year: int
    region_code: str
    park: str | None
    industry_code: str
    industry_division: str
    size_class: str
    status: str
    pool: PoolKey | None
    profile: str | None
    raw: Mapping[str, Decimal | None]
    indicators: tuple[IndicatorResult, ...]
    raw_total: Decimal  # Σ indicator scores (each already rounded)
    bonus: Decimal  # after the bonus cap
    deductions: Decimal  # ≤ 0, including implausible-zero penalties
    adjustments: tuple[AppliedAdjustment, ...]
    total: Decimal
    initial_class: str | None  # by rank share (T for not graded)
    final_class: str | None  # after floor, vetoes, downgrades (and manual override)
    managed_as: str | None  # class whose measures apply (T -> policy scope.T_treated_as)
    rules_fired: tuple[RuleFiring, ...]
    rank_in_pool: int | None
    pool_size: int | None
    percentile_in_pool: Decimal | None
    rank_in_industry: int | None
    industry_size: int | None
    percentile_in_industry: Decimal | None
    gap_to_next_class: Decimal | None  # points to tie the lowest firm of the next better class
    consecutive_d_years: int
    measures: tuple[AppliedMeasure, ...]

    def indicator(self, name: str) -> IndicatorResult:
        for result in self.indicators:
            if result.indicator == name:
                return result
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class PoolSummary:
    key: PoolKey
    graded: int
    not_graded: int
    benchmarks: Mapping[str, Decimal | None]
    means: Mapping[str, Decimal | None]  # mean of firm values; feeds next year's multiple_of_prior_year_mean
    share_counts: Mapping[str, int]  # class counts the shares prescribe
    final_counts: Mapping[str, int]  # after hard rules, including T
    lowest_total: Mapping[str, Decimal]  # per initial class: the boundary firm's total


@dataclass(frozen=True, slots=True)
class Rollup:
    """A unit above the firm (domain §3.2): ratios of sums, never means of ratios.

    Units form the administrative tree parks → districts/counties → city (→ province when a run spans
    cities), see `hierarchy`; industries hang under the run's total. Each unit also comes split by size
    class (规上/规下): the same figures over the unit's firms of one size class."""

    dimension: str  # region | park | industry
    key: str  # unique in the dimension: `unit`, or "<unit>/<size_class>" for a size-class split
    year: int
    level: str  # region: province | city | county | other; park: park; industry: division
    unit: str  # GB/T 2260 code, park name or GB/T 4754 division
    size_class: str  # "" = all firms; above_size (规上) | below_size (规下) = the split
    parent: str  # key of the unit this one rolls up into ("" at the top); a park's parent is a region
    name: str  # display name where the system knows it (parks), "" otherwise (show the code)
    firms: int
    sums: Mapping[str, Decimal]
    indicators: Mapping[str, Decimal | None]
    yoy_change_pct: Mapping[str, Decimal | None]
    class_counts: Mapping[str, int]
    class_shares: Mapping[str, Decimal]
    land_in_c_d_mu: Decimal
    electricity_surcharge_yuan: Decimal
    land_use_tax_relief_yuan: Decimal
    composite_score: Decimal | None
    rank: int | None  # among the units of its peer group, 1 = best
    peer_group: str  # the rankings entry: same dimension, level, size class and year
    peers: int  # units in the peer group


@dataclass(frozen=True, slots=True)
class EvaluationRun:
    policy_ref: str
    input_digest: str
    output_digest: str
    results: tuple[EnterpriseResult, ...]  # sorted by (credit_code, year)
    pools: tuple[PoolSummary, ...]
    rollups: tuple[Rollup, ...]
    rankings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # peer group -> unit keys, best first

    def result(self, credit_code: str, year: int | None = None) -> EnterpriseResult:
        for result in self.results:
            if result.credit_code == credit_code and (year is None or result.year == year):
                return result
        raise KeyError(credit_code)
