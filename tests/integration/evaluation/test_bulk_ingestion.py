"""The bulk upload (SubmitIndicatorBatches): rows in column batches, checked row by row exactly as the
row-by-row stream checks them (the same reasons and messages), answered with the refused rows only,
recorded in one transaction, replayed by its key whatever the batching; malformed batches are refused whole.
An adjustment fact must suit the firm's size class under the reference policy."""

from __future__ import annotations

import grpc
import pytest
import yaml
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.registry.v1 import registry_pb2 as rpb

from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    STATS,
    STATS_AGENCY,
    TAX_AGENCY,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations, reason

YEAR = 2024
UNKNOWN = "91330106MA00000000"  # well-formed, never registered


def batch(rows: list[tuple[str, int, dict[str, str]]], *, submission_key: str = "", source: str = "",
          sources: list[str] | None = None, order: list[str] | None = None) -> pb.IndicatorBatch:
    """Rows (code, year, values) as one column batch; `order` fixes the column order."""
    fields = order or list(dict.fromkeys(field for _, _, values in rows for field in values))
    return pb.IndicatorBatch(
        idempotency_key=submission_key, source_department=source, credit_codes=[code for code, _, _ in rows],
        years=[year for _, year, _ in rows], source_departments=sources or [],
        columns=[pb.IndicatorColumn(field=field, values=[values.get(field, "") for _, _, values in rows])
                 for field in fields])


async def send(evaluation, batches: list[pb.IndicatorBatch], metadata=STATS_AGENCY) -> pb.SubmissionReport:
    async def stream():
        for item in batches:
            yield item

    return (await evaluation.stub.SubmitIndicatorBatches(stream(), metadata=metadata, timeout=120)).report


async def _values(evaluation, code: str, year: int = YEAR) -> list[pb.IndicatorValue]:
    return list((await evaluation.stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(
        credit_code=code, year=year), metadata=READER)).values)


def _refusals(report: pb.SubmissionReport) -> dict[int, list[tuple[str, str, str]]]:
    # Sorted within a row: a map's fields (IndicatorRow.values) arrive in no fixed order, columns in theirs.
    return {r.row_number: sorted((e.field, e.reason, e.message) for e in r.errors)
            for r in report.rows if r.outcome == pb.ROW_OUTCOME_REFUSED}


async def test_batches_are_checked_row_by_row_exactly_as_rows_are(registry, evaluation):
    good, other = await register_enterprises(registry.stub, 2)
    rows = [
        (good, YEAR, {"tax_paid": "500", "land_mu": "25"}),                    # 1 accepted
        (UNKNOWN, YEAR, {"tax_paid": "10"}),                                   # 2 unknown credit code
        (other, YEAR, {"tax_paid": "10", "land_mu": "-3"}),                    # 3 negative land
        (other, YEAR, {"rd_expense": "12"}),                                   # 4 missing denominator
        (good, YEAR, {"tax_paid": "501"}),                                     # 5 duplicate of row 1, next batch
        (other, YEAR, {"value_added": "abc", "bonus_points": "3"}),            # 6 not a number, unknown field
        (other, YEAR, {"veto.NOT_A_RULE": "1"}),                               # 7 unknown rule id
        (other, 1999, {"tax_paid": "1"}),                                      # 8 bad year
        (other, YEAR, {}),                                                     # 9 no values
        ("91330106ma2aaaaa01", YEAR, {"kwh": " 1,200.50 "}),                   # 10 malformed code
        (good, YEAR, {"kwh": "1,200.50", "sales": "0007", "years_since_production": "07",
                      "veto.V_ENV_RED": "是", "adjustment.HNTE": "1"}),         # 11 accepted, normalised
    ]
    by_rows = await submit(evaluation.stub, [row(code, year, **values) for code, year, values in rows])
    by_batches = await send(evaluation, [batch(rows[:4], submission_key=key()), batch(rows[4:])])

    assert by_batches.refused_only and not by_rows.refused_only
    assert [r.row_number for r in by_batches.rows] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert _refusals(by_batches) == _refusals(by_rows)
    assert (by_batches.rows_accepted, by_batches.rows_refused, by_batches.values_recorded) == \
        (by_rows.rows_accepted, by_rows.rows_refused, by_rows.values_recorded) == (2, 9, 7)
    assert "row 1 of this submission" in _refusals(by_batches)[5][0][2]
    recorded = {(v.field, v.value, v.submission_id) for v in await _values(evaluation, good)}
    assert {(f, v) for f, v, s in recorded if s == by_batches.submission_id} == {
        ("tax_paid", "500"), ("land_mu", "25"), ("kwh", "1200.50"), ("sales", "7"),
        ("years_since_production", "7"), ("veto.V_ENV_RED", "1"), ("adjustment.HNTE", "1")}
    assert await _values(evaluation, other) == []  # refused rows changed nothing


async def test_the_same_rows_in_other_batches_replay_the_first_answer(registry, evaluation):
    first, second = await register_enterprises(registry.stub, 2)
    rows = [(first, YEAR, {"tax_paid": "100", "kwh": "5000"}), (second, YEAR, {"tax_paid": "90"}),
            (first, 2025, {"kwh": "5100"})]
    submission_key = key()
    answer = await send(evaluation, [batch(rows, submission_key=submission_key)])
    assert (answer.rows_accepted, answer.rows_refused, list(answer.rows)) == (3, 0, [])
    # Cut differently, columns in another order, the key repeated on a later batch: the same request.
    again = await send(evaluation, [batch(rows[:1], submission_key=submission_key, order=["kwh", "tax_paid"]),
                                    batch(rows[1:], submission_key=submission_key)])
    assert again == answer
    with pytest.raises(grpc.aio.AioRpcError) as changed:
        await send(evaluation, [batch([(first, YEAR, {"tax_paid": "101", "kwh": "5000"}), *rows[1:]],
                                      submission_key=submission_key)])
    assert reason(changed.value) == "IDEMPOTENCY_KEY_REUSED"
    assert [(v.field, v.value, v.submission_id) for v in await _values(evaluation, first)] == [
        ("kwh", "5000", answer.submission_id), ("tax_paid", "100", answer.submission_id)]


