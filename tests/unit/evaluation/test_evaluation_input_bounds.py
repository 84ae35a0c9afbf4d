"""Bounds on what reaches the evaluation: numbers in policy documents and indicator rows, CSV files, and the
identifiers a request carries. Each bad value is refused with its field, never raised as a crash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from evaluation_support import policy_dict

from services.common.errors import InvalidArgument
from services.evaluation.adapters.grpc.csv_rows import parse_csv
from services.evaluation.application import fields
from services.evaluation.application.rows import check_identity, check_values
from services.evaluation.domain import PolicyError, load_policy
from services.evaluation.domain.numbers import within_bounds


def _violations(document) -> dict[str, str]:
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    return {v.path: v.message for v in error.value.violations}


@pytest.mark.parametrize(("text", "ok"), [
    ("0", True), ("-0", True), ("999999999999.999999999999", True), ("1000000000000", False),
    ("1E+11", True), ("1E+12", False), ("1E+999999", False), ("1.000000000000000000000", True),
    ("0.0000000000001", False), ("1E-999999", False), ("NaN", False), ("-Infinity", False), ("-5.5", True),
])
def test_within_bounds_judges_the_representation(text, ok):
    assert within_bounds(Decimal(text), 12, 12) is ok


@pytest.mark.parametrize(("where", "value"), [
    (("adjustments", "items", 0, "points"), 10**400),
    (("indicators", "tax_per_mu", "scale"), 10**300),
    (("scoring", "floor_ratio"), "1e-999999"),
    (("scoring", "cap_ratio"), float("nan")),
    (("publicity", "days"), 10**30),
    (("classification", "min_pool_size_for_shares"), -1),
    (("evaluation_year",), -2025),
    (("version",), "1@2"),
    (("jurisdiction", "code"), "3" * 100),
])
def test_policy_numbers_and_names_out_of_range_are_violations(where, value):
    document = policy_dict()
    target = document
    for step in where[:-1]:
        target = target.setdefault(step, {}) if isinstance(step, str) else target[step]
    target[where[-1]] = value
    found = _violations(document)
    assert ".".join(str(s) for s in where) in found, found


def test_unreadable_policy_texts_are_document_violations():
    aliases = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    for text in ("a: " + "[" * 50_000 + "]" * 50_000, "{\"a\": " + "[" * 50_000 + "]" * 50_000 + "}",
                 "\n".join(aliases), "evaluation_year: 1" + "0" * 5000, "provenance: " + "x" * 1_100_000):
        assert set(_violations(text)) == {"(document)"}


@pytest.mark.parametrize(("field", "text", "reason"), [
    ("tax_paid", "1e999999", "out_of_range"),
    ("tax_paid", "-1e-999999", "out_of_range"),
    ("tax_paid", "NaN", "not_a_number"),
    ("tax_paid", "sNaN", "not_a_number"),
    ("kwh", "Infinity", "not_a_number"),
    ("kwh", "1" * 65, "value_too_long"),
    ("land_mu", "-3", "negative_value"),
    ("years_since_production", "²", "not_an_integer"),
    ("years_since_production", "-1", "not_an_integer"),
    ("years_since_production", "301", "out_of_range"),
    ("adjustment.HNTE", "9" * 40, "out_of_range"),
    ("flag.\x00", "1", "unknown_field"),
])
def test_indicator_values_out_of_range_are_refused_with_their_reason(field, text, reason):
    clean, errors = check_values({field: text}, load_policy(policy_dict()))
    assert clean == {} and [e.reason for e in errors] == [reason]


def test_indicator_values_in_range_are_normalised_exactly():
    clean, errors = check_values({"tax_paid": "999,999,999,999,999.99999999", "kwh": "1E-8",
                                  "years_since_production": "007"}, load_policy(policy_dict()))
    assert errors == [] and clean == {"tax_paid": "999999999999999.99999999", "kwh": "0.00000001",
                                      "years_since_production": "7"}


@pytest.mark.parametrize(("code", "year", "reasons"), [
    ("91330106MA2AAAAA01", 2024, []),
    ("91330106ma2aaaaa01", 2024, ["unknown_credit_code"]),
    ("91330106MA2AAAAA0\x00", 2024, ["unknown_credit_code"]),
    ("91330106MA2AAAAA01", -2024, ["bad_year"]),
    ("", 2**31 - 1, ["missing_credit_code", "bad_year"]),
])
def test_row_identity(code, year, reasons):
    assert [e.reason for e in check_identity(code, year)] == reasons


def test_csv_years_that_are_not_years_become_refusable_rows():
    rows = parse_csv("credit_code,year,tax_paid\nA,99999999999999999999,1\nB,²⁰²⁴,1\nC,-2024,1\nD,2024,1\n"
                     .encode())
    assert [(r.credit_code, r.year) for r in rows] == [("A", 0), ("B", 0), ("C", 0), ("D", 2024)]


def test_csv_files_that_cannot_be_read_are_content_violations():
    for content in (b"", b"\xff\xfe", b"code,year\n1,2\n", b"credit_code,year\n",
                    b"credit_code,year,year\nA,2024,2024\n",
                    b"credit_code,year,tax_paid\nA,2024," + b"9" * 200_000 + b"\n"):
        with pytest.raises(InvalidArgument) as refused:
            parse_csv(content)
        assert [v.field for v in refused.value.violations] == ["content"]


@pytest.mark.parametrize(("check", "value"), [
    (lambda v: fields.credit_code(v), "91330106MA2AAAAA0"),
    (lambda v: fields.credit_code(v), ""),
    (lambda v: fields.identifier(v, "run_id"), "run-\x00"),
    (lambda v: fields.identifier(v, "run_id"), "r" * 65),
    (lambda v: fields.identifier(v, "run_id"), ""),
    (lambda v: fields.text(v, "reason", max_length=10), "x" * 11),
    (lambda v: fields.text(v, "reason", max_length=10), "a\x07b"),
    (lambda v: fields.idempotency_key(v), "k" * 201),
])
def test_request_identifiers_are_checked(check, value):
    with pytest.raises(InvalidArgument):
        check(value)


def test_free_text_keeps_lines_and_optional_identifiers_may_be_empty():
    assert fields.text("第一行\n第二行", "reason", max_length=100) == "第一行\n第二行"
    assert fields.identifier("", "page.page_token", required=False) == ""
    assert fields.idempotency_key("") == ""
