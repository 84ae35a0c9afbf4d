"""Who may act on what, over the real gRPC wire (services/trading/authorization.yaml): only an enterprise
registers, bids and orders, and only for itself — an agency or a service key is refused whatever roles it
holds, and nothing (registration, deposit hold, bid, order) exists afterwards; an agency manages only its
own listings; before a sealed sale is opened nobody but the trading centre learns who registered (a
registered and an unregistered credit code answer alike); a bid id of somebody else answers like an
unknown one; each party of an order-book trade sees only its own side."""

from __future__ import annotations

import grpc
import pytest
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.market_support import (
    PREVIOUS_CLOSE,
    market_world,
    markets_json,
    new_instrument,
    place,
)
from tests.integration.trading.support import (
    GRANTOR,
    admin,
    agency,
    bidder,
    bidding_listing,
    centre,
    cny,
    fen,
    grantor,
    key,
    land_listing,
    land_world,
    refused,
    regulator,
    trading_running,
)
from tests.integration.trading.test_tender import register as register_for_tender
from tests.integration.trading.test_tender import tender, tender_listing
from tests.integration.trading.test_uniform_auction import auction, quota_world
from tests.integration.trading.test_uniform_auction import bid as uniform_bid
from tests.integration.trading.test_uniform_auction import register as register_for_auction
from tests.support.grpc_errors import field_violations, reason
from tests.support.services import EVALUATION_KEY, ISSUER_KEY, REGISTRY_KEY, TRADING_KEY, bearer, on_behalf

RESERVE = 1_000_000_00
FUNDS = "1000000000"  # land_world's CNY per enterprise, in fen


def agency_user() -> list[tuple[str, str]]:
    """A user of the grantor holding every agency role that acts in trading — still not an enterprise."""
    return on_behalf(f"agency:{GRANTOR}/user:x", "grantor", "issuer", "data_provider")


def other_agency() -> list[tuple[str, str]]:
    return agency("AG-T-OTHER", "grantor")


def not_enterprises() -> dict[str, list[tuple[str, str]]]:
    return {"agency user": agency_user(), "issuer key": bearer(ISSUER_KEY), "registry key": bearer(REGISTRY_KEY),
            "evaluation key": bearer(EVALUATION_KEY), "trading's own key": bearer(TRADING_KEY)}


def denied(error: grpc.aio.AioRpcError, why: str) -> bool:
    return error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == why


async def untouched(registry_stub, code: str) -> bool:
    """The enterprise's CNY account as the bank funded it: nothing held."""
    account = await cny(registry_stub, code)
    return (account.balance.value, account.held.value, account.available.value) == (FUNDS, "0", FUNDS)


async def test_only_the_enterprise_itself_registers_and_bids(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub = trading.stub
    lid = (await bidding_listing(trading, resource_id, RESERVE)).listing_id
    await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=alice),
                              metadata=bidder(alice))

    def register(code, metadata):
        return stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                   metadata=metadata)

    def bid(code, metadata):
        return stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                price=fen(RESERVE)), metadata=metadata)

    # Refused at the door: no agency role and no service grants acting for an enterprise.
    for who, metadata in not_enterprises().items():
        assert denied(await refused(register(bob, metadata)), "NOT_PERMITTED"), who
        assert denied(await refused(bid(alice, metadata)), "NOT_PERMITTED"), who
    # An enterprise acts for itself only.
    assert denied(await refused(register(bob, bidder(alice))), "NOT_OWNER")
    assert denied(await refused(bid(bob, bidder(alice))), "NOT_OWNER")
    assert denied(await refused(bid(alice, bidder(bob))), "NOT_OWNER")

    # Nothing happened: bob is not registered and no deposit of his is held; no bid exists.
    missing = await refused(stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=bob),
                                                 metadata=bidder(bob)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert await untouched(registry.stub, bob)
    assert (await cny(registry.stub, alice)).held.value == "20000000"  # only its own deposit
    assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=regulator())).bids
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=regulator())).state
    assert (state.accepted_bids, state.registered_bidders) == (0, 1)


