"""Ledger transfers per second through gRPC, committed and acknowledged, from 64 concurrent clients, on
SQLite and on PostgreSQL (when one answers on 127.0.0.1:5432; BENCH_POSTGRES_URL names another), beside
the echo floor at 64 clients. Targets (issue 13): ≥ 40 % of the floor, p99 ≤ 50 ms.

The registry runs as deployed (`python -m services.registry`, its own process); the clients run in this
process on one grpc.aio channel, as the floor's do. Each transfer moves 1.5 units between two of 64 funded
accounts of one instrument, each with its postings, outbox event, audit entry and idempotency record.

    make bench BENCH_ARGS=ledger
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from pathlib import Path

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.natsd import NatsServer
from services.registry.domain.credit_code import compose
from tests.bench.floors import echo_floor
from tests.bench.harness import CALL_TIMEOUT, EngineWatch, closed_loop, grpc_outcome, judge, registry_env, service
from tests.support.services import ADMIN_KEY, ISSUER_KEY, TRADING_KEY, bearer

CLIENTS = 64
ACCOUNTS = 64
MIN_SHARE, MAX_P99 = 40.0, 50.0
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

    async def account(n: int) -> str:
        code = compose("9", "1", "330106", f"{n + 10000000:08d}")
        await stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=f"bench-e{n}", enterprise=pb.Enterprise(
            credit_code=code, name=f"基准企业{n}", industry_code="C3484", region_code="330106",
            size_class=pb.SIZE_CLASS_ABOVE, land_held=common_pb2.Quantity(value="10", unit="亩"))), metadata=ADMIN)
        opened = (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=f"bench-a{n}", holder=code,
                                                               instrument=INSTRUMENT), metadata=TRADING)).account
        await stub.Issue(pb.IssueRequest(idempotency_key=f"bench-iss{n}", issuer_agency_id=ISSUER_AGENCY,
                                         to_account_id=opened.account_id,
                                         quantity=common_pb2.Quantity(value="1000000")), metadata=ISSUER)
        return opened.account_id

    return list(await asyncio.gather(*(account(n) for n in range(ACCOUNTS))))


async def _bench(label: str, database_url: str, nats_url: str, folder: Path) -> None:
    floor = await echo_floor(CLIENTS)
    async with service("registry", registry_env(database_url, nats_url), folder) as registry:
        async with grpc.aio.insecure_channel(registry.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            accounts = await _setup(stub)

            def transfer(c: int, n: int):
                source = accounts[(c + n * 7) % ACCOUNTS]
                target = accounts[(c + n * 7 + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS]
                return grpc_outcome(stub.Transfer(pb.TransferRequest(
                    idempotency_key=uuid.uuid4().hex, legs=[pb.TransferLeg(
                        from_account_id=source, to_account_id=target, quantity=common_pb2.Quantity(value="1.5"))]),
                    metadata=TRADING, timeout=CALL_TIMEOUT))

            watch = EngineWatch(registry=registry.metrics_port)
            await watch.start()
            measured = await closed_loop(f"ledger transfers gRPC {CLIENTS} clients {label}", CLIENTS, transfer)
            judge(measured.label, measured, floor, min_share=MIN_SHARE, max_p99=MAX_P99)
            await watch.report()


def _postgres_url() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    host, _, port = url.split("@", 1)[-1].split("/", 1)[0].partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1):
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
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        nats = NatsServer(folder / "nats")
        nats.start()
        try:
            await _bench("SQLite", f"sqlite+aiosqlite:///{folder}/registry.db", nats.url, folder)
            pg = _postgres_url()
            if pg:
                name = await _create_pg_database(pg)
                try:
                    await _bench("PostgreSQL", pg.rsplit("/", 1)[0] + "/" + name, nats.url, folder)
                finally:
                    await _drop_pg_database(pg, name)
            else:
                print("   ledger transfers gRPC PostgreSQL: skipped, no PostgreSQL on 127.0.0.1:5432", flush=True)
        finally:
            nats.stop()


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
