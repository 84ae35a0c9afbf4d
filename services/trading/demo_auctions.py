"""Demo uniform-price auction for `make run`: the city's development and reform commission (AG-330100-FGW)
issues energy-use rights from its reserve account `energy_use_right:330100:2025` — window open now for two
hours, 10 lots of 100 tce, public reserve 300.00 元/tce, a 20 % purchase cap per affiliation group and a
holding limit of 5,000 tce (what a bidder may hold of the instrument after the auction; the demo holders
hold 500–3,000 tce). The seed's digest is published with the announcement; the seed is revealed when the
window closes."""

from __future__ import annotations

import logging
from datetime import timedelta

from services.trading.application.auctions import Auctions
from services.trading.clock import Clock

log = logging.getLogger(__name__)
ISSUER = "AG-330100-FGW"
INSTRUMENT = "energy_use_right:330100:2025"


async def load_demo_auction(auctions: Auctions, clock: Clock) -> str:
    now = clock.now()
    spec = dict(mechanism="uniform_price", agency_id=ISSUER, resource_id="", instrument=INSTRUMENT, quantity="",
                unit="tce", title="2025年度用能权有偿发放（统一价格密封竞价）", description="示范数据",
                rules={"start_price": 300_00, "increment": 1, "supply_lots": 10, "lot_size": "100",
                       "bidder_cap_lots": 2, "clearing_rule": "marginal_accepted", "statistics_delay_seconds": 600,
                       "holding_limit": "5000"},
                eligibility={"sale_kind": "energy_use_increment"}, performance={}, documents=[],
                announce_at=now, bidding_opens_at=now, bidding_closes_at=now + timedelta(hours=2), opening_at=None)
    listing = await auctions.create_listing("demo:listing:uniform", spec)
    await auctions.publish_listing("demo:publish:uniform", listing["listing_id"])
    log.info("demo: uniform-price auction published", extra={"listing_id": listing["listing_id"]})
    return listing["listing_id"]
