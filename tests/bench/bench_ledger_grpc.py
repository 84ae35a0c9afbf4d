"""Ledger transfers per second through gRPC on SQLite (and PostgreSQL when reachable), committed and
acknowledged, from concurrent clients."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.natsd import NatsServer
from services.registry.domain.credit_code import compose
from tests.support.registry import registry_running
from tests.support.services import ADMIN_KEY, ISSUER_KEY, TRADING_KEY, bearer

CLIENTS = 32
TRANSFERS = 3000
ACCOUNTS = 64
INSTRUMENT = "energy_use_right:330100:2025"
# Each step with the key whose subject may take it: subjects by the administrator, the instrument and its
# issuance by its issuer (AG-T-ISSUER), accounts and transfers by the trading service.
ADMIN, ISSUER, TRADING = bearer(ADMIN_KEY), bearer(ISSUER_KEY), bearer(TRADING_KEY)
ISSUER_AGENCY = "AG-T-ISSUER"


async def _setup(stub: registry_pb2_grpc.RegistryServiceStub) -> list[str]:
    await stub.RegisterAgency(pb.RegisterAgencyRequest(idempotency_key="bench-ag", agency=pb.Agency(
        agency_id=ISSUER_AGENCY, name="基准发改委", region_code="330100", roles=[pb.AGENCY_ROLE_ISSUER])),
        metadata=ADMIN)
    await stub.DefineInstrument(pb.DefineInstrumentRequest(idempotency_key="bench-i", instrument=pb.Instrument(
        code=INSTRUMENT, kind="energy_use_right", unit="tce", scale=3)), metadata=ISSUER)
    accounts = []
    for n in range(ACCOUNTS):
        code = compose("9", "1", "330106", f"{n + 10000000:08d}")
        await stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=f"bench-e{n}", enterprise=pb.Enterprise(
            credit_code=code, name=f"基准企业{n}", industry_code="C3484", region_code="330106",
            size_class=pb.SIZE_CLASS_ABOVE, land_held=common_pb2.Quantity(value="10", unit="亩"))), metadata=ADMIN)
        account = (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=f"bench-a{n}", holder=code,
                                                                instrument=INSTRUMENT), metadata=TRADING)).account
        await stub.Issue(pb.IssueRequest(idempotency_key=f"bench-iss{n}", issuer_agency_id=ISSUER_AGENCY,
                                         to_account_id=account.account_id,
                                         quantity=common_pb2.Quantity(value="1000000")), metadata=ISSUER)
        accounts.append(account.account_id)
    return accounts


async def _run(stub, accounts: list[str]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(TRANSFERS))

    async def client(seed: int) -> None:
        for n in queue:
            source, target = accounts[(n * 7 + seed) % ACCOUNTS], accounts[(n * 13 + seed + 1) % ACCOUNTS]
            if source == target:
                target = accounts[(accounts.index(source) + 1) % ACCOUNTS]
            started = time.perf_counter()
            await stub.Transfer(pb.TransferRequest(idempotency_key=uuid.uuid4().hex, legs=[pb.TransferLeg(
                from_account_id=source, to_account_id=target, quantity=common_pb2.Quantity(value="1.5"))]),
                metadata=TRADING, timeout=30)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return time.perf_counter() - started, latencies


async def _bench(label: str, database_url: str, nats_url: str) -> None:
    async with registry_running(database_url, nats_url) as registry:
        channel = grpc.aio.insecure_channel(registry.address)
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        accounts = await _setup(stub)
        elapsed, latencies = await _run(stub, accounts)
        await channel.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"   registry.ledger.transfer.grpc.{label}  {TRANSFERS / elapsed:,.0f} transfers/s  "
          f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  ({CLIENTS} clients, {TRANSFERS} transfers, each one committed "
          f"with its postings, outbox event, audit entry and idempotency record)", flush=True)


def _postgres_url() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return url
    except OSError:
        return ""


async def _create_pg_database(url: str) -> str:
    import asyncpg
    name = f"yaosu_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return name


async def _drop_pg_database(url: str, name: str) -> None:
    import asyncpg
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


async def _main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        nats = NatsServer(Path(folder) / "nats")
        nats.start()
        try:
            await _bench("sqlite", f"sqlite+aiosqlite:///{folder}/registry.db", nats.url)
            pg = _postgres_url()
            if pg:
                name = await _create_pg_database(pg)
                try:
                    await _bench("postgres", pg.rsplit("/", 1)[0] + "/" + name, nats.url)
                finally:
                    await _drop_pg_database(pg, name)
            else:
                print("   registry.ledger.transfer.grpc.postgres  skipped: no PostgreSQL on 127.0.0.1:5432")
        finally:
            nats.stop()


def main() -> None:
    asyncio.run(_main())
