"""Bad input in every evaluation RPC gets a precise INVALID_ARGUMENT (or a refused row with its reason) and
changes nothing; never INTERNAL. Numbers far out of range, NaN and infinities, negative and absurd years,
digits that are not ASCII, control characters, over-long identifiers, forged page tokens, broken files."""

from __future__ import annotations

import base64

import grpc
import pytest
import yaml
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import (
    EVALUATOR,
    REGULATOR,
    TAX,
    TAX_AGENCY,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations

YEAR = 2024


async def _invalid(call, request, metadata) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    return field_violations(refused.value)


def _token(after: str) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=5, page_token=base64.urlsafe_b64encode(after.encode()).decode())


async def _document(evaluation) -> dict:
    response = await evaluation.stub.GetPolicy(pb.GetPolicyRequest(policy_ref="zj-county-default@2025.2"),
                                               metadata=REGULATOR)
    return yaml.safe_load(response.document)


async def test_policy_documents_with_absurd_values_are_refused_field_by_field(evaluation):
    base = await _document(evaluation)

    def edited(change) -> str:
        document = yaml.safe_load(yaml.safe_dump(base, allow_unicode=True))
        document["version"] = "bad.1"
        change(document)
        return yaml.safe_dump(document, allow_unicode=True)

    cases = {
        "profiles.above_size_zj.weights.tax_per_mu":
            edited(lambda d: d["profiles"]["above_size_zj"]["weights"].__setitem__("tax_per_mu", float("nan"))),
        "scoring.cap_ratio": edited(lambda d: d["scoring"].__setitem__("cap_ratio", float("inf"))),
        "adjustments.items.0.points": edited(lambda d: d["adjustments"]["items"][0].__setitem__("points", 10**400)),
        "indicators.tax_per_mu.scale": edited(lambda d: d["indicators"]["tax_per_mu"].__setitem__("scale", 10**300)),
        "scoring.floor_ratio": edited(lambda d: d["scoring"].__setitem__("floor_ratio", "1e-999999")),
        "evaluation_year": edited(lambda d: d.__setitem__("evaluation_year", -2025)),
        "version": edited(lambda d: d.__setitem__("version", "v" * 500)),
        "jurisdiction.code": edited(lambda d: d["jurisdiction"].__setitem__("code", "3" * 300)),
    }
    for field, text in cases.items():
        violations = await _invalid(evaluation.stub.PublishPolicy,
                                    pb.PublishPolicyRequest(idempotency_key=key(), document=text), EVALUATOR)
        assert field in violations, (field, violations)
    aliases = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    for text in ("a: " + "[" * 50_000 + "]" * 50_000,           # nested past any parser's stack
                 "{\"a\": " + "[" * 50_000 + "]" * 50_000 + "}",
                 "\n".join(aliases),                            # a billion laughs
                 "evaluation_year: 1" + "0" * 5000,              # an integer of 5001 digits
                 "provenance: " + "x" * 1_100_000):              # too long
        violations = await _invalid(evaluation.stub.PublishPolicy,
                                    pb.PublishPolicyRequest(idempotency_key=key(), document=text), EVALUATOR)
        assert "(document)" in violations
    listed = await evaluation.stub.ListPolicies(pb.ListPoliciesRequest(policy_id="zj-county-default"),
                                                metadata=REGULATOR)
    assert sorted(p.version for p in listed.policies) == ["2025.1", "2025.2"]


