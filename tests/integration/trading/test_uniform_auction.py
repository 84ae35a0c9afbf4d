"""Uniform-price quota auction over gRPC against a real registry: guarantees held at registration, sealed
bids (before the window closes: the receipt to its bidder only — no event, no count, no time to anyone
but the trading centre; the receipts published when cleared), modify/withdraw, guarantee
refusal, purchase cap across affiliates, a tie at the clearing price broken by the published seed, results
in two steps, DvP settlement from the issuer's reserve account, losers' guarantees voided.

Hand-worked (supply 10 lots × 100 tce, reserve 100.00 元/tce, cap 5 lots per affiliation group, marginal
accepted price): A 313.37 × 4, D (A's affiliate) 291.71 × 3 → cut to 1 by the cap, B 284.53 × 3 and
C 284.53 × 3 tie for the remaining 5 lots (seed order: 3 then 2), E 207.77 × 2 loses. Clearing 284.53."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import nats
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.events.envelope import parse
from services.trading.domain.clearing import tie_ranks
from tests.integration.trading.support import (
    TRADING_CENTRE,
    admin,
    agency,
    bidder,
    centre,
    eventually,
    fen,
    funded_enterprise,
    key,
    register_agency,
    regulator,
    ts,
)
from tests.support.grpc_errors import field_violations, reason

ISSUER = "AG-T-FGW"
INSTRUMENT = "energy_use_right:330100:2025"
LOT = 100


def issuing_agency() -> list[tuple[str, str]]:
    return agency(ISSUER, "issuer")


async def quota_world(registry_stub, bidders: int, reserve_units: int = 100_000) -> list[str]:
    """The issuing agency with the instrument in its reserve account, and funded bidders."""
    await register_agency(registry_stub, ISSUER, "测试发改委", rpb.AGENCY_ROLE_ISSUER)
    await register_agency(registry_stub, TRADING_CENTRE, "测试公共资源交易中心", rpb.AGENCY_ROLE_TRADING_CENTRE)
    await registry_stub.DefineInstrument(rpb.DefineInstrumentRequest(idempotency_key=key(), instrument=rpb.Instrument(
        code=INSTRUMENT, kind="energy_use_right", unit="tce", scale=3, vintage=2025, region_code="330100",
        issuer_agency_id=ISSUER)), metadata=issuing_agency())
    reserve = (await registry_stub.OpenAccount(rpb.OpenAccountRequest(
        idempotency_key=key(), holder=ISSUER, instrument=INSTRUMENT), metadata=issuing_agency())).account
    await registry_stub.Issue(rpb.IssueRequest(idempotency_key=key(), issuer_agency_id=ISSUER,
                                               to_account_id=reserve.account_id,
                                               quantity=common_pb2.Quantity(value=str(reserve_units))),
                              metadata=issuing_agency())
    return [await funded_enterprise(registry_stub, 100_000_000) for _ in range(bidders)]


BEIJING = ZoneInfo("Asia/Shanghai")


def _opened_today(now: datetime) -> datetime:
    """Bidding already open, but never before the Beijing day of publication: the sale policy counts the
    announcement in Beijing calendar days, and an opening on the day before publication is refused."""
    midnight = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(hours=1), midnight.astimezone(UTC))


async def auction(stub, now, affiliations=None, supply=10, cap=5, **undersubscription) -> pb.Listing:
    created = await draft(stub, now, affiliations, supply, cap, **undersubscription)
    return (await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=created.listing_id),
                                      metadata=issuing_agency())).listing


async def draft(stub, now, affiliations=None, supply=10, cap=5, **undersubscription) -> pb.Listing:
    listing = pb.Listing(
        mechanism=pb.MECHANISM_UNIFORM_PRICE, agency_id=ISSUER, instrument=INSTRUMENT, title="2025年度用能权有偿发放",
        quantity=common_pb2.Quantity(unit="tce"),
        rules=pb.ListingRules(start_price=fen(10_000), increment=fen(1), supply_lots=supply, lot_size=str(LOT),
                              bidder_cap_lots=cap, clearing_rule="marginal_accepted",
                              affiliations=affiliations or {}, statistics_delay_seconds=600, **undersubscription),
        bidding_opens_at=ts(_opened_today(now)), bidding_closes_at=ts(now + timedelta(hours=1)))
    return (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                     metadata=issuing_agency())).listing


async def register(stub, lid, code, guarantee):
    return (await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code,
                                                               guarantee=fen(guarantee)),
                                      metadata=bidder(code))).registration


async def bid(stub, lid, code, price, lots, idem=None, confirm=False):
    return (await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=idem or key(), listing_id=lid, credit_code=code,
                                                   price=fen(price), quantity_lots=lots,
                                                   confirm_high_price=confirm),
                                metadata=bidder(code))).bid


def metric(port: int, name: str, mechanism: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    found = re.search(rf'^{name}{{[^}}]*mechanism="{mechanism}"[^}}]*result="accepted"[^}}]*}} (\S+)$'
                      if name == "trading_bids_total" else rf'^{name}{{mechanism="{mechanism}"}} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def result_of(stub, lid):
    return (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=regulator())).result


async def balance(registry, holder, instrument):
    accounts = (await registry.stub.ListAccounts(rpb.ListAccountsRequest(holder=holder, instrument=instrument),
                                                 metadata=regulator())).accounts
    return accounts[0] if accounts else None


SECRET_PRICES = ("31337", "29171", "28453", "25111", "20777", "26000")


async def test_uniform_price_auction_end_to_end(registry, trading, nats_server):
    nc = await nats.connect(nats_server.url)
    seen: list[tuple[str, dict]] = []

    async def collect(msg):
        seen.append((msg.subject, parse(msg.data)[1]))
    await nc.subscribe("trading.>", cb=collect)
    try:
        a, b, c, d, e = await quota_world(registry.stub, 5)
        stub, clock = trading.stub, trading.clock
        listing = await auction(stub, clock.now(), affiliations={a: "G1", d: "G1"})
        lid = listing.listing_id
        assert listing.state == pb.LISTING_STATE_BIDDING and listing.quantity.value == "1000"
        assert len(listing.rules.seed_digest) == 64 and not listing.rules.seed  # digest published, seed sealed

        regs = {code: await register(stub, lid, code, g) for code, g in (
            (a, 12_534_800), (b, 8_535_900), (c, 21_091_400), (d, 8_751_300), (e, 4_155_400))}
        assert all(r.deposit_state == "held" for r in regs.values())
        assert (await balance(registry, c, "CNY")).held.value == "21091400"

        with pytest.raises(grpc.aio.AioRpcError) as collar:  # 313.37 > 3 × the public reserve of 100.00
            await bid(stub, lid, a, 31_337, 4)
        assert collar.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "PRICE_COLLAR" in str(
            collar.value.trailing_metadata())
        first_a = await bid(stub, lid, a, 31_337, 4, idem="a-1", confirm=True)
        assert (await bid(stub, lid, a, 31_337, 4, idem="a-1", confirm=True)).bid_id == first_a.bid_id  # idempotent
        assert first_a.sealed and len(first_a.receipt) == 64 and first_a.price.fen == 31_337  # owner sees it
        await bid(stub, lid, d, 29_171, 3)
        b_bid = await bid(stub, lid, b, 26_000, 2)
        modified = (await stub.ModifyBid(pb.ModifyBidRequest(idempotency_key=key(), bid_id=b_bid.bid_id,
                                                             credit_code=b, price=fen(28_453), quantity_lots=3),
                                         metadata=bidder(b))).bid
        assert modified.bid_id == b_bid.bid_id and modified.receipt != b_bid.receipt
        c_bid = await bid(stub, lid, c, 28_453, 3)
        extra = await bid(stub, lid, c, 25_111, 5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # C's guarantee is fully used
            await bid(stub, lid, c, 30_000, 1)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "GUARANTEE_INSUFFICIENT" in str(refused.value.trailing_metadata()) or \
            "guarantee" in refused.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as below:
            await bid(stub, lid, e, 9_999, 1)
        assert below.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        withdrawn = (await stub.WithdrawBid(pb.WithdrawBidRequest(idempotency_key=key(), bid_id=extra.bid_id,
                                                                  credit_code=c),
                                            metadata=bidder(c))).bid
        assert withdrawn.state == pb.BID_STATE_WITHDRAWN
        await bid(stub, lid, e, 20_777, 2)

        # Sealed: before the window closes no read path shows a price or quantity to anyone but the owner.
        responses = []
        for metadata in (regulator(), bidder(e), issuing_agency(), centre()):
            responses += [await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=metadata),
                          await stub.ListListings(pb.ListListingsRequest(), metadata=metadata),
                          await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=metadata),
                          await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata),
                          await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=a), metadata=metadata)]
        for response in responses:
            assert not _leaks(str(response)), response
        for metadata in (regulator(), bidder(e), issuing_agency()):  # who bid, how many, when: the centre only
            assert not (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata)).bids
            state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=metadata)).state
            assert state.registered_bidders == 0
        assert len((await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=centre())).bids) == 6
        own = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=c),
                                   metadata=bidder(c))).bids
        assert {(x.price.fen, x.quantity_lots) for x in own if x.state == pb.BID_STATE_ACCEPTED} == {(28_453, 3)}
        with pytest.raises(grpc.aio.AioRpcError) as early:
            await result_of(stub, lid)
        assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        # No event tells who registered or bid, how many or when: nothing since the publication; nor does a
        # metric move with the sealed bids (counted when the bids are opened).
        assert [s for s, _ in seen if s != "trading.listing.published"] == []
        assert metric(trading.metrics_port, "trading_bids_total", "uniform_price") == 0
        assert metric(trading.metrics_port, "trading_price_collar_confirmations_total", "uniform_price") == 0

        # The window closes: cleared, the seed revealed, price and volume first.
        clock.advance(2 * 3600)
        result = await eventually(lambda: _decided(stub, lid))
        assert result.outcome == "sold" and result.clearing_price.fen == 28_453 and result.volume_lots == 10
        assert not result.statistics_published and result.bid_count == 0
        revealed = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing
        seed = bytes.fromhex(revealed.rules.seed)
        assert hashlib.sha256(seed).hexdigest() == listing.rules.seed_digest
        ranks = tie_ranks(seed, [b_bid.bid_id, c_bid.bid_id])
        first, second = (b, c) if ranks[0] < ranks[1] else (c, b)  # the tie, recomputable by anyone
        lots = {x.credit_code: x.lots for x in result.allocations}
        assert lots == {a: 4, d: 1, first: 3, second: 2}  # D cut by the affiliation cap; E lost
        amounts = {x.credit_code: x.amount.fen for x in result.allocations}
        cleared = await eventually(lambda: _event(seen, "trading.auction.cleared"))
        assert metric(trading.metrics_port, "trading_bids_total", "uniform_price") == 6  # incl. withdrawn
        assert metric(trading.metrics_port, "trading_price_collar_confirmations_total", "uniform_price") == 1
        assert first_a.receipt in cleared["receipts"] and modified.receipt in cleared["receipts"]
        assert extra.receipt not in cleared["receipts"] and len(cleared["receipts"]) == 5  # withdrawn: out
        assert amounts[a] == 28_453 * 400 and amounts[second] == 28_453 * 200

        # Step two: full statistics after the configured delay.
        clock.advance(601)
        stats = await eventually(lambda: _stats(stub, lid))
        assert stats.bid_count == 5 and stats.bidder_count == 5 and stats.max_bid.fen == 31_337
        assert stats.min_bid.fen == 20_777 and stats.cover_ratio == "1.5"

        # Settlement: units from the issuer's reserve, CNY out of each winner's guarantee; E's voided.
        await eventually(lambda: _listing_state(stub, lid, pb.LISTING_STATE_SETTLED), timeout=20)
        for code, won in lots.items():
            assert (await balance(registry, code, INSTRUMENT)).balance.value in (str(won * LOT), f"{won * LOT}.000")
            cny = await balance(registry, code, "CNY")
            assert cny.held.value == "0" and int(cny.balance.value) == 100_000_000 - amounts[code]
        assert (await balance(registry, e, "CNY")).held.value == "0"
        issuer = await balance(registry, ISSUER, "CNY")
        assert int(issuer.balance.value) == sum(amounts.values())
        trades = (await stub.ListTrades(pb.ListTradesRequest(listing_id=lid), metadata=regulator())).trades
        assert len(trades) == 4 and all(t.settlement_state == pb.SETTLEMENT_STATE_SETTLED for t in trades)
        assert (await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=admin())).intact
    finally:
        await nc.close()


async def test_no_valid_bids_cancels_and_voids_guarantees(registry, trading):
    (a,) = await quota_world(registry.stub, 1)
    stub, clock = trading.stub, trading.clock
    lid = (await auction(stub, clock.now())).listing_id
    await register(stub, lid, a, 1_000_000)
    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, lid))
    assert result.outcome == "cancelled" and result.reason == "reserve_not_met" and not result.allocations
    await eventually(lambda: _held_zero(registry, a))


async def test_an_undersubscribed_auction_sells_at_the_reserve_by_default(registry, trading):
    # §3.1: supply 10 lots, reserve 100.00 元/tce, one bid of 4 lots at 250.00 → 4 lots at 100.00 (the marginal
    # accepted rule used to charge 250.00); the result says why.
    (a,) = await quota_world(registry.stub, 1)
    stub, clock = trading.stub, trading.clock
    listing = await auction(stub, clock.now())
    assert (listing.rules.min_cover_bp, listing.rules.min_price_to_reference_bp) == (0, 0)
    await register(stub, listing.listing_id, a, 4 * LOT * 25_000)
    await bid(stub, listing.listing_id, a, 25_000, 4)
    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, listing.listing_id))
    assert (result.outcome, result.reason) == ("sold", "undersubscribed_at_reserve")
    assert (result.clearing_price.fen, result.volume_lots) == (10_000, 4)
    assert [(x.lots, x.amount.fen) for x in result.allocations] == [(4, 4 * LOT * 10_000)]


async def test_a_cover_rule_cancels_an_undersubscribed_auction_and_a_reference_rule_a_cheap_one(registry, trading):
    a, b = await quota_world(registry.stub, 2)
    stub, clock = trading.stub, trading.clock
    covered = await auction(stub, clock.now(), min_cover_bp=10_000)  # EU Art. 7(5)
    referenced = await auction(stub, clock.now(), reference_price=fen(40_000), min_price_to_reference_bp=8_000)
    assert covered.rules.min_cover_bp == 10_000
    assert (referenced.rules.reference_price.fen, referenced.rules.min_price_to_reference_bp) == (40_000, 8_000)
    for listing, (code, lots) in ((covered, (a, 9)), (referenced, (b, 12))):
        await register(stub, listing.listing_id, code, lots * LOT * 30_000)
        await bid(stub, listing.listing_id, code, 30_000, min(lots, 5))
    clock.advance(2 * 3600)
    first = await eventually(lambda: _decided(stub, covered.listing_id))
    assert (first.outcome, first.reason, list(first.allocations)) == ("cancelled", "undersubscribed", [])
    # 5 lots (the cap) of 10 at 300.00: undersubscribed, so priced at the reserve 100.00 < 80 % of 400.00.
    second = await eventually(lambda: _decided(stub, referenced.listing_id))
    assert (second.outcome, second.reason) == ("cancelled", "price_below_reference")
    await eventually(lambda: _held_zero(registry, a))
    await eventually(lambda: _held_zero(registry, b))


async def test_undersubscription_rules_are_checked(registry, trading):
    await quota_world(registry.stub, 0)
    now = trading.clock.now()
    for rules, field in (({"min_cover_bp": 10_001}, "listing.rules.min_cover_bp"),
                         ({"reference_price": fen(40_000)}, "listing.rules.min_price_to_reference_bp")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auction(trading.stub, now, **rules)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(refused.value)


async def test_registration_needs_a_guarantee(registry, trading):
    (a,) = await quota_world(registry.stub, 1)
    lid = (await auction(trading.stub, trading.clock.now())).listing_id
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await register(trading.stub, lid, a, 0)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def give_units(registry_stub, code: str, units: int) -> None:
    """The issuer issues units of the instrument into the enterprise's own account (opened if missing)."""
    account = (await registry_stub.OpenAccount(rpb.OpenAccountRequest(
        idempotency_key=f"acct:{code}:{INSTRUMENT}", holder=code, instrument=INSTRUMENT),
        metadata=bidder(code))).account
    await registry_stub.Issue(rpb.IssueRequest(idempotency_key=key(), issuer_agency_id=ISSUER,
                                               to_account_id=account.account_id,
                                               quantity=common_pb2.Quantity(value=str(units))),
                              metadata=issuing_agency())


