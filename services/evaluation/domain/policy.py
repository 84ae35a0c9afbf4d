"""The methodology document (评价办法) as validated data: pydantic models plus cross-reference checks.

`load_policy` accepts YAML/JSON text or an already parsed mapping and either returns a `Policy`
or raises `PolicyError` listing every (field path, message) it found.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import FieldViolation, PolicyError
from .numbers import within_bounds

SizeClass = Literal["above_size", "below_size"]
SIZE_CLASSES: tuple[SizeClass, ...] = ("above_size", "below_size")
ClassLabel = Literal["A", "B", "C", "D"]
CLASS_ORDER: tuple[str, ...] = ("A", "B", "C", "D")
GRADE_LABELS: tuple[str, ...] = ("A", "B", "C", "D", "T")
TENANT_ROSTER = "tenant"  # the pool roster of Cixi's 租赁企业 list

RawField = Literal[
    "tax_paid",
    "sales",
    "main_revenue",
    "value_added",
    "energy_tce",
    "pollutant_t",
    "cod_t",
    "water_t",
    "kwh",
    "rd_expense",
    "avg_employees",
    "land_mu",
]
RAW_FIELDS: tuple[str, ...] = RawField.__args__  # type: ignore[attr-defined]

BenchmarkMethod = Literal[
    "pool_aggregate_ratio", "pool_mean", "pool_mean_winsorized_5_95", "pool_median", "fixed",
    "multiple_of_prior_year_mean",
]
# Share of each tail a winsorized mean clips, by method name (§7.2 names the 5th/95th percentiles).
WINSORIZE_LIMITS = {"pool_mean_winsorized_5_95": Decimal("0.05")}
MissingRule = Literal["zero_score_and_flag", "pool_average_score", "reject"]
# Why an indicator has no value: its numerator is not reported, its denominator is not reported, or the
# denominator is declared 0 (§1.4: Huangyan's pool-average rule is for a firm with no emission figure).
MissingCause = Literal["no_numerator", "no_denominator", "zero_denominator"]
MISSING_CAUSES: tuple[str, ...] = MissingCause.__args__  # type: ignore[attr-defined]
SaleKind = Literal["new_industrial_land", "energy_use_increment", "emission_increment"]

Positive = Annotated[Decimal, Field(gt=0)]
NonNegative = Annotated[Decimal, Field(ge=0)]


# What a methodology document may be: its text, and the values expanded from it (YAML aliases repeat a
# node without repeating its text, so both are bounded).
MAX_DOCUMENT_CHARS = 1_000_000
MAX_DOCUMENT_NODES = 200_000
# Every number in a document (weights, rates, prices, counts): below 10^12, at most 12 decimals.
NUMBER_DIGITS, NUMBER_PLACES = 12, 12
RuleId = Annotated[str, Field(min_length=1, max_length=64)]


def _numbers_in_bounds(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and not within_bounds(Decimal(value), NUMBER_DIGITS, NUMBER_PLACES):
        raise ValueError(f"a number below 10^{NUMBER_DIGITS} with at most {NUMBER_PLACES} decimals")
    if isinstance(value, Mapping):
        for item in value.values():
            _numbers_in_bounds(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _numbers_in_bounds(item)
    return value


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return _numbers_in_bounds(value)


class Jurisdiction(_Document):
    level: Literal["province", "city", "county", "town", "park"]
    code: str = Field(pattern=r"^[0-9]{2,12}$")  # GB/T 2260 (a park may extend it)


class ScopeRule(_Document):
    size_class: SizeClass
    min_land_mu: NonNegative | None = None


class NotGradedRule(_Document):
    """One reason for class T (不定等级); exactly one condition per rule."""

    id: RuleId | None = None
    industry_in: list[str] | None = None
    years_since_production_lt: int | None = Field(default=None, ge=1)
    flag: str | None = None

    @field_validator("industry_in")
    @classmethod
    def _codes_have_digits(cls, codes: list[str] | None) -> list[str] | None:
        for code in codes or []:
            digits = code.lstrip("ABCDEFGHIJKLMNOPQRST")
            if not (2 <= len(digits) <= 4 and digits.isdigit()):
                raise ValueError(f"{code!r} is not a GB/T 4754 code (letter + 2-4 digits)")
        return codes

    def condition_count(self) -> int:
        return sum(
            value is not None
            for value in (self.industry_in, self.years_since_production_lt, self.flag)
        )

    @property
    def rule_id(self) -> str:
        if self.id:
            return self.id
        if self.industry_in is not None:
            return "not_graded.industry_in"
        if self.years_since_production_lt is not None:
            return f"not_graded.years_since_production_lt_{self.years_since_production_lt}"
        return f"not_graded.flag.{self.flag}"


class NotGradedHardRules(_Document):
    """Which hard rules reach a firm in class T (不定等级), which is never ranked. A veto's reach is a policy
    choice: by default a T firm with a veto becomes D, while the absolute floor and downgrades (which
    presume a rank) leave it in T. A downgrade of a T firm starts from the class it is managed as."""

    vetoes_to_D: bool = True
    absolute_floor: bool = False
    downgrade_one_class: bool = False


class TenantList(_Document):
    """Firms without titled industrial land ranked on their own 租赁企业 list (Cixi 2024), per size class, with a
    profile whose indicators do not divide by land. Without it a tenant is set aside with no class."""

    profile: str
    shares: ClassShares | None = None  # None: the size class's shares


class Scope(_Document):
    include: list[ScopeRule] = Field(min_length=1)
    separate_lists: list[Literal["tenant_no_land"]] = Field(default_factory=list)
    tenant_list: TenantList | None = None
    not_graded_T: list[NotGradedRule] = Field(default_factory=list)
    T_treated_as: ClassLabel = "B"
    T_hard_rules: NotGradedHardRules = Field(default_factory=NotGradedHardRules)


class IndicatorDef(_Document):
    num: RawField
    den: RawField
    unit: str = Field(min_length=1)
    direction: Literal["higher_better", "lower_better"] = "higher_better"
    scale: Positive = Decimal(1)  # unit conversion: value = num / den × scale (万元/kWh → 元/kWh: 10000)
    note: str | None = None


class Profile(_Document):
    weights: dict[str, Positive] = Field(min_length=1)
    fixed_benchmarks: dict[str, Positive] = Field(default_factory=dict)
    benchmark_method: BenchmarkMethod | None = None  # overrides benchmark.method for this profile


class Benchmark(_Document):
    """How a pool's benchmark B is set. `source_year: prior_year` (Huai'an) takes B as the prior year's
    published run set it for the same pool and indicator, as published (its multiplier already in it)."""

    method: BenchmarkMethod
    alternatives: list[BenchmarkMethod] = Field(default_factory=list)
    multiplier: Positive = Decimal(1)
    source_year: Literal["same_as_evaluation", "prior_year"] = "same_as_evaluation"


class MissingByCause(_Document):
    """The treatment of a missing value per cause; a cause left out takes `scoring.missing.default`."""

    no_numerator: MissingRule | None = None
    no_denominator: MissingRule | None = None
    zero_denominator: MissingRule | None = None


class Scoring(_Document):
    """`ratio` (§1.3a, the Zhejiang mainstream): w × clip(x/B, floor, cap). `min_max` (§1.3b, Jingde):
    w × [f + (100 − f) × (x − min)/(max − min)] / 100 over the pool's graded firms, f = min_max_floor_pct."""

    function: Literal["ratio", "min_max"] = "ratio"
    min_max_floor_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(20)
    floor_ratio: NonNegative = Decimal(0)
    cap_ratio: Positive | None = None
    rounding: int = Field(default=2, ge=0, le=6)
    weights_total: Positive = Decimal(100)
    # indicator (or "default") -> one rule for every cause, or a rule per cause
    missing: dict[str, MissingRule | MissingByCause] = Field(
        default_factory=lambda: {"default": "zero_score_and_flag"})
    implausible_zero_penalty: Annotated[Decimal, Field(le=0)] = Decimal(0)
    implausible_zero_fields: list[RawField] = Field(default_factory=lambda: ["energy_tce", "pollutant_t"])
    alt_lower_better_linear: bool = False