async def test_indicator_rows_out_of_range_are_refused_with_their_reason(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    cases = [
        ({"tax_paid": "1e999999"}, YEAR, code, ("tax_paid", "out_of_range")),
        ({"tax_paid": "1e-999999"}, YEAR, code, ("tax_paid", "out_of_range")),
        ({"tax_paid": "1000000000000000"}, YEAR, code, ("tax_paid", "out_of_range")),   # 10^15
        ({"tax_paid": "0.000000001"}, YEAR, code, ("tax_paid", "out_of_range")),        # 9 decimals
        ({"tax_paid": "NaN"}, YEAR, code, ("tax_paid", "not_a_number")),
        ({"kwh": "-Infinity"}, YEAR, code, ("kwh", "not_a_number")),
        ({"kwh": "9" * 65}, YEAR, code, ("kwh", "value_too_long")),
        ({"years_since_production": "²"}, YEAR, code, ("years_since_production", "not_an_integer")),
        ({"years_since_production": "٣"}, YEAR, code, ("years_since_production", "not_an_integer")),
        ({"years_since_production": "99999999"}, YEAR, code, ("years_since_production", "out_of_range")),
        ({"adjustment.HNTE": "10000000"}, YEAR, code, ("adjustment.HNTE", "out_of_range")),
        ({"flag." + "x" * 200: "1"}, YEAR, code, ("flag." + "x" * 75, "unknown_field")),
        ({"flag.\x00": "1"}, YEAR, code, ("flag.\x00", "unknown_field")),
        ({"tax_paid": "1"}, -2024, code, ("year", "bad_year")),
        ({"tax_paid": "1"}, 2**31 - 1, code, ("year", "bad_year")),
        ({"tax_paid": "1"}, YEAR, code[:17] + "\x00", ("credit_code", "unknown_credit_code")),
        ({"tax_paid": "1"}, YEAR, code[:17] + "x", ("credit_code", "unknown_credit_code")),
    ]
    report = await submit(evaluation.stub, [row(c, year, **values) for values, year, c, _ in cases],
                          metadata=TAX_AGENCY)
    assert report.rows_accepted == 0 and report.rows_refused == len(cases)
    for outcome, (_, _, _, expected) in zip(report.rows, cases, strict=True):
        assert expected in {(e.field, e.reason) for e in outcome.errors}, (expected, outcome.errors)
    # The largest and the finest values in range are recorded exactly.
    accepted = await submit(evaluation.stub, [row(code, YEAR, tax_paid="999999999999999.99999999",
                                                  kwh="0.00000001")], metadata=TAX_AGENCY)
    assert accepted.rows_accepted == 1
    values = {v.field: v.value for v in (await evaluation.stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(
        credit_code=code, year=YEAR), metadata=REGULATOR)).values}
    assert values == {"tax_paid": "999999999999999.99999999", "kwh": "0.00000001"}

    for request_row, field in ((row(code, YEAR, source=TAX + "\x00", tax_paid="1"), "source_department"),
                               (row(code, YEAR, "k" * 201, tax_paid="1"), "idempotency_key")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(evaluation.stub, [request_row], metadata=TAX_AGENCY)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(refused.value)


async def test_csv_files_that_cannot_be_read_are_refused(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)

    async def upload(content: bytes):
        return (await evaluation.stub.UploadIndicatorCsv(pb.UploadIndicatorCsvRequest(
            idempotency_key=key(), content=content), metadata=TAX_AGENCY)).report

    report = await upload(f"credit_code,year,tax_paid,kwh,sales\n{code},99999999999999999999,1,,\n"
                          f"{code},²⁰²⁴,,1,\n{code},-2024,,,1\n{code},2024,1e999999,,\n{code},2024,,\x00,\n"
                          .encode())
    assert [(r.row_number, {(e.field, e.reason) for e in r.errors}) for r in report.rows] == [
        (2, {("year", "bad_year")}), (3, {("year", "bad_year")}), (4, {("year", "bad_year")}),
        (5, {("tax_paid", "out_of_range")}), (6, {("kwh", "not_a_number")})]
    huge_cell = f"credit_code,year,tax_paid\n{code},2024,{'9' * 200_000}\n".encode()
    for content in (huge_cell, b"credit_code,year\n", b"credit_code,year,\x00\n"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await upload(content)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "content" in field_violations(refused.value)


async def test_identifiers_years_and_page_tokens_are_checked_before_use(registry, evaluation):
    codes = await register_enterprises(registry.stub, 3)
    await submit(evaluation.stub, [row(c, YEAR, **firm_values(i)) for i, c in enumerate(codes)])
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=YEAR), metadata=EVALUATOR)).run
    stub, act, read = evaluation.stub, EVALUATOR, REGULATOR
    cases = [
        (stub.StartRun, pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106", year=-2024), act, "year"),
        (stub.StartRun, pb.StartRunRequest(idempotency_key=key(), jurisdiction="3" * 30, year=YEAR), act,
         "jurisdiction"),
        (stub.StartRun, pb.StartRunRequest(idempotency_key=key(), jurisdiction="３３０１００", year=YEAR), act,
         "jurisdiction"),
        (stub.StartRun, pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106", year=YEAR,
                                           policy_ref="zj\x00"), act, "policy_ref"),
        (stub.PublishRun, pb.PublishRunRequest(idempotency_key=key(), run_id="run-\x00"), act, "run_id"),
        (stub.PublishRun, pb.PublishRunRequest(idempotency_key="\x00", run_id=run.run_id), act, "idempotency_key"),
        (stub.RegradeEnterprise, pb.RegradeEnterpriseRequest(
            idempotency_key=key(), run_id=run.run_id, credit_code=codes[0], to_grade="A", reason="复核" * 2000,
            evidence_ref="doc"), act, "reason"),
        (stub.RegradeEnterprise, pb.RegradeEnterpriseRequest(
            idempotency_key=key(), run_id=run.run_id, credit_code=codes[0], to_grade="A", reason="复核",
            evidence_ref="doc\x00"), act, "evidence_ref"),
        (stub.ApproveRegrade, pb.ApproveRegradeRequest(idempotency_key=key(), regrade_id="rg-\x00"), act,
         "regrade_id"),
        (stub.GetRun, pb.GetRunRequest(run_id="r" * 1000), read, "run_id"),
        (stub.ListRuns, pb.ListRunsRequest(page=common_pb2.PageRequest(page_token="!!not base64 ✗")), read,
         "page.page_token"),
        (stub.ListRuns, pb.ListRunsRequest(page=_token("\x00")), read, "page.page_token"),
        (stub.ListResults, pb.ListResultsRequest(run_id=run.run_id, order=pb.RESULT_ORDER_TOTAL_DESC,
                                                 page=_token("²")), read, "page.page_token"),
        (stub.ListResults, pb.ListResultsRequest(run_id=run.run_id, order=pb.RESULT_ORDER_TOTAL_DESC,
                                                 page=_token("9" * 30)), read, "page.page_token"),
        (stub.ListResults, pb.ListResultsRequest(run_id=run.run_id, park="园\x00"), read, "park"),
        (stub.GetRollups, pb.GetRollupsRequest(run_id="\x00"), read, "run_id"),
        (stub.GetEnterpriseResult, pb.GetEnterpriseResultRequest(credit_code="not a code"), read, "credit_code"),
        (stub.GetEnterpriseResult, pb.GetEnterpriseResultRequest(credit_code=codes[0], run_id="\x00"), read,
         "run_id"),
        (stub.GetEnterpriseReport, pb.GetEnterpriseReportRequest(credit_code=codes[0] + "\x00"), read,
         "credit_code"),
        (stub.GetIndicatorValues, pb.GetIndicatorValuesRequest(credit_code="", year=YEAR), read, "credit_code"),
        (stub.CheckEligibility, pb.CheckEligibilityRequest(credit_code="x" * 10_000,
                                                           sale_kind="emission_increment"), read, "credit_code"),
        (stub.GetPolicy, pb.GetPolicyRequest(policy_ref="zj\x00"), read, "policy_ref"),
    ]
    for call, request, metadata, field in cases:
        violations = await _invalid(call, request, metadata)
        assert field in violations, (field, violations)
    # A negative year asks for nothing on record: an empty answer, not an error.
    assert list((await stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(credit_code=codes[0], year=-1),
                                               metadata=REGULATOR)).values) == []
    runs = (await stub.ListRuns(pb.ListRunsRequest(), metadata=REGULATOR)).runs
    assert [(r.run_id, r.status, r.regrades) for r in runs] == [(run.run_id, pb.RUN_STATUS_COMPLETED, 0)]
