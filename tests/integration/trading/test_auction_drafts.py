"""Bid drafts in the auctions, as in 挂牌 (CreateBid → SubmitBid), over gRPC: a draft is its bidder's alone —
no event, no count, no part of the clearing — until it is submitted; a sealed sale's draft shows its amounts
to its bidder only and keeps them sealed at rest; the submitted bid keeps the draft's id, and submitting
twice answers the same bid."""

from __future__ import annotations

import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import bidder, centre, eventually, fen, key, land_world, refused, regulator
from tests.integration.trading.test_tender import _result, tender
from tests.integration.trading.test_tender import bid as tender_bid
from tests.integration.trading.test_tender import register as tender_register
from tests.integration.trading.test_uniform_auction import LOT, _decided, auction, issuing_agency, quota_world, register
from tests.support.grpc_errors import reason


async def create(stub, lid, code, price, lots):
    return (await stub.CreateBid(pb.CreateBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                     price=fen(price), quantity_lots=lots),
                                 metadata=bidder(code))).bid


async def submit(stub, bid_id, code, idem=None):
    return await stub.SubmitBid(pb.SubmitBidRequest(idempotency_key=idem or key(), bid_id=bid_id, credit_code=code),
                                metadata=bidder(code))


async def own_bids(stub, lid, code):
    return (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=code), metadata=bidder(code))).bids


async def stored_bid(database_url: str, bid_id: str) -> dict:
    """The bid's row as trading stored it (what a copy of the database would show)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(text("SELECT * FROM bids WHERE bid_id = :b"), {"b": bid_id})).mappings()
            return dict(row.one())
    finally:
        await engine.dispose()


async def test_a_sealed_quota_bid_is_drafted_then_submitted(registry, trading, database_url):
    a, b = await quota_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    lid = (await auction(stub, clock.now())).listing_id
    for code in (a, b):
        await register(stub, lid, code, 10 * LOT * 30_000)
    unregistered = await refused(create(stub, lid, "91330100MA00000000", 20_000, 1))
    assert unregistered.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION)

    drafted = await create(stub, lid, a, 26_137, 3)
    assert drafted.state == pb.BID_STATE_DRAFT and (drafted.price.fen, drafted.quantity_lots) == (26_137, 3)
    [mine] = await own_bids(stub, lid, a)
    assert mine.bid_id == drafted.bid_id and (mine.price.fen, mine.quantity_lots) == (26_137, 3)
    assert not await own_bids(stub, lid, b)  # b's own list: nothing of a's
    # Not a bid yet: the trading centre counts none, and at rest the amount is sealed.
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=centre())).state
    assert state.accepted_bids == 0
    stored = await stored_bid(database_url, drafted.bid_id)
    assert "26137" not in str(stored) and stored["price_fen"] == 0

    first = await submit(stub, drafted.bid_id, a, idem="submit-1")
    assert first.bid.bid_id == drafted.bid_id and first.bid.state == pb.BID_STATE_ACCEPTED and first.bid.receipt
    again = await submit(stub, drafted.bid_id, a)  # submitting twice answers the submitted bid
    assert again.bid.bid_id == drafted.bid_id and again.bid.receipt == first.bid.receipt
    other = await refused(submit(stub, drafted.bid_id, b))  # somebody else's bid does not exist for b
    assert other.code() == grpc.StatusCode.NOT_FOUND
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=centre())).state
    assert state.accepted_bids == 1

    never = await create(stub, lid, b, 30_000, 10)  # a draft never submitted takes no part in the clearing
    assert never.state == pb.BID_STATE_DRAFT
    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, lid))
    assert [(x.lots, x.amount.fen) for x in result.allocations] == [(3, 3 * LOT * 10_000)]
    late = await refused(submit(stub, never.bid_id, b))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Each allocation settled at the clearing out of the guarantee: nothing waits that could be defaulted.
    nothing = await refused(stub.DeclareDefault(pb.DeclareDefaultRequest(
        idempotency_key=key(), listing_id=lid, reason="未付款"), metadata=issuing_agency()))
    assert reason(nothing) == "SETTLED_AT_CLEARING"


async def test_a_regulator_sees_no_draft(registry, trading):
    a, = await quota_world(registry.stub, 1)
    stub, clock = trading.stub, trading.clock
    lid = (await auction(stub, clock.now())).listing_id
    await register(stub, lid, a, 10 * LOT * 30_000)
    await create(stub, lid, a, 20_000, 2)
    for metadata in (regulator(), centre()):
        assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata)).bids


async def test_a_tender_bid_is_drafted_then_submitted_and_opened(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    lid = (await tender(trading, resource_id)).listing_id
    for code in (alice, bob, carol):
        await tender_register(stub, lid, code)
    drafted = await create(stub, lid, alice, 150_137_000, 0)
    assert drafted.state == pb.BID_STATE_DRAFT and drafted.sealed and drafted.price.fen == 150_137_000
    submitted = (await submit(stub, drafted.bid_id, alice)).bid
    assert submitted.bid_id == drafted.bid_id and submitted.receipt and submitted.sealed
    await tender_bid(stub, lid, bob, 140_000_000)
    await tender_bid(stub, lid, carol, 100_000_000)
    clock.advance(2 * 3600 + 60)
    result = await eventually(lambda: _result(stub, lid))
    assert (result.winner_credit_code, result.clearing_price.fen) == (alice, 150_137_000)
