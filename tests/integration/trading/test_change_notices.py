"""Change notices of a published 挂牌 listing: texts change freely; a change of the conditions after quotes
were made voids those quotes (bids_invalidated), puts every bidder in NEEDS_CONFIRMATION, and only a
bidder that confirms the new conditions (ConfirmContinue) quotes again — from the start price."""

from __future__ import annotations

import grpc
import pytest
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import bidder, bidding_listing, fen, grantor, key, land_world, regulator
from tests.support.grpc_errors import reason


async def test_condition_change_after_bids_invalidates_them_and_bidders_confirm_again(trading, registry):
    stub = trading.stub
    resource_id, (alice, bob) = await land_world(registry.stub, 2)
    listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    lid, start = listing.listing_id, listing.rules.start_price.fen
    for code in (alice, bob):
        await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                  metadata=bidder(code))
    first = (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=alice,
                                                    price=fen(start)), metadata=bidder(alice))).bid
    await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=bob,
                                           price=fen(start + 10_000_00)), metadata=bidder(bob))

    texts = await stub.UpdateListing(pb.UpdateListingRequest(
        idempotency_key=key(), listing=pb.Listing(listing_id=lid, title="更正：地块名称"), change_reason="错别字"),
        metadata=grantor())
    assert not texts.notice.bids_invalidated  # a text change binds nobody anew

    change_key = key()
    request = pb.UpdateListingRequest(idempotency_key=change_key, listing=pb.Listing(
        listing_id=lid, performance=pb.PerformanceTerms(checks={"亩均税收": "≥ 50 万元/亩"})),
        change_reason="补充履约条件")
    changed = await stub.UpdateListing(request, metadata=grantor())
    assert changed.notice.bids_invalidated and changed.notice.version == 3
    assert await stub.UpdateListing(request, metadata=grantor()) == changed  # a retry: same notice, nothing more
    notices = (await stub.ListChangeNotices(pb.ListChangeNoticesRequest(listing_id=lid), metadata=bidder(bob))).notices
    assert [(n.version, n.bids_invalidated) for n in notices] == [(2, False), (3, True)]

    for code in (alice, bob):
        reg = (await stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=code),
                                          metadata=bidder(code))).registration
        assert reg.state == pb.REGISTRATION_STATE_NEEDS_CONFIRMATION
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=regulator())).state
    assert (state.accepted_bids, state.current_price.fen, state.next_minimum_bid.fen) == (0, 0, start)
    bids = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=regulator())).bids
    assert {b.state for b in bids} == {pb.BID_STATE_SUPERSEDED}
    assert all("change notice v3" in b.refusal_reason for b in bids)

    with pytest.raises(grpc.aio.AioRpcError) as unconfirmed:
        await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=bob,
                                               price=fen(start)), metadata=bidder(bob))
    assert reason(unconfirmed.value) == "NOT_REGISTERED"
    confirm_key = key()
    confirmed = (await stub.ConfirmContinue(pb.ConfirmContinueRequest(
        idempotency_key=confirm_key, listing_id=lid, credit_code=bob), metadata=bidder(bob))).registration
    assert confirmed.state == pb.REGISTRATION_STATE_QUALIFIED
    again = (await stub.ConfirmContinue(pb.ConfirmContinueRequest(
        idempotency_key=confirm_key, listing_id=lid, credit_code=bob), metadata=bidder(bob))).registration
    assert again.state == pb.REGISTRATION_STATE_QUALIFIED
    fresh = (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=bob,
                                                    price=fen(start)), metadata=bidder(bob))).bid
    assert fresh.state == pb.BID_STATE_ACCEPTED and fresh.sequence > first.sequence
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=regulator())).state
    assert (state.accepted_bids, state.current_price.fen) == (1, start)
