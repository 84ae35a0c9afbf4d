"""Sealed-bid uniform-price quota auction and its clearing function."""
import hashlib
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.trading.domain.clearing import (
    ClearingParameters,
    ClearingRule,
    ClearingStatus,
    clear_uniform_price,
    seed_commitment,
    tie_draw,
    tie_ranks,
)
from services.trading.domain.errors import DomainError, SealedError
from services.trading.domain.uniform_auction import (
    TieDraw,
    UniformAuctionTerms,
    UniformPriceAuction,
    carried_lots,
)

OPEN = datetime(2025, 9, 1, 9, 0)
CLOSE = datetime(2025, 9, 1, 11, 0)
SEED = b"published-after-the-window"


def auction(**overrides) -> UniformPriceAuction:
    terms = dict(
        auction_id="Q-1", supply_lots=10, lot_size=1_000, reserve_price=2_000,
        window_opens_at=OPEN, window_closes_at=CLOSE, seed_commitment=seed_commitment(SEED),
        purchase_cap_bp=None, guarantees={b: 10**12 for b in ("A", "B", "C", "D")},
    )
    terms.update(overrides)
    return UniformPriceAuction(UniformAuctionTerms(**terms))


def m(minutes: int) -> datetime:
    return OPEN + timedelta(minutes=minutes)


def test_marginal_accepted_vs_highest_rejected_and_partial_last_bid():
    for rule, expected_price in ((ClearingRule.MARGINAL_ACCEPTED, 2_500), (ClearingRule.HIGHEST_REJECTED, 2_500)):
        a = auction(clearing_rule=rule)
        a.place_bid("a1", "A", 3_000, 6_000, m(1))
        a.place_bid("b1", "B", 2_500, 6_000, m(2))  # only 4 of its 6 lots fit
        a.place_bid("c1", "C", 2_200, 3_000, m(3))
        [cleared] = a.clear(SEED, CLOSE)
        assert cleared.status is ClearingStatus.CLEARED
        assert cleared.clearing_price == expected_price
        assert dict(cleared.allocations) == {"a1": 6, "b1": 4}
    # A bid ending exactly at the supply: marginal accepted = 2,500, highest rejected = 2,200.
    prices = {}
    for rule in ClearingRule:
        a = auction(clearing_rule=rule)
        a.place_bid("a1", "A", 3_000, 6_000, m(1))
        a.place_bid("b1", "B", 2_500, 4_000, m(2))
        a.place_bid("c1", "C", 2_200, 3_000, m(3))
        prices[rule] = a.clear(SEED, CLOSE)[0].clearing_price
    assert prices == {ClearingRule.MARGINAL_ACCEPTED: 2_500, ClearingRule.HIGHEST_REJECTED: 2_200}


def test_tie_at_the_clearing_price_is_broken_by_the_committed_seed():
    a = auction()
    a.place_bid("a1", "A", 3_000, 7_000, m(1))
    a.place_bid("b1", "B", 2_500, 2_000, m(2))
    a.place_bid("c1", "C", 2_500, 2_000, m(3))
    [cleared] = a.clear(SEED, CLOSE)
    ranks = tie_ranks(SEED, ["b1", "c1"])
    first, second = ("b1", "c1") if ranks[0] < ranks[1] else ("c1", "b1")
    assert dict(cleared.allocations) == {"a1": 7, first: 2, second: 1}
    assert cleared.clearing_price == 2_500 and cleared.seed_hex == SEED.hex()
    # Deterministic given the seed: the same bids in another submission order clear the same way.
    b = auction()
    b.place_bid("c1", "C", 2_500, 2_000, m(1))
    b.place_bid("b1", "B", 2_500, 2_000, m(2))
    b.place_bid("a1", "A", 3_000, 7_000, m(3))
    assert dict(b.clear(SEED, CLOSE)[0].allocations) == dict(cleared.allocations)


def test_wrong_seed_refused_and_bids_sealed_until_cleared():
    a = auction()
    a.place_bid("a1", "A", 3_000, 1_000, m(1))
    with pytest.raises(SealedError):
        _ = a.bids
    assert "3000" not in repr(a)
    with pytest.raises(DomainError) as err:
        a.clear(b"another seed", CLOSE)
    assert err.value.code == "SEED_MISMATCH"
    with pytest.raises(DomainError):
        a.clear(SEED, CLOSE - timedelta(seconds=1))


