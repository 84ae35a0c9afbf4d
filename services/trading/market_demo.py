"""The demo continuous market for `make run` (DEMO_DATA=true): the 2025 energy-use rights of 杭州
(`energy_use_right:330100:2025`, the registry's demo instrument, tce) with a few resting orders from demo
holders on both sides, so the portal shows a live book at once.

The demo market overrides the market policy (services/trading/market_policy.yaml, the CEA rules: Mon–Fri
9:30–11:30, 13:00–15:00) in its hours only: its session covers the whole day, every day (`trading_days:
every`, 00:00–24:00), so it is open whenever `make run` is started. Its band, block band and size, tick,
lot and taker levels are the policy's. Orders carry fixed keys: restarting never places them twice, nor
holds their funds or units twice."""

from __future__ import annotations

import logging

from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.errors import DomainError
from services.trading.application.market import Markets

log = logging.getLogger(__name__)
ENERGY = "energy_use_right:330100:2025"
DEMO_MARKET = {
    "instrument": ENERGY, "name": "2025年度用能权（杭州市）", "unit": "tce", "lot_size": "1",
    "previous_close_fen": 150_00,
    "rules": {"sessions": [["00:00", "24:00"]], "block_sessions": [["00:00", "24:00"]], "trading_days": "every"},
}
# (side, price fen per tce, quantity tce): a book that does not cross, around the previous close.
DEMO_ORDERS = [("sell", 152_00, 50), ("sell", 153_50, 80), ("sell", 155_00, 120),
               ("buy", 148_00, 60), ("buy", 147_00, 100), ("buy", 145_50, 40)]


async def _holders(registry, instrument: str, count: int, exclude: set[str]) -> list[str]:
    found = await registry.stub.ListAccounts(rpb.ListAccountsRequest(
        instrument=instrument, page=common_pb2.PageRequest(page_size=count + len(exclude) + 5)))
    return [a.holder for a in found.accounts if not a.holder.startswith("AG-") and a.holder not in exclude][:count]


async def load_demo_market(markets: Markets, registry) -> None:
    await markets.ensure_market(DEMO_MARKET)
    sellers = await _holders(registry, ENERGY, 3, set())
    buyers = await _holders(registry, "CNY", 3, set(sellers))
    if len(sellers) < 3 or len(buyers) < 3:
        log.warning("demo: not enough demo holders in the registry; the energy-use book starts empty")
        return
    for n, (side, price, quantity) in enumerate(DEMO_ORDERS):
        who = (sellers if side == "sell" else buyers)[n % 3]
        try:
            await markets.place(f"demo:order:{ENERGY}:{n}", ENERGY, who, side, "limit", price, quantity)
        except DomainError as exc:  # e.g. a holder spent its balance meanwhile: the demo goes on without it
            log.warning("demo: order not placed", extra={"reason": exc.reason, "order": n})
    log.info("demo: energy-use-right book loaded", extra={"instrument": ENERGY})
