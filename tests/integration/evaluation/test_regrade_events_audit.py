"""Manual re-grading needs two different authenticated approvers and lands in the audit journal; publication
and re-grading reach a durable JetStream consumer exactly once; the journal verifies end to end."""

from __future__ import annotations

import asyncio

import grpc
import nats
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import select, update
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.common.db import make_engine
from services.common.events.envelope import parse
from services.common.natsd import NatsServer
from services.evaluation.adapters.db.tables import infrastructure
from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    SECOND_EVALUATOR,
    evaluation_running,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations, reason
from tests.support.registry import registry_running

YEAR = 2024


async def _published_run(registry, evaluation, firms: int = 20) -> tuple[list[str], pb.Run]:
    codes = await register_enterprises(registry.stub, firms)
    await submit(evaluation.stub, [row(code, YEAR, **firm_values(i)) for i, code in enumerate(codes)])
    run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=YEAR), metadata=EVALUATOR)).run
    await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id), metadata=EVALUATOR)
    return codes, run


async def _journal(database_url: str) -> list:
    engine = make_engine(database_url)
    table = infrastructure.audit
    async with engine.begin() as connection:
        rows = (await connection.execute(select(table).order_by(table.c.sequence))).all()
    await engine.dispose()
    return rows


async def test_regrade_needs_a_reason_and_a_second_different_approver(registry, evaluation):
    codes, run = await _published_run(registry, evaluation)
    target = codes[0]  # the weakest firm: D
    before = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=target),
                                                        metadata=READER)).result
    assert before.final_grade == "D"

    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
            idempotency_key=key(), run_id=run.run_id, credit_code=target, to_grade="C"), metadata=EVALUATOR)
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in field_violations(no_reason.value)
    with pytest.raises(grpc.aio.AioRpcError) as no_evidence:  # the default policy requires evidence
        await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
            idempotency_key=key(), run_id=run.run_id, credit_code=target, to_grade="C", reason="复核"),
            metadata=EVALUATOR)
    assert no_evidence.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as reader:
        await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
            idempotency_key=key(), run_id=run.run_id, credit_code=target, to_grade="C", reason="复核",
            evidence_ref="doc-1"), metadata=READER)
    assert reader.value.code() == grpc.StatusCode.PERMISSION_DENIED

    proposal = (await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
        idempotency_key=key(), run_id=run.run_id, credit_code=target, to_grade="C",
        reason="环保处罚已撤销，复核后调整", evidence_ref="复核意见书 2025-017"), metadata=EVALUATOR)).regrade
    assert proposal.status == pb.REGRADE_STATUS_PROPOSED and proposal.proposed_by == "jxj:evaluator-1"
    assert proposal.from_grade == "D"
    with pytest.raises(grpc.aio.AioRpcError) as same_person:
        await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
            idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=EVALUATOR)
    assert same_person.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(same_person.value) == "SECOND_APPROVER_REQUIRED"
    unchanged = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=target),
                                                           metadata=READER)).result
    assert unchanged.final_grade == "D"

    approved = await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
        idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=SECOND_EVALUATOR)
    assert approved.regrade.status == pb.REGRADE_STATUS_APPLIED and approved.regrade.approved_by == "jxj:evaluator-2"
    assert approved.result.final_grade == "C" and approved.result.initial_grade == "D"
    fired = approved.result.rules_fired[-1]
    assert (fired.kind, fired.from_grade, fired.to_grade) == ("manual_override", "D", "C")
    assert "jxj:evaluator-1" in fired.detail and "jxj:evaluator-2" in fired.detail
    eligibility = await evaluation.stub.CheckEligibility(pb.CheckEligibilityRequest(
        credit_code=target, sale_kind="new_industrial_land"), metadata=READER)
    assert eligibility.allowed and eligibility.grade == "C"
    updated = (await evaluation.stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=READER)).run
    assert updated.regrades == 1 and updated.output_digest == run.output_digest  # the computed run stays frozen
    assert {c.grade: c.count for c in updated.class_counts}["C"] == 8
    region = [r for r in (await evaluation.stub.GetRollups(pb.GetRollupsRequest(
        run_id=run.run_id, dimension="region"), metadata=READER)).rollups][0]
    assert {c.grade: c.count for c in region.class_counts}["D"] == 0

    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
            idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=SECOND_EVALUATOR)
    assert reason(twice.value) == "REGRADE_NOT_PENDING"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
            idempotency_key=key(), regrade_id="rg-nope"), metadata=SECOND_EVALUATOR)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    journal = await _journal(evaluation.database_url)
    actions = [(entry.action, entry.actor) for entry in journal if entry.subject == target]
    assert actions == [("regrade.propose", "jxj:evaluator-1"), ("regrade.apply", "jxj:evaluator-2")]
    assert '"first_approver":"jxj:evaluator-1"' in journal[-1].payload
    assert '"second_approver":"jxj:evaluator-2"' in journal[-1].payload
    verified = await evaluation.stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=READER)
    assert verified.intact and verified.entries_checked == len(journal)
    assert {e.action for e in journal} >= {"policy.publish", "indicators.submit", "run.complete", "run.publish"}


