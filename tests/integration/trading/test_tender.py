"""招标 over gRPC against a real registry: sealed bids with a receipt (commitment digest) the bidder can
recompute, amounts on no read path and in no event before the opening time — nor who bid, how many or
when (no per-bid event, no count to anyone but the trading centre) —, award at opening by price (the
receipts published with the result), deposits released, 成交确认书 and settlement like 挂牌; and the
comprehensive-score rule (no evaluation score recorded → 0, so the price decides)."""

from __future__ import annotations

import re
from datetime import timedelta

import grpc
import nats
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.events.envelope import parse
from services.trading.domain.tender import commitment_digest
from tests.integration.trading.support import (
    ANNOUNCEMENT,
    GRANTOR,
    admin,
    bidder,
    centre,
    eventually,
    fen,
    grantor,
    key,
    land_world,
    publish,
    regulator,
    to_bidding,
    ts,
)
from tests.support.grpc_errors import reason

SECRETS = ("123456789", "123987654")


def tender_listing(resource_id, now, **rules) -> pb.Listing:
    """A 招标 announced `now` (39号令: ≥ 20 days before submissions open), submissions for an hour, opened an
    hour later."""
    opens = now + ANNOUNCEMENT
    return pb.Listing(
        mechanism=pb.MECHANISM_TENDER, agency_id=GRANTOR, resource_id=resource_id, title="测试地块招标出让",
        quantity=common_pb2.Quantity(value="50", unit="亩"),
        rules=pb.ListingRules(start_price=fen(100_000_000), deposit=fen(20_000_000), **rules),
        bidding_opens_at=ts(opens), bidding_closes_at=ts(opens + timedelta(hours=1)),
        opening_at=ts(opens + timedelta(hours=2)))


async def tender(trading, resource_id, **rules) -> pb.Listing:
    """Published now; the clock moved to the opening of submissions."""
    listing = await publish(trading.stub, tender_listing(resource_id, trading.clock.now(), **rules))
    to_bidding(trading.clock, listing)
    return listing


async def register(stub, lid, code):
    return (await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid,
                                                               credit_code=code),
                                      metadata=bidder(code))).registration


async def bid(stub, lid, code, amount):
    return (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                   price=fen(amount)), metadata=bidder(code))).bid


def _leaks(text: str) -> bool:
    return any(re.search(rf"\b{s}\b", text) for s in SECRETS)


async def test_sealed_tender_opens_by_price_and_settles(registry, trading, nats_server):
    nc = await nats.connect(nats_server.url)
    seen = []

    async def collect(msg):
        seen.append((msg.subject, parse(msg.data)[1]))
    await nc.subscribe("trading.>", cb=collect)
    try:
        resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
        stub, clock = trading.stub, trading.clock
        lid = (await tender(trading, resource_id)).listing_id
        regs = {code: await register(stub, lid, code) for code in (alice, bob, carol)}
        assert all(r.deposit_state == "held" for r in regs.values())
        with pytest.raises(grpc.aio.AioRpcError) as low:
            await bid(stub, lid, carol, 99_999_999)
        assert low.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # below the public start price
        await bid(stub, lid, carol, 105_000_000)  # three bidders: the policy's minimum (39号令)
        a = await bid(stub, lid, alice, 123_456_789)
        assert a.sealed and a.receipt == commitment_digest(lid, regs[alice].bidder_number, 123_456_789, a.nonce)
        await bid(stub, lid, bob, 110_000_000)
        b2 = await bid(stub, lid, bob, 123_987_654)  # a later submission replaces the earlier one
        assert b2.receipt != a.receipt

        responses = []
        for metadata in (regulator(), bidder(carol), grantor(), centre()):
            responses += [await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=metadata),
                          await stub.ListListings(pb.ListListingsRequest(), metadata=metadata),
                          await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=metadata),
                          await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata),
                          await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=alice),
                                              metadata=metadata),
                          await stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid),
                                                       metadata=metadata),
                          await stub.ListTrades(pb.ListTradesRequest(listing_id=lid), metadata=metadata)]
        for response in responses:
            assert not _leaks(str(response)), response
        # Who took part, how many and when: nobody but the trading centre, before the opening.
        for metadata in (regulator(), bidder(carol), grantor()):
            state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=metadata)).state
            assert state.registered_bidders == 0 and state.accepted_bids == 0
            assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata)).bids
            listed = (await stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid), metadata=metadata))
            # Each enterprise sees its own registration; the grantor and regulators none before the opening.
            assert [r.credit_code for r in listed.registrations] == ([carol] if metadata == bidder(carol) else [])
        watched = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=centre())).state
        assert watched.registered_bidders == 3
        submitted = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=centre())).bids
        assert len(submitted) == 4 and all(b.sealed and not b.price.fen for b in submitted)
        own = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=alice),
                                   metadata=bidder(alice))).bids
        assert [x.price.fen for x in own] == [123_456_789]
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())

        clock.advance(3600 + 60)  # submission closed, not yet opened: still sealed
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await bid(stub, lid, carol, 130_000_000)
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        listed = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=centre())).bids
        assert not _leaks(str(listed))
        # No event told anyone who registered or bid, or when: nothing of the sale since its publication.
        assert [s for s, _ in seen if s != "trading.listing.published"] == []

        clock.advance(3600)
        result = await eventually(lambda: _result(stub, lid))
        assert result.outcome == "sold" and result.winner_credit_code == bob
        assert result.clearing_price.fen == 123_987_654 and result.bid_count == 3
        # Opened: the receipts are published, so each bidder can check that its bid was counted.
        opened = await eventually(lambda: _event(seen, "trading.tender.opened"))
        assert a.receipt in opened["receipts"] and b2.receipt in opened["receipts"]
        assert opened["registered_bidders"] == 3
        counts = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=bidder(carol))).state
        assert counts.registered_bidders == 3  # after the opening the count is public
        await eventually(lambda: _held(registry, alice, "0"))  # the loser's deposit released
        trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                                credit_code=bob), metadata=bidder(bob))).trade
        assert trade.amount.fen == 123_987_654
        await eventually(lambda: _settled(stub, trade.trade_id), timeout=20)
        resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                    metadata=admin())).resource
        assert resource.status == rpb.RESOURCE_STATUS_ALLOCATED
    finally:
        await nc.close()


