"""Checks of one submitted row against the field catalogue and the reference policy (pure).

Field names: the raw fields of the domain (decimal text), `years_since_production` (integer),
`flag.<name>`, `veto.<rule id>`, `downgrade.<rule id>` (yes/no) and `adjustment.<item id>` (count).
"""

from __future__ import annotations

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


def denominators_by_numerator(policy: Policy) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for definition in policy.indicators.values():
        found.setdefault(definition.num, set()).add(definition.den)
    return found


def check_values(values: dict[str, str], policy: Policy) -> tuple[dict[str, str], list[RowError]]:
    """Normalised values of the non-empty cells, and every problem found in them."""
    errors: list[RowError] = []
    clean: dict[str, str] = {}
    items = {item.id for item in policy.adjustments.items}
    vetoes = {rule.id for rule in policy.adjustments.vetoes_to_D}
    downgrades = {rule.id for rule in policy.adjustments.downgrade_one_class}
    for field, text in values.items():
        text = (text or "").strip()
        if not text:
            continue  # an empty cell supplies nothing (another department may)
        if len(field) > MAX_FIELD_NAME or has_control_characters(field):
            errors.append(RowError(field[:MAX_FIELD_NAME], "unknown_field", "is not an indicator field"))
            continue
        if len(text) > MAX_CELL:
            errors.append(RowError(field, "value_too_long", f"at most {MAX_CELL} characters"))
            continue
        prefix, _, name = field.partition(".")
        if field in RAW_FIELDS:
            try:
                value = Decimal(text.replace(",", ""))
            except InvalidOperation:
                errors.append(RowError(field, "not_a_number", f"{text!r} is not a decimal number"))
                continue
            if not value.is_finite():
                errors.append(RowError(field, "not_a_number", f"{text!r} is not a finite decimal number"))
            elif not within_bounds(value, MAX_INTEGER_DIGITS, MAX_PLACES):
                errors.append(RowError(field, "out_of_range", f"{text!r}: a number below 10^{MAX_INTEGER_DIGITS} "
                                                              f"with at most {MAX_PLACES} decimals"))
            elif field in NON_NEGATIVE_FIELDS and value < 0:
                errors.append(RowError(field, "negative_value", f"must not be negative, got {text}"))
            else:
                clean[field] = format(value, "f")
        elif field == "years_since_production" or prefix == "adjustment":
            if prefix == "adjustment" and name not in items:
                errors.append(RowError(field, "unknown_rule", f"no adjustment item {name!r} in {policy.ref}"))
                continue
            if not (text.isascii() and text.isdigit()):
                errors.append(RowError(field, "not_an_integer", f"{text!r} is not a non-negative integer"))
                continue
            limit = MAX_YEARS_IN_PRODUCTION if prefix != "adjustment" else MAX_COUNT
            if len(text) > len(str(limit)) or int(text) > limit:
                errors.append(RowError(field, "out_of_range", f"at most {limit}"))
                continue
            clean[field] = str(int(text))
        elif prefix in ("flag", "veto", "downgrade") and name:
            known = vetoes if prefix == "veto" else downgrades if prefix == "downgrade" else None
            if known is not None and name not in known:
                errors.append(RowError(field, "unknown_rule", f"no {prefix} rule {name!r} in {policy.ref}"))
                continue
            if text.lower() not in YES | NO:
                errors.append(RowError(field, "not_a_flag", f"{text!r} is not yes/no (1/0)"))
                continue
            clean[field] = "1" if text.lower() in YES else "0"
        else:
            errors.append(RowError(field, "unknown_field", f"{field!r} is not an indicator field"))
    return clean, errors


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
