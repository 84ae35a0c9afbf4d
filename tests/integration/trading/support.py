"""Start the trading service (in-process, controllable clock) against a real registry, and set up a
land parcel, a grantor and funded bidders in that registry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from services.trading.app import build
from services.trading.clock import Clock
from services.trading.config import TradingSettings
from tests.integration.registry.helpers import enterprise, new_credit_code
from tests.support.services import ADMIN_KEY, API_KEYS_JSON, SERVICE_KEY, running

GRANTOR = "AG-T-ZRZY"


def key() -> str:
    return uuid.uuid4().hex


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def fen(value: int) -> common_pb2.Money:
    return common_pb2.Money(fen=value, currency="CNY")


def admin() -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {ADMIN_KEY}")]


def as_user(who: str) -> list[tuple[str, str]]:
    """The gateway acting for an end user (service + delegate, x-on-behalf-of)."""
    return [("authorization", f"Bearer {SERVICE_KEY}"), ("x-on-behalf-of", who)]


@contextlib.asynccontextmanager
async def sibling_database(database_url: str, name: str) -> AsyncIterator[str]:
    """Another fresh database on the same backend as `database_url` (each service owns its database):
    a SQLite file next to it, or a new PostgreSQL database on the same server, dropped afterwards."""
    if database_url.startswith("sqlite"):
        base = database_url.rsplit("/", 1)[0]
        yield f"{base}/{name}.db"
        return
    import asyncpg

    server = database_url.rsplit("/", 1)[0]
    database = f"{database_url.rsplit('/', 1)[1]}_{name}"[:63]
    admin_dsn = os.environ.get("TEST_POSTGRES_URL", database_url).replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    try:
        yield f"{server}/{database}"
    finally:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()


@dataclass
class RunningTrading:
    host: object
    clock: Clock
    stub: trading_pb2_grpc.TradingServiceStub
    channel: grpc.aio.Channel
    metrics_port: int


def trading_settings(database_url: str, nats_url: str, registry_addr: str, **overrides) -> TradingSettings:
    values = dict(database_url=database_url, nats_url=nats_url, grpc_port=0, metrics_port=0,
                  api_keys_json=API_KEYS_JSON, service_api_key=ADMIN_KEY, registry_addr=registry_addr,
                  outbox_poll_seconds=0.05, timer_seconds=0.05, settlement_seconds=0.1,
                  settlement_max_backoff_seconds=0.5, shutdown_grace_seconds=1.0)
    values.update(overrides)
    return TradingSettings(**values)


@contextlib.asynccontextmanager
async def trading_running(database_url: str, nats_url: str, registry_addr: str,
                          **overrides) -> AsyncIterator[RunningTrading]:
    clock = Clock()
    host = build(trading_settings(database_url, nats_url, registry_addr, **overrides), clock)
    async with running(host):
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}")
        try:
            yield RunningTrading(host, clock, trading_pb2_grpc.TradingServiceStub(channel), channel,
                                 host.metrics_port)
        finally:
            await channel.close()


async def eventually(probe, timeout: float = 10.0, interval: float = 0.05):
    """Poll `probe` (async, returns a truthy value when done) until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def land_world(registry_stub, bidders: int = 3, funds_fen: int = 10_000_000_00) -> tuple[str, list[str]]:
    """A grantor, an available parcel and `bidders` enterprises with CNY; returns (resource id, codes)."""
    auth = admin()
    await registry_stub.RegisterAgency(rpb.RegisterAgencyRequest(idempotency_key=f"ag:{GRANTOR}", agency=rpb.Agency(
        agency_id=GRANTOR, name="测试自然资源局", region_code="330100", roles=[rpb.AGENCY_ROLE_GRANTOR])),
        metadata=auth)
    resource_id = f"R-330106-L{uuid.uuid4().hex[:6]}"
    await registry_stub.RegisterResource(rpb.RegisterResourceRequest(idempotency_key=key(), resource=rpb.Resource(
        resource_id=resource_id, kind="land_use_right", name="测试地块", region_code="330106",
        quantity=common_pb2.Quantity(value="50", unit="亩"), allocation_mode=rpb.ALLOCATION_MODE_MARKET,
        controller_agency_id=GRANTOR, attributes={"land_use": "工业用地", "plot_ratio_min": "1.2",
                                                    "plot_ratio_max": "2.0", "term_years": "50"})),
        metadata=auth)
    await registry_stub.TransitionResource(rpb.TransitionResourceRequest(
        idempotency_key=key(), resource_id=resource_id, to_status=rpb.RESOURCE_STATUS_AVAILABLE, reason="t"),
        metadata=auth)
    codes = []
    for _ in range(bidders):
        code = new_credit_code()
        await registry_stub.RegisterEnterprise(rpb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                             enterprise=enterprise(code)), metadata=auth)
        account = (await registry_stub.OpenAccount(rpb.OpenAccountRequest(
            idempotency_key=key(), holder=code, instrument="CNY"), metadata=auth)).account
        await registry_stub.Issue(rpb.IssueRequest(idempotency_key=key(), issuer_agency_id=GRANTOR,
                                                   to_account_id=account.account_id,
                                                   quantity=common_pb2.Quantity(value=str(funds_fen))), metadata=auth)
        codes.append(code)
    return resource_id, codes


def land_listing(resource_id: str, now: datetime, *, start=1_000_000_00, increment=10_000_00, deposit=2_000_000_0,
                 closes_in: timedelta = timedelta(hours=2)) -> pb.Listing:
    # Announced 21 days before a listing period of ≥ 10 working days that started 15 days ago (39号令).
    opens = now - timedelta(days=15)
    return pb.Listing(
        mechanism=pb.MECHANISM_LISTING, agency_id=GRANTOR, resource_id=resource_id, title="测试工业地块挂牌出让",
        quantity=common_pb2.Quantity(value="50", unit="亩"),
        rules=pb.ListingRules(start_price=fen(start), increment=fen(increment), deposit=fen(deposit),
                              countdown_seconds=300),
        eligibility=pb.Eligibility(sale_kind="new_industrial_land"),
        announce_at=ts(opens - timedelta(days=21)), bidding_opens_at=ts(opens),
        bidding_closes_at=ts(now + closes_in))


async def published_listing(stub, resource_id: str, now: datetime, reserve_fen: int, **kw) -> pb.Listing:
    created = (await stub.CreateListing(pb.CreateListingRequest(
        idempotency_key=key(), listing=land_listing(resource_id, now, **kw)), metadata=admin())).listing
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(idempotency_key=key(), listing_id=created.listing_id,
                                                             reserve_price=fen(reserve_fen)),
                                 metadata=as_user(f"agency:{GRANTOR}"))
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(),
                                                                 listing_id=created.listing_id),
                                   metadata=admin())
    return (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=created.listing_id),
                                      metadata=admin())).listing


def now_utc() -> datetime:
    return datetime.now(UTC)