def test_lots_guarantee_modify_withdraw_window():
    a = auction(guarantees={"A": 3_000 * 2_000})
    with pytest.raises(DomainError) as err:
        a.place_bid("a1", "A", 2_000, 1_500, m(1))
    assert err.value.code == "NOT_LOT_MULTIPLE"
    a.place_bid("a1", "A", 2_000, 2_000, m(1))  # worth 4,000,000 fen
    with pytest.raises(DomainError) as err:
        a.place_bid("a2", "A", 2_000, 2_000, m(2))  # would need 8,000,000
    assert err.value.code == "GUARANTEE_INSUFFICIENT"
    a.place_bid("a1", "A", 3_000, 2_000, m(3))  # modification replaces: 6,000,000 fits
    assert [(b.price, b.lots) for b in a.bids_of("A")] == [(3_000, 2)]
    a.withdraw_bid("a1", "A", m(4))
    assert a.bids_of("A") == ()
    with pytest.raises(DomainError):
        a.place_bid("a3", "A", 2_000, 1_000, CLOSE)
    with pytest.raises(DomainError):
        a.place_bid("b1", "B", 1_999, 1_000, m(5))  # below reserve


def test_purchase_cap_counts_affiliated_enterprises():
    a = auction(purchase_cap_bp=3_000, affiliation={"A": "grp", "B": "grp"})
    a.place_bid("a1", "A", 5_000, 2_000, m(1))
    a.place_bid("b1", "B", 4_000, 2_000, m(2))  # the group may only buy 3 lots in total
    a.place_bid("c1", "C", 3_000, 10_000, m(3))
    [cleared] = a.clear(SEED, CLOSE)
    assert dict(cleared.allocations) == {"a1": 2, "b1": 1, "c1": 3}  # C is capped at 3 too


def test_holding_limit_refuses_bids_beyond_it_and_cuts_back_high_to_low_at_the_close():
    # §3.2 (California–Québec): holdings are capped, and "a bid is cut back if it would breach the entity's
    # purchase limit, holding limit or bid guarantee", bids processed high→low. Hand-worked: supply 10 lots
    # × 1,000 allowances, reserve 20.00, holding limit 5,000. A holds 1,000 when it bids: room for 4 lots.
    a = auction(holding_limit=Decimal(5_000), unit="allowances")
    a.place_bid("a1", "A", 3_000, 2_000, m(1), holding=Decimal(1_000))
    a.place_bid("a2", "A", 2_800, 2_000, m(2), holding=Decimal(1_000))  # 1,000 + 4,000 = the limit: accepted
    with pytest.raises(DomainError) as refused:  # a fifth lot would take A to 6,000
        a.place_bid("a3", "A", 2_900, 1_000, m(3), holding=Decimal(1_000))
    assert refused.value.code == "HOLDING_LIMIT"
    assert refused.value.message == ("holding limit 5000 allowances: you hold 1000 allowances and your bids would "
                                     "add 5000 allowances (5 lots); at most 4 lots in all")
    with pytest.raises(DomainError):  # a modification counts the bid it replaces once: 3 + 2 lots > 4
        a.place_bid("a1", "A", 3_000, 3_000, m(3), holding=Decimal(1_000))
    with pytest.raises(ValueError):  # the holding is the caller's to give, never guessed
        a.place_bid("b1", "B", 2_500, 4_000, m(4))
    a.place_bid("b1", "B", 2_500, 4_000, m(4), holding=Decimal(0))
    a.place_bid("c1", "C", 2_200, 5_000, m(5), holding=Decimal(0))
    assert [(b.bid_id, b.lots) for b in a.bids_of("A")] == [("a1", 2), ("a2", 2)]
    # By the close A received 1,000 more (room 3 lots): a1 takes 2, a2 is cut back to 1; B (holding half an
    # allowance: room 4 lots) takes 4 and C the remaining 3 of its 5, setting the price. Without the limit A
    # would have 4 lots and C 2.
    with pytest.raises(ValueError):
        a.clear(SEED, CLOSE, holdings={"A": Decimal(2_000), "B": Decimal(0)})  # C's holding missing
    [cleared] = a.clear(SEED, CLOSE, holdings={"A": Decimal(2_000), "B": Decimal("0.5"), "C": Decimal(0)})
    assert dict(cleared.allocations) == {"a1": 2, "a2": 1, "b1": 4, "c1": 3}
    assert cleared.clearing_price == 2_200 and cleared.sold_lots == 10
    assert cleared.cuts == (("a2", 0, 1),)
    assert cleared.holdings == (("A", "2000"), ("B", "0.5"), ("C", "0"))  # what the cut was computed from
    outcomes = a.bid_outcomes("A")
    assert (outcomes["a2"].fill, outcomes["a2"].lots_won, outcomes["a2"].reason) == ("partial", 1, "holding_limit")
    assert outcomes["a2"].cut_by_holding_limit == 1 and set(outcomes) == {"a1", "a2"}
    assert (a.bid_outcomes()["c1"].fill, a.bid_outcomes()["c1"].reason) == ("partial", "remaining_volume")
    # A ends at 2,000 + 3,000 = the limit; a holding already at the limit gets nothing at all.
    b = auction(holding_limit=Decimal(5_000))
    b.place_bid("a1", "A", 3_000, 1_000, m(1), holding=Decimal(0))
    [cleared] = b.clear(SEED, CLOSE, holdings={"A": Decimal(5_000)})
    assert cleared.allocations == () and cleared.reason == "undersubscribed_at_reserve"
    assert b.bid_outcomes()["a1"].reason == "holding_limit" and b.unsold_lots == 10


