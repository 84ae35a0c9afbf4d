"""招标 over gRPC against a real registry: sealed bids with a receipt (commitment digest) the bidder can
recompute, amounts on no read path and in no event before the opening time, award at opening by price,
deposits released, 成交确认书 and settlement like 挂牌; and the comprehensive-score rule (no evaluation
score recorded → 0, so the price decides)."""

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
from tests.integration.trading.support import GRANTOR, admin, as_user, eventually, fen, key, land_world, ts

SECRETS = ("123456789", "123987654")


async def tender(stub, resource_id, now, **rules) -> pb.Listing:
    listing = pb.Listing(
        mechanism=pb.MECHANISM_TENDER, agency_id=GRANTOR, resource_id=resource_id, title="测试地块招标出让",
        quantity=common_pb2.Quantity(value="50", unit="亩"),
        rules=pb.ListingRules(start_price=fen(100_000_000), deposit=fen(20_000_000), **rules),
        bidding_opens_at=ts(now - timedelta(hours=1)), bidding_closes_at=ts(now + timedelta(hours=1)),
        opening_at=ts(now + timedelta(hours=2)))
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                        metadata=admin())).listing
    return (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=created.listing_id),
                                      metadata=admin())).listing


async def register(stub, lid, code):
    return (await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid,
                                                               credit_code=code),
                                      metadata=as_user(f"enterprise:{code}"))).registration


async def bid(stub, lid, code, amount):
    return (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                   price=fen(amount)), metadata=as_user(f"enterprise:{code}"))).bid


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
        lid = (await tender(stub, resource_id, clock.now())).listing_id
        regs = {code: await register(stub, lid, code) for code in (alice, bob, carol)}
        assert all(r.deposit_state == "held" for r in regs.values())
        with pytest.raises(grpc.aio.AioRpcError) as low:
            await bid(stub, lid, carol, 99_999_999)
        assert low.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        a = await bid(stub, lid, alice, 123_456_789)
        assert a.sealed and a.receipt == commitment_digest(lid, regs[alice].bidder_number, 123_456_789, a.nonce)
        await bid(stub, lid, bob, 110_000_000)
        b2 = await bid(stub, lid, bob, 123_987_654)  # a later submission replaces the earlier one
        assert b2.receipt != a.receipt

        responses = []
        for metadata in (admin(), as_user(f"enterprise:{carol}"), as_user(f"agency:{GRANTOR}")):
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
        own = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=alice),
                                   metadata=as_user(f"enterprise:{alice}"))).bids
        assert [x.price.fen for x in own] == [123_456_789]
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())
        await eventually(lambda: _count(seen, "trading.bid.sealed", 3))

        clock.advance(3600 + 60)  # submission closed, not yet opened: still sealed
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await bid(stub, lid, carol, 130_000_000)
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        listed = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=admin())).bids
        assert not _leaks(str(listed))
        for _subject, data in seen:
            assert not _leaks(str(data))

        clock.advance(3600)
        result = await eventually(lambda: _result(stub, lid))
        assert result.outcome == "sold" and result.winner_credit_code == bob
        assert result.clearing_price.fen == 123_987_654 and result.bid_count == 2
        await eventually(lambda: _held(registry, alice, "0"))  # the loser's deposit released
        trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                                credit_code=bob), metadata=as_user(f"enterprise:{bob}"))).trade
        assert trade.amount.fen == 123_987_654
        await eventually(lambda: _settled(stub, trade.trade_id), timeout=20)
        resource = (await registry.stub.GetResource(rpb.GetResourceRequest(resource_id=resource_id),
                                                    metadata=admin())).resource
        assert resource.status == rpb.RESOURCE_STATUS_ALLOCATED
    finally:
        await nc.close()


async def test_comprehensive_score_without_evaluation_scores_uses_zero(registry, trading):
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    lid = (await tender(stub, resource_id, clock.now(), award_rule="comprehensive", price_weight="0.6",
                        evaluation_weight="0.4")).listing_id
    for code in (alice, bob):
        await register(stub, lid, code)
    await bid(stub, lid, alice, 150_000_000)
    await bid(stub, lid, bob, 120_000_000)
    clock.advance(2 * 3600 + 60)
    result = await eventually(lambda: _result(stub, lid))
    # No evaluation service here: both scores are 0, so 0.6 × price score decides (alice 6000 bp > bob 4800).
    assert result.winner_credit_code == alice and result.clearing_price.fen == 150_000_000


async def _count(seen, subject, n):
    return len([s for s, _ in seen if s == subject]) >= n


async def _result(stub, lid):
    try:
        return (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    except grpc.aio.AioRpcError:
        return None


async def _held(registry, code, value):
    accounts = (await registry.stub.ListAccounts(rpb.ListAccountsRequest(holder=code, instrument="CNY"),
                                                 metadata=admin())).accounts
    return accounts[0].held.value == value


async def _settled(stub, trade_id):
    trade = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade_id), metadata=admin())).trade
    return trade.settlement_state == pb.SETTLEMENT_STATE_SETTLED
