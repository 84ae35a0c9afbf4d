"""Demo sales for `make run` (DEMO_DATA=true, empty database): a 挂牌 land listing on an available demo
parcel, published at the first start with the periods of 39号令 — announced now, its listing period
opening 21 days later and lasting three weeks — its reserve entered and approved by two different
people. Needs the registry's demo data (it asks the registry for an available parcel).

The loaders act as the service itself (no request: the system subject), under the names of the demo
staff for the record; the sale rules (periods, dual control) hold for them as for anyone."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta

from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.authz import SYSTEM_SUBJECT
from services.common.context import Principal, principal_var
from services.trading.adapters.clients.registry import GrpcRegistry
from services.trading.application.trading import Trading
from services.trading.clock import Clock

log = logging.getLogger(__name__)
GRANTOR = "AG-330100-ZRZY"
ANNOUNCEMENT_DAYS = 21      # ≥ 20 (sale_policy.yaml land.announcement_min_days)
LISTING_DAYS = 21           # ≥ 10 working days (land.listing_min_days)


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """The service's own work, recorded under the name of the demo person who would do it."""
    token = principal_var.set(Principal(name, subject=SYSTEM_SUBJECT))
    try:
        yield
    finally:
        principal_var.reset(token)


async def load_if_empty(trading: Trading, registry: GrpcRegistry, clock: Clock, auctions=None) -> bool:
    with acting_as("demo"):
        listings, _ = await trading.list_listings({}, "", 1)
    if listings:
        return False
    if auctions is not None:  # the uniform-price energy-use-right auction (demo_auctions.py)
        from services.trading.demo_auctions import load_demo_auction
        with acting_as("demo"):
            await load_demo_auction(auctions, clock)
    found = await registry.stub.ListResources(rpb.ListResourcesRequest(
        kind="land_use_right", status=rpb.RESOURCE_STATUS_AVAILABLE, page=common_pb2.PageRequest(page_size=1)))
    if not found.resources:
        log.warning("demo: no available parcel in the registry; no demo listing")
        return False
    parcel = found.resources[0]
    # The demo 挂牌 is in its listing period when the suite starts, so that the demo enterprises can bid and
    # its agency can change the increment at once: it was announced ANNOUNCEMENT_DAYS + 1 days ago. The
    # service clock is set back while the demo publishes it (before the service serves or runs a timer), so
    # every 39号令 period check runs unchanged on the dates the record shows.
    backdate = timedelta(days=ANNOUNCEMENT_DAYS + 1)
    clock.advance(-backdate.total_seconds())
    try:
        lid = await _publish_demo_listing(trading, parcel, clock.now())
    finally:
        clock.advance(backdate.total_seconds())
    log.info("demo: listing published", extra={"listing_id": lid})
    return True


async def _publish_demo_listing(trading: Trading, parcel, now) -> str:
    opens = (now + timedelta(days=ANNOUNCEMENT_DAYS)).replace(hour=1, minute=0, second=0, microsecond=0)
    spec = dict(mechanism="listing", agency_id=GRANTOR, resource_id=parcel.resource_id, instrument="",
                quantity=parcel.quantity.value, unit=parcel.quantity.unit, title=f"{parcel.name} 国有建设用地使用权挂牌出让",
                description="示范数据", rules={"start_price": 12_000_000_00, "increment": 100_000_00,
                                              "deposit": 2_400_000_00, "countdown_seconds": 300},
                eligibility={"sale_kind": "new_industrial_land"}, performance={}, documents=[],
                announce_at=now, bidding_opens_at=opens, bidding_closes_at=opens + timedelta(days=LISTING_DAYS),
                opening_at=None)
    with acting_as("demo"):
        listing = await trading.create_listing("demo:listing:land", spec)
    lid = listing["listing_id"]
    with acting_as("demo/staff-entry"):
        await trading.enter_reserve("demo:reserve:enter", lid, 12_500_000_00)
    with acting_as("demo/supervisor"):
        await trading.approve_reserve("demo:reserve:approve", lid)
    with acting_as("demo"):
        await trading.publish_listing("demo:publish:land", lid)
    return lid
