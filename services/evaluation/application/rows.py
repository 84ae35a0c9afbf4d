"""Checks of submitted rows against the field catalogue and the reference policy (pure).

Field names: the raw fields of the domain (decimal text), `years_since_production` (integer),
`flag.<name>`, `veto.<rule id>`, `downgrade.<rule id>` (yes/no, or an amount for a rule with a threshold)
and `adjustment.<item id>` (count).

`ValueChecks` decides what a field name is once and keeps the check of each name, so that a bulk upload
checks half a million cells without re-reading the policy for each; `check_values` is the same check
for one row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from services.evaluation.application.fields import has_control_characters, is_credit_code
from services.evaluation.application.views import RowError
from services.evaluation.domain import Policy
from services.evaluation.domain.numbers import within_bounds
from services.evaluation.domain.policy import RAW_FIELDS
from services.evaluation.domain.records import NON_NEGATIVE_FIELDS

YES = {"1", "true", "yes", "y", "是"}
NO = {"0", "false", "no", "n", "否"}
MIN_YEAR, MAX_YEAR = 2000, 2100
# An amount (元, 万元, kWh, t, 亩, persons) is below 10^15 with at most 8 decimals: a stray cell such as
# 1e999999 or 1e-999999 is refused instead of becoming a number no run can score.
MAX_INTEGER_DIGITS, MAX_PLACES = 15, 8
MAX_CELL = 64           # characters of one value as written
MAX_FIELD_NAME = 80     # a stored field name (e.g. adjustment.<rule id>)
MAX_YEARS_IN_PRODUCTION = 300
MAX_COUNT = 1_000_000   # facts counted by an adjustment item
# The registry's size classes in the policy's terms.
POLICY_SIZE_CLASS = {"above": "above_size", "below": "below_size"}
SIZE_CLASS_LABEL = {"above_size": "规上 (above_size)", "below_size": "规下 (below_size)"}

# A plain non-negative decimal within the bounds above, written without sign, separators, exponent or
# leading zeros: its normalised form is the text itself (format(Decimal(text), "f") == text), so the common
# cell needs no Decimal. Anything else takes the full check, which words every refusal.
# (The grammar is decided by each next character, so possessive quantifiers lose nothing and spare the
# engine its backtracking bookkeeping.)
_PLAIN_AMOUNT = rf"(?:[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}}+|0)(?:\.[0-9]{{1,{MAX_PLACES}}}+)?+"
_PLAIN_FLAG = "[01]"


def _plain_count(limit: int) -> str:
    """Counts with fewer digits than `limit` written without leading zeros: all below it, all their own form."""
    return rf"(?:[1-9][0-9]{{0,{len(str(limit)) - 2}}}+|0)"


@dataclass(frozen=True)
class Plain:
    """Cells that are already their own normalised, valid value: the test of one cell, and of a whole
    column at once (its cells joined by newlines, each plain or empty), so that a clean column of 5,000
    cells is one regular-expression match instead of 5,000 checks."""

    cell: Callable[[str], object]
    joined: Callable[[str], object]

    @classmethod
    def of(cls, pattern: str, *, empty: bool = True) -> Plain:
        """`empty`: an empty cell passes the column test (a row without a value for the field)."""
        cell = rf"(?:{pattern})?+" if empty else rf"(?:{pattern})"
        return cls(re.compile(pattern).fullmatch, re.compile(rf"{cell}(?:\n{cell})*+").fullmatch)

    def column(self, cells: Sequence[str]) -> bool:
        joined = "\n".join(cells)
        # A cell holding a newline is never plain: the count of lines must be the count of cells.
        return joined.count("\n") == len(cells) - 1 and self.joined(joined) is not None


_PLAIN = {"amount": Plain.of(_PLAIN_AMOUNT), "flag": Plain.of(_PLAIN_FLAG),
          "years": Plain.of(_plain_count(MAX_YEARS_IN_PRODUCTION)), "count": Plain.of(_plain_count(MAX_COUNT))}


# A cell's check: (normalised value, None), (None, the refusal), or (None, None) for an empty cell.
Check = Callable[[str], tuple[str | None, RowError | None]]


def denominators_by_numerator(policy: Policy) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for definition in policy.indicators.values():
        found.setdefault(definition.num, set()).add(definition.den)
    return found


class ValueChecks:
    """The check of every field name under one reference policy, each decided once."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.items = {item.id: item for item in policy.adjustments.items}
        self.vetoes = {rule.id for rule in policy.adjustments.vetoes_to_D}
        self.downgrades = {rule.id for rule in policy.adjustments.downgrade_one_class}
        self.amount_rules = {rule.id: rule for rule in policy.adjustments.downgrade_one_class
                             if rule.amount_at_least is not None}
        self._checks: dict[str, Check] = {}
        self._plain: dict[str, Plain | None] = {}

    def of(self, field: str) -> Check:
        check = self._checks.get(field)
        if check is None:
            check = self._checks[field] = self._decide(field)
        return check

    def plain(self, field: str) -> Plain | None:
        """The test of cells that are already their own normalised, valid value (a plain amount, a small count
        without leading zeros, "1" or "0"): such cells need no further check. None when every cell of the
        field takes the full check (an unknown field or rule, an amount a downgrade decides by)."""
        if field not in self._plain:
            self._plain[field] = self._decide_plain(field)
        return self._plain[field]

    def _decide_plain(self, field: str) -> Plain | None:
        prefix, _, name = field.partition(".")
        if field in RAW_FIELDS:
            return _PLAIN["amount"]
        if field == "years_since_production":
            return _PLAIN["years"]
        if prefix == "adjustment" and name in self.items:
            return _PLAIN["count"]
        if (prefix == "veto" and name in self.vetoes) or (prefix == "downgrade" and name in self.downgrades
                                                          and name not in self.amount_rules):
            return _PLAIN["flag"]
        if prefix == "flag" and name and len(field) <= MAX_FIELD_NAME and not has_control_characters(field):
            return _PLAIN["flag"]
        return None

    def row(self, values: Mapping[str, str]) -> tuple[dict[str, str], list[RowError]]:
        """Normalised values of the non-empty cells of one row, and every problem found in them."""
        errors: list[RowError] = []
        clean: dict[str, str] = {}
        for field, text in values.items():
            value, error = self.of(field)(text)
            if error is not None:
                errors.append(error)
            elif value is not None:
                clean[field] = value
        return clean, errors

    def by_size_class(self, field: str) -> bool:
        """Whether a fact of this field may be refused for a firm's size class (an item with a schedule)."""
        prefix, _, name = field.partition(".")
        item = self.items.get(name) if prefix == "adjustment" else None
        return item is not None and item.schedule is not None

    def size_class_problem(self, field: str, value: str, registry_size_class: str) -> RowError | None:
        """An adjustment fact for an item whose schedule does not name the firm's size class (a count of 0
        states no fact and passes)."""
        prefix, _, name = field.partition(".")
        item = self.items.get(name) if prefix == "adjustment" else None
        if item is None or value == "0":
            return None
        size_class = POLICY_SIZE_CLASS.get(registry_size_class, "")
        if item.applies_to(size_class):
            return None
        named = ", ".join(SIZE_CLASS_LABEL.get(s, s) for s in (item.schedule or {}))
        firm = f"a {SIZE_CLASS_LABEL[size_class]} enterprise" if size_class else \
            "an enterprise without a size class in the registry"
        return RowError(field, "adjustment_not_for_size_class",
                        f"adjustment item {name} does not apply to {firm} in {self.policy.ref}: its schedule "
                        f"names {named} only")

    # ------------------------------------------------------------ one check per kind of field
    def _decide(self, field: str) -> Check:  # noqa: C901 - one branch per kind of field, as documented above
        if len(field) > MAX_FIELD_NAME or has_control_characters(field):
            return _cell(field, _refuse(RowError(field[:MAX_FIELD_NAME], "unknown_field", "is not an indicator field")),
                         before_length=True)
        prefix, _, name = field.partition(".")
        ref = self.policy.ref
        if field in RAW_FIELDS:
            return _amount(field)
        if field == "years_since_production":
            return _cell(field, _count(field, MAX_YEARS_IN_PRODUCTION))
        if prefix == "adjustment":
            if name not in self.items:
                return _cell(field, _refuse(RowError(field, "unknown_rule", f"no adjustment item {name!r} in {ref}")))
            return _cell(field, _count(field, MAX_COUNT))
        if prefix == "downgrade" and name in self.amount_rules:
            return _cell(field, _penalty_amount(field, self.amount_rules[name].amount_unit))
        if prefix in ("flag", "veto", "downgrade") and name:
            known = self.vetoes if prefix == "veto" else self.downgrades if prefix == "downgrade" else None
            if known is not None and name not in known:
                return _cell(field, _refuse(RowError(field, "unknown_rule", f"no {prefix} rule {name!r} in {ref}")))
            return _cell(field, _flag(field))
        return _cell(field, _refuse(RowError(field, "unknown_field", f"{field!r} is not an indicator field")))