async def test_rows_name_their_department_only_as_the_caller_may(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    own = await send(evaluation, [batch([(code, YEAR, {"tax_paid": "1"}), (code, 2025, {"tax_paid": "2"})],
                                        sources=[STATS, ""])])
    assert own.source_department == STATS and own.rows_accepted == 2
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await send(evaluation, [batch([(code, 2023, {"kwh": "1"})]),
                                batch([(code, 2023, {"tax_paid": "1"})], sources=["AG-TEST-SW"])])
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason(other.value) == "NOT_OWNER"
    with pytest.raises(grpc.aio.AioRpcError) as not_provider:
        await send(evaluation, [batch([(code, 2023, {"kwh": "1"})])], metadata=EVALUATOR)
    assert reason(not_provider.value) == "NOT_PERMITTED"
    assert await _values(evaluation, code, 2023) == []


async def test_malformed_batches_are_refused_whole(registry, evaluation):
    (code,) = await register_enterprises(registry.stub, 1)
    fine = batch([(code, YEAR, {"tax_paid": "1"})], submission_key=key())
    short = pb.IndicatorBatch(credit_codes=[code, code], years=[YEAR, 2025],
                              columns=[pb.IndicatorColumn(field="kwh", values=["1"])])
    twice = pb.IndicatorBatch(credit_codes=[code], years=[YEAR], columns=[
        pb.IndicatorColumn(field="kwh", values=["1"]), pb.IndicatorColumn(field="kwh", values=["2"])])
    no_years = pb.IndicatorBatch(credit_codes=[code], years=[YEAR], source_departments=[STATS, STATS])
    cases = {
        "a column shorter than the batch": ([fine, short], "batches[1].columns[0].values"),
        "a field given two columns": ([twice], "batches[0].columns[1].field"),
        "years and sources not one per row": ([no_years], "batches[0].source_departments"),
        "a later batch naming another submission": ([fine, batch([(code, 2025, {"kwh": "1"})],
                                                                 submission_key="another")],
                                                    "batches[1].idempotency_key"),
        "no batch at all": ([], "batches"),
        "no row at all": ([pb.IndicatorBatch(idempotency_key=key())], "rows"),
    }
    for case, (batches, field) in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(evaluation, batches)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
        assert field in field_violations(refused.value), (case, field_violations(refused.value))
    assert await _values(evaluation, code) == [] and await _values(evaluation, code, 2025) == []


async def test_an_adjustment_fact_must_suit_the_firms_size_class(registry, evaluation):
    (above,) = await register_enterprises(registry.stub, 1)
    (below,) = await register_enterprises(registry.stub, 1, size=rpb.SIZE_CLASS_BELOW)
    # The rental deduction (Wenling) has a schedule for both size classes: a count of tenants is accepted
    # from either, and recorded as the count.
    rent = await send(evaluation, [batch([(above, YEAR, {"adjustment.RENT": "1"}),
                                          (below, YEAR, {"adjustment.RENT": "2"})])], metadata=TAX_AGENCY)
    assert (rent.rows_accepted, rent.rows_refused) == (2, 0)
    # A policy version whose item is scheduled for 规下 firms only becomes the reference.
    document = yaml.safe_load((await evaluation.stub.GetPolicy(pb.GetPolicyRequest(
        policy_ref="zj-county-default"), metadata=READER)).document)
    document["version"] = "2026.1"
    document["adjustments"]["items"].append({"id": "SHARED_PLANT", "desc": "共用厂房 (规下)",
                                             "schedule": {"below_size": [-3, -2]}})
    await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(
        idempotency_key=key(), document=yaml.safe_dump(document, allow_unicode=True)), metadata=EVALUATOR)
    rows = [(above, YEAR, {"adjustment.SHARED_PLANT": "1", "kwh": "10"}),   # 1 not for a 规上 firm
            (below, YEAR, {"adjustment.SHARED_PLANT": "1"}),                # 2 accepted
            (above, 2025, {"adjustment.SHARED_PLANT": "0"})]                # 3 no fact: accepted
    for report in (await send(evaluation, [batch(rows)]),
                   await submit(evaluation.stub, [row(code, year, **values) for code, year, values in rows])):
        assert (report.rows_accepted, report.rows_refused) == (2, 1)
        (refused,) = [r for r in report.rows if r.outcome == pb.ROW_OUTCOME_REFUSED]
        (error,) = refused.errors
        assert (refused.row_number, error.field, error.reason) == (
            1, "adjustment.SHARED_PLANT", "adjustment_not_for_size_class")
        assert "SHARED_PLANT" in error.message and "规上 (above_size)" in error.message
        assert "zj-county-default@2026.1" in error.message and "规下 (below_size)" in error.message
    assert {v.field for v in await _values(evaluation, above)} == {"adjustment.RENT"}
    assert {(v.field, v.value) for v in await _values(evaluation, below)} >= {("adjustment.SHARED_PLANT", "1")}
