"""Who may do what on the evaluation service (services/evaluation/authorization.yaml), over the real wire:
the evaluating agency runs the evaluation, data providers submit as themselves, an administrator does no
business acts, a regulator reads and acts on nothing, an enterprise reads only its own (another's answers
exactly as a missing one), and only trading's service key asks for eligibility on its behalf."""

from __future__ import annotations

import grpc
import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import (
    ADMIN,
    EVALUATOR,
    EVALUATOR_AGENCY,
    REGULATOR,
    SECOND_EVALUATOR,
    TAX_AGENCY,
    TRADING,
    enterprise,
    firm_values,
    key,
    new_credit_code,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import reason
from tests.support.services import EVALUATION_KEY, REGISTRY_KEY, bearer, on_behalf

YEAR = 2024
ANONYMOUS = on_behalf("")  # the gateway's delegate key naming no user: a portal visitor


async def _published_run(registry, evaluation, firms: int = 20) -> tuple[list[str], pb.Run]:
    codes = await register_enterprises(registry.stub, firms)
    await submit(evaluation.stub, [row(code, YEAR, **firm_values(i)) for i, code in enumerate(codes)])
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=YEAR), metadata=EVALUATOR)).run
    await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                     metadata=EVALUATOR)
    return codes, run


async def _refused(call, request, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request, metadata=metadata)
    return refused.value


async def _submit_refused(evaluation, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit(evaluation.stub, [row(new_credit_code(), YEAR, tax_paid="1")], metadata=metadata)
    return refused.value


def _acts(run_id: str, credit_code: str) -> list[tuple[str, object]]:
    """Every business act of the service, with a request that would otherwise be valid."""
    return [
        ("PublishPolicy", pb.PublishPolicyRequest(idempotency_key=key(), document="policy_id: x")),
        ("UploadIndicatorCsv", pb.UploadIndicatorCsvRequest(idempotency_key=key(),
                                                             content=f"credit_code,year,kwh\n{credit_code},2024,5\n"
                                                             .encode())),
        ("StartRun", pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106", year=YEAR)),
        ("PublishRun", pb.PublishRunRequest(idempotency_key=key(), run_id=run_id)),
        ("RegradeEnterprise", pb.RegradeEnterpriseRequest(idempotency_key=key(), run_id=run_id,
                                                          credit_code=credit_code, to_grade="C", reason="复核",
                                                          evidence_ref="doc-1")),
        ("ApproveRegrade", pb.ApproveRegradeRequest(idempotency_key=key(), regrade_id="rg-0")),
    ]


async def test_admin_and_regulator_do_no_business_acts_and_the_regulator_reads(registry, evaluation):
    codes, run = await _published_run(registry, evaluation)
    target = codes[0]
    for who, metadata in (("admin", ADMIN), ("regulator", REGULATOR)):
        for method, request in _acts(run.run_id, target):
            refused = await _refused(getattr(evaluation.stub, method), request, metadata)
            assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, (who, method)
            assert reason(refused) == "NOT_PERMITTED", (who, method)
        assert (await _submit_refused(evaluation, metadata)).code() == grpc.StatusCode.PERMISSION_DENIED, who
    # Nothing changed: still one run, published, with no regrades.
    runs = (await evaluation.stub.ListRuns(pb.ListRunsRequest(), metadata=ADMIN)).runs
    assert [(r.run_id, r.status, r.regrades) for r in runs] == [(run.run_id, pb.RUN_STATUS_PUBLISHED, 0)]

    # A regulator reads everything it is entitled to.
    stub = evaluation.stub
    result = (await stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=target),
                                             metadata=REGULATOR)).result
    assert result.run_id == run.run_id and result.final_grade
    assert (await stub.ListResults(pb.ListResultsRequest(run_id=run.run_id), metadata=REGULATOR)).results
    assert (await stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id), metadata=REGULATOR)).rollups
    assert (await stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(credit_code=target, year=YEAR),
                                          metadata=REGULATOR)).values
    assert (await stub.GetEnterpriseReport(pb.GetEnterpriseReportRequest(credit_code=target),
                                           metadata=REGULATOR)).content
    assert (await stub.CheckEligibility(pb.CheckEligibilityRequest(credit_code=target,
                                                                   sale_kind="new_industrial_land"),
                                        metadata=REGULATOR)).run_id == run.run_id
    assert (await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=REGULATOR)).intact
    # An administrator sees runs and the journal, not an enterprise's result.
    assert (await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=ADMIN)).intact
    denied = await _refused(stub.GetEnterpriseResult, pb.GetEnterpriseResultRequest(credit_code=target), ADMIN)
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_only_the_evaluating_agency_runs_and_a_data_provider_only_submits(registry, evaluation):
    codes = await register_enterprises(registry.stub, 3)
    await submit(evaluation.stub, [row(code, YEAR, **firm_values(i)) for i, code in enumerate(codes)],
                 metadata=TAX_AGENCY)
    for method, request in _acts("run-x", codes[0]):
        if method == "UploadIndicatorCsv":
            continue  # a data provider's own act
        refused = await _refused(getattr(evaluation.stub, method), request, TAX_AGENCY)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, method
    # The evaluating agency's users through the gateway act as the agency's key does.
    agency_user = on_behalf(f"agency:{EVALUATOR_AGENCY}/key:3", "evaluator")
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=YEAR), metadata=agency_user)).run
    assert run.started_by == f"gateway/agency:{EVALUATOR_AGENCY}/key:3"
    # The same agency without the evaluator role (as the registry records it) may not.
    without_role = on_behalf(f"agency:{EVALUATOR_AGENCY}/key:4", "data_provider")
    refused = await _refused(evaluation.stub.PublishRun, pb.PublishRunRequest(idempotency_key=key(),
                                                                             run_id=run.run_id), without_role)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    published = await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                                 metadata=EVALUATOR)
    assert published.run.status == pb.RUN_STATUS_PUBLISHED


