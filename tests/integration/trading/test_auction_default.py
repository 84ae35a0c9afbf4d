"""DeclareDefault of an auction award (拍卖, 招标) over gRPC against a real registry: the winner that does not
sign its 成交确认书 forfeits its deposit to the grantor; a tender then offers the award to the next bid of the
opening's ranking that met the 标底 (招标投标法实施条例 第五十五条), which confirms and settles paying the whole
price (its own deposit went back at the first award); with no such bid, and always for an English auction,
the sale ends unsold and the parcel is available to be offered again.

Hand-worked (招标 by price, minimum 1,000,000.00, deposit 200,000.00): alice 1,500,000, bob 1,400,000,
carol 1,000,000 → alice awarded; alice defaults → bob offered at 1,400,000; bob confirms → pays 1,400,000.
"""

from __future__ import annotations

from decimal import Decimal

import grpc
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import (
    ANNOUNCEMENT,
    GRANTOR,
    admin,
    advance_to,
    bidder,
    cny,
    eventually,
    grantor,
    key,
    land_world,
    refused,
)
from tests.integration.trading.test_auctions import _resource_available, english
from tests.integration.trading.test_auctions import bid as english_bid
from tests.integration.trading.test_auctions import register as english_register
from tests.integration.trading.test_tender import _held, _result, _settled, bid, register, tender
from tests.support.grpc_errors import reason

FUNDS = 10_000_000_00  # land_world's CNY per bidder, fen
DEPOSIT = 20_000_000


async def default(stub, lid, why="逾期未签订成交确认书", *, metadata=None, idem=None):
    return (await stub.DeclareDefault(pb.DeclareDefaultRequest(idempotency_key=idem or key(), listing_id=lid,
                                                               reason=why),
                                      metadata=metadata or grantor())).result


async def balance(registry, code) -> Decimal:
    return Decimal((await cny(registry.stub, code)).balance.value)


async def test_a_tender_winner_defaults_and_the_next_ranked_bid_is_awarded(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    grantor_before = await balance(registry, GRANTOR) if await cny(registry.stub, GRANTOR) else Decimal(0)
    stub, clock = trading.stub, trading.clock
    lid = (await tender(trading, resource_id)).listing_id
    for code, amount in ((alice, 150_000_000), (bob, 140_000_000), (carol, 100_000_000)):
        await register(stub, lid, code)
        await bid(stub, lid, code, amount)
    clock.advance(2 * 3600 + 60)
    first = await eventually(lambda: _result(stub, lid))
    assert (first.winner_credit_code, first.clearing_price.fen) == (alice, 150_000_000)

    for metadata in (bidder(alice), bidder(bob), admin()):  # only the listing agency declares a default
        denied = await refused(default(stub, lid, metadata=metadata))
        assert denied.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    missing = await refused(default(stub, lid, why=" "))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT

    result = await default(stub, lid, idem="default-1")
    assert (result.outcome, result.winner_credit_code, result.clearing_price.fen) == ("sold", bob, 140_000_000)
    again = await default(stub, lid, idem="default-1")  # a retry: the same answer, nothing forfeited twice
    assert again.winner_credit_code == bob
    # Alice's deposit is the grantor's; bob's went back at the first award and is not taken again.
    await eventually(lambda: _held(registry, alice, "0"))
    await eventually(lambda: _balance_is(registry, alice, FUNDS - DEPOSIT))
    await eventually(lambda: _balance_is(registry, GRANTOR, grantor_before + DEPOSIT))
    late = await refused(stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                                  credit_code=alice), metadata=bidder(alice)))
    assert reason(late) == "NO_AWARD"

    trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                            credit_code=bob), metadata=bidder(bob))).trade
    assert trade.price.fen == 140_000_000
    await eventually(lambda: _settled(stub, trade.trade_id), timeout=20)
    assert await balance(registry, bob) == FUNDS - 140_000_000  # the whole price: no deposit was applied
    assert await balance(registry, GRANTOR) == grantor_before + DEPOSIT + 140_000_000
    assert await balance(registry, carol) == FUNDS and (await cny(registry.stub, carol)).held.value == "0"


async def test_defaults_pass_down_the_ranking_until_none_is_left_and_the_tender_is_unsold(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    listing = await tender(trading, resource_id)
    lid = listing.listing_id
    for code, amount in ((alice, 150_000_000), (bob, 100_000_000), (carol, 100_000_000)):
        await register(stub, lid, code)
        await bid(stub, lid, code, amount)
    clock.advance(2 * 3600 + 60)
    await eventually(lambda: _result(stub, lid))
    await default(stub, lid)
    # bob's 1,000,000 is next in the ranking (earlier than carol's): it is offered, and then defaults too.
    second = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    assert second.winner_credit_code == bob
    await default(stub, lid)
    third = (await stub.GetSaleResult(pb.GetSaleResultRequest(listing_id=lid), metadata=admin())).result
    assert third.winner_credit_code == carol
    final = await default(stub, lid)
    assert (final.outcome, final.reason, final.winner_credit_code) == ("unsold", "winner_defaulted", "")
    await eventually(lambda: _resource_available(registry, resource_id))
    nothing = await refused(default(stub, lid))
    assert reason(nothing) == "NO_AWARD"


async def test_an_english_auction_winner_defaults_and_the_sale_is_unsold(registry, trading):
    resource_id, (alice, bob, carol) = await land_world(registry.stub, 3)
    stub, clock = trading.stub, trading.clock
    t0 = clock.now() + ANNOUNCEMENT
    lid = (await english(stub, resource_id, t0, reserve=1_000_000_00)).listing_id
    for code in (alice, bob, carol):
        await english_register(stub, lid, code)
    early = await refused(default(stub, lid))
    assert reason(early) == "NO_AWARD"
    advance_to(clock, t0, extra=0)
    await eventually(lambda: _started(stub, lid, t0))
    await english_bid(stub, lid, alice, 1_000_000_00)
    await english_bid(stub, lid, bob, 1_010_000_00)
    clock.advance(1000)  # past the hard stop
    won = await eventually(lambda: _result(stub, lid))
    assert won.winner_credit_code == bob
    result = await default(stub, lid)
    # No runner-up in an ascending auction: alice was outbid and her deposit went back at the award.
    assert (result.outcome, result.reason, result.winner_credit_code) == ("unsold", "winner_defaulted", "")
    await eventually(lambda: _held(registry, bob, "0"))
    await eventually(lambda: _balance_is(registry, bob, FUNDS - DEPOSIT))
    await eventually(lambda: _resource_available(registry, resource_id))
    assert await balance(registry, alice) == FUNDS


async def _balance_is(registry, code, value) -> bool:
    account = await cny(registry.stub, code)
    return account is not None and Decimal(account.balance.value) == value


async def _started(stub, lid, t0):
    state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=admin())).state
    return state if state.next_minimum_bid.fen and state.closes_at.ToDatetime(tzinfo=t0.tzinfo) > t0 else None
