"""Demo sales for `make run` (DEMO_DATA=true, empty database): a 挂牌 land listing on an available demo
parcel, open for bidding now and closing in three hours, its reserve entered and approved by two
different people. Needs the registry's demo data (it asks the registry for an available parcel).

Not yet loaded: the uniform-price quota auction and the energy-use-right order book (those mechanisms
are not wired to the service yet)."""

from __future__ import annotations

import logging
from datetime import timedelta

from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb

from services.trading.adapters.clients.registry import GrpcRegistry
from services.trading.application.trading import Caller, Trading
from services.trading.clock import Clock

log = logging.getLogger(__name__)
GRANTOR = "AG-330100-ZRZY"


async def load_if_empty(trading: Trading, registry: GrpcRegistry, clock: Clock, auctions=None) -> bool:
    listings, _ = await trading.list_listings({}, "", 1, Caller("demo", True))
    if listings:
        return False
    if auctions is not None:  # the uniform-price energy-use-right auction (demo_auctions.py)
        from services.trading.demo_auctions import load_demo_auction
        await load_demo_auction(auctions, clock)
    found = await registry.stub.ListResources(rpb.ListResourcesRequest(
        kind="land_use_right", status=rpb.RESOURCE_STATUS_AVAILABLE, page=common_pb2.PageRequest(page_size=1)))
    if not found.resources:
        log.warning("demo: no available parcel in the registry; no demo listing")
        return False
    parcel = found.resources[0]
    now = clock.now()
    opens = now - timedelta(days=15)  # 39号令: announced ≥ 20 days before, listed ≥ 10 working days
    spec = dict(mechanism="listing", agency_id=GRANTOR, resource_id=parcel.resource_id, instrument="",
                quantity=parcel.quantity.value, unit=parcel.quantity.unit, title=f"{parcel.name} 国有建设用地使用权挂牌出让",
                description="示范数据", rules={"start_price": 12_000_000_00, "increment": 100_000_00,
                                              "deposit": 2_400_000_00, "countdown_seconds": 300},
                eligibility={"sale_kind": "new_industrial_land"}, performance={}, documents=[],
                announce_at=opens - timedelta(days=21), bidding_opens_at=opens,
                bidding_closes_at=now + timedelta(hours=3), opening_at=None)
    listing = await trading.create_listing("demo:listing:land", spec, Caller("demo", True))
    lid = listing["listing_id"]
    await trading.enter_reserve("demo:reserve:enter", lid, 12_500_000_00, Caller("demo/staff-entry", True))
    await trading.approve_reserve("demo:reserve:approve", lid, Caller("demo/supervisor", True))
    await trading.publish_listing("demo:publish:land", lid, Caller("demo", True))
    log.info("demo: listing published", extra={"listing_id": lid})
    return True