def _cell(field: str, check: Callable[[str], tuple[str | None, RowError | None]], *,
          before_length: bool = False) -> Check:
    """The steps every cell takes around its kind's check: an empty cell supplies nothing (another
    department may); an over-long value is refused first, except for a field name that is no name at all."""
    too_long = RowError(field, "value_too_long", f"at most {MAX_CELL} characters")

    def checked(text: str) -> tuple[str | None, RowError | None]:
        text = (text or "").strip()
        if not text:
            return None, None
        if len(text) > MAX_CELL and not before_length:
            return None, too_long
        return check(text)

    return checked


def _refuse(error: RowError) -> Callable[[str], tuple[None, RowError]]:
    return lambda _text: (None, error)


def _amount(field: str) -> Check:
    """A raw field: a decimal number (commas as thousands separators allowed), bounded, non-negative for
    land and denominators."""
    non_negative = field in NON_NEGATIVE_FIELDS

    def amount(text: str) -> tuple[str | None, RowError | None]:
        try:
            value = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None, RowError(field, "not_a_number", f"{text!r} is not a decimal number")
        if not value.is_finite():
            return None, RowError(field, "not_a_number", f"{text!r} is not a finite decimal number")
        if not within_bounds(value, MAX_INTEGER_DIGITS, MAX_PLACES):
            return None, RowError(field, "out_of_range", f"{text!r}: a number below 10^{MAX_INTEGER_DIGITS} "
                                                         f"with at most {MAX_PLACES} decimals")
        if non_negative and value < 0:
            return None, RowError(field, "negative_value", f"must not be negative, got {text}")
        return format(value, "f"), None

    full = _cell(field, amount)

    plain = _PLAIN["amount"].cell

    def checked(text: str) -> tuple[str | None, RowError | None]:
        if plain(text):
            return text, None
        return full(text)

    return checked


