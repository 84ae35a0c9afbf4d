"""Input rows of a run (one enterprise-year each), prior-year context, and their validation.

Units of the raw values: money in 万元, land in 亩, energy in tce, pollutants/COD/water in t,
electricity in kWh, employees in persons (annual average).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import InputError, RowViolation
from .policy import RAW_FIELDS, SIZE_CLASSES, DowngradeRule, Policy

# Denominators may never be negative; numerators may (tax refunds, losses) and are clamped to 0 when scored.
NON_NEGATIVE_FIELDS = (
    "energy_tce",
    "pollutant_t",
    "cod_t",
    "water_t",
    "kwh",
    "avg_employees",
    "land_mu",
    "sales",
    "main_revenue",
    "rd_expense",
)


@dataclass(frozen=True, slots=True)
class EnterpriseYear:
    credit_code: str  # 统一社会信用代码
    region_code: str
    industry_code: str  # GB/T 4754-2017, e.g. "C3011" or "3011"
    size_class: str  # above_size (规上) | below_size (规下)
    year: int
    land_mu: Decimal | None  # titled industrial land; 0 = tenant without land (separate list)
    tax_paid: Decimal | None = None
    sales: Decimal | None = None
    main_revenue: Decimal | None = None
    value_added: Decimal | None = None
    energy_tce: Decimal | None = None
    pollutant_t: Decimal | None = None
    cod_t: Decimal | None = None
    water_t: Decimal | None = None
    kwh: Decimal | None = None
    rd_expense: Decimal | None = None
    avg_employees: Decimal | None = None
    name: str | None = None
    park: str | None = None
    years_since_production: int | None = None
    flags: frozenset[str] = frozenset()  # facts matched by scope.not_graded_T[].flag
    adjustment_facts: Mapping[str, int] = field(default_factory=dict)  # item id -> count (1 for yes/no items)
    vetoes: frozenset[str] = frozenset()  # ids of adjustments.vetoes_to_D that apply this year
    downgrades: frozenset[str] = frozenset()  # ids of yes/no adjustments.downgrade_one_class facts
    # rule id -> the year's amount for a downgrade rule with a threshold (e.g. environmental penalties, 万元)
    downgrade_amounts: Mapping[str, Decimal] = field(default_factory=dict)

    def raw(self, name: str) -> Decimal | None:
        return getattr(self, name)

    @property
    def industry_digits(self) -> str:
        return self.industry_code.lstrip("ABCDEFGHIJKLMNOPQRST")

    @property
    def industry_division(self) -> str:
        """GB/T 4754 two-digit division (大类), the unit of industry roll-ups."""
        return self.industry_digits[:2]


@dataclass(frozen=True, slots=True)
class PriorYear:
    """What a run needs from the previous year's published run."""

    final_classes: Mapping[str, str] = field(default_factory=dict)  # credit code -> A/B/C/D/T
    consecutive_d_years: Mapping[str, int] = field(default_factory=dict)  # credit code -> years in D so far
    # (region_code, size_class, industry_group or "", indicator) -> mean of firm values in that pool
    pool_means: Mapping[tuple[str, str, str, str], Decimal] = field(default_factory=dict)
    # same key -> the benchmark the prior run published (benchmark.source_year: prior_year)
    pool_benchmarks: Mapping[tuple[str, str, str, str], Decimal] = field(default_factory=dict)
    # (dimension, unit key) -> indicator -> ratio-of-sums value, for year-on-year change
    rollups: Mapping[tuple[str, str], Mapping[str, Decimal | None]] = field(default_factory=dict)


def validate_records(policy: Policy, records: Sequence[EnterpriseYear]) -> None:
    """Raise InputError listing every bad row/field; return quietly when the input is usable."""
    problems: list[RowViolation] = []
    first_row: dict[tuple[str, int], int] = {}
    known_items = {item.id: item for item in policy.adjustments.items}
    known_vetoes = {rule.id for rule in policy.adjustments.vetoes_to_D}
    known_downgrades = {rule.id: rule for rule in policy.adjustments.downgrade_one_class}
    for row, record in enumerate(records):
        code = record.credit_code

        def bad(field_name: str, message: str, row: int = row, code: str = code) -> None:
            problems.append(RowViolation(row, code, field_name, message))

        if not code or not code.strip():
            bad("credit_code", "is required")
        key = (code, record.year)
        if key in first_row:
            bad("credit_code", f"duplicate row for {code} in {record.year} (first at row {first_row[key]})")
        else:
            first_row[key] = row
        if record.size_class not in SIZE_CLASSES:
            bad("size_class", f"{record.size_class!r} is not one of {', '.join(SIZE_CLASSES)}")
        if not record.region_code:
            bad("region_code", "is required")
        digits = record.industry_digits
        if len(digits) < 2 or not digits.isdigit():
            bad("industry_code", f"{record.industry_code!r} is not a GB/T 4754 code")
        if record.land_mu is None:
            bad("land_mu", "is required (use 0 for a tenant without titled industrial land)")
        for name in RAW_FIELDS:
            value = record.raw(name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite():
                bad(name, f"must be a finite Decimal, got {value!r}")
            elif name in NON_NEGATIVE_FIELDS and value < 0:
                bad(name, f"must not be negative, got {value}")
        if record.years_since_production is not None and record.years_since_production < 0:
            bad("years_since_production", "must not be negative")
        for item_id, count in record.adjustment_facts.items():
            if item_id not in known_items:
                bad("adjustment_facts", f"unknown adjustment item {item_id!r}")
            elif not isinstance(count, int) or count < 0:
                bad("adjustment_facts", f"count for {item_id!r} must be a non-negative integer")
            elif count and not known_items[item_id].applies_to(record.size_class):
                bad("adjustment_facts", f"adjustment item {item_id!r} does not apply to a {record.size_class} firm")
        _unknown(record.vetoes, known_vetoes, "vetoes", bad)
        _unknown(record.downgrades, known_downgrades, "downgrades", bad)
        _unknown(record.downgrade_amounts, known_downgrades, "downgrade_amounts", bad)
        for rule_id in sorted(record.downgrades & known_downgrades.keys()):
            if known_downgrades[rule_id].amount_at_least is not None:
                bad("downgrades", f"{rule_id} is decided by an amount in {known_downgrades[rule_id].amount_unit}, "
                                  "not a yes/no fact")
        for rule_id, amount in sorted(record.downgrade_amounts.items()):
            rule = known_downgrades.get(rule_id)
            if rule is not None and rule.amount_at_least is None:
                bad("downgrade_amounts", f"{rule_id} is a yes/no fact, not an amount")
            elif not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                bad("downgrade_amounts", f"amount for {rule_id} must be a finite non-negative Decimal")
    if problems:
        raise InputError(problems)


def fired_downgrades(policy: Policy, record: EnterpriseYear) -> list[DowngradeRule]:
    """The downgrade rules a record's facts trigger, in policy order (an amount rule at or above its threshold)."""
    fired = []
    for rule in policy.adjustments.downgrade_one_class:
        if rule.amount_at_least is None:
            if rule.id in record.downgrades:
                fired.append(rule)
        elif (amount := record.downgrade_amounts.get(rule.id)) is not None and amount >= rule.amount_at_least:
            fired.append(rule)
    return fired


def _unknown(ids: Iterable[str], known: Container[str], field_name: str, bad) -> None:
    for rule_id in sorted(ids):
        if rule_id not in known:
            bad(field_name, f"unknown rule id {rule_id!r}")
