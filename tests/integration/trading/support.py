"""Start the trading service (in-process, controllable clock) against a real registry, and set up a
land parcel, a grantor and funded bidders in that registry — each act with the key whose subject may do
it: an administrator registers subjects, the grantor agency its parcels, the bank funds accounts, and
an enterprise acts only for itself (the gateway's delegate key naming it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import urllib.request
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
from tests.support.registry import deposit_cny
from tests.support.services import (
    ADMIN_KEY,
    API_KEYS_JSON,
    REGULATOR_KEY,
    TRADING_KEY,
    bearer,
    on_behalf,
    running,
)

GRANTOR = "AG-T-ZRZY"
TRADING_CENTRE = "AG-T-JYZX"
# 39号令 (services/trading/sale_policy.yaml): announced ≥ 20 days before bidding opens, a 挂牌 listing
# period of ≥ 10 working days. Tests publish with these periods and move the service clock.
ANNOUNCEMENT = timedelta(days=21)
LISTING_PERIOD = timedelta(days=15)


def key() -> str:
    return uuid.uuid4().hex


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def fen(value: int) -> common_pb2.Money:
    return common_pb2.Money(fen=value, currency="CNY")


def admin() -> list[tuple[str, str]]:
    return bearer(ADMIN_KEY)


def regulator() -> list[tuple[str, str]]:
    return bearer(REGULATOR_KEY)


def bidder(code: str) -> list[tuple[str, str]]:
    """An enterprise user through the gateway: acts for its own enterprise only."""
    return on_behalf(f"enterprise:{code}")


def agency(agency_id: str = GRANTOR, role: str = "grantor", person: str = "staff") -> list[tuple[str, str]]:
    """A user of an agency through the gateway ("agency:<id>/user:<person>": two people, two actors)."""
    return on_behalf(f"agency:{agency_id}/user:{person}", role)


def grantor(person: str = "staff") -> list[tuple[str, str]]:
    return agency(GRANTOR, "grantor", person)


def centre() -> list[tuple[str, str]]:
    """The trading centre (公共资源交易中心): the one that sees who takes part before an opening."""
    return agency(TRADING_CENTRE, "trading_centre")


def moment(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def advance_to(clock: Clock, when: datetime, extra: float = 1.0) -> None:
    """Move the service clock to just after `when` (never backwards)."""
    clock.advance(max(0.0, (when - clock.now()).total_seconds()) + extra)


def to_bidding(clock: Clock, listing: pb.Listing) -> None:
    advance_to(clock, moment(listing.bidding_opens_at))


def past_close(clock: Clock, listing: pb.Listing, extra: float = 1.0) -> None:
    advance_to(clock, moment(listing.bidding_closes_at), extra)


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
                  api_keys_json=API_KEYS_JSON, service_api_key=TRADING_KEY, registry_addr=registry_addr,
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


async def refused(call) -> grpc.aio.AioRpcError:
    """The error a refused call answers (it must be refused)."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call was not refused")


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of trading's /metrics (over HTTP, as Prometheus scrapes it); 0 when absent."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in body.splitlines():
        found = re.fullmatch(rf"{name}(?:{{(.*)}})? (\S+)", line)
        if found and dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or "")) == labels:
            return float(found.group(2))
    return 0.0


async def funded_enterprise(registry_stub, funds_fen: int) -> str:
    """A registered enterprise with a CNY account the settlement bank funded (money only enters so)."""
    code = new_credit_code()
    await registry_stub.RegisterEnterprise(rpb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                         enterprise=enterprise(code)), metadata=admin())
    account = (await registry_stub.OpenAccount(rpb.OpenAccountRequest(
        idempotency_key=key(), holder=code, instrument="CNY"), metadata=bidder(code))).account
    if funds_fen:
        await deposit_cny(registry_stub, account.account_id, funds_fen)
    return code


async def register_agency(registry_stub, agency_id: str, name: str, role: int) -> None:
    await registry_stub.RegisterAgency(rpb.RegisterAgencyRequest(idempotency_key=f"ag:{agency_id}", agency=rpb.Agency(
        agency_id=agency_id, name=name, region_code="330100", roles=[role])), metadata=admin())