def test_holding_limit_and_purchase_cap_together():
    # Both limits: cap 3 lots per group (A and B affiliated), holding limit 3,000. A bids 2 + 1 lots holding
    # nothing, then holds 1,000 at the close (room 2): a1 takes 2 and a2 is cut by the holding limit; B's 2 lots
    # are cut to the 1 its group has left under the cap; C takes 2.
    a = auction(holding_limit=Decimal(3_000), purchase_cap_bp=3_000, affiliation={"A": "grp", "B": "grp"})
    a.place_bid("a1", "A", 5_000, 2_000, m(1), holding=Decimal(0))
    a.place_bid("b1", "B", 4_000, 2_000, m(2), holding=Decimal(0))
    a.place_bid("c1", "C", 3_000, 2_000, m(3), holding=Decimal(0))
    a.place_bid("a2", "A", 2_500, 1_000, m(4), holding=Decimal(0))
    [cleared] = a.clear(SEED, CLOSE, holdings={"A": Decimal(1_000), "B": Decimal(0), "C": Decimal(0)})
    assert dict(cleared.allocations) == {"a1": 2, "b1": 1, "c1": 2}
    assert dict((x[0], x[1:]) for x in cleared.cuts) == {"a2": (0, 1), "b1": (1, 0)}
    assert {k: o.reason for k, o in a.bid_outcomes().items()} == {
        "a1": "", "b1": "purchase_cap", "c1": "", "a2": "holding_limit"}


