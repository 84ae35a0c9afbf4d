"""Bench: 1,000,000 enterprise-years through the evaluation service (gRPC, SQLite), beside the in-process
time of the same engine on the same rows (issue 11: the service's run ≤ 3× the in-process time).

Setup (not timed): a real registry holding a city of 1,000,000 enterprises in ten districts, bulk-loaded into
its database; the evaluation service learns them its normal way (the ListEnterprises backfill at start);
their year's values go in by the bulk upload (timed and printed, not part of the run).
Timed: StartRun over the city — reading the values, the engine, storing what it decided, the inputs and the
roll-ups. Then the same rows evaluated in this process by `services.evaluation.app.ENGINE`, the function
the service calls.

Run: make bench BENCH_ARGS=evaluation_service (several minutes; ~10 GB of memory at the peak)
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.evaluation.v1 import evaluation_pb2_grpc

from services.common.db import make_engine
from services.common.natsd import NatsServer
from services.evaluation.policies import load_bundled_policy
from services.registry.adapters.db.tables import EnterpriseRow
from services.registry.domain.credit_code import compose
from tests.bench.bench_evaluation_grpc import INDUSTRIES, engine_seconds, indicator_rows, records_of, upload
from tests.integration.evaluation.support import EVALUATOR, evaluation_running
from tests.support.registry import registry_running

ENTERPRISES = int(os.environ.get("BENCH_EVALUATION_ROWS", "1000000"))
CITY = "330100"
DISTRICTS = ["330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112", "330113", "330114"]
RATIO_TARGET = 3.0  # the service's run ≤ 3× the in-process time of the same engine (issue 11)
SEED = 20240602
INSERT_CHUNK = 50_000


def city(rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for n in range(ENTERPRISES):
        above = rng.random() < 0.55
        land = rng.uniform(10, 150) if above else rng.uniform(1, 30)
        district = DISTRICTS[n % len(DISTRICTS)]
        rows.append(dict(credit_code=compose("9", "1", district, f"{n + 10_000_000:08d}"), name=f"基准企业{n:07d}有限公司",
                         industry_code=rng.choice(INDUSTRIES), region_code=district, park=f"{district}园区{n % 7}",
                         size_class="above" if above else "below", land_held_micro=int(land * 1_000_000),
                         status="active", registered_at=now))
    return rows


async def _bench() -> None:
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        nats_server = NatsServer(base / "nats")
        nats_server.start()
        try:
            registry_db = f"sqlite+aiosqlite:///{base / 'registry.db'}"
            enterprises = city(rng)
            async with registry_running(registry_db, nats_server.url) as registry:
                engine = make_engine(registry_db)
                async with engine.begin() as connection:
                    for start in range(0, len(enterprises), INSERT_CHUNK):
                        await connection.execute(EnterpriseRow.__table__.insert(),
                                                 enterprises[start:start + INSERT_CHUNK])
                await engine.dispose()
                async with evaluation_running(f"sqlite+aiosqlite:///{base / 'evaluation.db'}", nats_server.url,
                                              registry.address, outbox_poll_seconds=0.5) as evaluation:
                    channel = grpc.aio.insecure_channel(evaluation.address, options=[
                        ("grpc.max_receive_message_length", 256 << 20)])
                    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
                    await _timed(stub, rng, enterprises)
                    await channel.close()
        finally:
            nats_server.stop()


async def _timed(stub, rng: random.Random, enterprises: list[dict]) -> None:
    rows = indicator_rows(rng, enterprises)
    report, seconds = await upload(stub, rows, timeout=3600)
    t1 = time.perf_counter()
    run = (await stub.StartRun(pb.StartRunRequest(idempotency_key=uuid.uuid4().hex, jurisdiction=CITY, year=2024),
                               metadata=EVALUATOR, timeout=3600)).run
    t2 = time.perf_counter()
    assert report.rows_accepted == ENTERPRISES and run.enterprises == ENTERPRISES, (report, run.enterprises)
    policy = load_bundled_policy()
    in_process = engine_seconds(policy, records_of(policy, enterprises, rows))
    service = t2 - t1
    ratio = service / in_process
    verdict = "met" if ratio <= RATIO_TARGET else f"not met: {ratio / RATIO_TARGET:.1f}× the allowed ratio"
    print(f"evaluation.service.{ENTERPRISES // 1000}k.run  {service:.1f} s through the service = {ratio:.2f}× "
          f"the in-process {in_process:.1f} s of the same engine on the same rows (target ≤ {RATIO_TARGET:.0f}×: "
          f"{verdict}); {run.progress.pools_total} pools")
    print(f"evaluation.service.{ENTERPRISES // 1000}k.ingest  {ENTERPRISES / seconds:,.0f} rows/s "
          f"({ENTERPRISES} rows in {seconds:.1f} s by SubmitIndicatorBatches)")


def main() -> None:
    asyncio.run(_bench())


if __name__ == "__main__":
    main()
