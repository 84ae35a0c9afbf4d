"""Composition root of the trading service: settings → host infrastructure → clients → use cases →
writers, timers, settlement → servicer. The clock is injected here so tests can drive time."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import grpc
import yaml

from services.common.audit import AuditJournal
from services.common.authz import Access, Policy
from services.common.grpc_client import open_channel
from services.common.host import Infrastructure, ServiceDefinition, ServiceHost
from services.common.journal_check import JournalCheck
from services.common.logging import configure_logging
from services.common.metrics import GrpcClientMetrics, WriteEngineMetrics
from services.common.periodic import Periodic
from services.common.write_engine import WriteEngine
from services.trading.adapters.clients.eligibility import NoEvaluationService
from services.trading.adapters.clients.evaluation import GrpcEvaluation
from services.trading.adapters.clients.registry import GrpcRegistry
from services.trading.adapters.db import tables
from services.trading.adapters.db.auction_codec import AuctionCodec
from services.trading.adapters.db.event_codec import EventCodec
from services.trading.adapters.db.sealing import Sealer
from services.trading.adapters.grpc.auctions import AuctionServicer
from services.trading.adapters.grpc.servicer import register
from services.trading.application.auction_settlement import AuctionSettlement
from services.trading.application.auctions import Auctions
from services.trading.application.market import Markets
from services.trading.application.rules import SaleRules
from services.trading.application.settlement import SettlementLoop
from services.trading.application.trading import Trading
from services.trading.application.writer import Writers
from services.trading.clock import Clock
from services.trading.config import TradingSettings
from services.trading.domain.market_policy import MarketPolicy
from services.trading.domain.periods import SalePolicy
from services.trading.metrics import TradingMetrics

log = logging.getLogger(__name__)

SERVICE_NAME = "yaosu.trading.v1.TradingService"
MIGRATIONS = Path(__file__).parent / "adapters" / "db" / "migrations"
AUTHORIZATION = Path(__file__).parent / "authorization.yaml"
SALE_POLICY = Path(__file__).parent / "sale_policy.yaml"
MARKET_POLICY = Path(__file__).parent / "market_policy.yaml"


def load_sale_policy(path: Path | None = None) -> SalePolicy:
    path = path or SALE_POLICY
    return SalePolicy.from_data(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def load_market_policy(path: Path | None = None) -> MarketPolicy:
    path = path or MARKET_POLICY
    return MarketPolicy.from_data(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def definition(settings: TradingSettings, clock: Clock | None = None) -> ServiceDefinition:
    clock = clock or Clock(settings.clock_offset_seconds)
    # Policies are read once, at start: a malformed one stops the service before it serves.
    access = Access(Policy.load(AUTHORIZATION))
    sale_policy = load_sale_policy(settings.sale_policy_file)
    market_policy = load_market_policy(settings.market_policy_file)

    async def wire(infra: Infrastructure, server: grpc.aio.Server) -> None:
        metrics = TradingMetrics(infra.registry)
        client_metrics = _client_metrics(infra)  # one set per registry of metrics, shared by the channels
        channel = open_channel(settings.registry_addr, api_key=settings.service_api_key, metrics=client_metrics)
        infra.on_close.append(channel.close)
        registry = GrpcRegistry(channel)
        settlement = AuctionSettlement(infra.uow, registry, metrics, clock.now,
                                max_backoff_seconds=settings.settlement_max_backoff_seconds)
        codec = EventCodec(Sealer(settings.sealing_key))
        writes = WriteEngine(infra.uow, WriteEngineMetrics(infra.registry), name="trading",
                             max_batch=settings.max_batch, serial=infra.engine.dialect.name == "sqlite")
        # Registered first, so stopped last: what the other tasks queued is drained after them.
        infra.background.append((lambda: None, writes.drain))
        writers = Writers(writes, clock.now, SaleRules(metrics, codec, settlement.notify, sale_policy), codec,
                          sale_policy.timers)
        eligibility = NoEvaluationService()
        if settings.evaluation_addr:
            evaluation_channel = open_channel(settings.evaluation_addr, api_key=settings.service_api_key,
                                              metrics=client_metrics)
            infra.on_close.append(evaluation_channel.close)
            eligibility = GrpcEvaluation(evaluation_channel)
        trading = Trading(infra.uow, writers, registry, eligibility, metrics, clock.now, access=access,
                          policy=sale_policy, region_code=settings.region_code,
                          deposit_hold_days=settings.deposit_hold_days, on_tasks=settlement.notify)
        markets = Markets(infra.uow, writes, registry, metrics, clock.now, access=access, policy=market_policy,
                          region_code=settings.region_code, on_tasks=settlement.notify)
        for config in json.loads(settings.markets_json or "[]"):
            await markets.ensure_market(config)
        auctions = Auctions(trading, AuctionCodec(Sealer(settings.sealing_key)))
        if settings.demo_data:
            from services.trading.demo import load_if_empty
            await load_if_empty(trading, registry, clock, auctions)
            from services.trading.market_demo import load_demo_market
            await load_demo_market(markets, registry)
        await markets.warm_up()

        def on_verified(intact: bool) -> None:
            infra.audit_metrics.verify_ok.set(1 if intact else 0)

        servicer = AuctionServicer(trading, JournalCheck(infra.uow, AuditJournal(infra.tables), access, on_verified),
                                   auctions=auctions)
        servicer.market = markets
        register(server, servicer)
        settlement_loop = SettlementLoop(settlement, settings.settlement_seconds)
        timers = Periodic("sale-timers", trading.fire_due_timers, settings.timer_seconds)
        auction_timers = Periodic("auction-timers", auctions.fire_due_timers, settings.timer_seconds)
        gauges = Periodic("trading-gauges", trading.refresh_gauges, 2.0)
        market_days = Periodic("market-days", markets.tick_all, 1.0)
        for start, stop in ((timers.start, timers.stop), (auction_timers.start, auction_timers.stop),
                            (settlement_loop.start, settlement_loop.stop),
                            (gauges.start, gauges.stop),
                            (market_days.start, market_days.stop)):
            infra.background.append((start, stop))

    return ServiceDefinition("trading", (SERVICE_NAME,), tables.infrastructure, MIGRATIONS, wire,
                             policy=access.policy)


def _client_metrics(infra: Infrastructure) -> GrpcClientMetrics:
    return GrpcClientMetrics(infra.registry)


def build(settings: TradingSettings, clock: Clock | None = None) -> ServiceHost:
    return ServiceHost(definition(settings, clock), settings)


def main() -> None:
    settings = TradingSettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(build(settings).run())
