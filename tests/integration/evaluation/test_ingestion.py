"""Indicator data: every row accepted or refused with its reasons; refused rows change nothing; values keep
their source department and time; CSV uploads; who may speak for which department."""

from __future__ import annotations

import grpc
import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import (
    ADMIN,
    EVALUATOR,
    READER,
    STATS,
    STATS_KEY,
    TAX,
    TAX_AGENCY,
    TAX_KEY,
    auth,
    enterprise,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations, reason
from tests.support.services import on_behalf

YEAR = 2024
UNKNOWN = "91330106MA00000000"  # well-formed, never registered


async def _values(evaluation, code: str, year: int = YEAR) -> list[pb.IndicatorValue]:
    return list((await evaluation.stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(
        credit_code=code, year=year), metadata=READER)).values)


def _errors(result: pb.RowResult) -> set[tuple[str, str]]:
    return {(e.field, e.reason) for e in result.errors}


async def test_each_bad_row_is_refused_with_its_reason_and_changes_nothing(registry, evaluation):
    good, other = await register_enterprises(registry.stub, 2)
    report = await submit(evaluation.stub, [
        row(good, YEAR, tax_paid="500", land_mu="25"),                 # 1 accepted
        row(UNKNOWN, YEAR, tax_paid="10"),                             # 2 unknown credit code
        row(other, YEAR, tax_paid="10", land_mu="-3"),                 # 3 negative land
        row(other, YEAR, rd_expense="12"),                             # 4 missing denominator (main_revenue)
        row(good, YEAR, tax_paid="501"),                               # 5 duplicate of row 1's tax_paid
        row(other, YEAR, value_added="abc", bonus_points="3"),         # 6 not a number, unknown field
        row(other, YEAR, **{"veto.NOT_A_RULE": "1"}),                  # 7 unknown rule id
        row(other, 1999, tax_paid="1"),                                # 8 bad year
        row(other, YEAR),                                              # 9 no values
    ], metadata=auth(TAX_KEY))
    assert (report.rows_accepted, report.rows_refused, report.values_recorded) == (1, 8, 2)
    assert report.source_department == TAX
    outcomes = {r.row_number: r for r in report.rows}
    assert [outcomes[n].outcome for n in range(1, 10)] == [pb.ROW_OUTCOME_ACCEPTED] + [pb.ROW_OUTCOME_REFUSED] * 8
    assert _errors(outcomes[2]) == {("credit_code", "unknown_credit_code")}
    assert _errors(outcomes[3]) == {("land_mu", "negative_value")}
    assert _errors(outcomes[4]) == {("main_revenue", "missing_denominator")}
    assert _errors(outcomes[5]) == {("tax_paid", "duplicate_row")}
    assert "row 1" in outcomes[5].errors[0].message
    assert _errors(outcomes[6]) == {("value_added", "not_a_number"), ("bonus_points", "unknown_field")}
    assert _errors(outcomes[7]) == {("veto.NOT_A_RULE", "unknown_rule")}
    assert _errors(outcomes[8]) == {("year", "bad_year")}
    assert _errors(outcomes[9]) == {("values", "no_values")}

    recorded = await _values(evaluation, good)
    assert {(v.field, v.value, v.source_department) for v in recorded} == {("tax_paid", "500", TAX),
                                                                           ("land_mu", "25", TAX)}
    assert all(v.submission_id == report.submission_id and v.recorded_at.seconds and v.effective
               for v in recorded)
    assert await _values(evaluation, other) == []  # refused rows changed nothing

    # With main_revenue on record, the R&D row is accepted on its own.
    later = await submit(evaluation.stub, [row(other, YEAR, main_revenue="1000")], metadata=auth(STATS_KEY))
    assert later.rows_accepted == 1
    fixed = await submit(evaluation.stub, [row(other, YEAR, rd_expense="12")], metadata=auth(STATS_KEY))
    assert fixed.rows_accepted == 1


