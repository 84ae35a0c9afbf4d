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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import FieldViolation, PolicyError
from .numbers import within_bounds

SizeClass = Literal["above_size", "below_size"]
SIZE_CLASSES: tuple[SizeClass, ...] = ("above_size", "below_size")
ClassLabel = Literal["A", "B", "C", "D"]
CLASS_ORDER: tuple[str, ...] = ("A", "B", "C", "D")
GRADE_LABELS: tuple[str, ...] = ("A", "B", "C", "D", "T")

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
    "pool_aggregate_ratio", "pool_mean", "pool_median", "fixed", "multiple_of_prior_year_mean"
]
MissingRule = Literal["zero_score_and_flag", "pool_average_score", "reject"]
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


class Scope(_Document):
    include: list[ScopeRule] = Field(min_length=1)
    separate_lists: list[Literal["tenant_no_land"]] = Field(default_factory=list)
    not_graded_T: list[NotGradedRule] = Field(default_factory=list)
    T_treated_as: ClassLabel = "B"


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
    method: BenchmarkMethod
    alternatives: list[BenchmarkMethod] = Field(default_factory=list)
    multiplier: Positive = Decimal(1)
    source_year: Literal["same_as_evaluation", "prior_year"] = "same_as_evaluation"


class Scoring(_Document):
    function: Literal["ratio"] = "ratio"
    floor_ratio: NonNegative = Decimal(0)
    cap_ratio: Positive | None = None
    rounding: int = Field(default=2, ge=0, le=6)
    weights_total: Positive = Decimal(100)
    missing: dict[str, MissingRule] = Field(default_factory=lambda: {"default": "zero_score_and_flag"})
    implausible_zero_penalty: Annotated[Decimal, Field(le=0)] = Decimal(0)
    implausible_zero_fields: list[RawField] = Field(default_factory=lambda: ["energy_tce", "pollutant_t"])
    alt_lower_better_linear: bool = False


class AdjustmentItem(_Document):
    """A bonus (加分, points > 0) or deduction (扣分, points < 0), counted per fact."""

    id: RuleId
    desc: str = ""
    points: Decimal
    per_unit: bool = False
    free_units: int = Field(default=0, ge=0)  # Wenling: first rented-out tenant costs nothing
    first_unit_points: Decimal | None = None  # Wenling 规下: -10 for the first tenant, -5 each further

    @field_validator("points")
    @classmethod
    def _non_zero(cls, points: Decimal) -> Decimal:
        if points == 0:
            raise ValueError("points must be non-zero (positive = bonus, negative = deduction)")
        return points


class NamedRule(_Document):
    id: RuleId
    desc: str = ""


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
    downgrade_one_class: list[NamedRule] = Field(default_factory=list)
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


class Classification(_Document):
    method: Literal["rank_share"] = "rank_share"
    tie_break: list[str] = Field(default_factory=lambda: ["credit_code"])
    shares: dict[SizeClass, ClassShares]
    rounding: Literal["floor_for_A_ceil_for_D"] = "floor_for_A_ceil_for_D"
    min_pool_size_for_shares: int = Field(default=20, ge=1)
    industry_split: IndustrySplit | None = None


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

    def profile_of(self, size_class: str) -> tuple[str, Profile]:
        name = self.profile_for[size_class]  # type: ignore[index]
        return name, self.profiles[name]

    def benchmark_method_of(self, profile: Profile) -> str:
        return profile.benchmark_method or self.benchmark.method

    def missing_rule(self, indicator: str) -> str:
        return self.scoring.missing.get(indicator, self.scoring.missing.get("default", "zero_score_and_flag"))

    def scored_indicators(self) -> tuple[str, ...]:
        """Every indicator weighted by some profile in use, in a stable order."""
        names: set[str] = set()
        for profile_name in self.profile_for.values():
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
    for size_class in policy.profile_for:
        if size_class not in policy.classification.shares:
            yield FieldViolation(f"classification.shares.{size_class}", "missing shares for a graded size class")
    for rule_index, rule in enumerate(policy.scope.include):
        if rule.size_class not in policy.profile_for:
            yield FieldViolation(f"scope.include.{rule_index}.size_class", "no profile_for this size class")
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
    if cap is not None and cap <= policy.scoring.floor_ratio:
        yield FieldViolation("scoring.cap_ratio", "must be greater than floor_ratio")
    for key in policy.scoring.missing:
        if key != "default" and key not in indicators:
            yield FieldViolation(f"scoring.missing.{key}", "unknown indicator (use 'default' or an indicator id)")

    places = policy.scoring.rounding
    for index, item in enumerate(policy.adjustments.items):
        for field_name, value in (("points", item.points), ("first_unit_points", item.first_unit_points)):
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