async def own_result(stub, lid, code):
    return (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=bidder(code))).result


async def test_a_holding_limit_refuses_bids_beyond_it_and_cuts_back_at_the_close(registry, trading):
    # §3.2 (California–Québec), hand-worked: supply 10 lots × 100 tce, reserve 100.00 元/tce, no purchase cap,
    # holding limit 500 tce. A holds 100 tce when it bids (room 4 lots): 290.00 × 2 and 280.00 × 2 are accepted,
    # a fifth lot is refused. A receives 100 tce more before the close (room 3): 290.00 × 2 fills, 280.00 × 2 is
    # cut back to 1; B 250.00 × 4 fills; C 220.00 × 5 takes the remaining 3 and sets the price, 220.00.
    a, b, c = await quota_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    await give_units(registry.stub, a, 100)
    listing = await auction(stub, clock.now(), cap=0, holding_limit=common_pb2.Quantity(value="500", unit="tce"))
    lid = listing.listing_id
    assert (listing.rules.holding_limit.value, listing.rules.holding_limit.unit) == ("500", "tce")
    for code, guarantee in ((a, 20_000_000), (b, 10_000_000), (c, 11_000_000)):
        await register(stub, lid, code, guarantee)
    a1 = await bid(stub, lid, a, 29_000, 2)
    a2 = await bid(stub, lid, a, 28_000, 2)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bid(stub, lid, a, 26_000, 1)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(refused.value) == "HOLDING_LIMIT"
    assert refused.value.details() == ("holding limit 500 tce: you hold 100 tce and your bids would add 500 tce "
                                       "(5 lots); at most 4 lots in all")
    with pytest.raises(grpc.aio.AioRpcError) as modified:  # a modification counts the bid it replaces once
        await stub.ModifyBid(pb.ModifyBidRequest(idempotency_key=key(), bid_id=a1.bid_id, credit_code=a,
                                                 price=fen(29_000), quantity_lots=3), metadata=bidder(a))
    assert reason(modified.value) == "HOLDING_LIMIT"
    mine = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=a), metadata=bidder(a))).bids
    assert sorted((x.price.fen, x.quantity_lots) for x in mine) == [(28_000, 2), (29_000, 2)]  # nothing changed
    await bid(stub, lid, b, 25_000, 4)
    await bid(stub, lid, c, 22_000, 5)
    await give_units(registry.stub, a, 100)

    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, lid))
    assert (result.clearing_price.fen, result.volume_lots, result.unsold_lots) == (22_000, 10, 0)
    assert {x.credit_code: x.lots for x in result.allocations} == {a: 3, b: 4, c: 3}
    own = {o.bid_id: o for o in (await own_result(stub, lid, a)).own_bids}
    assert (own[a1.bid_id].fill, own[a1.bid_id].lots_won, own[a1.bid_id].reason) == ("full", 2, "")
    assert (own[a2.bid_id].fill, own[a2.bid_id].lots_won, own[a2.bid_id].reason) == ("partial", 1, "holding_limit")
    assert own[a2.bid_id].cut_by_holding_limit_lots == 1 and own[a2.bid_id].price.fen == 28_000
    [c_own] = (await own_result(stub, lid, c)).own_bids
    assert (c_own.fill, c_own.lots_won, c_own.reason) == ("partial", 3, "remaining_volume")
    # Settled: A holds 200 + 300 = the limit.
    await eventually(lambda: _listing_state(stub, lid, pb.LISTING_STATE_SETTLED), timeout=20)
    assert (await balance(registry, a, INSTRUMENT)).balance.value in ("500", "500.000")