async def test_an_agency_manages_its_own_listings_only(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)
    other_id, _ = await land_world(registry.stub, 0)
    stub = trading.stub
    listing = await bidding_listing(trading, resource_id, RESERVE)
    lid = listing.listing_id

    def update(metadata):
        return stub.UpdateListing(pb.UpdateListingRequest(idempotency_key=key(), listing=pb.Listing(
            listing_id=lid, title="改名"), change_reason="不是我的"), metadata=metadata)

    def cancel(metadata):
        return stub.CancelListing(pb.CancelListingRequest(idempotency_key=key(), listing_id=lid, reason="不是我的"),
                                  metadata=metadata)

    for metadata in (bearer(REGISTRY_KEY), bearer(EVALUATION_KEY), bearer(TRADING_KEY), centre(),
                     bidder("91330100MA0000000X")):
        assert denied(await refused(update(metadata)), "NOT_PERMITTED")
        assert denied(await refused(cancel(metadata)), "NOT_PERMITTED")
    for metadata in (other_agency(), bearer(ISSUER_KEY)):  # a listing agency, but not this listing's
        assert denied(await refused(update(metadata)), "NOT_OWNER")
        assert denied(await refused(cancel(metadata)), "NOT_OWNER")

    after = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=regulator())).listing
    assert (after.state, after.version, after.title) == (pb.LISTING_STATE_BIDDING, 1, listing.title)
    assert not (await stub.ListChangeNotices(pb.ListChangeNoticesRequest(listing_id=lid),
                                             metadata=regulator())).notices
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    assert resource.status == rpb.RESOURCE_STATUS_LISTED

    # Another agency's draft does not exist for it: the same answer as an unknown listing id.
    draft = (await stub.CreateListing(pb.CreateListingRequest(
        idempotency_key=key(), listing=land_listing(other_id, trading.clock.now())), metadata=grantor())).listing
    foreign = await refused(stub.PublishListing(pb.PublishListingRequest(
        idempotency_key=key(), listing_id=draft.listing_id), metadata=other_agency()))
    unknown = await refused(stub.PublishListing(pb.PublishListingRequest(
        idempotency_key=key(), listing_id="L-unknown"), metadata=other_agency()))
    assert foreign.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert reason(foreign) == reason(unknown) == "NOT_FOUND"
    assert foreign.details().replace(draft.listing_id, "?") == unknown.details().replace("L-unknown", "?")
    kept = (await stub.GetListing(pb.GetListingRequest(listing_id=draft.listing_id), metadata=grantor())).listing
    assert kept.state == pb.LISTING_STATE_DRAFT


async def test_an_agency_lists_only_the_parcels_it_controls(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)  # controlled by the grantor
    stub, now = trading.stub, trading.clock.now()

    def create(listing: pb.Listing, agency_id: str, resource: str = resource_id):
        listing.agency_id, listing.resource_id = agency_id, resource
        return stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                  metadata=agency(agency_id, "grantor"))

    # Its own listing of somebody else's parcel: the service would list the parcel and pay the price to it.
    for listing in (land_listing(resource_id, now), tender_listing(resource_id, now)):
        assert denied(await refused(create(listing, "AG-T-OTHER")), "NOT_OWNER")
        unknown = await refused(create(listing, GRANTOR, "R-330106-Lnone"))
        assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(unknown)) == {"listing.resource_id"}
    assert not (await stub.ListListings(pb.ListListingsRequest(), metadata=regulator())).listings
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    assert resource.status == rpb.RESOURCE_STATUS_AVAILABLE


async def test_sealed_registrations_are_no_oracle_before_the_opening(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub = trading.stub
    lid = (await tender(trading, resource_id)).listing_id
    await register_for_tender(stub, lid, alice)  # bob never registers

    async def answer(code, metadata) -> tuple:
        error = await refused(stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=code),
                                                   metadata=metadata))
        return error.code(), reason(error), error.details().replace(code, "<code>")

    # The grantor, another agency, an issuer, the regulator and another bidder: alice's registration and
    # bob's missing one answer alike.
    for metadata in (grantor(), other_agency(), bearer(ISSUER_KEY), regulator(), bidder(bob)):
        registered, absent = await answer(alice, metadata), await answer(bob, metadata)
        assert registered == absent == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND",
                                        f"registration {lid}/<code> not found")
    # The trading centre sees who registered; alice sees her own.
    for metadata in (centre(), bidder(alice)):
        seen = (await stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=alice),
                                           metadata=metadata)).registration
        assert (seen.credit_code, seen.deposit_state) == (alice, "held")
    assert (await answer(bob, centre()))[0] == grpc.StatusCode.NOT_FOUND

    # Listing them: nothing (not even how many) before the opening, but to the centre.
    for metadata in (grantor(), regulator()):
        listed = await stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid), metadata=metadata)
        assert not listed.registrations
    other = await refused(stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid),
                                                 metadata=other_agency()))
    assert denied(other, "NOT_OWNER")
    watched = await stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid), metadata=centre())
    assert [r.credit_code for r in watched.registrations] == [alice]


