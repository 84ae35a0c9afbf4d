"""Bench: a 50,000-enterprise county through the evaluation service over gRPC on SQLite.

Setup (not timed): a real registry and a NatsServer; the county is bulk-loaded into the registry's database;
the evaluation service learns it its normal way (the ListEnterprises backfill at start); the client has its
50k enterprise-year rows ready as column batches of BATCH rows.
Timed: ingestion of the 50k rows by the bulk upload (client-streaming SubmitIndicatorBatches), StartRun,
PublishRun. Ingestion is printed beside its target (issue 11: ≥ 50,000 rows/s through gRPC).

Run: PYTHONPATH=gen:. .venv/bin/python -m tests.bench.bench_evaluation_grpc
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import grpc
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.evaluation.v1 import evaluation_pb2_grpc

from services.common.db import make_engine
from services.common.gc_pause import CollectorPause
from services.common.natsd import NatsServer
from services.evaluation.app import ENGINE
from services.evaluation.application.inputs import enterprise_years
from services.evaluation.domain import columns_from_records, evaluate_bulk, run_evaluation
from services.evaluation.policies import load_bundled_policy
from services.registry.adapters.db.tables import EnterpriseRow
from services.registry.domain.credit_code import compose
from tests.integration.evaluation.support import EVALUATOR, STATS_AGENCY, evaluation_running
from tests.support.registry import registry_running

ENTERPRISES = 50_000
BATCH = 5_000  # rows per IndicatorBatch message
INGEST_TARGET = 50_000  # rows/s through gRPC
TOTAL_TARGET = 5.0  # s for the county through gRPC, ingestion included (issue 11)
COUNTY = "330110"
PARKS = [f"余杭园区{n:02d}" for n in range(12)]
INDUSTRIES = ["C1713", "C2221", "C2614", "C2927", "C3130", "C3360", "C3484", "C3670", "C3825", "C3971"]
SEED = 20240601


def county(rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for n in range(ENTERPRISES):
        above = rng.random() < 0.55
        land = rng.uniform(10, 150) if above else rng.uniform(1, 30)
        rows.append(dict(credit_code=compose("9", "1", COUNTY, f"{n + 10_000_000:08d}"), name=f"基准企业{n:05d}有限公司",
                         industry_code=rng.choice(INDUSTRIES), region_code=COUNTY, park=rng.choice(PARKS),
                         size_class="above" if above else "below", land_held_micro=int(land * 1_000_000),
                         status="active", registered_at=now))
    return rows


def indicator_rows(rng: random.Random, enterprises: list[dict]) -> list[pb.IndicatorRow]:
    rows = []
    for e in enterprises:
        land = e["land_held_micro"] / 1_000_000
        va = land * rng.lognormvariate(4.6, 0.6)
        values = {"tax_paid": f"{va * rng.lognormvariate(-1.9, 0.5):.2f}", "kwh": f"{va * rng.lognormvariate(6.8, 0.5):.0f}",
                  "sales": f"{va * 4:.2f}", "years_since_production": str(rng.randint(0, 20))}
        if e["size_class"] == "above":
            values |= {"value_added": f"{va:.2f}", "energy_tce": f"{va / rng.lognormvariate(0.9, 0.5):.2f}",
                       "pollutant_t": f"{va / rng.lognormvariate(8.3, 0.7):.4f}",
                       "avg_employees": str(max(3, int(va / rng.lognormvariate(2.8, 0.4)))),
                       "rd_expense": f"{va * 0.15 * rng.lognormvariate(-3, 0.8):.2f}",
                       "main_revenue": f"{va * 3.8:.2f}"}
        if rng.random() < 0.1:
            values["adjustment.HNTE"] = "1"
        if rng.random() < 0.005:
            values["veto.V_ENV_RED"] = "1"
        rows.append(pb.IndicatorRow(credit_code=e["credit_code"], year=2024, values=values))
    return rows


def column_batches(rows: list[pb.IndicatorRow], key: str) -> list[pb.IndicatorBatch]:
    """The same rows as the bulk upload carries them: columns of BATCH rows ("" where a row has no value)."""
    batches = []
    for start in range(0, len(rows), BATCH):
        part = rows[start:start + BATCH]
        columns: dict[str, list[str]] = {}
        for index, item in enumerate(part):
            for field, value in item.values.items():
                columns.setdefault(field, [""] * len(part))[index] = value
        batches.append(pb.IndicatorBatch(
            idempotency_key=key if not start else "", credit_codes=[r.credit_code for r in part],
            years=[r.year for r in part],
            columns=[pb.IndicatorColumn(field=field, values=cells) for field, cells in columns.items()]))
    return batches


async def _bench() -> None:
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        nats_server = NatsServer(base / "nats")
        nats_server.start()
        try:
            registry_db = f"sqlite+aiosqlite:///{base / 'registry.db'}"
            evaluation_db = f"sqlite+aiosqlite:///{base / 'evaluation.db'}"
            enterprises = county(rng)
            async with registry_running(registry_db, nats_server.url) as registry:
                engine = make_engine(registry_db)
                async with engine.begin() as connection:
                    await connection.execute(EnterpriseRow.__table__.insert(), enterprises)
                await engine.dispose()
                started = time.perf_counter()
                async with evaluation_running(evaluation_db, nats_server.url, registry.address,
                                              outbox_poll_seconds=0.5) as evaluation:
                    backfill = time.perf_counter() - started
                    rows = indicator_rows(rng, enterprises)
                    channel = grpc.aio.insecure_channel(evaluation.address, options=[
                        ("grpc.max_receive_message_length", 256 << 20)])
                    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
                    await _timed(stub, rows, enterprises, backfill)
                    await channel.close()
        finally:
            nats_server.stop()


def records_of(policy, enterprises: list[dict], rows: list[pb.IndicatorRow]) -> list:
    """The enterprise-year rows the service builds from the same enterprises and values."""
    known = [SimpleNamespace(**e, land_held_mu=str(e["land_held_micro"] / 1_000_000)) for e in enterprises]
    return enterprise_years(policy, 2024, known, {r.credit_code: dict(r.values) for r in rows})


def engine_seconds(policy, records: list) -> float:
    """The service's engine on `records` in this process, under the collector pause the service runs it with."""
    started = time.perf_counter()
    CollectorPause().run(ENGINE, policy, records, None, lambda _: None)
    return time.perf_counter() - started