async def test_unsold_lots_are_carried_into_a_later_auction_once(registry, trading):
    # §3 (EU Art. 7(5): a cancelled auction's volume goes to later auctions; RGGI: what is not sold at the
    # reserve is offered again). S1 (supply 10, cancelled below a 100 % cover) leaves 10 lots unsold; S2 (supply
    # 10, 3 lots bid, sold at the reserve) leaves 7. A later auction of 5 own lots naming both offers 22.
    a, b, c = await quota_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    s1 = await auction(stub, clock.now(), cap=0, min_cover_bp=10_000)
    s2 = await auction(stub, clock.now(), cap=0)
    for lid, code, lots in ((s1.listing_id, a, 4), (s2.listing_id, b, 3)):
        await register(stub, lid, code, lots * LOT * 15_000)
        await bid(stub, lid, code, 15_000, lots)
    with pytest.raises(grpc.aio.AioRpcError) as early:  # unsold lots are known once the auction is decided
        await draft(stub, clock.now(), cap=0, rollover_from=[s2.listing_id])
    assert early.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not decided yet" in field_violations(early.value)["listing.rules.rollover_from[0]"]
    clock.advance(2 * 3600)
    first = await eventually(lambda: _decided(stub, s1.listing_id))
    assert (first.outcome, first.supply_lots, first.unsold_lots) == ("cancelled", 10, 10)
    second = await eventually(lambda: _decided(stub, s2.listing_id))
    assert (second.outcome, second.volume_lots, second.unsold_lots) == ("sold", 3, 7)
    listed = (await stub.GetListing(pb.GetListingRequest(listing_id=s2.listing_id), metadata=regulator())).listing
    assert (listed.rules.unsold_lots, listed.rules.rolled_into) == (7, "")

    sources = [s1.listing_id, s2.listing_id]
    with pytest.raises(grpc.aio.AioRpcError) as uneven:  # a cap of 5 lots is no whole basis point of 22
        await draft(stub, clock.now(), supply=5, cap=5, rollover_from=sources)
    assert "22" in field_violations(uneven.value)["listing.rules.bidder_cap_lots"]
    later = await draft(stub, clock.now(), supply=5, cap=0, rollover_from=sources)
    assert (later.rules.supply_lots, later.rules.rollover_lots, later.quantity.value) == (22, 17, "2200")
    assert [(x.listing_id, x.lots) for x in later.rules.rolled_over] == [(s1.listing_id, 10), (s2.listing_id, 7)]
    for source in sources:
        shown = (await stub.GetListing(pb.GetListingRequest(listing_id=source), metadata=regulator())).listing
        assert shown.rules.rolled_into == later.listing_id
    assert (await result_of(stub, s2.listing_id)).rolled_into == later.listing_id
    # Each source's unsold lots are carried once: a second listing naming one is refused, and changes nothing.
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await draft(stub, clock.now(), cap=0, rollover_from=[s2.listing_id, "L-NO-SUCH"])
    assert twice.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(twice.value) == {
        "listing.rules.rollover_from[0]": f"the unsold lots of {s2.listing_id} were already carried into "
                                          f"{later.listing_id}: each auction's unsold lots are carried once",
        "listing.rules.rollover_from[1]": f"L-NO-SUCH is not a quota auction of agency {ISSUER}"}

    await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=later.listing_id),
                              metadata=issuing_agency())
    await register(stub, later.listing_id, c, 20 * LOT * 15_000)
    await bid(stub, later.listing_id, c, 15_000, 20)
    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, later.listing_id))
    assert (result.supply_lots, result.rollover_lots, result.volume_lots, result.unsold_lots) == (22, 17, 20, 2)
    assert [(x.listing_id, x.lots) for x in result.rolled_over] == [(s1.listing_id, 10), (s2.listing_id, 7)]


