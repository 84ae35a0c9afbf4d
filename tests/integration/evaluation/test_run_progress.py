"""A run is on record as running while it works and reports how far it is through GetRun and ListRuns.

The engine is the real one, wrapped so that it holds after its first pool until the test has looked: the
test waits for the run to reach that point, never for time to pass."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.registry.v1 import registry_pb2 as rpb

from services.evaluation.domain import input_digest
from services.evaluation.domain.decided import decide_run
from services.evaluation.domain.snapshot import load_inputs
from services.evaluation.policies import load_bundled_policy
from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    evaluation_running,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import reason
from tests.support.services import SERVICE_KEY


class HeldAfterFirstPool:
    """The real engine, held after its first pool until released."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()

    def __call__(self, policy, records, prior, progress):
        def listen(step):
            progress(step)
            if step.pools_done == 1 and not self.reached.is_set():
                self.reached.set()
                self.release.wait(timeout=120)

        return decide_run(policy, records, prior, listen)


async def _dashboard_card(address: str) -> list[dict]:
    from yaosu.evaluation.v1 import evaluation_pb2_grpc

    from services.common.grpc_client import open_channel
    from services.gateway.clients import ServiceClients
    from services.gateway.identity import Role, User
    from services.gateway.portal.i18n import translator
    from services.gateway.portal.routes import runs_in_progress

    channel = open_channel(address, api_key=SERVICE_KEY)
    try:
        clients = ServiceClients(None, None, evaluation_pb2_grpc.EvaluationServiceStub(channel))
        return await runs_in_progress(clients, User(Role.REGULATOR, "regulator", "regulator"), translator("zh"))
    finally:
        await channel.close()


async def _snapshot(database_url: str, run_id: str) -> bytes:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text("SELECT snapshot FROM run_inputs WHERE run_id = :run_id"),
                                             {"run_id": run_id})).scalar_one()
    finally:
        await engine.dispose()


async def _until(condition, what: str, attempts: int = 600):
    """Poll until the service shows `condition` (each poll is an RPC; bounded, no assertion on time)."""
    for _ in range(attempts):
        if (seen := await condition()) is not None:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {what}")


async def test_a_run_reports_its_progress_while_it_works(database_url, nats_server, registry):
    engine = HeldAfterFirstPool()
    async with evaluation_running(database_url, nats_server.url, registry.address, evaluate=engine) as evaluation:
        above = await register_enterprises(registry.stub, 6)
        below = await register_enterprises(registry.stub, 4, size=rpb.SIZE_CLASS_BELOW, land="8")
        await submit(evaluation.stub, [row(code, 2024, **firm_values(i)) for i, code in enumerate(above)]
                     + [row(code, 2024, **firm_values(i, above=False)) for i, code in enumerate(below)])
        async def start_run():
            return await evaluation.stub.StartRun(pb.StartRunRequest(
                idempotency_key=key(), jurisdiction="330106", year=2024), metadata=EVALUATOR, timeout=180)

        start = asyncio.create_task(start_run())
        assert await asyncio.to_thread(engine.reached.wait, 120)

        async def running_with_progress():
            listed = await evaluation.stub.ListRuns(pb.ListRunsRequest(status=pb.RUN_STATUS_RUNNING), metadata=READER)
            runs = [r for r in listed.runs if r.progress.pools_done == 1]
            return runs[0] if runs else None

        try:
            seen = await _until(running_with_progress, "the running run with its first pool done")
            assert (seen.status, seen.enterprises, seen.output_digest) == (pb.RUN_STATUS_RUNNING, 10, "")
            assert (seen.progress.pools_done, seen.progress.pools_total) == (1, 2)
            assert seen.progress.rows_done in (4, 6) and seen.progress.rows_total == 10  # one size class's pool
            assert not seen.HasField("completed_at")
            got = (await evaluation.stub.GetRun(pb.GetRunRequest(run_id=seen.run_id), metadata=READER)).run
            assert got.status == pb.RUN_STATUS_RUNNING and got.progress == seen.progress
            with pytest.raises(grpc.aio.AioRpcError) as early:  # nothing to publish before it is frozen
                await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=seen.run_id),
                                                 metadata=EVALUATOR)
            assert reason(early.value) == "RUN_NOT_PUBLISHABLE"
            # the regulator dashboard shows it with the same figures (the gateway's card, as the gateway calls)
            card = await _dashboard_card(evaluation.address)
            assert card == [{"run_id": seen.run_id, "percent": 100 * seen.progress.rows_done // 10,
                             "text": f"2024 年度 330106：已完成 1/2 个评价池，{seen.progress.rows_done}/10 家企业"}]
        finally:
            engine.release.set()
        done = (await start).run
        assert done.run_id == seen.run_id and done.status == pb.RUN_STATUS_COMPLETED
        assert (done.progress.pools_done, done.progress.pools_total) == (2, 2)
        assert (done.progress.rows_done, done.progress.rows_total) == (10, 10)
        again = (await evaluation.stub.GetRun(pb.GetRunRequest(run_id=done.run_id), metadata=READER)).run
        assert again == done
        # what the run evaluated is frozen beside it: it reproduces the run's input digest
        records, prior = load_inputs(await _snapshot(database_url, done.run_id))
        assert len(records) == 10 and prior is None
        assert input_digest(load_bundled_policy(), records, prior) == done.input_digest


async def test_a_run_interrupted_by_a_stop_is_removed_at_the_next_start(database_url, nats_server, registry):
    async with evaluation_running(database_url, nats_server.url, registry.address) as evaluation:
        codes = await register_enterprises(registry.stub, 3)
        await submit(evaluation.stub, [row(code, 2024, **firm_values(i)) for i, code in enumerate(codes)])
        kept = (await evaluation.stub.StartRun(pb.StartRunRequest(
            idempotency_key=key(), jurisdiction="330106", year=2024), metadata=EVALUATOR)).run
    # What a process killed mid-run leaves behind: its row, still running.
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO runs (run_id, jurisdiction, region_prefix, year, policy_ref, input_digest, "
                "output_digest, status, enterprises, class_counts, pools, rankings, prior_run_id, started_by, "
                "regrades, started_at, pools_done, pools_total, rows_done, rows_total) VALUES ('run-2024-killed', "
                "'330106', '330106', 2024, 'zj-county-default@2025.2', '', '', 'running', 3, '{}', '[]', '{}', "
                "'', 'jxj:evaluator-1', 0, CURRENT_TIMESTAMP, 0, 1, 0, 3)"))
    finally:
        await engine.dispose()
    async with evaluation_running(database_url, nats_server.url, registry.address) as evaluation:
        listed = (await evaluation.stub.ListRuns(pb.ListRunsRequest(), metadata=READER)).runs
        assert [r.run_id for r in listed] == [kept.run_id]
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await evaluation.stub.GetRun(pb.GetRunRequest(run_id="run-2024-killed"), metadata=READER)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