async def upload(stub, rows: list[pb.IndicatorRow], timeout: float) -> tuple[pb.SubmissionReport, float]:
    """The rows by the bulk upload (SubmitIndicatorBatches, BATCH rows a message): the report and seconds."""
    batches = column_batches(rows, uuid.uuid4().hex)

    async def stream():
        for batch in batches:
            yield batch

    started = time.perf_counter()
    report = (await stub.SubmitIndicatorBatches(stream(), metadata=STATS_AGENCY, timeout=timeout)).report
    return report, time.perf_counter() - started


def _in_process(rows: list[pb.IndicatorRow], enterprises: list[dict]) -> tuple[float, float, float]:
    """The same county evaluated in this process: the reference engine, the service's engine (the same
    function the service calls: bulk decisions, pools, exact roll-ups, digests, frozen inputs) and the bulk
    core alone."""
    policy = load_bundled_policy()
    records = records_of(policy, enterprises, rows)
    started = time.perf_counter()
    run_evaluation(policy, records)
    reference = time.perf_counter() - started
    service_engine = engine_seconds(policy, records)
    started = time.perf_counter()
    evaluate_bulk(policy, columns_from_records(policy, records))
    return reference, service_engine, time.perf_counter() - started


async def _timed(stub, rows: list[pb.IndicatorRow], enterprises: list[dict], backfill: float) -> None:
    report, seconds = await upload(stub, rows, timeout=600)
    t1 = time.perf_counter()
    t0 = t1 - seconds
    run = (await stub.StartRun(pb.StartRunRequest(idempotency_key=uuid.uuid4().hex, jurisdiction=COUNTY, year=2024),
                               metadata=EVALUATOR, timeout=600)).run
    t2 = time.perf_counter()
    published = await stub.PublishRun(pb.PublishRunRequest(idempotency_key=uuid.uuid4().hex, run_id=run.run_id),
                                      metadata=EVALUATOR, timeout=600)
    t3 = time.perf_counter()
    assert report.rows_accepted == ENTERPRISES, (report.rows_accepted, report.rows_refused)
    assert run.enterprises == ENTERPRISES
    counts = {c.grade: c.count for c in run.class_counts}
    rate = ENTERPRISES / (t1 - t0)
    verdict = "met" if rate >= INGEST_TARGET else f"not met: {INGEST_TARGET / rate:.1f}× too slow"
    print(f"evaluation.grpc.50k.ingest  {rate:,.0f} rows/s  (target ≥ {INGEST_TARGET:,} rows/s: {verdict}; "
          f"{ENTERPRISES} rows in {t1 - t0:.2f} s by SubmitIndicatorBatches, {BATCH} rows a batch, "
          f"{report.values_recorded} values)")
    total = t3 - t0
    verdict = "met" if total <= TOTAL_TARGET else f"not met: {total / TOTAL_TARGET:.1f}× the target"
    print(f"evaluation.grpc.50k  {total:.2f} s  (target ≤ {TOTAL_TARGET:.0f} s: {verdict}; ingest {t1 - t0:.2f} s · "
          f"{rate:,.0f} rows/s · {report.values_recorded} values; run {t2 - t1:.2f} s; publish {t3 - t2:.2f} s, "
          f"{published.classes_changed} classified events)")
    reference, service_engine, bulk = _in_process(rows, enterprises)
    print(f"evaluation.inprocess.50k  same rows in this process: the service's engine {service_engine:.2f} s "
          f"(bulk core {bulk:.2f} s, columns included; reference engine {reference:.2f} s); "
          f"the service's run took {t2 - t1:.2f} s")
    print(f"evaluation.grpc.50k.classes  {counts}  (start-up backfill of {ENTERPRISES} enterprises: {backfill:.2f} s)")


def main() -> None:
    asyncio.run(_bench())


if __name__ == "__main__":
    main()