def _count(field: str, limit: int) -> Callable[[str], tuple[str | None, RowError | None]]:
    """A non-negative integer up to `limit` (years in production, an adjustment item's count)."""
    def count(text: str) -> tuple[str | None, RowError | None]:
        if not (text.isascii() and text.isdigit()):
            return None, RowError(field, "not_an_integer", f"{text!r} is not a non-negative integer")
        if len(text) > len(str(limit)) or int(text) > limit:
            return None, RowError(field, "out_of_range", f"at most {limit}")
        return str(int(text)), None

    return count


def _penalty_amount(field: str, unit: str) -> Callable[[str], tuple[str | None, RowError | None]]:
    """A downgrade decided by an amount (e.g. the year's environmental penalties, 万元): the amount itself."""
    def amount(text: str) -> tuple[str | None, RowError | None]:
        try:
            value = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None, RowError(field, "not_a_number", f"{text!r} is not an amount in {unit}")
        if not value.is_finite() or value < 0 or not within_bounds(value, MAX_INTEGER_DIGITS, MAX_PLACES):
            return None, RowError(field, "out_of_range", f"{text!r}: a non-negative amount in {unit}")
        return format(value, "f"), None

    return amount


def _flag(field: str) -> Callable[[str], tuple[str | None, RowError | None]]:
    def flag(text: str) -> tuple[str | None, RowError | None]:
        answer = text.lower()
        if answer in YES:
            return "1", None
        if answer in NO:
            return "0", None
        return None, RowError(field, "not_a_flag", f"{text!r} is not yes/no (1/0)")

    return flag


def check_values(values: Mapping[str, str], policy: Policy) -> tuple[dict[str, str], list[RowError]]:
    """Normalised values of the non-empty cells, and every problem found in them."""
    return ValueChecks(policy).row(values)


def check_identity(credit_code: str, year: int) -> list[RowError]:
    errors = []
    if not credit_code.strip():
        errors.append(RowError("credit_code", "missing_credit_code", "is required"))
    elif not is_credit_code(credit_code):
        errors.append(RowError("credit_code", "unknown_credit_code",
                               "a 统一社会信用代码 has 18 characters, digits and capital letters"))
    if not MIN_YEAR <= year <= MAX_YEAR:
        errors.append(RowError("year", "bad_year", f"must be between {MIN_YEAR} and {MAX_YEAR}"))
    return errors