def test_each_winner_is_told_which_of_its_tied_bids_were_drawn():
    # §3.3 (EU Reg. 1031/2010 Art. 7(2)–(4); UK reg. 44: each winner told "which of its tied bids were randomly
    # selected"). Supply 10 lots: A 30.00 × 6 wins outright; at 25.00 B (2 + 3 lots) and C (2 lots) tie for the
    # remaining 4; D 22.00 × 4 is outbid. The committed seed ranks b1 (0x5790…) before b2 (0x9e30…) before c1
    # (0xb608…): b1 gets its 2, b2 the 2 left of its 3, c1 nothing.
    a = auction()
    for bid_id, bidder, price, units in (("a1", "A", 3_000, 6_000), ("b1", "B", 2_500, 2_000),
                                         ("b2", "B", 2_500, 3_000), ("c1", "C", 2_500, 2_000),
                                         ("d1", "D", 2_200, 4_000)):
        a.place_bid(bid_id, bidder, price, units, m(1))
    with pytest.raises(SealedError):
        a.bid_outcomes("B")
    [cleared] = a.clear(SEED, CLOSE)
    assert dict(cleared.allocations) == {"a1": 6, "b1": 2, "b2": 2} and cleared.clearing_price == 2_500
    ranks = tie_ranks(bytes.fromhex(cleared.seed_hex), ["b1", "b2", "c1"])  # reproducible from the seed
    assert [f"{int(r):016x}" for r in ranks] == ["5790b10714a9542c", "9e305fe9cc712cc9", "b608890e9c6969ef"]
    b = a.bid_outcomes("B")
    assert (b["b1"].fill, b["b1"].lots_won, b["b1"].tied, b["b1"].draw_position, b["b1"].tied_bids) == (
        "full", 2, True, 1, 3)
    assert (b["b2"].fill, b["b2"].lots_won, b["b2"].reason, b["b2"].draw_position) == ("partial", 2, "tie_draw", 2)
    assert b["b2"].tie_rank == "9e305fe9cc712cc9"
    [c] = a.bid_outcomes("C").values()
    assert (c.fill, c.lots_won, c.reason, c.tied, c.draw_position) == ("none", 0, "tie_draw", True, 3)
    [w] = a.bid_outcomes("A").values()
    assert (w.fill, w.tied, w.reason) == ("full", False, "")
    [d] = a.bid_outcomes("D").values()
    assert (d.fill, d.tied, d.reason) == ("none", False, "outbid")
    assert a.tie_draw() == TieDraw(2_500, 4, ("5790b10714a9542c", "9e305fe9cc712cc9", "b608890e9c6969ef"))
    # No draw when a single bid takes the remaining volume, or the supply ends exactly at a price level.
    single = auction()
    single.place_bid("a1", "A", 3_000, 6_000, m(1))
    single.place_bid("b1", "B", 2_500, 6_000, m(2))
    single.clear(SEED, CLOSE)
    assert single.tie_draw() is None and single.bid_outcomes()["b1"].reason == "remaining_volume"
    exact = auction()
    exact.place_bid("a1", "A", 3_000, 10_000, m(1))
    exact.place_bid("b1", "B", 2_500, 2_000, m(2))
    exact.place_bid("c1", "C", 2_500, 2_000, m(2))
    exact.clear(SEED, CLOSE)
    assert exact.tie_draw() is None and exact.bid_outcomes()["c1"].reason == "outbid"


def test_unsold_lots_are_recorded_and_carried_into_a_later_auction():
    # §3.3 (EU Art. 7(5)): cancelled when demand < supply, the volume goes to later auctions; §3.1 (RGGI) sells
    # at the reserve what is bid, the rest stays unsold. Both leave unsold lots a later auction may carry in.
    cancelled = auction(min_cover_bp=10_000)
    cancelled.place_bid("a1", "A", 3_000, 9_000, m(1))
    assert cancelled.unsold_lots is None  # not known before the clearing
    cancelled.clear(SEED, CLOSE)
    assert cancelled.unsold_lots == 10  # nothing sold: the whole supply
    partial = auction()
    partial.place_bid("a1", "A", 3_000, 4_000, m(1))
    partial.clear(SEED, CLOSE)
    assert partial.unsold_lots == 6
    full = auction()
    full.place_bid("a1", "A", 3_000, 12_000, m(1))
    full.clear(SEED, CLOSE)
    assert full.unsold_lots == 0
    # 6 lots of 1,000 = 6,000 units: 12 lots of 500 (the EEX lot), 6 of 1,000; not whole lots of 4,000.
    assert (carried_lots(6, 1_000, 500), carried_lots(6, 1_000, 1_000)) == (12, 6)
    with pytest.raises(DomainError) as refused:
        carried_lots(6, 1_000, 4_000)
    assert refused.value.code == "ROLLOVER_NOT_WHOLE_LOTS"
    # The later auction offers its own lots plus the carried ones: 8 + 10 = 18 lots, all sold here.
    later = auction(supply_lots=8 + carried_lots(cancelled.unsold_lots, 1_000, 1_000))
    later.place_bid("a1", "A", 3_000, 18_000, m(1))
    assert later.clear(SEED, CLOSE)[0].sold_lots == 18 and later.unsold_lots == 0


def test_cancellation_rules():
    a = auction(min_cover_bp=10_000)
    a.place_bid("a1", "A", 3_000, 9_000, m(1))
    [cleared] = a.clear(SEED, CLOSE)
    assert (cleared.status, cleared.reason, cleared.allocations) == (ClearingStatus.CANCELLED, "undersubscribed", ())
    b = auction(reference_price=4_000, min_price_to_reference_bp=8_000)
    b.place_bid("a1", "A", 3_000, 12_000, m(1))
    assert b.clear(SEED, CLOSE)[0].reason == "price_below_reference"
    c = auction()
    assert c.clear(SEED, CLOSE)[0].reason == "reserve_not_met"