class AdjustmentItem(_Document):
    """A bonus (加分, > 0) or deduction (扣分, < 0) for a fact, in exactly one of three forms:

    - `points`: flat points for a yes/no fact, or per unit when `per_unit` (count × points);
    - `percent`: a share of the firm's indicator total (Lishui 加减分比例), per fact or per unit;
    - `schedule`: points by the firm's size class and the unit's ordinal (Wenling rental: the first tenant,
      the second, …; the last entry repeats for every further unit). A size class the schedule does not
      name cannot carry the item: such a fact is refused at ingestion.
    """

    id: RuleId
    desc: str = ""
    points: Decimal | None = None
    percent: Decimal | None = None
    per_unit: bool = False
    schedule: dict[SizeClass, Annotated[list[Decimal], Field(min_length=1, max_length=100)]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_unit_points(cls, data: Any) -> Any:
        """Documents of 2025.1 wrote a per-unit schedule as `free_units` / `first_unit_points`: read them as
        the same schedule for every size class, so a past run stays reproducible under its own document."""
        if not isinstance(data, Mapping) or not ({"free_units", "first_unit_points"} & data.keys()):
            return data
        data = dict(data)
        free, first = data.pop("free_units", 0) or 0, data.pop("first_unit_points", None)
        if data.get("per_unit") and data.get("points") is not None and isinstance(free, int) and 0 <= free <= 98:
            points = data.pop("points")
            data.pop("per_unit")
            steps = [0] * free + ([first, points] if first is not None else [points])
            data["schedule"] = {size_class: steps for size_class in SIZE_CLASSES}
        return data

    @field_validator("points", "percent")
    @classmethod
    def _non_zero(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value == 0:
            raise ValueError("must be non-zero (positive = bonus, negative = deduction)")
        return value

    @field_validator("schedule")
    @classmethod
    def _one_sign(cls, schedule: dict[str, list[Decimal]] | None) -> dict[str, list[Decimal]] | None:
        for size_class, steps in (schedule or {}).items():
            if not any(steps) or (any(step > 0 for step in steps) and any(step < 0 for step in steps)):
                raise ValueError(f"{size_class}: a schedule is all bonus (≥ 0) or all deduction (≤ 0), not all 0")
        return schedule

    @property
    def form(self) -> str:
        return "schedule" if self.schedule is not None else "percent" if self.percent is not None else "points"

    @property
    def is_bonus(self) -> bool:
        if self.schedule is not None:
            return any(step > 0 for steps in self.schedule.values() for step in steps)
        return (self.percent if self.percent is not None else self.points) > 0

    def applies_to(self, size_class: str) -> bool:
        """Whether a firm of `size_class` may carry this fact (schedules name their size classes)."""
        return self.schedule is None or size_class in self.schedule


class NamedRule(_Document):
    id: RuleId
    desc: str = ""


class DowngradeRule(_Document):
    """One class down for a fact of the year; with `amount_at_least` the fact is an amount (e.g. the year's
    environmental administrative penalties in 万元) and the rule fires only at or above it."""

    id: RuleId
    desc: str = ""
    amount_at_least: NonNegative | None = None
    amount_unit: str = "万元"


class AbsoluteFloor(_Document):
    id: RuleId
    indicator: str
    lt: Decimal
    to_class: ClassLabel = "D"


class ManualOverridePolicy(_Document):
    allowed: bool = True
    requires: list[Literal["reason", "evidence_ref", "approver", "second_approver"]] = Field(
        default_factory=lambda: ["reason", "approver", "second_approver"]
    )


class Adjustments(_Document):
    bonus_cap_points: NonNegative | None = None
    items: list[AdjustmentItem] = Field(default_factory=list)
    vetoes_to_D: list[NamedRule] = Field(default_factory=list)
    downgrade_one_class: list[DowngradeRule] = Field(default_factory=list)
    downgrades_stack: bool = False  # False: any number of downgrade facts costs one class
    absolute_floor: list[AbsoluteFloor] = Field(default_factory=list)
    manual_override: ManualOverridePolicy = Field(default_factory=ManualOverridePolicy)


class ClassShares(_Document):
    A: NonNegative
    B: NonNegative
    C: NonNegative
    D: NonNegative


class IndustrySplit(_Document):
    groups: dict[str, list[str]] = Field(min_length=1)  # group name -> GB/T 4754 division prefixes
    other_group: str = "other"


ShareRoundingMode = Literal["floor", "ceil", "half_up"]


class ShareRounding(_Document):
    """How a share becomes a count of firms at each class boundary (n × share rounded): the A count, the A+B
    count and the D count; C takes the rest. The default never over-awards A, gives a pool at the minimum
    size at least one D and ends B where A+B rounds half up (n = 100 at 20/40/35/5 → 20/40/35/5)."""

    A: ShareRoundingMode = "floor"
    A_B: ShareRoundingMode = "half_up"
    D: ShareRoundingMode = "ceil"


class TwoStageCut(_Document):
    """One end of a two-stage ranking: the `candidates` share of the pool by total score is re-ranked by the
    sum of its scores on `rerank_by`, and the best (top) or worst (bottom) `share` of the whole pool take
    `label`."""

    candidates: Annotated[Decimal, Field(gt=0, le=1)]
    rerank_by: list[str] = Field(min_length=1)
    share: Annotated[Decimal, Field(ge=0, le=1)]
    label: ClassLabel


class TwoStage(_Document):
    """Henan Anyang 2018 (§1.3f): A = the top 15 % of all after re-ranking the top half by 亩均税收 + 研发强度
    scores; the bottom class = the bottom 10 % after re-ranking the bottom half by 单位能耗/污染排放 scores;
    everyone else `rest`. Candidate counts round half up; label counts follow `rounding.A` (top) and
    `rounding.D` (bottom, nobody below the minimum pool size)."""

    top: TwoStageCut
    bottom: TwoStageCut
    rest: ClassLabel = "B"


class Classification(_Document):
    method: Literal["rank_share", "two_stage"] = "rank_share"
    tie_break: list[str] = Field(default_factory=lambda: ["credit_code"])
    shares: dict[SizeClass, ClassShares] = Field(default_factory=dict)
    two_stage: TwoStage | None = None
    rounding: ShareRounding = Field(default_factory=ShareRounding)
    min_pool_size_for_shares: int = Field(default=20, ge=1)
    industry_split: IndustrySplit | None = None

    @field_validator("rounding", mode="before")
    @classmethod
    def _named_default(cls, rounding: Any) -> Any:
        # The name earlier documents used for the default rounding.
        return {} if rounding == "floor_for_A_ceil_for_D" else rounding


class Publicity(_Document):
    days: int = Field(default=5, ge=1)
    objection_evidence: Literal["required", "optional"] = "required"
    republish_on_change: bool = True


class ClassRates(_Document):
    A: Decimal
    B: Decimal
    C: Decimal
    D: Decimal
    D_consecutive_3y: Decimal | None = None  # escalation once a firm is D three years running

    def rate(self, grade: str, consecutive_d_years: int) -> tuple[Decimal, str]:
        if grade == "D" and self.D_consecutive_3y is not None and consecutive_d_years >= 3:
            return self.D_consecutive_3y, "D_consecutive_3y"
        return getattr(self, grade), grade


IncrementAccess = bool | Literal["only_if_intensity_reduces"]


class RightsAccess(_Document):
    increment_purchase_allowed: dict[ClassLabel, IncrementAccess]
    reserve_priority: list[ClassLabel] = Field(default_factory=list)
    price_coefficient: dict[ClassLabel, Positive] = Field(default_factory=dict)


class SurchargeRefund(_Document):
    enabled: bool = False
    rule_ref: str | None = None


class Measures(_Document):
    electricity_surcharge_yuan_per_kwh: ClassRates
    water_surcharge_pct: ClassRates
    land_use_tax_relief_pct: ClassRates
    energy_quota_change_pct: ClassRates
    orderly_power_priority: list[ClassLabel] = Field(default_factory=lambda: ["D", "C", "B", "A"])
    pollutant_rights: RightsAccess
    energy_rights: RightsAccess
    new_land_supply_priority: list[ClassLabel] = Field(default_factory=list)
    new_land_supply_barred: list[ClassLabel] = Field(default_factory=list)
    surcharge_refund: SurchargeRefund = Field(default_factory=SurchargeRefund)
    # Reference prices for cost estimates; when absent the estimate is reported as unknown.
    water_price_yuan_per_t: Positive | None = None
    land_use_tax_yuan_per_m2: Positive | None = None


class RollupSpec(_Document):
    composite_size_class: SizeClass = "above_size"  # whose profile weights score regions and parks
    indicator_places: int = Field(default=6, ge=0, le=12)  # R&D intensity is ~0.005


class Policy(_Document):
    policy_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=40)
    jurisdiction: Jurisdiction
    evaluation_year: int = Field(ge=2000, le=2100)
    provenance: str = ""
    changes: str = ""  # what this version changes against the previous one
    scope: Scope
    indicators: dict[str, IndicatorDef] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    profile_for: dict[SizeClass, str] = Field(min_length=1)
    benchmark: Benchmark
    scoring: Scoring
    adjustments: Adjustments = Field(default_factory=Adjustments)
    classification: Classification
    publicity: Publicity = Field(default_factory=Publicity)
    differentiated_measures: Measures
    rollups: RollupSpec = Field(default_factory=RollupSpec)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, version: Any) -> Any:
        # YAML reads `version: 2025.1` as a float; keep the written form.
        finite = isinstance(version, int) or (isinstance(version, float) and math.isfinite(version))
        return str(version) if finite else version

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def profile_of(self, size_class: str, roster: str = "") -> tuple[str, Profile]:
        """The profile scoring a pool: the size class's, or the tenant list's (roster "tenant")."""
        if roster == TENANT_ROSTER and self.scope.tenant_list is not None:
            name = self.scope.tenant_list.profile
        else:
            name = self.profile_for[size_class]  # type: ignore[index]
        return name, self.profiles[name]

    def shares_of(self, size_class: str, roster: str = "") -> ClassShares:
        tenant_list = self.scope.tenant_list
        if roster == TENANT_ROSTER and tenant_list is not None and tenant_list.shares is not None:
            return tenant_list.shares
        return self.classification.shares[size_class]  # type: ignore[index]

    def benchmark_method_of(self, profile: Profile) -> str:
        return profile.benchmark_method or self.benchmark.method

    def adjustment_item(self, item_id: str) -> AdjustmentItem | None:
        return next((item for item in self.adjustments.items if item.id == item_id), None)

    def missing_rule(self, indicator: str, cause: str) -> str:
        """The treatment of `indicator` when it has no value for `cause` (one of MISSING_CAUSES)."""
        default = self.scoring.missing.get("default", "zero_score_and_flag")
        if isinstance(default, MissingByCause):
            default = getattr(default, cause) or "zero_score_and_flag"
        rule = self.scoring.missing.get(indicator, default)
        if isinstance(rule, MissingByCause):
            return getattr(rule, cause) or default
        return rule

    def scored_indicators(self) -> tuple[str, ...]:
        """Every indicator weighted by some profile in use, in a stable order."""
        names: set[str] = set()
        in_use = [*self.profile_for.values(), *([self.scope.tenant_list.profile] if self.scope.tenant_list else [])]
        for profile_name in in_use:
            if profile_name in self.profiles:
                names.update(self.profiles[profile_name].weights)
        return tuple(sorted(names))