async def test_a_foreign_bid_id_answers_like_an_unknown_one(registry, trading):
    alice, bob = await quota_world(registry.stub, 2)
    stub = trading.stub
    lid = (await auction(stub, trading.clock.now())).listing_id
    for code in (alice, bob):
        await register_for_auction(stub, lid, code, 10_000_000)
    mine = await uniform_bid(stub, lid, alice, 12_000, 2)

    def modify(bid_id, code):
        return stub.ModifyBid(pb.ModifyBidRequest(idempotency_key=key(), bid_id=bid_id, credit_code=code,
                                                  price=fen(13_000), quantity_lots=1), metadata=bidder(bob))

    def withdraw(bid_id, code):
        return stub.WithdrawBid(pb.WithdrawBidRequest(idempotency_key=key(), bid_id=bid_id, credit_code=code),
                                metadata=bidder(bob))

    # Bob, naming himself or alice, with alice's bid id and with an unknown one: the same NOT_FOUND.
    for call in (modify, withdraw):
        for code in (bob, alice):
            foreign = await refused(call(mine.bid_id, code))
            unknown = await refused(call("B-unknown", code))
            assert foreign.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
            assert reason(foreign) == reason(unknown) == "NOT_FOUND"
            assert foreign.details().replace(mine.bid_id, "?") == unknown.details().replace("B-unknown", "?")

    own = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=alice), metadata=bidder(alice))).bids
    assert [(b.bid_id, b.state, b.price.fen, b.quantity_lots) for b in own] == \
        [(mine.bid_id, pb.BID_STATE_ACCEPTED, 12_000, 2)]
    assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=bob), metadata=bidder(bob))).bids


async def test_a_draft_bid_of_another_enterprise_answers_like_an_unknown_one(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub = trading.stub
    lid = (await bidding_listing(trading, resource_id, RESERVE)).listing_id
    for code in (alice, bob):
        await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                  metadata=bidder(code))
    draft = (await stub.CreateBid(pb.CreateBidRequest(idempotency_key=key(), listing_id=lid, credit_code=alice,
                                                      price=fen(RESERVE)), metadata=bidder(alice))).bid

    def submit(bid_id, code):
        return stub.SubmitBid(pb.SubmitBidRequest(idempotency_key=key(), bid_id=bid_id, credit_code=code),
                              metadata=bidder(bob))

    for code in (bob, alice):
        foreign, unknown = await refused(submit(draft.bid_id, code)), await refused(submit("B-unknown", code))
        assert foreign.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
        assert reason(foreign) == reason(unknown) == "NOT_FOUND"
        assert foreign.details().replace(draft.bid_id, "?") == unknown.details().replace("B-unknown", "?")
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=regulator())).state
    assert state.accepted_bids == 0  # alice's draft was not submitted by bob


@pytest.fixture
async def market(database_url, nats_server, registry):
    instrument = new_instrument()
    sellers, buyers = await market_world(registry.stub, instrument, sellers=2, buyers=1)
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        yield trading, instrument, sellers, buyers


async def test_orders_are_the_enterprises_own_and_trades_show_each_party_its_side(market):
    trading, instrument, (seller, third), (buyer,) = market
    stub = trading.stub

    def order(code, metadata):
        return stub.PlaceOrder(pb.PlaceOrderRequest(
            idempotency_key=key(), instrument=instrument, credit_code=code, side=pb.SIDE_BUY,
            type=pb.ORDER_TYPE_LIMIT, price=fen(PREVIOUS_CLOSE), quantity=1), metadata=metadata)

    for who, metadata in not_enterprises().items():
        assert denied(await refused(order(buyer, metadata)), "NOT_PERMITTED"), who
    assert denied(await refused(order(buyer, bidder(seller))), "NOT_OWNER")
    assert not (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=regulator())).orders

    await place(stub, instrument, seller, pb.SIDE_SELL, PREVIOUS_CLOSE, 5)
    (trade,) = (await place(stub, instrument, buyer, pb.SIDE_BUY, PREVIOUS_CLOSE, 5)).trades

    async def sides(metadata) -> list[tuple[str, str]]:
        got = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=metadata)).trade
        listed = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument), metadata=metadata)).trades
        return [(t.buyer_credit_code, t.seller) for t in (got, *listed)]

    assert (trade.buyer_credit_code, trade.seller) == (buyer, "")
    assert await sides(bidder(buyer)) == [(buyer, "")] * 2
    assert await sides(bidder(seller)) == [("", seller)] * 2
    assert await sides(regulator()) == [(buyer, seller)] * 2
    # A third enterprise: the trade does not exist for it, like an unknown one, and lists no trade.
    foreign = await refused(stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=bidder(third)))
    unknown = await refused(stub.GetTrade(pb.GetTradeRequest(trade_id="T-unknown"), metadata=bidder(third)))
    assert foreign.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert foreign.details().replace(trade.trade_id, "?") == unknown.details().replace("T-unknown", "?")
    assert not (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument), metadata=bidder(third))).trades
