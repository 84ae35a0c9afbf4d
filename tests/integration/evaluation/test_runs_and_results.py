"""Runs on a real evaluation service fed by a real registry: frozen digests, publication, results, roll-ups,
eligibility from the latest published run."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.registry.v1 import registry_pb2 as rpb

from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    SECOND_EVALUATOR,
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
        policy_ref="zj-county-default@2025.2"), metadata=EVALUATOR, timeout=60)
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
    assert result.policy_ref == "zj-county-default@2025.2"
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
    # every firm is a 规上 firm of 330106: the district is the run's total; each unit has its 规上 split
    assert set(dimensions) == {("region", "330106"), ("region", "330106/above_size"), ("park", "紫金港科技园"),
                               ("park", "紫金港科技园/above_size"), ("industry", "34"), ("industry", "34/above_size")}
    assert [(r.dimension, r.key) for r in rollups.rollups][:2] == [("industry", "34"), ("industry", "34/above_size")]
    region = dimensions[("region", "330106")]
    assert region.firms == 25 and {c.grade: c.count for c in region.class_counts}["D"] == 2
    assert region.indicators["tax_per_mu"] and region.rank == 1 and region.class_shares["A"] == "0.2"
    assert region.land_in_c_d_mu == "200"  # 10 C/D firms on 20 亩 each
    assert region.sums["land_mu"] == "500" and region.peers == 1 and region.peer_group == "region:county:2024"
    assert (region.level, region.unit, region.size_class, region.parent) == ("county", "330106", "", "")
    park = dimensions[("park", "紫金港科技园")]
    assert (park.parent, park.name, park.level) == ("330106", "紫金港科技园", "park")
    split = dimensions[("region", "330106/above_size")]
    assert (split.unit, split.size_class, split.firms, split.parent) == ("330106", "above_size", 25, "")
    assert split.indicators["tax_per_mu"] == region.indicators["tax_per_mu"]
    assert dimensions[("industry", "34")].parent == "330106"
    assert dict(rollups.rankings)["region:county:2024"].keys == ["330106"]
    assert dict(rollups.rankings)["park:above_size:2024"].keys == ["紫金港科技园/above_size"]

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


async def test_a_city_run_has_a_city_total_over_its_districts_that_a_regrade_keeps_in_step(registry, evaluation):
    xihu = await register_enterprises(registry.stub, 20)
    binjiang = await register_enterprises(registry.stub, 6, division="330108", size=rpb.SIZE_CLASS_BELOW,
                                          park="高新技术产业园", industry="C2927")
    rows = [row(code, YEAR, **firm_values(i)) for i, code in enumerate(xihu)]
    rows += [row(code, YEAR, **firm_values(i, above=False)) for i, code in enumerate(binjiang)]
    assert (await submit(evaluation.stub, rows)).rows_refused == 0
    run = await _run(evaluation)

    async def units() -> dict[str, pb.Rollup]:
        reply = await evaluation.stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id, dimension="region"),
                                                 metadata=READER)
        return {r.key: r for r in reply.rollups}

    before = await units()
    assert list(before)[:3] == ["330100", "330100/above_size", "330100/below_size"]  # the total first
    total = before["330100"]
    assert (total.level, total.parent, total.firms, total.peer_group) == ("city", "", 26, "region:city:2024")
    districts = [before["330106"], before["330108"]]
    assert {d.parent for d in districts} == {"330100"} and {d.level for d in districts} == {"county"}
    for name in total.sums:
        assert Decimal(total.sums[name]) == sum((Decimal(d.sums.get(name, "0")) for d in districts), Decimal(0))
    # 亩均税收 of the city is Σ tax / Σ land over all 26 firms (20 亩 each)
    tax = sum(Decimal(firm_values(i)["tax_paid"]) for i in range(20)) + \
        sum(Decimal(firm_values(i, above=False)["tax_paid"]) for i in range(6))
    assert Decimal(total.indicators["tax_per_mu"]) == (tax / 520).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    assert before["330100/below_size"].firms == 6 and before["330108/below_size"].parent == "330100/below_size"
    assert "330108/above_size" not in before  # 滨江 has no 规上 firm here
    rankings = (await evaluation.stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id), metadata=READER)).rankings
    assert sorted(rankings["region:county:2024"].keys) == ["330106", "330108"]

    weakest = xihu[0]  # D in the 规上 pool of 西湖
    proposal = (await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
        idempotency_key=key(), run_id=run.run_id, credit_code=weakest, to_grade="C", reason="复核后调整",
        evidence_ref="复核意见书 2025-018"), metadata=EVALUATOR)).regrade
    await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
        idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=SECOND_EVALUATOR)
    after = await units()
    for unit in ("330100", "330100/above_size", "330106", "330106/above_size"):
        moved = {c.grade: c.count for c in after[unit].class_counts}
        was = {c.grade: c.count for c in before[unit].class_counts}
        assert (moved["D"], moved["C"]) == (was["D"] - 1, was["C"] + 1), unit
        assert Decimal(after[unit].land_in_c_d_mu) == Decimal(before[unit].land_in_c_d_mu)  # C and D alike
    assert after["330108"] == before["330108"] and after["330100/below_size"] == before["330100/below_size"]