async def test_values_keep_every_source_and_the_latest_is_effective(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    await submit(evaluation.stub, [row(code, YEAR, tax_paid="100")], metadata=auth(TAX_KEY))
    await submit(evaluation.stub, [row(code, YEAR, tax_paid="120", value_added="900")], metadata=auth(STATS_KEY))
    values = {(v.field, v.source_department): v for v in await _values(evaluation, code)}
    assert values[("tax_paid", STATS)].effective and not values[("tax_paid", TAX)].effective
    assert values[("tax_paid", TAX)].value == "100" and values[("value_added", STATS)].effective
    # A correction by the same department replaces its own value only.
    await submit(evaluation.stub, [row(code, YEAR, tax_paid="130")], metadata=auth(TAX_KEY))
    values = {(v.field, v.source_department): v for v in await _values(evaluation, code)}
    assert values[("tax_paid", TAX)].value == "130" and values[("tax_paid", TAX)].effective
    assert len(values) == 3


async def test_a_data_provider_submits_only_as_itself_and_nobody_else_submits(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    refusals = {
        # A data provider naming another department, for the submission or for one row of it.
        "other department": ([row(code, YEAR, source=STATS, tax_paid="1")], auth(TAX_KEY), "NOT_OWNER"),
        "other department in a row": ([row(code, YEAR, tax_paid="1"), row(code, 2025, source=STATS, tax_paid="2")],
                                      auth(TAX_KEY), "NOT_OWNER"),
        "the same through the gateway": ([row(code, YEAR, source=STATS, tax_paid="1")],
                                         on_behalf(f"agency:{TAX}/key:7", "data_provider"), "NOT_OWNER"),
        # Not a data provider: the administrator (no business acts), the evaluating agency, a regulator, the
        # enterprise itself, an anonymous portal visitor.
        "admin": ([row(code, YEAR, source=TAX, tax_paid="1")], ADMIN, "NOT_PERMITTED"),
        "evaluator": ([row(code, YEAR, tax_paid="1")], EVALUATOR, "NOT_PERMITTED"),
        "regulator": ([row(code, YEAR, tax_paid="1")], READER, "NOT_PERMITTED"),
        "enterprise": ([row(code, YEAR, tax_paid="1")], enterprise(code), "NOT_PERMITTED"),
        "anonymous": ([row(code, YEAR, tax_paid="1")], on_behalf(""), "NOT_PERMITTED"),
    }
    for case, (rows, metadata, why) in refusals.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(evaluation.stub, rows, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, case
        assert reason(refused.value) == why, case
    with pytest.raises(grpc.aio.AioRpcError) as nobody:
        await submit(evaluation.stub, [row(code, YEAR, tax_paid="1")], metadata=[])
    assert nobody.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A CSV naming another department is refused before the file is read.
    with pytest.raises(grpc.aio.AioRpcError) as csv_other:
        await evaluation.stub.UploadIndicatorCsv(pb.UploadIndicatorCsvRequest(
            idempotency_key=key(), content=b"not a csv", source_department=STATS), metadata=auth(TAX_KEY))
    assert csv_other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await _values(evaluation, code) == []

    # Naming itself, or no department, records the values under its own; so does its user through the gateway.
    named = await submit(evaluation.stub, [row(code, YEAR, source=TAX, kwh="1000")], metadata=auth(TAX_KEY))
    through_gateway = await submit(evaluation.stub, [row(code, 2025, kwh="1200")],
                                   metadata=on_behalf(f"agency:{TAX}/key:7", "data_provider"))
    assert named.source_department == through_gateway.source_department == TAX
    assert {v.source_department for v in await _values(evaluation, code)} == {TAX}
    assert {v.source_department for v in await _values(evaluation, code, 2025)} == {TAX}
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await submit(evaluation.stub, [], metadata=TAX_AGENCY)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rows" in field_violations(empty.value)


async def test_submission_replays_by_idempotency_key(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    submission_key = key()
    first = await submit(evaluation.stub, [row(code, YEAR, submission_key, tax_paid="100")], metadata=auth(TAX_KEY))
    again = await submit(evaluation.stub, [row(code, YEAR, submission_key, tax_paid="100")], metadata=auth(TAX_KEY))
    assert again.submission_id == first.submission_id
    with pytest.raises(grpc.aio.AioRpcError) as changed:
        await submit(evaluation.stub, [row(code, YEAR, submission_key, tax_paid="999")], metadata=auth(TAX_KEY))
    assert changed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(changed.value) == "IDEMPOTENCY_KEY_REUSED"
    # Another department with the same key and rows gets no replay of this department's report.
    with pytest.raises(grpc.aio.AioRpcError) as other_department:
        await submit(evaluation.stub, [row(code, YEAR, submission_key, tax_paid="100")], metadata=auth(STATS_KEY))
    assert reason(other_department.value) == "IDEMPOTENCY_KEY_REUSED"
    # Keys are unique per service across operations.
    with pytest.raises(grpc.aio.AioRpcError) as other_operation:
        await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=submission_key, jurisdiction="330100",
                                                          year=YEAR), metadata=EVALUATOR)
    assert reason(other_operation.value) == "IDEMPOTENCY_KEY_REUSED"
    assert [v.value for v in await _values(evaluation, code)] == ["100"]


async def test_csv_upload_reports_file_lines(registry, evaluation):
    first, second = await register_enterprises(registry.stub, 2)
    content = ("\ufeffcredit_code,year,tax_paid,land_mu,veto.V_ENV_RED\n"
               f"{first},{YEAR},88.5,12,0\n"
               f"{second},{YEAR},-5,-1,\n"
               "\n"
               f"{UNKNOWN},{YEAR},3,,\n").encode()
    response = await evaluation.stub.UploadIndicatorCsv(pb.UploadIndicatorCsvRequest(
        idempotency_key=key(), content=content, source_department=TAX), metadata=auth(TAX_KEY))
    report = response.report
    assert (report.rows_accepted, report.rows_refused, report.values_recorded) == (1, 2, 3)
    outcomes = {r.row_number: r for r in report.rows}
    assert set(outcomes) == {2, 3, 5}  # lines of the file; the blank line 4 is skipped
    assert _errors(outcomes[3]) == {("land_mu", "negative_value")}  # a negative tax (refunds) is allowed
    assert _errors(outcomes[5]) == {("credit_code", "unknown_credit_code")}
    assert {v.field: v.value for v in await _values(evaluation, first)} == {
        "tax_paid": "88.5", "land_mu": "12", "veto.V_ENV_RED": "0"}
    for bad, field in ((b"", "content"), (b"code,year\n1,2\n", "content"), (b"\xff\xfe", "content")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await evaluation.stub.UploadIndicatorCsv(pb.UploadIndicatorCsvRequest(
                idempotency_key=key(), content=bad), metadata=TAX_AGENCY)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(refused.value)


async def test_enterprises_registered_after_start_are_matched(registry, evaluation):
    """Registered after the backfill: known through the consumer, or read through from the registry."""
    (code,) = await register_enterprises(registry.stub, 1, division="330108")
    report = await submit(evaluation.stub, [row(code, YEAR, tax_paid="1")])
    assert report.rows_accepted == 1
