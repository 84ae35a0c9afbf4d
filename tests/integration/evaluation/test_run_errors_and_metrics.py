"""Run error paths, a tenant and T-class enterprise, and the service's business metrics."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
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


async def test_start_and_publish_refuse_what_cannot_be_done(registry, evaluation):
    with pytest.raises(grpc.aio.AioRpcError) as no_data:
        await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330100", year=2024),
                                       metadata=EVALUATOR)
    assert no_data.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(no_data.value) == "NO_DATA"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="杭州", year=1800),
                                       metadata=EVALUATOR)
    assert set(field_violations(bad.value)) == {"jurisdiction", "year"}
    with pytest.raises(grpc.aio.AioRpcError) as policy:
        await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330100", year=2024,
                                                          policy_ref="nope@1"), metadata=EVALUATOR)
    assert policy.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as reader:
        await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330100", year=2024),
                                       metadata=READER)
    assert reader.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id="run-nope"),
                                         metadata=EVALUATOR)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    codes = await register_enterprises(registry.stub, 3)
    await submit(evaluation.stub, [row(code, 2024, **firm_values(i)) for i, code in enumerate(codes)])
    start_key = key()
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=start_key, jurisdiction="330100",
                                                             year=2024), metadata=SECOND_EVALUATOR)).run
    replay = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=start_key, jurisdiction="330100",
                                                                year=2024), metadata=SECOND_EVALUATOR)).run
    assert replay == run
    publish_key = key()
    first = await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=publish_key, run_id=run.run_id),
                                             metadata=EVALUATOR)
    assert first == await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=publish_key,
                                                                          run_id=run.run_id), metadata=EVALUATOR)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                         metadata=EVALUATOR)
    assert reason(twice.value) == "RUN_NOT_PUBLISHABLE"
    listed = await evaluation.stub.ListRuns(pb.ListRunsRequest(year=2024, status=pb.RUN_STATUS_PUBLISHED),
                                            metadata=READER)
    assert [r.run_id for r in listed.runs] == [run.run_id]
    # A small pool (< 20): A is rounded down, and D comes only from hard rules, never from shares.
    assert {c.grade: c.count for c in run.class_counts} == {"A": 0, "B": 2, "C": 1, "D": 0, "T": 0}


async def test_tenants_new_firms_and_vetoes(registry, evaluation):
    codes = await register_enterprises(registry.stub, 20)
    (tenant,) = await register_enterprises(registry.stub, 1, land="0")
    (mixed,) = await register_enterprises(registry.stub, 1)
    rows = [row(code, 2024, **firm_values(i)) for i, code in enumerate(codes)]
    rows[19].values["veto.V_ENV_RED"] = "1"          # the best firm has a red environmental credit
    rows[18].values["years_since_production"] = "1"  # in production for less than two years: T
    rows.append(row(tenant, 2024, **firm_values(3)))
    rows.append(row(mixed, 2024, **firm_values(4)))
    rows[-1].values["flag.mixed_type"] = "1"         # 混合型: no policy weights yet
    await submit(evaluation.stub, rows)
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=2024), metadata=EVALUATOR)).run
    await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id), metadata=EVALUATOR)
    vetoed = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(
        credit_code=codes[19]), metadata=READER)).result
    assert (vetoed.initial_grade, vetoed.final_grade) == ("A", "D")
    assert any(f.rule_id == "V_ENV_RED" and f.kind == "veto" for f in vetoed.rules_fired)
    newcomer = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(
        credit_code=codes[18]), metadata=READER)).result
    assert (newcomer.final_grade, newcomer.managed_as) == ("T", "B")
    t_answer = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=codes[18], sale_kind="emission_increment"), metadata=READER)
    assert (t_answer.grade, t_answer.managed_as, t_answer.allowed) == ("T", "B", True)
    # a tenant without titled land is ranked on the 租赁企业 list (alone here: B by the half-up A+B share)
    tenant_result = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(
        credit_code=tenant, run_id=run.run_id), metadata=READER)).result
    assert (tenant_result.status, tenant_result.final_grade) == ("graded", "B")
    assert any(f.rule_id == "scope.tenant_list" for f in tenant_result.rules_fired)
    mixed_result = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(
        credit_code=mixed, run_id=run.run_id), metadata=READER)).result
    assert (mixed_result.status, mixed_result.final_grade) == ("out_of_scope", "")
    assert [f.rule_id for f in mixed_result.rules_fired] == ["scope.mixed_type"]
    with pytest.raises(grpc.aio.AioRpcError) as not_classed:  # set aside with its reason, not in a class
        await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
            credit_code=mixed, sale_kind="new_industrial_land"), metadata=READER)
    assert reason(not_classed.value) == "NOT_EVALUATED"
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
            credit_code="91330106MA00000000", sale_kind="new_industrial_land"), metadata=READER)
    assert reason(stranger.value) == "UNKNOWN_ENTERPRISE"
    with pytest.raises(grpc.aio.AioRpcError) as kind:
        await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
            credit_code=codes[0], sale_kind="spaceport"), metadata=READER)
    assert "sale_kind" in field_violations(kind.value)


async def test_business_metrics(registry, evaluation):
    codes = await register_enterprises(registry.stub, 2, size=rpb.SIZE_CLASS_BELOW, land="8")
    await submit(evaluation.stub, [row(code, 2024, **firm_values(i, above=False)) for i, code in enumerate(codes)]
                 + [row("91330106MA00000000", 2024, tax_paid="1")])
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=2024), metadata=EVALUATOR)).run
    await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id), metadata=EVALUATOR)
    text = urllib.request.urlopen(f"http://127.0.0.1:{evaluation.metrics_port}/metrics").read().decode()
    assert 'evaluation_rows_total{outcome="accepted",reason=""} 2.0' in text
    assert 'evaluation_rows_total{outcome="refused",reason="unknown_credit_code"} 1.0' in text
    assert 'evaluation_runs_total{result="completed"} 1.0' in text
    assert "evaluation_run_duration_seconds_count 1.0" in text
    assert 'evaluation_enterprises{grade="B",size_class="below"} 1.0' in text
    assert 'evaluation_enterprises{grade="C",size_class="below"} 1.0' in text
    assert 'evaluation_enterprises{grade="D",size_class="above"} 0.0' in text
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="SubmitIndicators",' \
           'grpc_service="yaosu.evaluation.v1.EvaluationService",grpc_type="client_stream"} 1.0' in text
