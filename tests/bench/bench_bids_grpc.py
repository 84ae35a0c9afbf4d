"""挂牌 bids per second through gRPC on SQLite, committed and acknowledged, from 64 concurrent clients
(group commit: one writer per sale, one transaction per batch). PostgreSQL is not measured yet.

Each client bids the next price from a shared counter; a bid that arrives after a higher one is
refused by the 挂牌 rule (QUOTE_TOO_LOW) — accepted and refused are reported separately."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.natsd import NatsServer
from tests.integration.trading.support import as_user, fen, land_world, published_listing, trading_running
from tests.support.registry import registry_running

CLIENTS = 64
BIDS = 4000


async def _bench(folder: Path, nats_url: str) -> None:
    async with registry_running(f"sqlite+aiosqlite:///{folder / 'registry.db'}", nats_url) as registry:
        resource_id, codes = await land_world(registry.stub, CLIENTS)
        async with trading_running(f"sqlite+aiosqlite:///{folder / 'trading.db'}", nats_url,
                                   registry.address) as trading:
            stub = trading.stub
            listing = await published_listing(stub, resource_id, datetime.now(UTC), reserve_fen=1)
            for code in codes:
                await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=f"r-{code}",
                                                                   listing_id=listing.listing_id, credit_code=code),
                                          metadata=as_user(f"enterprise:{code}"))
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{trading.host.grpc_port}")
            bench_stub = trading_pb2_grpc.TradingServiceStub(channel)
            counter = itertools.count()
            latencies: list[float] = []
            refused = 0

            async def client(code: str) -> None:
                nonlocal refused
                metadata = as_user(f"enterprise:{code}")
                for n in counter:
                    if n >= BIDS:
                        return
                    started = time.perf_counter()
                    try:
                        await bench_stub.PlaceBid(pb.PlaceBidRequest(
                            idempotency_key=f"b-{n}", listing_id=listing.listing_id, credit_code=code,
                            price=fen(listing.rules.start_price.fen + n * listing.rules.increment.fen)),
                            metadata=metadata)
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                            raise
                        refused += 1
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(client(code) for code in codes))
            elapsed = time.perf_counter() - started
            await channel.close()
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(f"   trading.bids.grpc.sqlite  {BIDS / elapsed:,.0f} bids/s answered "
                  f"({(BIDS - refused) / elapsed:,.0f}/s accepted+committed, {refused} refused as outbid), "
                  f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms, {CLIENTS} clients")


async def _main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        nats = NatsServer(Path(folder) / "nats")
        nats.start()
        try:
            await _bench(Path(folder), nats.url)
        finally:
            nats.stop()


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