async def test_a_regrade_needs_two_different_principals_of_an_evaluating_agency(registry, evaluation):
    codes, run = await _published_run(registry, evaluation)
    target = codes[0]
    first_user = on_behalf(f"agency:{EVALUATOR_AGENCY}/key:3", "evaluator")
    second_user = on_behalf(f"agency:{EVALUATOR_AGENCY}/key:5", "evaluator")
    proposal = (await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
        idempotency_key=key(), run_id=run.run_id, credit_code=target, to_grade="C", reason="复核",
        evidence_ref="复核意见书 2025-018"), metadata=first_user)).regrade
    approve = pb.ApproveRegradeRequest(idempotency_key=key(), regrade_id=proposal.regrade_id)
    same = await _refused(evaluation.stub.ApproveRegrade, approve, first_user)
    assert same.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(same) == "SECOND_APPROVER_REQUIRED"
    for who, metadata in (("data provider", TAX_AGENCY), ("regulator", REGULATOR), ("admin", ADMIN),
                          ("trading", TRADING), ("enterprise", enterprise(target))):
        refused = await _refused(evaluation.stub.ApproveRegrade, pb.ApproveRegradeRequest(
            idempotency_key=key(), regrade_id=proposal.regrade_id), metadata)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, who
    unchanged = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=target),
                                                           metadata=REGULATOR)).result
    assert unchanged.final_grade == "D"
    approved = (await evaluation.stub.ApproveRegrade(approve, metadata=second_user)).regrade
    assert approved.status == pb.REGRADE_STATUS_APPLIED
    assert approved.proposed_by != approved.approved_by == f"gateway/agency:{EVALUATOR_AGENCY}/key:5"

    # The same with the agency's own keys: one key cannot approve what it proposed, another can.
    proposal = (await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
        idempotency_key=key(), run_id=run.run_id, credit_code=codes[1], to_grade="B", reason="复核",
        evidence_ref="doc-2"), metadata=SECOND_EVALUATOR)).regrade
    own = await _refused(evaluation.stub.ApproveRegrade, pb.ApproveRegradeRequest(
        idempotency_key=key(), regrade_id=proposal.regrade_id), SECOND_EVALUATOR)
    assert reason(own) == "SECOND_APPROVER_REQUIRED"
    applied = (await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
        idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=EVALUATOR)).regrade
    assert (applied.proposed_by, applied.approved_by) == ("jxj:evaluator-2", "jxj:evaluator-1")


