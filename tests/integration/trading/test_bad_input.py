"""Refusals of bad input over the real gRPC wire, each precise and leaving nothing behind: sale periods
shorter than the sale policy (39号令) are not published; numbers out of range are INVALID_ARGUMENT with
field violations; ConfirmContinue outside a 挂牌 live round is a FAILED_PRECONDITION; a bid above the
price collar needs the bidder's confirmation, which is counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from services.trading.application.limits import MAX_FEN, MAX_LOTS
from services.trading.domain.calendar import WorkingDayCalendar
from tests.integration.trading.market_support import PREVIOUS_CLOSE, market_world, markets_json, new_instrument
from tests.integration.trading.support import (
    ANNOUNCEMENT,
    GRANTOR,
    admin,
    bidder,
    bidding_listing,
    fen,
    grantor,
    key,
    land_listing,
    land_world,
    metric,
    refused,
    regulator,
    trading_running,
    ts,
)
from tests.integration.trading.test_tender import register as register_for_tender
from tests.integration.trading.test_tender import tender, tender_listing
from tests.integration.trading.test_uniform_auction import auction, issuing_agency, quota_world
from tests.integration.trading.test_uniform_auction import register as register_for_auction
from tests.support.grpc_errors import field_violations, reason

RESERVE = 1_000_000_00
START = 1_000_000_00  # land_listing's start price
POLICY = "sale policy 2025.2-39号令"


async def create(stub, listing: pb.Listing, metadata=None) -> pb.Listing:
    return (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                     metadata=metadata or grantor())).listing


async def approved_draft(stub, listing: pb.Listing) -> str:
    """A 挂牌 draft with its 底价 entered and approved by two people: ready to publish but for its periods."""
    lid = (await create(stub, listing)).listing_id
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(idempotency_key=key(), listing_id=lid,
                                                             reserve_price=fen(RESERVE)), metadata=grantor("staff"))
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(), listing_id=lid),
                                   metadata=grantor("supervisor"))
    return lid


def publication(stub, lid: str):
    return stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid), metadata=grantor())


async def still_a_draft(stub, registry_stub, lid: str, resource_id: str) -> bool:
    listing = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=grantor())).listing
    hidden = await refused(stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=bidder("91330100MA0000000X")))
    resource = (await registry_stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    return (listing.state == pb.LISTING_STATE_DRAFT and not listing.HasField("published_at")
            and hidden.code() == grpc.StatusCode.NOT_FOUND and resource.status == rpb.RESOURCE_STATUS_AVAILABLE)


def working_days(published: datetime, days: int) -> timedelta:
    """The listing period of land_listing published then that spans exactly `days` working days, counted
    on the dates of the place of sale (Asia/Shanghai)."""
    opens = (published + ANNOUNCEMENT).astimezone(ZoneInfo("Asia/Shanghai")).date()
    return timedelta(days=(WorkingDayCalendar().listing_end_for(opens, days) - opens).days)


def period_refusal(error: grpc.aio.AioRpcError, code: str, rule: str) -> bool:
    return (error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == code
            and f"(rule {rule}, {POLICY})" in error.details())


async def test_periods_shorter_than_the_sale_policy_are_not_published(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)
    stub, now = trading.stub, trading.clock.now()

    # A tender whose submissions open 19 days after the publication (39号令: ≥ 20) — also when its
    # announce_at claims a publication a month ago: the days count from the actual publication.
    short = tender_listing(resource_id, now - timedelta(days=2))
    backdated = tender_listing(resource_id, now - ANNOUNCEMENT + timedelta(days=5))
    backdated.announce_at.CopyFrom(ts(now - timedelta(days=30)))
    for listing, lead in ((short, 19), (backdated, 5)):
        lid = (await create(stub, listing)).listing_id
        error = await refused(publication(stub, lid))
        assert period_refusal(error, "ANNOUNCEMENT_TOO_SHORT", "land.announcement_min_days"), error
        assert f"published {lead} days before bidding opens; at least 20 days" in error.details()
        assert await still_a_draft(stub, registry.stub, lid, resource_id)

    # A 挂牌 open 9 working days (≥ 10 required), counted on the working-day calendar of the place of sale.
    lid = await approved_draft(stub, land_listing(resource_id, now, listing_period=working_days(now, 9)))
    error = await refused(publication(stub, lid))
    assert period_refusal(error, "LISTING_PERIOD_TOO_SHORT", "land.listing_min_days"), error
    assert "the listing period lasts 9 working days; at least 10" in error.details()
    assert await still_a_draft(stub, registry.stub, lid, resource_id)

    # One more working day and it is published, the parcel listed.
    lid = await approved_draft(stub, land_listing(resource_id, now, listing_period=working_days(now, 10)))
    assert (await publication(stub, lid)).listing.state == pb.LISTING_STATE_ANNOUNCED


def with_rules(listing: pb.Listing, **rules) -> pb.Listing:
    changed = pb.Listing()
    changed.CopyFrom(listing)
    for name, value in rules.items():
        target = changed.rules
        if isinstance(value, int) and name in ("start_price", "increment", "deposit"):
            getattr(target, name).CopyFrom(fen(value))
        else:
            setattr(target, name, value)
    return changed


def with_quantity(listing: pb.Listing, value: str) -> pb.Listing:
    changed = pb.Listing()
    changed.CopyFrom(listing)
    changed.quantity.CopyFrom(common_pb2.Quantity(value=value, unit="亩"))
    return changed


BAD_QUANTITIES = ("NaN", "sNaN", "abc", "-5", "0", "Infinity", "-Infinity", "1e999", "1" * 401, "0.0000001",
                  "1,5")


async def test_listing_numbers_out_of_range_are_invalid_arguments(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)
    stub, now = trading.stub, trading.clock.now()
    listing, sealed = land_listing(resource_id, now), tender_listing(resource_id, now)
    cases = [(with_quantity(base, q), "listing.quantity") for q in BAD_QUANTITIES for base in (listing, sealed)]
    for name in ("start_price", "deposit"):
        cases += [(with_rules(base, **{name: value}), f"listing.rules.{name}")
                  for value in (2**62, MAX_FEN + 1, -1) for base in (listing, sealed)]
    cases += [(with_rules(listing, start_price=0), "listing.rules.start_price"),
              (with_rules(listing, increment=0), "listing.rules.increment"),
              (with_rules(listing, increment=-10), "listing.rules.increment"),
              (with_rules(listing, countdown_seconds=-1), "listing.rules.countdown_seconds"),
              (with_rules(listing, min_bidders=2**31 - 1), "listing.rules.min_bidders")]
    for bad, field in cases:
        error = await refused(stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=bad),
                                                 metadata=grantor()))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, bad.quantity, error)
        assert set(field_violations(error)) == {field}, (bad.quantity.value, bad.rules, error.details())
    # The largest sane amounts are accepted: the bounds are exactly those of the policy, not tighter.
    edge = await create(stub, with_rules(with_quantity(listing, "1000000000000000"), start_price=MAX_FEN,
                                         deposit=MAX_FEN))
    assert (edge.rules.start_price.fen, edge.quantity.value) == (MAX_FEN, "1000000000000000")
    drafts = (await stub.ListListings(pb.ListListingsRequest(agency_id=GRANTOR), metadata=grantor())).listings
    assert [x.listing_id for x in drafts] == [edge.listing_id]  # no refused draft was recorded


async def test_a_draft_updated_with_numbers_out_of_range_stays_as_it_was(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)
    stub = trading.stub
    draft = await create(stub, land_listing(resource_id, trading.clock.now()))
    for rules, field in ((pb.ListingRules(start_price=fen(2**62), increment=fen(1)), "listing.rules.start_price"),
                         (pb.ListingRules(start_price=fen(START), increment=fen(-1)), "listing.rules.increment"),
                         (pb.ListingRules(start_price=fen(START), increment=fen(1), deposit=fen(-5)),
                          "listing.rules.deposit")):
        error = await refused(stub.UpdateListing(pb.UpdateListingRequest(
            idempotency_key=key(), listing=pb.Listing(listing_id=draft.listing_id, rules=rules)), metadata=grantor()))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(error), error
    kept = (await stub.GetListing(pb.GetListingRequest(listing_id=draft.listing_id), metadata=grantor())).listing
    assert kept.rules == draft.rules and kept.version == draft.version


async def test_quota_auction_numbers_out_of_range_are_invalid_arguments(registry, trading):
    await quota_world(registry.stub, 0)
    stub, now = trading.stub, trading.clock.now()
    base = pb.Listing(
        mechanism=pb.MECHANISM_UNIFORM_PRICE, agency_id="AG-T-FGW", instrument="energy_use_right:330100:2025",
        title="用能权有偿发放", quantity=common_pb2.Quantity(unit="tce"),
        rules=pb.ListingRules(start_price=fen(10_000), increment=fen(1), supply_lots=10, lot_size="100",
                              bidder_cap_lots=5),
        bidding_opens_at=ts(now), bidding_closes_at=ts(now + timedelta(hours=1)))
    cases = [(with_rules(base, lot_size=size), "listing.rules.lot_size") for size in ("1e3", "-1", "NaN", "0", "1.5",
                                                                                       "9" * 401)]
    cases += [(with_rules(base, supply_lots=lots), "listing.rules.supply_lots") for lots in (-1, MAX_LOTS + 1, 2**62)]
    cases += [(with_rules(base, bidder_cap_lots=-5), "listing.rules.bidder_cap_lots"),
              (with_rules(base, start_price=2**62), "listing.rules.start_price")]
    for bad, field in cases:
        error = await refused(stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=bad),
                                                 metadata=issuing_agency()))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert field in field_violations(error), (field, bad.rules, error.details())
    assert not (await stub.ListListings(pb.ListListingsRequest(), metadata=issuing_agency())).listings
    # A draft's rules are checked whole at creation (its seed commitment among them): no update replaces them.
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=base),
                                        metadata=issuing_agency())).listing
    error = await refused(stub.UpdateListing(pb.UpdateListingRequest(idempotency_key=key(), listing=pb.Listing(
        listing_id=created.listing_id, rules=pb.ListingRules(start_price=fen(10_000), supply_lots=10**9))),
        metadata=issuing_agency()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "listing.rules" in field_violations(error)
    kept = (await stub.GetListing(pb.GetListingRequest(listing_id=created.listing_id), metadata=issuing_agency()))
    assert kept.listing.rules == created.rules


async def test_bid_numbers_out_of_range_are_invalid_arguments(registry, trading):
    resource_id, (alice,) = await land_world(registry.stub, 1)
    (carol,) = await quota_world(registry.stub, 1)
    stub = trading.stub
    lid = (await bidding_listing(trading, resource_id, RESERVE)).listing_id
    await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=alice),
                              metadata=bidder(alice))
    quota = (await auction(stub, trading.clock.now())).listing_id
    await register_for_auction(stub, quota, carol, 10_000_000)

    def bid(listing_id, code, price, lots=0):
        return stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=listing_id, credit_code=code,
                                                price=fen(price), quantity_lots=lots), metadata=bidder(code))

    cases = [(bid(lid, alice, price), "price.fen") for price in (-1, 0, MAX_FEN + 1, 2**62, -(2**63))]
    cases += [(bid(quota, carol, price, 1), "price.fen") for price in (-1, 0, 2**62)]
    cases += [(bid(quota, carol, 12_000, lots), "quantity_lots") for lots in (-5, 0, MAX_LOTS + 1, 2**62)]
    for call, field in cases:
        error = await refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert set(field_violations(error)) == {field}, error.details()

    assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=regulator())).bids
    assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=quota, credit_code=carol),
                                    metadata=bidder(carol))).bids


async def test_confirm_continue_outside_a_listing_live_round_is_a_failed_precondition(registry, trading):
    resource_id, (alice,) = await land_world(registry.stub, 1)
    (carol,) = await quota_world(registry.stub, 1)
    stub = trading.stub
    sealed = (await tender(trading, resource_id)).listing_id
    await register_for_tender(stub, sealed, alice)
    quota = (await auction(stub, trading.clock.now())).listing_id
    await register_for_auction(stub, quota, carol, 10_000_000)

    for lid, code, mechanism in ((sealed, alice, "tender"), (quota, carol, "uniform_price")):
        error = await refused(stub.ConfirmContinue(pb.ConfirmContinueRequest(
            idempotency_key=key(), listing_id=lid, credit_code=code), metadata=bidder(code)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "NO_LIVE_ROUND", error
        assert f"a {mechanism} sale has none" in error.details()
        registration = (await stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=code),
                                                   metadata=bidder(code))).registration
        assert registration.state == pb.REGISTRATION_STATE_QUALIFIED and not registration.confirmed_continue


async def test_a_bid_above_the_price_collar_needs_a_confirmation_which_is_counted(registry, trading):
    resource_id, (alice,) = await land_world(registry.stub, 1)
    stub, port = trading.stub, trading.metrics_port
    lid = (await bidding_listing(trading, resource_id, RESERVE)).listing_id
    await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=alice),
                              metadata=bidder(alice))
    high = 3 * START + 10_000_00  # one increment above 3 × the start price (no quote yet)

    def bid(confirm: bool, idem: str = ""):
        return stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=idem or key(), listing_id=lid, credit_code=alice,
                                                price=fen(high), confirm_high_price=confirm), metadata=bidder(alice))

    error = await refused(bid(False))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "PRICE_COLLAR"
    assert f"more than 3× the reference price of {START} fen" in error.details()
    assert f"(rule price_collar.multiple, {POLICY})" in error.details()
    assert metric(port, "trading_price_collar_confirmations_total", mechanism="listing") == 0
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=regulator())).state
    assert state.accepted_bids == 0 and not state.current_price.fen

    retry = key()
    placed = (await bid(True, retry)).bid
    assert placed.state == pb.BID_STATE_ACCEPTED and placed.price.fen == high
    assert (await bid(True, retry)).bid == placed  # a retry answers the first result, counted once
    assert metric(port, "trading_price_collar_confirmations_total", mechanism="listing") == 1
    assert metric(port, "trading_bids_total", mechanism="listing", result="accepted", reason="") == 1


@pytest.fixture
async def market(database_url, nats_server, registry):
    instrument = new_instrument()
    (seller,), (buyer,) = await market_world(registry.stub, instrument, sellers=1, buyers=1)
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        yield trading, instrument, seller, buyer


async def test_order_numbers_out_of_range_are_invalid_arguments(market):
    trading, instrument, seller, buyer = market
    stub = trading.stub

    def order(price, quantity, order_type=pb.ORDER_TYPE_LIMIT):
        return stub.PlaceOrder(pb.PlaceOrderRequest(
            idempotency_key=key(), instrument=instrument, credit_code=buyer, side=pb.SIDE_BUY, type=order_type,
            price=fen(price), quantity=quantity), metadata=bidder(buyer))

    resting = (await stub.PlaceOrder(pb.PlaceOrderRequest(
        idempotency_key=key(), instrument=instrument, credit_code=seller, side=pb.SIDE_SELL,
        type=pb.ORDER_TYPE_LIMIT, price=fen(PREVIOUS_CLOSE), quantity=10), metadata=bidder(seller))).order

    def amend(price, quantity):
        return stub.AmendOrder(pb.AmendOrderRequest(idempotency_key=key(), order_id=resting.order_id,
                                                    credit_code=seller, price=fen(price), quantity=quantity),
                               metadata=bidder(seller))

    cases = [(order(price, 1), "price.fen") for price in (-1, 0, MAX_FEN + 1, 2**62)]
    cases += [(order(PREVIOUS_CLOSE, quantity), "quantity") for quantity in (-1, 0, MAX_LOTS + 1, 2**62)]
    cases += [(amend(2**62, 10), "price.fen"), (amend(PREVIOUS_CLOSE, -3), "quantity"),
              (amend(PREVIOUS_CLOSE, 2**62), "quantity")]
    for call, field in cases:
        error = await refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert set(field_violations(error)) == {field}, error.details()

    orders = (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=regulator())).orders
    assert [(o.order_id, o.price.fen, o.quantity) for o in orders] == [(resting.order_id, PREVIOUS_CLOSE, 10)]
