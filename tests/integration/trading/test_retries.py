"""A retry with the same idempotency key gets the first answer at once — for every keyed use case that
answers with a fresh read (create, publish, register, confirm award), also on SQLite's single writer."""

from __future__ import annotations

import asyncio

from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import (
    admin,
    bidder,
    eventually,
    fen,
    grantor,
    key,
    land_listing,
    land_world,
    past_close,
    to_bidding,
)

FAST = 10.0  # far below SQLite's busy timeout: a retry that waited on its own transaction would not make it


async def twice(call, request, metadata):
    first = await call(request, metadata=metadata)
    again = await asyncio.wait_for(call(request, metadata=metadata), FAST)
    assert again == first
    return first


async def test_keyed_retries_answer_the_first_result(trading, registry):
    stub, clock = trading.stub, trading.clock
    resource_id, (alice,) = await land_world(registry.stub, 1)
    created = (await twice(stub.CreateListing, pb.CreateListingRequest(
        idempotency_key=key(), listing=land_listing(resource_id, clock.now())), grantor())).listing
    lid = created.listing_id
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(idempotency_key=key(), listing_id=lid,
                                                             reserve_price=fen(1_000_000_00)),
                                 metadata=grantor("staff"))
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(), listing_id=lid),
                                   metadata=grantor("supervisor"))
    listing = (await twice(stub.PublishListing, pb.PublishListingRequest(idempotency_key=key(), listing_id=lid),
                           grantor())).listing
    await twice(stub.RegisterBidder, pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid,
                                                              credit_code=alice), bidder(alice))
    to_bidding(clock, listing)
    await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=alice,
                                           price=fen(1_000_000_00)), metadata=bidder(alice))
    past_close(clock, listing)

    async def awarded():
        got = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing
        return got.state == pb.LISTING_STATE_AWARDED
    await eventually(awarded)
    confirm = pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid, credit_code=alice)
    first = (await stub.ConfirmAward(confirm, metadata=bidder(alice))).trade
    again = (await asyncio.wait_for(stub.ConfirmAward(confirm, metadata=bidder(alice)), FAST)).trade
    assert again.trade_id == first.trade_id
