"""挂牌 end to end over gRPC against a real registry: draft → publish → register (deposit hold) → quotes
→ close outcomes (unsold, single bidder, live round with anti-sniping) → award → 成交确认书 → settlement."""

from __future__ import annotations

import grpc
import pytest
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import (
    GRANTOR,
    admin,
    bidder,
    bidding_listing,
    eventually,
    fen,
    grantor,
    key,
    land_world,
    moment,
    past_close,
    published_listing,
    regulator,
    to_bidding,
)
from tests.integration.trading.support import cny as cny_of


async def register(stub, listing_id, code):
    return (await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=listing_id,
                                                               credit_code=code),
                                      metadata=bidder(code))).registration


async def bid(stub, listing_id, code, amount, idem=None):
    return (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=idem or key(), listing_id=listing_id,
                                                   credit_code=code, price=fen(amount)),
                                metadata=bidder(code))).bid


async def state(stub, listing_id):
    return (await stub.GetListing(pb.GetListingRequest(listing_id=listing_id), metadata=admin())).listing.state


async def cny(registry, code):
    return await cny_of(registry.stub, code)


async def test_single_bidder_sells_and_settles_through_the_registry(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    listing = await published_listing(stub, resource_id, clock.now(), reserve_fen=1_050_000_00)
    # Announced now, its listing period 21 days later (39号令: ≥ 20), counted from this publication.
    assert listing.state == pb.LISTING_STATE_ANNOUNCED and listing.trade_code.startswith("330100TD")
    assert abs((moment(listing.announce_at) - clock.now()).total_seconds()) < 60
    assert listing.reserve_set and not listing.HasField("reserve_price")
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    assert resource.status == rpb.RESOURCE_STATUS_LISTED

    reg = await register(stub, listing.listing_id, alice)  # registration is open from the announcement
    assert reg.state == pb.REGISTRATION_STATE_QUALIFIED and reg.deposit_state == "held" and reg.bidder_number
    assert (await cny(registry, alice)).held.value == str(listing.rules.deposit.fen)
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await bid(stub, listing.listing_id, alice, 1_000_000_00)  # the listing period has not begun
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    to_bidding(clock, listing)
    assert await state(stub, listing.listing_id) == pb.LISTING_STATE_BIDDING
    await register(stub, listing.listing_id, bob)  # registered, never quotes

    with pytest.raises(grpc.aio.AioRpcError) as low:
        await bid(stub, listing.listing_id, alice, 900_000_00)
    assert low.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    first = await bid(stub, listing.listing_id, alice, 1_000_000_00, idem="alice-1")
    again = await bid(stub, listing.listing_id, alice, 1_000_000_00, idem="alice-1")
    assert again.bid_id == first.bid_id and first.sequence == 1
    # Only Alice quoted, 1,000,000 yuan < the reserve of 1,050,000: unsold at close.
    past_close(clock, listing)
    assert await eventually(lambda: _is(stub, listing.listing_id, pb.LISTING_STATE_UNSOLD))
    result = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=listing.listing_id),
                                       metadata=admin())).result
    assert result.outcome == "unsold" and result.reason == "reserve_not_met"
    assert result.reserve_price.fen == 1_050_000_00  # disclosed with the result
    # Deposits released and the parcel back to available, exactly once.
    await eventually(lambda: _held_zero(registry, alice))
    await eventually(lambda: _resource_is(registry, resource_id, rpb.RESOURCE_STATUS_AVAILABLE))


async def test_single_bidder_meeting_the_reserve_wins_and_settles(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    for code in (alice, bob):
        await register(stub, listing.listing_id, code)
    before = int((await cny(registry, alice)).balance.value)
    await bid(stub, listing.listing_id, alice, 1_020_000_00)
    past_close(clock, listing)
    await eventually(lambda: _is(stub, listing.listing_id, pb.LISTING_STATE_AWARDED))
    trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=listing.listing_id,
                                                            credit_code=alice),
                                     metadata=bidder(alice))).trade
    assert trade.price.fen == 1_020_000_00 and trade.confirmed

    async def settled():
        t = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=bidder(alice))).trade
        return t.settlement_state == pb.SETTLEMENT_STATE_SETTLED and t
    done = await eventually(settled)
    assert done.settlement_operation_id
    after = await cny(registry, alice)
    assert before - int(after.balance.value) == 1_020_000_00 and after.held.value == "0"
    assert int((await cny(registry, GRANTOR)).balance.value) == 1_020_000_00
    await eventually(lambda: _held_zero(registry, bob))  # the loser's deposit is released
    resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                metadata=admin())).resource
    assert resource.status == rpb.RESOURCE_STATUS_ALLOCATED
    await eventually(lambda: _is(stub, listing.listing_id, pb.LISTING_STATE_SETTLED))
    verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=regulator())
    assert verified.intact and verified.entries_checked > 5