async def test_each_bidder_is_told_how_its_tied_bids_fared(registry, trading):
    # §3.3 (EU Art. 7(2)–(4); each winner told "which of its tied bids were randomly selected"): supply 10 lots;
    # A 290.00 × 6 wins outright; at 250.00 B (2 + 3 lots) and C (2 lots) tie for the remaining 4, drawn in the
    # order the revealed seed gives their bid ids; D 220.00 × 4 is outbid.
    a, b, c, d = await quota_world(registry.stub, 4)
    stub, clock = trading.stub, trading.clock
    lid = (await auction(stub, clock.now(), cap=0)).listing_id
    for code in (a, b, c, d):
        await register(stub, lid, code, 20_000_000)
    await bid(stub, lid, a, 29_000, 6)
    tied = {"b1": await bid(stub, lid, b, 25_000, 2), "b2": await bid(stub, lid, b, 25_000, 3),
            "c1": await bid(stub, lid, c, 25_000, 2)}
    d1 = await bid(stub, lid, d, 22_000, 4)
    own = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=b), metadata=bidder(b))).bids
    assert not any(x.HasField("outcome") for x in own)  # nothing to tell before the clearing

    clock.advance(2 * 3600)
    result = await eventually(lambda: _decided(stub, lid))
    seed = bytes.fromhex((await stub.GetListing(pb.GetListingRequest(listing_id=lid),
                                                metadata=regulator())).listing.rules.seed)
    ranks = dict(zip(tied, (f"{int(r):016x}" for r in tie_ranks(seed, [x.bid_id for x in tied.values()])),
                     strict=True))
    order = sorted(tied, key=ranks.get)  # the draw, recomputed from the published seed
    left, expected = 4, {}
    for name in order:
        expected[name] = min(left, tied[name].quantity_lots)
        left -= expected[name]
    assert result.clearing_price.fen == 25_000 and result.volume_lots == 10
    assert (result.tie_draw.price.fen, result.tie_draw.lots) == (25_000, 4)
    assert list(result.tie_draw.ranks) == [ranks[name] for name in order]
    assert not result.own_bids  # the regulator has no bids of its own here

    for code, names in ((b, ("b1", "b2")), (c, ("c1",))):
        told = {o.bid_id: o for o in (await own_result(stub, lid, code)).own_bids}
        assert set(told) == {tied[name].bid_id for name in names}  # its own bids, nobody else's
        for name in names:
            o = told[tied[name].bid_id]
            won = expected[name]
            assert (o.lots_won, o.tied, o.tied_bids, o.tie_rank) == (won, True, 3, ranks[name])
            assert o.draw_position == order.index(name) + 1
            assert o.fill == ("full" if won == tied[name].quantity_lots else "partial" if won else "none")
            assert o.reason == ("" if o.fill == "full" else "tie_draw")
        listed = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=code),
                                      metadata=bidder(code))).bids
        assert {x.bid_id: x.outcome.lots_won for x in listed} == {tied[n].bid_id: expected[n] for n in names}
    [outbid] = (await own_result(stub, lid, d)).own_bids
    assert (outbid.bid_id, outbid.fill, outbid.reason, outbid.tied) == (d1.bid_id, "none", "outbid", False)
    # Others see the opened bids, never how each fared.
    for metadata in (bidder(d), regulator(), centre()):
        everyone = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid), metadata=metadata)).bids
        assert len(everyone) == 5 and not any(x.HasField("outcome") for x in everyone)
    others = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, credit_code=b), metadata=regulator())).bids
    assert others and not any(x.HasField("outcome") for x in others)