async def test_a_tampered_journal_is_detected(registry, evaluation):
    await _published_run(registry, evaluation)
    engine = make_engine(evaluation.database_url)
    async with engine.begin() as connection:
        await connection.execute(update(infrastructure.audit).where(infrastructure.audit.c.action == "run.publish")
                                 .values(payload='{"classes_changed":0}'))
    await engine.dispose()
    verified = await evaluation.stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=READER)
    assert not verified.intact and verified.problem == "payload does not match its digest"


@pytest.fixture
def own_nats(tmp_path):
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


async def _consume(url: str, durable: str, timeout: float = 20.0) -> list[tuple[str, str, dict]]:
    """Everything the durable holds, acknowledged; proves nothing more arrives afterwards."""
    nc = await nats.connect(url)
    subscription = await nc.jetstream().pull_subscribe_bind(durable=durable, stream="EVALUATION")
    received = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    messages = await subscription.fetch(batch=100, timeout=1)
                except NatsTimeoutError:
                    break
                for message in messages:
                    envelope, data = parse(message.data)
                    assert message.headers["Nats-Msg-Id"] == envelope.id
                    received.append((envelope.type, envelope.subject, data))
                    await message.ack_sync()
    finally:
        await subscription.unsubscribe()
        await nc.drain()
    return received


async def _wait_published(database_url: str, timeout: float = 20.0) -> None:
    engine = make_engine(database_url)
    table = infrastructure.outbox
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with engine.begin() as connection:
                    pending = (await connection.execute(
                        select(table.c.event_id).where(table.c.published_at.is_(None)))).all()
                if not pending:
                    return
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def test_publication_events_arrive_once_and_only_for_changed_classes(own_nats, tmp_path):
    nc = await nats.connect(own_nats.url)
    registry_db, evaluation_db = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("r.db", "e.db"))
    async with registry_running(registry_db, own_nats.url) as registry:
        async with evaluation_running(evaluation_db, own_nats.url, registry.address) as evaluation:
            await nc.jetstream().add_consumer("EVALUATION", ConsumerConfig(
                durable_name="test-evaluation", name="test-evaluation", filter_subject="evaluation.>",
                ack_policy=AckPolicy.EXPLICIT))
            codes, run = await _published_run(registry, evaluation, firms=20)
            second = (await evaluation.stub.StartRun(pb.StartRunRequest(
                idempotency_key=key(), jurisdiction="330106", year=YEAR), metadata=EVALUATOR)).run
            # Republishing identical classes announces the run but no class changes.
            await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=second.run_id),
                                             metadata=EVALUATOR)
            proposal = (await evaluation.stub.RegradeEnterprise(pb.RegradeEnterpriseRequest(
                idempotency_key=key(), run_id=second.run_id, credit_code=codes[-1], to_grade="B", reason="复核",
                evidence_ref="doc-9"), metadata=EVALUATOR)).regrade
            await evaluation.stub.ApproveRegrade(pb.ApproveRegradeRequest(
                idempotency_key=key(), regrade_id=proposal.regrade_id), metadata=SECOND_EVALUATOR)
            await _wait_published(evaluation_db)
    await nc.drain()
    received = await _consume(own_nats.url, "test-evaluation")
    # Each run announces its completion (StartRun) and its publication (PublishRun), once each.
    completed = [data for kind, _, data in received if kind == "yaosu.evaluation.run.completed"]
    assert [d["run_id"] for d in completed] == [run.run_id, second.run_id]
    assert completed[0]["output_digest"] == run.output_digest and completed[0]["enterprises"] == 20
    assert "class_counts" not in completed[0]  # a run under review names no classes on the bus
    published = [data for kind, _, data in received if kind == "yaosu.evaluation.run.published"]
    assert [d["run_id"] for d in published] == [run.run_id, second.run_id]
    assert published[0]["output_digest"] == run.output_digest and published[0]["classes_changed"] == 20
    assert sum(published[0]["class_counts"].values()) == 20
    assert published[1]["classes_changed"] == 0
    kinds = [kind for kind, _, _ in received]
    assert kinds.index("yaosu.evaluation.run.completed") < kinds.index("yaosu.evaluation.run.published")
    classified = [(subject, data) for kind, subject, data in received
                  if kind == "yaosu.evaluation.enterprise.classified"]
    assert len(classified) == 21
    assert sorted(subject for subject, _ in classified[:20]) == sorted(codes)
    assert all(d["previous_class"] == "" and d["reason"] == "run_published" for _, d in classified[:20])
    subject, last = classified[20]
    assert subject == codes[-1] and (last["previous_class"], last["final_class"], last["reason"]) == \
        ("A", "B", "manual_override")


async def test_registry_events_reach_the_replica_through_the_consumer(own_nats, tmp_path):
    registry_db, evaluation_db = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("r.db", "e.db"))
    async with registry_running(registry_db, own_nats.url) as registry:
        # Lookups on a miss are off: only the consumer can teach the replica about later enterprises.
        async with evaluation_running(evaluation_db, own_nats.url, registry.address,
                                      registry_lookup_limit=0) as evaluation:
            (code,) = await register_enterprises(registry.stub, 1)
            async with asyncio.timeout(20):
                while True:
                    report = await submit(evaluation.stub, [row(code, YEAR, tax_paid="1")])
                    if report.rows_accepted:
                        break
                    assert report.rows[0].errors[0].reason == "unknown_credit_code"
                    await asyncio.sleep(0.1)
            consumed = evaluation.host.infrastructure.event_metrics.consumed
            assert consumed.labels("evaluation-registry", "ack")._value.get() >= 1