async def test_an_enterprise_reads_only_its_own_and_another_answers_as_missing(registry, evaluation):
    codes, run = await _published_run(registry, evaluation)
    mine, other = codes[0], codes[1]
    never = new_credit_code()  # well-formed, never registered
    me = enterprise(mine)
    stub = evaluation.stub

    result = (await stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=mine), metadata=me)).result
    assert result.credit_code == mine and result.run_id == run.run_id
    report = await stub.GetEnterpriseReport(pb.GetEnterpriseReportRequest(credit_code=mine), metadata=me)
    assert mine in report.content.decode("utf-8")
    assert (await stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(credit_code=mine, year=YEAR),
                                          metadata=me)).values
    assert (await stub.CheckEligibility(pb.CheckEligibilityRequest(credit_code=mine, sale_kind="new_industrial_land"),
                                        metadata=me)).grade == result.final_grade

    reads = {
        "GetEnterpriseResult": lambda code: pb.GetEnterpriseResultRequest(credit_code=code),
        "GetEnterpriseResult in a run": lambda code: pb.GetEnterpriseResultRequest(credit_code=code,
                                                                                   run_id=run.run_id),
        "GetEnterpriseReport": lambda code: pb.GetEnterpriseReportRequest(credit_code=code),
        "GetIndicatorValues": lambda code: pb.GetIndicatorValuesRequest(credit_code=code, year=YEAR),
        "CheckEligibility": lambda code: pb.CheckEligibilityRequest(credit_code=code,
                                                                    sale_kind="new_industrial_land"),
    }
    for name, request in reads.items():
        call = getattr(stub, name.split()[0])
        another = await _refused(call, request(other), me)
        missing = await _refused(call, request(never), me)
        assert another.code() == missing.code() == grpc.StatusCode.NOT_FOUND, name
        # No existence oracle: another's result and a code nobody registered read alike.
        assert another.details().replace(other, "X") == missing.details().replace(never, "X"), name
        assert reason(another) == reason(missing), name

    # Lists of everybody's results are not for enterprises; roll-ups and runs are.
    listed = await _refused(stub.ListResults, pb.ListResultsRequest(run_id=run.run_id), me)
    assert listed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id), metadata=me)).rollups
    assert (await stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=me)).run.run_id == run.run_id
    # An anonymous portal visitor sees policies and roll-ups, no enterprise and no run list.
    assert (await stub.GetRollups(pb.GetRollupsRequest(run_id=run.run_id), metadata=ANONYMOUS)).rollups
    for call, request in ((stub.GetEnterpriseResult, pb.GetEnterpriseResultRequest(credit_code=mine)),
                          (stub.ListRuns, pb.ListRunsRequest())):
        assert (await _refused(call, request, ANONYMOUS)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_only_trading_asks_for_eligibility_as_a_service(registry, evaluation):
    codes, run = await _published_run(registry, evaluation)
    target = codes[-1]
    answer = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=target, sale_kind="new_industrial_land"), metadata=TRADING)
    assert answer.allowed and answer.run_id == run.run_id
    result = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=target),
                                                        metadata=TRADING)).result
    assert result.final_grade == answer.grade
    for who, metadata in (("registry", bearer(REGISTRY_KEY)), ("evaluation", bearer(EVALUATION_KEY))):
        refused = await _refused(evaluation.stub.CheckEligibility, pb.CheckEligibilityRequest(
            credit_code=target, sale_kind="new_industrial_land"), metadata)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, who
    for method, request in (("GetIndicatorValues", pb.GetIndicatorValuesRequest(credit_code=target, year=YEAR)),
                            *_acts(run.run_id, target)):
        refused = await _refused(getattr(evaluation.stub, method), request, TRADING)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, method
