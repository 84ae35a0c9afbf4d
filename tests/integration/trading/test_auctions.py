"""拍卖 (English auction) over gRPC against a real registry: announced ≥ 20 days before the start (39号令),
secret reserve under dual control (two people of the grantor), at least three registered bidders (the
policy's minimum; an auction asking for fewer is refused at publication), fewer registered bidders than
the minimum at the start → cancelled (deposits voided, parcel available again),
ascending bids ≥ current + increment, each valid bid restarting the countdown (anti-sniping) capped at the
hard stop, award at the end, 成交确认书 and settlement like 挂牌.

Hand-worked: start 1,000,000.00, increment 10,000.00, countdown 300 s, hard stop start + 900 s.
t=0 start (deadline 300) · t=200 A 1,000,000 → deadline 500 · t=450 B 1,010,000 → 750 ·
t=700 A 1,020,000 → min(1000, 900) = 900 (the hard stop) · t=900 end: A wins at 1,020,000 (≥ reserve)."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import (
    ANNOUNCEMENT,
    GRANTOR,
    admin,
    advance_to,
    bidder,
    eventually,
    fen,
    grantor,
    key,
    land_world,
    regulator,
    ts,
)
from tests.support.grpc_errors import reason


async def english(stub, resource_id, start_at, *, min_bidders=0, reserve=1_015_000_00) -> pb.Listing:
    listing = pb.Listing(
        mechanism=pb.MECHANISM_ENGLISH, agency_id=GRANTOR, resource_id=resource_id, title="测试地块拍卖出让",
        quantity=common_pb2.Quantity(value="50", unit="亩"),
        rules=pb.ListingRules(start_price=fen(1_000_000_00), increment=fen(10_000_00), deposit=fen(2_000_000_0),
                              countdown_seconds=300, min_bidders=min_bidders,
                              hard_stop=ts(start_at + timedelta(seconds=900))),
        bidding_opens_at=ts(start_at), bidding_closes_at=ts(start_at + timedelta(seconds=900)))
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                        metadata=grantor())).listing
    lid = created.listing_id
    with pytest.raises(grpc.aio.AioRpcError) as unapproved:
        await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid), metadata=grantor())
    assert unapproved.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(idempotency_key=key(), listing_id=lid,
                                                             reserve_price=fen(reserve)),
                                 metadata=grantor("staff"))
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(), listing_id=lid),
                                   metadata=grantor("supervisor"))
    return (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid),
                                      metadata=grantor())).listing


async def register(stub, lid, code):
    return (await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid,
                                                               credit_code=code),
                                      metadata=bidder(code))).registration


async def bid(stub, lid, code, amount):
    return (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                   price=fen(amount)), metadata=bidder(code)))


async def sale_state(stub, lid):
    return (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=admin())).state


async def test_anti_sniping_extension_hard_stop_award_and_settlement(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    t0 = clock.now() + ANNOUNCEMENT
    lid = (await english(stub, resource_id, t0)).listing_id
    for code in (alice, bob, carol):  # carol registers and never bids
        await register(stub, lid, code)
    advance_to(clock, t0, extra=0)  # t = 0: the timer starts the auction
    started = await eventually(lambda: _running(stub, lid, t0))
    assert _near(started.closes_at, t0 + timedelta(seconds=300))
    with pytest.raises(grpc.aio.AioRpcError) as late:  # registration closed at the start
        await register(stub, lid, "91330100MA0000000X")
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    clock.advance(200)
    first = await bid(stub, lid, alice, 1_000_000_00)
    assert _near(first.state.closes_at, t0 + timedelta(seconds=500))  # restarted: 200 + 300
    with pytest.raises(grpc.aio.AioRpcError) as low:  # below current + increment
        await bid(stub, lid, bob, 1_005_000_00)
    assert low.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    clock.advance(250)
    second = await bid(stub, lid, bob, 1_010_000_00)
    assert second.state.next_minimum_bid.fen == 1_020_000_00
    clock.advance(250)
    third = await bid(stub, lid, alice, 1_020_000_00)
    assert _near(second.state.closes_at, t0 + timedelta(seconds=750))
    assert third.state.closes_at.ToDatetime(tzinfo=t0.tzinfo) == t0 + timedelta(seconds=900)  # capped, exactly
    clock.advance(150)  # t = 850: still running (the extension would have been 1000, the hard stop is 900)
    assert (await sale_state(stub, lid)).state == pb.LISTING_STATE_BIDDING
    clock.advance(60)
    result = await eventually(lambda: _result(stub, lid))
    assert result.outcome == "sold" and result.winner_credit_code == alice
    assert result.clearing_price.fen == 1_020_000_00 and result.reserve_price.fen == 1_015_000_00
    trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                            credit_code=alice),
                                     metadata=bidder(alice))).trade
    await eventually(lambda: _settled(stub, trade.trade_id), timeout=20)
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    assert resource.status == rpb.RESOURCE_STATUS_ALLOCATED


async def test_fewer_registered_than_min_bidders_cancels(registry, trading):
    resource_id, (alice,) = await land_world(registry.stub, 1)
    stub, clock = trading.stub, trading.clock
    t0 = clock.now() + ANNOUNCEMENT
    listing = await english(stub, resource_id, t0)
    assert listing.rules.min_bidders == 3  # the policy's minimum, fixed with the publication
    lid = listing.listing_id
    await register(stub, lid, alice)
    advance_to(clock, t0)
    result = await eventually(lambda: _result(stub, lid))
    assert result.outcome == "cancelled" and result.reason == "insufficient_bidders"
    await eventually(lambda: _resource_available(registry, resource_id))
    await eventually(lambda: _held_zero(registry, alice))


def _near(stamp, moment, slack: float = 5.0) -> bool:
    # The controllable clock moves with real time too: a bid lands a few milliseconds after the advance.
    return abs((stamp.ToDatetime(tzinfo=moment.tzinfo) - moment).total_seconds()) < slack


async def _running(stub, lid, t0):
    state = await sale_state(stub, lid)
    return state if state.closes_at.ToDatetime(tzinfo=t0.tzinfo) > t0 + timedelta(seconds=100) else None


async def _result(stub, lid):
    try:
        return (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    except grpc.aio.AioRpcError:
        return None


async def test_an_auction_for_fewer_than_three_bidders_is_refused_at_publication(registry, trading):
    resource_id, _ = await land_world(registry.stub, 0)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await english(trading.stub, resource_id, trading.clock.now() + ANNOUNCEMENT, min_bidders=2)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(refused.value) == "MIN_BIDDERS_TOO_LOW"
    assert "land.auction_min_bidders" in refused.value.details()


async def _settled(stub, trade_id):
    trade = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade_id), metadata=regulator())).trade
    return trade.settlement_state == pb.SETTLEMENT_STATE_SETTLED


async def _resource_available(registry, resource_id):
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    return resource.status == rpb.RESOURCE_STATUS_AVAILABLE


async def _held_zero(registry, code):
    accounts = (await registry.stub.ListAccounts(rpb.ListAccountsRequest(holder=code, instrument="CNY"),
                                                 metadata=regulator())).accounts
    return accounts[0].held.value == "0"