@pytest.mark.parametrize("rule", list(ClearingRule))
def test_undersubscribed_without_cancel_rule_sells_at_reserve_under_either_price_rule(rule):
    # §3.1 (RGGI): "reserve price if undersubscribed". Supply 10 lots, reserve 100 fen, one bid of 4 lots at
    # 250: the 4 lots sell at 100 — under the marginal-accepted rule as well, which used to charge 250.
    a = auction(clearing_rule=rule, reserve_price=100, lot_size=1)
    a.place_bid("a1", "A", 250, 4, m(1))
    [cleared] = a.clear(SEED, CLOSE)
    assert (cleared.status, cleared.reason) == (ClearingStatus.CLEARED, "undersubscribed_at_reserve")
    assert (cleared.clearing_price, cleared.sold_lots, dict(cleared.allocations)) == (100, 4, {"a1": 4})


def test_undersubscribed_by_the_purchase_cap_alone_also_clears_at_reserve():
    # Demand 12 lots ≥ supply 10, but the one bidder may buy 5 (50 %): valid demand after caps is 5.
    a = auction(purchase_cap_bp=5_000, reserve_price=100, lot_size=1)
    a.place_bid("a1", "A", 300, 12, m(1))
    [cleared] = a.clear(SEED, CLOSE)
    assert (cleared.clearing_price, cleared.sold_lots, cleared.reason) == (100, 5, "undersubscribed_at_reserve")


def test_a_cover_ratio_below_one_cancels_only_below_it():
    # EU Art. 7(5) at 100 % cancels any undersubscription; a policy of 80 % sells 9 of 10 lots at the reserve.
    for cover_bp, expected in ((10_000, ClearingStatus.CANCELLED), (8_000, ClearingStatus.CLEARED)):
        a = auction(min_cover_bp=cover_bp, reserve_price=100, lot_size=1)
        a.place_bid("a1", "A", 250, 9, m(1))
        [cleared] = a.clear(SEED, CLOSE)
        assert cleared.status is expected
    assert (cleared.clearing_price, cleared.sold_lots) == (100, 9)
    a = auction(min_cover_bp=8_000, reserve_price=100, lot_size=1)
    a.place_bid("a1", "A", 250, 7, m(1))
    assert a.clear(SEED, CLOSE)[0].reason == "undersubscribed"


def test_quantities_beyond_int64_are_summed_exactly():
    # Three bids near 2^62 lots: their demand (≈ 3 × 2^62) does not fit an int64; the clearing adds it exactly.
    big = 2**62
    prices = np.array([200, 150, 120], dtype=np.int64)
    lots = np.array([big - 10, big, big], dtype=object)
    params = ClearingParameters(big, 100, ClearingRule.HIGHEST_REJECTED)
    result = clear_uniform_price(prices, lots, np.array([0, 1, 2]), tie_ranks(b"s", ["a", "b", "c"]), params)
    assert (result.demand_lots, result.sold_lots) == (3 * big - 10, big)
    assert result.allocations.tolist() == [big - 10, 10, 0] and result.clearing_price == 150
    with pytest.raises(DomainError) as refused:
        clear_uniform_price(prices, np.array([big + 1, 1, 1], dtype=object), np.array([0, 1, 2]),
                            tie_ranks(b"s", ["a", "b", "c"]), params)
    assert refused.value.code == "OUT_OF_RANGE"


def test_two_step_results():
    a = auction()
    a.place_bid("a1", "A", 3_000, 6_000, m(1))
    a.place_bid("a2", "A", 2_400, 2_000, m(1))
    a.place_bid("b1", "B", 2_500, 6_000, m(2))
    with pytest.raises(DomainError):
        a.publish_statistics(CLOSE)
    a.clear(SEED, CLOSE)
    [stats] = a.publish_statistics(CLOSE + timedelta(minutes=15))
    assert (stats.bid_count, stats.bidder_count, stats.demand_lots) == (3, 2, 14)
    assert stats.cover_ratio_bp == 14_000
    assert (stats.min_bid, stats.max_bid, stats.median_bid) == (2_400, 3_000, 2_500)
    assert stats.mean_bid == (3_000 * 6 + 2_400 * 2 + 2_500 * 6 + 7) // 14  # 2,700 rounded half up
    assert stats.allocation_per_bidder == (("A", 6), ("B", 4))
    assert stats.amount_due_per_bidder == (("A", 6 * 1_000 * 2_500), ("B", 4 * 1_000 * 2_500))
    restored = UniformPriceAuction.replay(a.terms, [])
    assert restored.cleared is None


