"""Continuous-market orders per second through gRPC (PlaceOrder on a quota market), committed and
acknowledged, from 64 concurrent clients on SQLite, beside the echo floor at 64 clients. Targets (issue 13):
≥ 40 % of the floor, p99 ≤ 50 ms.

Registry and trading run as deployed (`python -m services.<name>`, each its own process; the market from
MARKETS_JSON, open all day); the clients run in this process on one grpc.aio channel, as the floor's do,
and order as the gateway does (its delegate key naming the enterprise). 32 clients are sellers holding
units, 32 buyers with funds; each order is a limit order of 1–10 lots at a price near the previous close
(buys −1 % … +0.3 %, sells −0.3 % … +1 %), so about one order in ten trades and the rest rest on the book.
An accepted order is one whose registry hold was made and whose writer committed it (resting, traded or
both); each trade is then settled DvP in the registry in the background, as in production. Refusals are
counted apart, by reason.

    make bench BENCH_ARGS=market
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.natsd import NatsServer
from tests.bench.floors import echo_floor
from tests.bench.harness import (
    CALL_TIMEOUT,
    EngineWatch,
    closed_loop,
    grpc_outcome,
    judge,
    registry_env,
    service,
    trading_env,
)
from tests.integration.trading.market_support import PREVIOUS_CLOSE, markets_json, new_instrument
from tests.integration.trading.support import (
    agency,
    bidder,
    fen,
    funded_enterprise,
    key,
    register_agency,
    regulator,
)

CLIENTS = 64
MIN_SHARE, MAX_P99 = 40.0, 50.0
UNITS = "10000000"
FUNDS_FEN = 100_000_000_00  # ¥1亿 per buyer: holds never run short in a run


async def _world(stub: registry_pb2_grpc.RegistryServiceStub, instrument: str) -> tuple[list[str], list[str]]:
    """The instrument defined and issued by its issuing agency; sellers holding units, funded buyers."""
    issuer = f"AG-{uuid.uuid4().hex[:8]}"
    await register_agency(stub, issuer, "基准发改委", rpb.AGENCY_ROLE_ISSUER)
    issuing = agency(issuer, "issuer")
    await stub.DefineInstrument(rpb.DefineInstrumentRequest(idempotency_key=key(), instrument=rpb.Instrument(
        code=instrument, kind="energy_use_right", unit="tce", scale=3, vintage=2025, region_code="330100",
        issuer_agency_id=issuer)), metadata=issuing)

    async def seller() -> str:
        code = await funded_enterprise(stub, 0)
        account = (await stub.OpenAccount(rpb.OpenAccountRequest(idempotency_key=key(), holder=code,
                                                                 instrument=instrument), metadata=bidder(code))).account
        await stub.Issue(rpb.IssueRequest(idempotency_key=key(), issuer_agency_id=issuer,
                                          to_account_id=account.account_id,
                                          quantity=common_pb2.Quantity(value=UNITS)), metadata=issuing)
        return code

    sellers = await asyncio.gather(*(seller() for _ in range(CLIENTS // 2)))
    buyers = await asyncio.gather(*(funded_enterprise(stub, FUNDS_FEN) for _ in range(CLIENTS - CLIENTS // 2)))
    return list(sellers), list(buyers)


async def _bench(folder: Path, nats_url: str) -> None:
    floor = await echo_floor(CLIENTS)
    instrument = new_instrument()
    async with service("registry", registry_env(f"sqlite+aiosqlite:///{folder / 'registry.db'}", nats_url),
                       folder) as registry:
        async with grpc.aio.insecure_channel(registry.address) as registry_channel:
            sellers, buyers = await _world(registry_pb2_grpc.RegistryServiceStub(registry_channel), instrument)
        env = trading_env(f"sqlite+aiosqlite:///{folder / 'trading.db'}", nats_url, registry.address,
                          MARKETS_JSON=markets_json(instrument))
        async with service("trading", env, folder) as trading, \
                grpc.aio.insecure_channel(trading.address) as channel:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            clients = [(code, pb.SIDE_SELL) for code in sellers] + [(code, pb.SIDE_BUY) for code in buyers]
            draws = [random.Random(c) for c in range(CLIENTS)]

            trades, states = 0, Counter()

            async def placed(call) -> None:
                nonlocal trades
                reply = await call
                trades += len(reply.trades)
                states[pb.OrderState.Name(reply.order.state).removeprefix("ORDER_STATE_").lower()] += 1

            def order(c: int, _n: int):
                code, side = clients[c]
                draw = draws[c]
                offset = draw.randint(-100, 30) if side == pb.SIDE_BUY else draw.randint(-30, 100)
                return grpc_outcome(placed(stub.PlaceOrder(pb.PlaceOrderRequest(
                    idempotency_key=key(), instrument=instrument, credit_code=code, side=side,
                    type=pb.ORDER_TYPE_LIMIT, price=fen(PREVIOUS_CLOSE + offset), quantity=draw.randint(1, 10)),
                    metadata=bidder(code), timeout=CALL_TIMEOUT)))

            watch = EngineWatch(trading=trading.metrics_port, registry=registry.metrics_port)
            await watch.start()
            measured = await closed_loop(f"market orders gRPC {CLIENTS} clients SQLite", CLIENTS, order)
            judge(measured.label, measured, floor, min_share=MIN_SHARE, max_p99=MAX_P99)
            await watch.report()
            backlog = (await stub.GetMarketStatistics(pb.GetMarketStatisticsRequest(),
                                                      metadata=regulator())).settlement_backlog
    print(f"      all accepted orders of the run (warm-up and tail included): "
          f"{', '.join(f'{n:,} {state}' for state, n in states.most_common())}; {trades:,} trades in their answers; "
          f"{backlog:,} trades still to settle in the registry at the end", flush=True)


async def _main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        nats = NatsServer(folder / "nats")
        nats.start()
        try:
            await _bench(folder, nats.url)
        finally:
            nats.stop()


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
