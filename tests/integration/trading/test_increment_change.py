"""增价幅度 changes during a sale (§5.1, §5.3: "the increment may be changed", each change logged and announced),
over gRPC against a real registry and NATS: the listing agency changes it while a 挂牌 is open and while a
拍卖 runs; bidders see the new increment and next minimum in the sale state and live on `trading.>`; the
change is a change notice with the old and new value and a journal entry; nobody else may change it.

Hand-worked (挂牌): start 1,000,000.00, increment 10,000.00. A quotes 1,000,000 → minimum 1,010,000. The
agency raises the increment to 50,000.00 → minimum 1,050,000; B's 1,010,000 is refused, 1,050,000 accepted.
"""

from __future__ import annotations

import json

import grpc
import nats
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.events.envelope import parse
from tests.integration.trading.support import (
    ANNOUNCEMENT,
    admin,
    advance_to,
    agency,
    bidder,
    bidding_listing,
    eventually,
    fen,
    grantor,
    key,
    land_world,
    refused,
    regulator,
)
from tests.integration.trading.test_auctions import _running, english, register
from tests.support.grpc_errors import field_violations, reason


async def change(stub, lid, increment, why="竞价活跃，调整增价幅度", *, metadata=None, idem=None):
    return await stub.ChangeIncrement(pb.ChangeIncrementRequest(
        idempotency_key=idem or key(), listing_id=lid, increment=fen(increment), reason=why),
        metadata=metadata or grantor())


async def quote(stub, lid, code, amount):
    return await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                  price=fen(amount)), metadata=bidder(code))


async def test_the_listing_agency_changes_the_increment_and_bidders_see_it(registry, trading, nats_server):
    nc = await nats.connect(nats_server.url)
    seen: list[dict] = []

    async def collect(msg):
        _, data = parse(msg.data)
        seen.append(data)
    await nc.subscribe("trading.sale.increment_changed", cb=collect)
    try:
        resource_id, (alice, bob) = await land_world(registry.stub, 2)
        stub = trading.stub
        listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
        lid = listing.listing_id
        for code in (alice, bob):
            await register(stub, lid, code)
        await quote(stub, lid, alice, 1_000_000_00)

        first = await change(stub, lid, 50_000_00, idem="raise-1")
        assert first.state.increment.fen == 50_000_00 and first.state.next_minimum_bid.fen == 1_050_000_00
        assert first.notice.changed_fields == ["increment"] and first.notice.reason == "竞价活跃，调整增价幅度"
        assert (first.notice.increment.fen, first.notice.previous_increment.fen) == (50_000_00, 10_000_00)
        again = await change(stub, lid, 50_000_00, idem="raise-1")  # a retry answers the first result
        assert again.notice == first.notice

        # Every bidder (and the public) reads the new increment in the sale state …
        state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=bidder(bob))).state
        assert state.increment.fen == 50_000_00 and state.next_minimum_bid.fen == 1_050_000_00
        assert state.version == first.notice.version
        # … and bids are held to it.
        low = await refused(quote(stub, lid, bob, 1_010_000_00))
        assert low.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(low) == "QUOTE_TOO_LOW"
        await quote(stub, lid, bob, 1_050_000_00)
        after = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=bidder(alice))).state
        assert after.next_minimum_bid.fen == 1_100_000_00

        # Announced: a change notice anyone can read, and a live fact with the new minimum.
        notices = (await stub.ListChangeNotices(pb.ListChangeNoticesRequest(listing_id=lid), metadata=bidder(bob))).notices
        assert [(n.changed_fields, n.increment.fen) for n in notices] == [(["increment"], 50_000_00)]
        await eventually(_arrived(seen))
        fact = seen[0]
        assert (fact["listing_id"], fact["increment_fen"], fact["previous_increment_fen"],
                fact["next_minimum_bid_fen"]) == (lid, 50_000_00, 10_000_00, 1_050_000_00)
        assert "credit_code" not in json.dumps(fact) and "reserve" not in json.dumps(fact)

        # Logged: the journal names who changed it, from what to what, and still verifies.
        verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=regulator())
        assert verified.intact
    finally:
        await nc.close()


async def test_only_the_listing_agency_changes_the_increment_and_only_while_bidding(registry, trading):
    resource_id, (alice,) = await land_world(registry.stub, 1)
    stub = trading.stub
    listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    lid = listing.listing_id
    await register(stub, lid, alice)
    for metadata in (bidder(alice), regulator(), admin(), agency("AG-T-OTHER")):
        denied = await refused(change(stub, lid, 20_000_00, metadata=metadata))
        assert denied.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    bad = await refused(change(stub, lid, 0, why=""))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(bad)) == {"increment.fen", "reason"}
    same = await refused(change(stub, lid, 10_000_00))
    assert reason(same) == "INCREMENT_UNCHANGED"
    assert not (await stub.ListChangeNotices(pb.ListChangeNoticesRequest(listing_id=lid), metadata=admin())).notices
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=admin())).state
    assert state.increment.fen == 10_000_00 and state.version == listing.version


async def test_the_auctioneer_changes_the_increment_of_a_running_english_auction(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    t0 = clock.now() + ANNOUNCEMENT
    lid = (await english(stub, resource_id, t0)).listing_id
    for code in (alice, bob, carol):
        await register(stub, lid, code)
    early = await refused(change(stub, lid, 20_000_00))  # not running yet: the announcement fixes it
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    advance_to(clock, t0, extra=0)
    await eventually(lambda: _running(stub, lid, t0))
    await quote(stub, lid, alice, 1_000_000_00)
    changed = await change(stub, lid, 20_000_00, "拍卖师调整加价幅度")
    assert changed.state.increment.fen == 20_000_00 and changed.state.next_minimum_bid.fen == 1_020_000_00
    assert changed.notice.previous_increment.fen == 10_000_00
    low = await refused(quote(stub, lid, bob, 1_010_000_00))
    assert reason(low) == "BID_TOO_LOW"
    await quote(stub, lid, bob, 1_020_000_00)




def _arrived(seen: list):
    async def probe():
        return bool(seen)
    return probe