async def test_holding_limit_and_rollover_input_is_checked(registry, trading):
    await quota_world(registry.stub, 0)
    now = trading.clock.now()
    for rules, field in (({"holding_limit": common_pb2.Quantity(value="-5")}, "listing.rules.holding_limit.value"),
                         ({"holding_limit": common_pb2.Quantity(value="abc")}, "listing.rules.holding_limit.value"),
                         ({"holding_limit": common_pb2.Quantity(value="500", unit="t")},
                          "listing.rules.holding_limit.unit"),
                         ({"rollover_from": ["LX", "LX"]}, "listing.rules.rollover_from[1]"),
                         ({"supply": 0}, "listing.rules.supply_lots")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await draft(trading.stub, now, cap=0, **rules)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(refused.value), (rules, field_violations(refused.value))
    listed = (await trading.stub.ListListings(pb.ListListingsRequest(agency_id=ISSUER),
                                              metadata=issuing_agency())).listings
    assert not listed  # nothing was created


def _leaks(text: str) -> bool:
    # Whole numbers only: the digits may occur by chance inside hex digests or timestamps.
    return any(re.search(rf"\b{p}(00)?\b", text) for p in SECRET_PRICES)


async def _event(seen, subject):
    return next((data for s, data in seen if s == subject), None)


async def _decided(stub, lid):
    try:
        return await result_of(stub, lid)
    except grpc.aio.AioRpcError:
        return None


async def _stats(stub, lid):
    result = await result_of(stub, lid)
    return result if result.statistics_published else None


async def _listing_state(stub, lid, state):
    return (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing.state == state


async def _held_zero(registry, code):
    return (await balance(registry, code, "CNY")).held.value == "0"