async def test_two_bidders_go_to_a_live_round_with_anti_sniping(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    lid = listing.listing_id
    for code in (alice, bob, carol):
        await register(stub, lid, code)
    await bid(stub, lid, alice, 1_000_000_00)
    await bid(stub, lid, bob, 1_010_000_00)
    with pytest.raises(grpc.aio.AioRpcError) as own:
        await bid(stub, lid, bob, 1_020_000_00)  # the leader may not outbid itself
    assert "ALREADY_HIGHEST" in str(own.value.details()) or own.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    past_close(clock, listing)
    await eventually(lambda: _is(stub, lid, pb.LISTING_STATE_CLOSED))
    for code in (alice, bob):
        await stub.ConfirmContinue(pb.ConfirmContinueRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                   metadata=bidder(code))
    await eventually(lambda: _is(stub, lid, pb.LISTING_STATE_LIVE_ROUND))
    with pytest.raises(grpc.aio.AioRpcError):
        await bid(stub, lid, carol, 1_100_000_00)  # quoted nothing: not a live-round participant
    clock.advance(200)
    await bid(stub, lid, alice, 1_020_000_00)
    clock.advance(200)  # 400 s since the round started, but the countdown restarted at 200 s
    await bid(stub, lid, bob, 1_030_000_00)
    sale = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=bidder(carol))).state
    assert sale.state == pb.LISTING_STATE_LIVE_ROUND and sale.current_price.fen == 1_030_000_00
    clock.advance(301)
    await eventually(lambda: _is(stub, lid, pb.LISTING_STATE_AWARDED))
    result = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    assert result.outcome == "sold" and result.clearing_price.fen == 1_030_000_00 and result.winner_credit_code == bob
    assert result.bid_count == 4 and result.bidder_count == 2


async def test_no_bids_is_unsold_and_default_offers_the_next_bidder(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    empty = await published_listing(stub, resource_id, clock.now(), reserve_fen=1_000_000_00)
    past_close(clock, empty)
    await eventually(lambda: _is(stub, empty.listing_id, pb.LISTING_STATE_UNSOLD))
    result = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=empty.listing_id),
                                       metadata=admin())).result
    assert result.reason == "no_bids"
    await eventually(lambda: _resource_is(registry, resource_id, rpb.RESOURCE_STATUS_AVAILABLE))

    listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    lid = listing.listing_id
    for code in (alice, bob):
        await register(stub, lid, code)
    await bid(stub, lid, alice, 1_000_000_00)
    await bid(stub, lid, bob, 1_010_000_00)
    past_close(clock, listing)
    await eventually(lambda: _is(stub, lid, pb.LISTING_STATE_CLOSED))
    clock.advance(301)  # nobody confirms: the highest quote wins on the listing
    await eventually(lambda: _is(stub, lid, pb.LISTING_STATE_AWARDED))
    defaulted = (await stub.DeclareDefault(pb.DeclareDefaultRequest(idempotency_key=key(), listing_id=lid,
                                                                    reason="no contract signed"),
                                           metadata=grantor())).result
    assert defaulted.winner_credit_code == alice and defaulted.clearing_price.fen == 1_000_000_00
    # Bob's deposit was forfeited to the grantor.
    await eventually(lambda: _balance_is(registry, GRANTOR, listing.rules.deposit.fen))


async def _is(stub, lid, expected):
    return (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing.state == expected


async def _held_zero(registry, code):
    return (await cny(registry, code)).held.value == "0"


async def _balance_is(registry, holder, fen_value):
    account = await cny(registry, holder)
    return account is not None and int(account.balance.value) == fen_value


async def _resource_is(registry, resource_id, status):
    found = await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id), metadata=regulator())
    return found.resource.status == status