async def test_comprehensive_score_without_evaluation_scores_uses_zero(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    lid = (await tender(trading, resource_id, award_rule="comprehensive", price_weight="0.6",
                        evaluation_weight="0.4")).listing_id
    for code in (alice, bob, carol):
        await register(stub, lid, code)
    await bid(stub, lid, alice, 150_000_000)
    await bid(stub, lid, bob, 120_000_000)
    await bid(stub, lid, carol, 100_000_000)
    clock.advance(2 * 3600 + 60)
    result = await eventually(lambda: _result(stub, lid))
    # No evaluation service here: both scores are 0, so 0.6 × price score decides (alice 6000 bp > bob 4800).
    assert result.winner_credit_code == alice and result.clearing_price.fen == 150_000_000


async def test_a_secret_biaodi_decides_at_the_opening_and_is_published_with_the_result(registry, trading):
    # The 标底 (secret, entered by one person and approved by another, never below the national minimum)
    # refuses nothing on entry: a bid under it is accepted like any other and simply cannot win.
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    draft = tender_listing(resource_id, clock.now(), reserve_floor=fen(110_000_000))
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=draft),
                                        metadata=grantor())).listing
    lid = created.listing_id
    with pytest.raises(grpc.aio.AioRpcError) as low:
        await stub.EnterReservePrice(pb.EnterReservePriceRequest(
            idempotency_key=key(), listing_id=lid, reserve_price=fen(109_999_999)), metadata=grantor("staff"))
    assert reason(low.value) == "RESERVE_BELOW_FLOOR"
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(
        idempotency_key=key(), listing_id=lid, reserve_price=fen(125_000_000)), metadata=grantor("staff"))
    with pytest.raises(grpc.aio.AioRpcError) as unapproved:
        await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid), metadata=grantor())
    assert reason(unapproved.value) == "RESERVE_NOT_APPROVED"
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(), listing_id=lid),
                                   metadata=grantor("supervisor"))
    listing = (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid),
                                         metadata=grantor())).listing
    assert not listing.reserve_price.fen and listing.rules.min_bidders == 3
    with pytest.raises(grpc.aio.AioRpcError) as locked:  # fixed with the announcement
        await stub.EnterReservePrice(pb.EnterReservePriceRequest(
            idempotency_key=key(), listing_id=lid, reserve_price=fen(101_000_000)), metadata=grantor("staff"))
    assert reason(locked.value) == "RESERVE_LOCKED"
    to_bidding(clock, listing)
    for code, amount in ((alice, 120_000_000), (bob, 130_000_000), (carol, 124_999_999)):
        await register(stub, lid, code)
        assert (await bid(stub, lid, code, amount)).sealed  # below the 标底 or not: accepted alike
    seen = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=regulator())).listing
    assert not seen.reserve_price.fen  # sealed until the opening
    clock.advance(2 * 3600 + 60)
    result = await eventually(lambda: _result(stub, lid))
    assert (result.outcome, result.winner_credit_code, result.clearing_price.fen) == ("sold", bob, 130_000_000)
    assert result.reserve_price.fen == 125_000_000 and result.bid_count == 3


async def test_a_tender_with_fewer_bidders_than_the_policy_asks_is_unsuccessful(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    with pytest.raises(grpc.aio.AioRpcError) as lax:  # a listing may not ask for fewer than the policy's three
        await tender(trading, resource_id, min_bidders=2)
    assert reason(lax.value) == "MIN_BIDDERS_TOO_LOW"
    lid = (await tender(trading, resource_id)).listing_id
    for code, amount in ((alice, 150_000_000), (bob, 140_000_000)):
        await register(stub, lid, code)
        await bid(stub, lid, code, amount)
    clock.advance(2 * 3600 + 60)
    result = await eventually(lambda: _result(stub, lid))
    assert (result.outcome, result.reason, result.winner_credit_code) == ("unsold", "too_few_bidders", "")
    await eventually(lambda: _held(registry, alice, "0"))
    await eventually(lambda: _held(registry, bob, "0"))


async def _event(seen, subject):
    return next((data for s, data in seen if s == subject), None)


async def _result(stub, lid):
    try:
        return (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    except grpc.aio.AioRpcError:
        return None


async def _held(registry, code, value):
    accounts = (await registry.stub.ListAccounts(rpb.ListAccountsRequest(holder=code, instrument="CNY"),
                                                 metadata=regulator())).accounts
    return accounts[0].held.value == value


async def _settled(stub, trade_id):
    trade = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade_id), metadata=regulator())).trade
    return trade.settlement_state == pb.SETTLEMENT_STATE_SETTLED