async def available_parcel(registry_stub, name: str = "测试地块") -> str:
    """A 50 亩 industrial parcel of the test grantor, registered and made available; returns its id."""
    resource_id = f"R-330106-L{uuid.uuid4().hex[:6]}"
    await registry_stub.RegisterResource(rpb.RegisterResourceRequest(idempotency_key=key(), resource=rpb.Resource(
        resource_id=resource_id, kind="land_use_right", name=name, region_code="330106",
        quantity=common_pb2.Quantity(value="50", unit="亩"), allocation_mode=rpb.ALLOCATION_MODE_MARKET,
        controller_agency_id=GRANTOR, attributes={"land_use": "工业用地", "plot_ratio_min": "1.2",
                                                    "plot_ratio_max": "2.0", "term_years": "50"})),
        metadata=grantor())
    await registry_stub.TransitionResource(rpb.TransitionResourceRequest(
        idempotency_key=key(), resource_id=resource_id, to_status=rpb.RESOURCE_STATUS_AVAILABLE, reason="t"),
        metadata=grantor())
    return resource_id


async def land_world(registry_stub, bidders: int = 3, funds_fen: int = 10_000_000_00) -> tuple[str, list[str]]:
    """A grantor, an available parcel and `bidders` enterprises with CNY; returns (resource id, codes)."""
    await register_agency(registry_stub, GRANTOR, "测试自然资源局", rpb.AGENCY_ROLE_GRANTOR)
    await register_agency(registry_stub, TRADING_CENTRE, "测试公共资源交易中心", rpb.AGENCY_ROLE_TRADING_CENTRE)
    resource_id = await available_parcel(registry_stub)
    codes = [await funded_enterprise(registry_stub, funds_fen) for _ in range(bidders)]
    return resource_id, codes


async def cny(registry_stub, holder: str) -> rpb.Account | None:
    """A holder's CNY account as a regulator reads it."""
    accounts = (await registry_stub.ListAccounts(rpb.ListAccountsRequest(holder=holder, instrument="CNY"),
                                                 metadata=regulator())).accounts
    return accounts[0] if accounts else None


def land_listing(resource_id: str, now: datetime, *, start=1_000_000_00, increment=10_000_00, deposit=2_000_000_0,
                 listing_period: timedelta = LISTING_PERIOD) -> pb.Listing:
    """A 挂牌 of the parcel published `now`: bidding opens 21 days later (39号令: ≥ 20) for 15 days (≥ 10
    working days)."""
    opens = now + ANNOUNCEMENT
    return pb.Listing(
        mechanism=pb.MECHANISM_LISTING, agency_id=GRANTOR, resource_id=resource_id, title="测试工业地块挂牌出让",
        quantity=common_pb2.Quantity(value="50", unit="亩"),
        rules=pb.ListingRules(start_price=fen(start), increment=fen(increment), deposit=fen(deposit),
                              countdown_seconds=300),
        eligibility=pb.Eligibility(sale_kind="new_industrial_land"),
        bidding_opens_at=ts(opens), bidding_closes_at=ts(opens + listing_period))


async def publish(stub, listing: pb.Listing, reserve_fen: int | None = None) -> pb.Listing:
    """Draft → 底价 entered by one person of the grantor and approved by another → published."""
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                        metadata=grantor())).listing
    if reserve_fen is not None:
        await stub.EnterReservePrice(pb.EnterReservePriceRequest(
            idempotency_key=key(), listing_id=created.listing_id, reserve_price=fen(reserve_fen)),
            metadata=grantor("staff"))
        await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(
            idempotency_key=key(), listing_id=created.listing_id), metadata=grantor("supervisor"))
    return (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=created.listing_id),
                                      metadata=grantor())).listing


async def published_listing(stub, resource_id: str, now: datetime, reserve_fen: int, **kw) -> pb.Listing:
    return await publish(stub, land_listing(resource_id, now, **kw), reserve_fen)


async def bidding_listing(trading: RunningTrading, resource_id: str, reserve_fen: int, **kw) -> pb.Listing:
    """A 挂牌 published now and the clock moved into its listing period."""
    listing = await published_listing(trading.stub, resource_id, trading.clock.now(), reserve_fen, **kw)
    to_bidding(trading.clock, listing)
    return listing


def now_utc() -> datetime:
    return datetime.now(UTC)
