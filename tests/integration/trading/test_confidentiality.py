"""Before the sale is decided no RPC, event, log line or metric exposes the reserve price (底价);
after the decision the result discloses it. Events are read from the real nats-server."""

from __future__ import annotations

import asyncio
import logging
import urllib.request

import nats
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.events.envelope import parse
from tests.integration.trading.support import (
    admin,
    bidder,
    bidding_listing,
    centre,
    eventually,
    fen,
    grantor,
    key,
    land_world,
    past_close,
    published_listing,
    regulator,
)

RESERVE = 1_234_567_89  # distinctive digits to search for


async def test_reserve_is_disclosed_by_no_read_path_before_the_decision(registry, trading, nats_server, caplog):
    caplog.set_level(logging.DEBUG)
    nc = await nats.connect(nats_server.url)
    seen: list[tuple[str, dict, bytes]] = []

    async def collect(msg):
        envelope, data = parse(msg.data)
        seen.append((msg.subject, data, msg.data))
    await nc.subscribe("trading.>", cb=collect)
    try:
        resource_id, (alice, bob) = await land_world(registry.stub, 2)
        stub, clock = trading.stub, trading.clock
        listing = await bidding_listing(trading, resource_id, reserve_fen=RESERVE, start=1_000_000_00)
        lid = listing.listing_id
        for code in (alice, bob):
            await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                      metadata=bidder(code))
        await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=alice,
                                               price=fen(1_000_000_00)), metadata=bidder(alice))
        await stub.UpdateListing(pb.UpdateListingRequest(idempotency_key=key(), listing=pb.Listing(
            listing_id=lid, description="补充说明"), change_reason="补充公告"), metadata=grantor())
        responses = []
        for metadata in (regulator(), bidder(alice), grantor(), centre()):
            responses += [
                await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=metadata),
                await stub.ListListings(pb.ListListingsRequest(), metadata=metadata),
                await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=metadata),
                await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata),
                await stub.ListRegistrations(pb.ListRegistrationsRequest(listing_id=lid), metadata=metadata),
                await stub.ListChangeNotices(pb.ListChangeNoticesRequest(listing_id=lid), metadata=metadata),
                await stub.ListTrades(pb.ListTradesRequest(listing_id=lid), metadata=metadata),
            ]
        for metadata in (bidder(alice), centre()):
            responses.append(await stub.GetRegistration(pb.GetRegistrationRequest(listing_id=lid, credit_code=alice),
                                                        metadata=metadata))
        for response in responses:
            assert str(RESERVE) not in str(response) and "1234567" not in str(response)
            assert RESERVE.to_bytes(8, "little").rstrip(b"\0") not in response.SerializeToString()
        await eventually(lambda: _has(seen, "trading.bid.accepted"))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{trading.metrics_port}/metrics").read().decode()
        assert "1234567" not in metrics
        for subject, data, _raw in seen:
            assert "1234567" not in str(data), subject
        assert "1234567" not in caplog.text

        past_close(clock, listing)  # one bidder below the reserve → unsold, and the reserve is disclosed
        await eventually(lambda: _state(stub, lid, pb.LISTING_STATE_UNSOLD))
        result = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
        assert result.reserve_price.fen == RESERVE and result.reason == "reserve_not_met"
        listing = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing
        assert listing.reserve_price.fen == RESERVE
    finally:
        await nc.close()


async def test_a_sealed_reserve_before_decision_cannot_be_read_even_by_admin(registry, trading):
    resource_id, _ = await land_world(registry.stub, 1)
    listing = await published_listing(trading.stub, resource_id, trading.clock.now(), reserve_fen=RESERVE)
    got = (await trading.stub.GetListing(pb.GetListingRequest(listing_id=listing.listing_id),
                                         metadata=admin())).listing
    assert got.reserve_set and not got.HasField("reserve_price")
    try:
        await trading.stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=listing.listing_id), metadata=admin())
    except Exception as exc:  # noqa: BLE001
        assert "NOT_DECIDED" in str(exc) or "not decided" in str(exc)
    else:
        raise AssertionError("a result before the decision")


async def _has(seen, subject):
    await asyncio.sleep(0)
    return any(s == subject for s, _, _ in seen)


async def _state(stub, lid, expected):
    return (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing.state == expected