@settings(max_examples=300, deadline=None)
@given(
    bids=st.lists(st.tuples(st.integers(1, 50), st.integers(1, 30), st.integers(0, 4)), min_size=0, max_size=40),
    supply=st.integers(1, 200),
    reserve=st.integers(1, 30),
    cap_bp=st.one_of(st.none(), st.integers(1, 10_000)),
    rule=st.sampled_from(list(ClearingRule)),
    rooms=st.one_of(st.none(), st.lists(st.integers(0, 60), min_size=5, max_size=5)),
    affiliated=st.booleans(),
)
def test_clearing_never_exceeds_supply_caps_or_holding_limits(bids, supply, reserve, cap_bp, rule, rooms,
                                                              affiliated):
    prices = np.array([b[0] for b in bids], dtype=np.int64)
    lots = np.array([b[1] for b in bids], dtype=np.int64)
    bidders = np.array([b[2] for b in bids], dtype=np.int64)
    groups = bidders // 2 if affiliated else bidders  # bidders 0+1 and 2+3 affiliated: they share a cap
    ranks = tie_ranks(b"seed", [str(i) for i in range(len(bids))])
    room = None if rooms is None else np.array([rooms[b] for b in bidders.tolist()], dtype=np.int64)
    params = ClearingParameters(supply, reserve, rule, cap_bp)
    result = clear_uniform_price(prices, lots, groups, ranks, params, bidders, room)
    alloc = result.allocations
    cuts = result.cut_by_cap + result.cut_by_holding
    assert alloc.sum() <= supply and (alloc >= 0).all() and (alloc + cuts <= lots).all()
    if result.status is ClearingStatus.CLEARED:
        assert result.clearing_price >= reserve
        assert (alloc[prices < reserve] == 0).all()
        # Every winning bid bid at least the clearing price: nobody pays more than it offered.
        assert (prices[alloc > 0] >= result.clearing_price).all()
        if params.cap_lots is not None:
            for g in set(groups.tolist()):
                assert alloc[groups == g].sum() <= params.cap_lots
        if rooms is not None:  # nobody ends above its holding limit
            for b in set(bidders.tolist()):
                assert alloc[bidders == b].sum() <= rooms[b]
        # A cut is never more than needed: a bidder cut by its limit still bids exactly its room, a group cut
        # by the cap exactly the cap.
        valid = prices >= reserve
        for b in set(bidders[result.cut_by_holding > 0].tolist()):
            assert (lots - result.cut_by_holding)[(bidders == b) & valid].sum() == rooms[b]
        for g in set(groups[result.cut_by_cap > 0].tolist()):
            assert (lots - cuts)[(groups == g) & valid].sum() == params.cap_lots
        # Price priority: a bid strictly above a bid that won something was not left short by supply.
        shorted = (alloc + cuts) < lots
        if alloc.any() and shorted.any():
            assert prices[shorted & (prices >= reserve)].max(initial=0) <= prices[alloc > 0].min()
        assert result.sold_lots == int(alloc.sum())
        # Undersubscribed (valid demand after caps below supply): all of it is filled, at the reserve.
        if result.sold_lots < supply:
            assert result.clearing_price == reserve and result.reason == "undersubscribed_at_reserve"
            assert ((alloc + cuts)[prices >= reserve] == lots[prices >= reserve]).all()
        # The tie draw: one price level, in rank order; everything before the first short bid filled, nothing
        # after it.
        capped = np.where(prices >= reserve, lots - cuts, 0)
        order = tie_draw(prices, capped, alloc, ranks)
        if order:
            assert len({int(prices[i]) for i in order}) == 1 and len(order) >= 2
            assert [int(ranks[i]) for i in order] == sorted(int(ranks[i]) for i in order)
            short = [n for n, i in enumerate(order) if alloc[i] < capped[i]]
            assert short and all(alloc[i] == capped[i] for i in order[:short[0]])
            assert all(alloc[i] == 0 for i in order[short[0] + 1:])
            assert 0 < sum(int(alloc[i]) for i in order) < sum(int(capped[i]) for i in order)
    else:
        assert alloc.sum() == 0


def test_seed_commitment_is_sha256():
    assert seed_commitment(SEED) == hashlib.sha256(SEED).hexdigest()