def load_policy(document: str | bytes | Mapping[str, Any]) -> Policy:
    """Parse and validate a methodology document (YAML or JSON text, or a mapping)."""
    data = _parse(document)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError([_violation(error) for error in exc.errors()]) from None
    problems = list(_cross_reference_problems(policy))
    if problems:
        raise PolicyError(problems)
    return policy


def _parse(document: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        data: Any = document
    else:
        text = document.decode("utf-8") if isinstance(document, bytes) else document
        if len(text) > MAX_DOCUMENT_CHARS:
            raise PolicyError([FieldViolation("(document)", f"at most {MAX_DOCUMENT_CHARS} characters")])
        try:
            data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise PolicyError([FieldViolation("(document)", f"not valid YAML/JSON: {exc}")]) from None
        except RecursionError:
            raise PolicyError([FieldViolation("(document)", "nested too deeply")]) from None
        except ValueError as exc:  # e.g. an integer of thousands of digits
            raise PolicyError([FieldViolation("(document)", f"not a readable value: {exc}")]) from None
    if not isinstance(data, Mapping):
        raise PolicyError([FieldViolation("(document)", "top level must be a mapping")])
    if _nodes_exceed(data, MAX_DOCUMENT_NODES):
        raise PolicyError([FieldViolation("(document)", f"more than {MAX_DOCUMENT_NODES} values (aliases expanded)")])
    return data


def _nodes_exceed(data: Any, limit: int) -> bool:
    """Count values with aliases expanded, without recursion, stopping at the limit."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(node, Mapping):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return False


def _violation(error: Mapping[str, Any]) -> FieldViolation:
    # Drop pydantic's union-branch tags (e.g. 'bool', 'literal[...]') that are not document keys.
    loc = [str(part) for part in error["loc"] if not str(part).startswith(("literal[", "function-"))]
    path = ".".join(loc) or "(document)"
    return FieldViolation(path, error["msg"])


def _cross_reference_problems(policy: Policy):  # noqa: C901 - one flat list of checks reads best
    indicators = policy.indicators
    for size_class, profile_name in policy.profile_for.items():
        if profile_name not in policy.profiles:
            yield FieldViolation(f"profile_for.{size_class}", f"unknown profile {profile_name!r}")
    classification = policy.classification
    if classification.method == "rank_share":
        for size_class in policy.profile_for:
            if size_class not in classification.shares:
                yield FieldViolation(f"classification.shares.{size_class}", "missing shares for a graded size class")
    elif classification.two_stage is None:
        yield FieldViolation("classification.two_stage", "required when the method is two_stage")
    else:
        profiles_in_use = {name: policy.profiles[name] for name in policy.profile_for.values() if name in policy.profiles}
        for end in ("top", "bottom"):
            cut: TwoStageCut = getattr(classification.two_stage, end)
            if cut.share > cut.candidates:
                yield FieldViolation(f"classification.two_stage.{end}.share", "cannot exceed candidates")
            for index, indicator in enumerate(cut.rerank_by):
                for name, profile in profiles_in_use.items():
                    if indicator not in profile.weights:
                        yield FieldViolation(f"classification.two_stage.{end}.rerank_by.{index}",
                                             f"{indicator!r} is not scored by profile {name}")
    for rule_index, rule in enumerate(policy.scope.include):
        if rule.size_class not in policy.profile_for:
            yield FieldViolation(f"scope.include.{rule_index}.size_class", "no profile_for this size class")
    if (tenant_list := policy.scope.tenant_list) is not None:
        if "tenant_no_land" not in policy.scope.separate_lists:
            yield FieldViolation("scope.tenant_list", "needs tenant_no_land in scope.separate_lists")
        if tenant_list.profile not in policy.profiles:
            yield FieldViolation("scope.tenant_list.profile", f"unknown profile {tenant_list.profile!r}")
        else:
            for indicator in policy.profiles[tenant_list.profile].weights:
                if indicator in indicators and indicators[indicator].den == "land_mu":
                    yield FieldViolation(f"profiles.{tenant_list.profile}.weights.{indicator}",
                                         "a tenant has no titled land: the tenant list cannot divide by land_mu")
        if tenant_list.shares is not None:
            total = sum((tenant_list.shares.A, tenant_list.shares.B, tenant_list.shares.C, tenant_list.shares.D))
            if total != 1:
                yield FieldViolation("scope.tenant_list.shares", f"shares sum to {total}, expected 1")
    for rule_index, rule in enumerate(policy.scope.not_graded_T):
        if rule.condition_count() != 1:
            yield FieldViolation(f"scope.not_graded_T.{rule_index}", "exactly one condition per rule")

    cap = policy.scoring.cap_ratio
    for name, profile in policy.profiles.items():
        total = sum(profile.weights.values(), Decimal(0))
        if total != policy.scoring.weights_total:
            yield FieldViolation(
                f"profiles.{name}.weights", f"weights sum to {total}, expected {policy.scoring.weights_total}"
            )
        for indicator in profile.weights:
            if indicator not in indicators:
                yield FieldViolation(f"profiles.{name}.weights.{indicator}", "unknown indicator")
            elif (
                indicators[indicator].direction == "lower_better"
                and policy.scoring.function == "ratio"
                and cap is None
                and not policy.scoring.alt_lower_better_linear
            ):
                yield FieldViolation(
                    f"profiles.{name}.weights.{indicator}",
                    "a lower-better indicator scored by inversion needs scoring.cap_ratio (a zero value is unbounded)",
                )
        for indicator in profile.fixed_benchmarks:
            if indicator not in profile.weights:
                yield FieldViolation(f"profiles.{name}.fixed_benchmarks.{indicator}", "not weighted in this profile")
        if policy.benchmark_method_of(profile) == "fixed":
            for indicator in profile.weights:
                if indicator not in profile.fixed_benchmarks:
                    yield FieldViolation(
                        f"profiles.{name}.fixed_benchmarks.{indicator}", "required when the benchmark method is fixed"
                    )
    if policy.benchmark.source_year == "prior_year":
        if policy.benchmark.multiplier != 1:
            yield FieldViolation("benchmark.multiplier", "must be 1 with source_year prior_year: the prior year's "
                                                         "published benchmark already carries its multiplier")
        for name, profile in policy.profiles.items():
            if (method := policy.benchmark_method_of(profile)) in ("fixed", "multiple_of_prior_year_mean"):
                yield FieldViolation(f"profiles.{name}.benchmark_method",
                                     f"{method} names its own source; source_year prior_year cannot apply to it")
    if cap is not None and cap <= policy.scoring.floor_ratio:
        yield FieldViolation("scoring.cap_ratio", "must be greater than floor_ratio")
    for key in policy.scoring.missing:
        if key != "default" and key not in indicators:
            yield FieldViolation(f"scoring.missing.{key}", "unknown indicator (use 'default' or an indicator id)")

    places = policy.scoring.rounding
    for index, item in enumerate(policy.adjustments.items):
        forms = [name for name in ("points", "percent", "schedule") if getattr(item, name) is not None]
        if len(forms) != 1:
            yield FieldViolation(f"adjustments.items.{index}", "exactly one of points, percent or schedule")
            continue
        if item.schedule is not None and item.per_unit:
            yield FieldViolation(f"adjustments.items.{index}.per_unit", "a schedule already counts units")
        steps = [("points", item.points)] if item.points is not None else [
            (f"schedule.{size}.{n}", step) for size, listed in (item.schedule or {}).items()
            for n, step in enumerate(listed)]
        for field_name, value in steps:
            if value is not None and value != value.quantize(Decimal(1).scaleb(-places)):
                yield FieldViolation(
                    f"adjustments.items.{index}.{field_name}", f"more than {places} decimals (scoring.rounding)"
                )
    seen: dict[str, str] = {}
    for group, rules in (
        ("items", policy.adjustments.items),
        ("vetoes_to_D", policy.adjustments.vetoes_to_D),
        ("downgrade_one_class", policy.adjustments.downgrade_one_class),
        ("absolute_floor", policy.adjustments.absolute_floor),
    ):
        for index, rule in enumerate(rules):
            if rule.id in seen:
                yield FieldViolation(f"adjustments.{group}.{index}.id", f"duplicate rule id {rule.id!r}")
            seen[rule.id] = group
    for index, floor in enumerate(policy.adjustments.absolute_floor):
        if floor.indicator not in indicators:
            yield FieldViolation(f"adjustments.absolute_floor.{index}.indicator", "unknown indicator")

    tie_break = policy.classification.tie_break
    for index, key in enumerate(tie_break):
        if key != "credit_code" and key not in indicators and key not in RAW_FIELDS:
            yield FieldViolation(f"classification.tie_break.{index}", f"{key!r} is not an indicator or raw field")
    if not tie_break or tie_break[-1] != "credit_code":
        yield FieldViolation("classification.tie_break", "must end with credit_code so every tie is broken")
    for size_class, shares in policy.classification.shares.items():
        total = shares.A + shares.B + shares.C + shares.D
        if total != 1:
            yield FieldViolation(f"classification.shares.{size_class}", f"shares sum to {total}, expected 1")

    measures = policy.differentiated_measures
    for lever in ("pollutant_rights", "energy_rights"):
        access: RightsAccess = getattr(measures, lever)
        for grade in CLASS_ORDER:
            if grade not in access.increment_purchase_allowed:
                yield FieldViolation(
                    f"differentiated_measures.{lever}.increment_purchase_allowed.{grade}", "missing class"
                )
    if composite := policy.rollups.composite_size_class:
        if composite not in policy.profile_for:
            yield FieldViolation("rollups.composite_size_class", "no profile_for this size class")
