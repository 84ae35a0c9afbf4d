"""Runs on a real evaluation service fed by a real registry: frozen digests, publication, results, roll-ups,
eligibility from the latest published run."""

from __future__ import annotations

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations, reason

YEAR = 2024


async def _evaluated_county(registry, evaluation, firms: int = 25) -> list[str]:
    codes = await register_enterprises(registry.stub, firms)
    report = await submit(evaluation.stub, [row(code, YEAR, **firm_values(i)) for i, code in enumerate(codes)])
    assert report.rows_accepted == firms and report.rows_refused == 0
    return codes


async def _run(evaluation, idempotency_key: str = "", year: int = YEAR) -> pb.Run:
    response = await evaluation.stub.StartRun(pb.StartRunRequest(
        idempotency_key=idempotency_key or key(), jurisdiction="330100", year=year,
        policy_ref="zj-county-default@2025.1"), metadata=EVALUATOR, timeout=60)
    return response.run


async def test_same_inputs_give_the_same_digests_and_publication_answers_eligibility(registry, evaluation):
    codes = await _evaluated_county(registry, evaluation)
    first = await _run(evaluation)
    second = await _run(evaluation)
    assert first.run_id != second.run_id
    assert (first.input_digest, first.output_digest) == (second.input_digest, second.output_digest)
    assert len(first.input_digest) == len(first.output_digest) == 64
    assert first.status == pb.RUN_STATUS_COMPLETED and first.enterprises == 25
    assert {c.grade: c.count for c in first.class_counts} == {"A": 5, "B": 10, "C": 8, "D": 2, "T": 0}

    # Nothing is eligible before a publication.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
            credit_code=codes[0], sale_kind="new_industrial_land"), metadata=READER)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "NOT_EVALUATED"

    published = await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=first.run_id),
                                                 metadata=EVALUATOR)
    assert published.run.status == pb.RUN_STATUS_PUBLISHED and published.classes_changed == 25

    best, worst = codes[-1], codes[0]  # firm values grow with the index
    result = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=best),
                                                        metadata=READER)).result
    assert result.run_id == first.run_id and result.final_grade == "A" and result.rank_in_pool == 1
    assert result.policy_ref == "zj-county-default@2025.1"
    assert {i.indicator for i in result.indicators} == {"tax_per_mu", "va_per_mu", "va_per_energy",
                                                         "va_per_emission", "labour_prod", "rd_intensity"}
    assert all(i.benchmark and i.ratio and i.score for i in result.indicators)
    assert result.percentile_in_pool == "100" and result.pool_size == 25
    assert result.raw["land_mu"] == "20"  # the registry's land held stands in for an unreported area

    land = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=best, sale_kind="new_industrial_land"), metadata=READER)
    assert land.allowed and land.priority == 1 and land.grade == "A" and land.run_id == first.run_id
    barred = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=worst, sale_kind="new_industrial_land"), metadata=READER)
    assert (barred.allowed, barred.grade) == (False, "D")
    assert barred.rule == "differentiated_measures.new_land_supply_barred"
    energy = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=worst, sale_kind="energy_use_increment"), metadata=READER)
    assert energy.allowed and energy.condition == "only_if_intensity_reduces"
    assert energy.electricity_surcharge_yuan_per_kwh == "0.3"

    # A later publication of the same scope supersedes the first; eligibility follows the latest.
    again = await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=second.run_id),
                                             metadata=EVALUATOR)
    assert again.classes_changed == 0  # same classes: no classified events
    assert (await evaluation.stub.GetRun(pb.GetRunRequest(run_id=first.run_id), metadata=READER)).run.status == \
        pb.RUN_STATUS_SUPERSEDED
    land = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=best, sale_kind="new_industrial_land"), metadata=READER)
    assert land.run_id == second.run_id


async def test_results_lists_rollups_and_paging(registry, evaluation):
    codes = await _evaluated_county(registry, evaluation)
    run = await _run(evaluation)
    d_only = await evaluation.stub.ListResults(pb.ListResultsRequest(run_id=run.run_id, grade="D"), metadata=READER)
    assert {r.credit_code for r in d_only.results} == set(codes[:2])
    seen, token, totals = [], "", []
    while True:
        page = await evaluation.stub.ListResults(pb.ListResultsRequest(
            run_id=run.run_id, order=pb.RESULT_ORDER_TOTAL_DESC, region_code="3301",
            page=common_pb2.PageRequest(page_size=10, page_token=token)), metadata=READER)
        assert page.page.total_size == 25
        seen += [r.credit_code for r in page.results]
        totals += [float(r.total) for r in page.results]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == list(reversed(codes)) and totals == sorted(totals, reverse=True)
    by_code = await evaluation.stub.ListResults(pb.ListResultsRequest(
        run_id=run.run_id, park="紫金港科技园", industry_code="C34", size_class="above_size",
        page=common_pb2.PageRequest(page_size=500)), metadata=READER)
    assert [r.credit_code for r in by_code.results] == sorted(codes)
    none = await evaluation.stub.ListResults(pb.ListResultsRequest(run_id=run.run_id, park="别处"), metadata=READER)
    assert list(none.results) == [] and none.page.total_size == 0

    rollups = await evaluation.stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id), metadata=READER)
    dimensions = {(r.dimension, r.key): r for r in rollups.rollups}
    assert set(dimensions) == {("region", "330106"), ("park", "紫金港科技园"), ("industry", "34")}
    region = dimensions[("region", "330106")]
    assert region.firms == 25 and {c.grade: c.count for c in region.class_counts}["D"] == 2
    assert region.indicators["tax_per_mu"] and region.rank == 1 and region.class_shares["A"] == "0.2"
    assert region.land_in_c_d_mu == "200"  # 10 C/D firms on 20 亩 each
    assert dict(rollups.rankings)["region:2024"].keys == ["330106"]

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await evaluation.stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id, dimension="planet"),
                                         metadata=READER)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "dimension" in field_violations(bad.value)
    for call, request in ((evaluation.stub.GetRun, pb.GetRunRequest(run_id="run-nope")),
                          (evaluation.stub.ListResults, pb.ListResultsRequest(run_id="run-nope")),
                          (evaluation.stub.GetEnterpriseResult,
                           pb.GetEnterpriseResultRequest(credit_code=codes[0], run_id="run-nope"))):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call(request, metadata=READER)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
