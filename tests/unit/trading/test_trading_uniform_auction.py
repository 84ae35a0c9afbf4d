"""Sealed-bid uniform-price quota auction and its clearing function."""
import hashlib
from datetime import datetime, timedelta

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
    tie_ranks,
)
from services.trading.domain.errors import DomainError, SealedError
from services.trading.domain.uniform_auction import UniformAuctionTerms, UniformPriceAuction

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


@settings(max_examples=200, deadline=None)
@given(
    bids=st.lists(st.tuples(st.integers(1, 50), st.integers(1, 30), st.integers(0, 4)), min_size=0, max_size=40),
    supply=st.integers(1, 200),
    reserve=st.integers(1, 30),
    cap_bp=st.one_of(st.none(), st.integers(1, 10_000)),
    rule=st.sampled_from(list(ClearingRule)),
)
def test_clearing_never_exceeds_supply_or_caps(bids, supply, reserve, cap_bp, rule):
    prices = np.array([b[0] for b in bids], dtype=np.int64)
    lots = np.array([b[1] for b in bids], dtype=np.int64)
    groups = np.array([b[2] for b in bids], dtype=np.int64)
    ranks = tie_ranks(b"seed", [str(i) for i in range(len(bids))])
    params = ClearingParameters(supply, reserve, rule, cap_bp)
    result = clear_uniform_price(prices, lots, groups, ranks, params)
    alloc = result.allocations
    assert alloc.sum() <= supply and (alloc >= 0).all() and (alloc <= lots).all()
    if result.status is ClearingStatus.CLEARED:
        assert result.clearing_price >= reserve
        assert (alloc[prices < reserve] == 0).all()
        # Every winning bid bid at least the clearing price: nobody pays more than it offered.
        assert (prices[alloc > 0] >= result.clearing_price).all()
        if params.cap_lots is not None:
            for g in set(groups.tolist()):
                assert alloc[groups == g].sum() <= params.cap_lots
        # Price priority: a bid strictly above a bid that won something was not left short by supply.
        shorted = (alloc + result.cut_by_cap) < lots
        if alloc.any() and shorted.any():
            assert prices[shorted & (prices >= reserve)].max(initial=0) <= prices[alloc > 0].min()
        assert result.sold_lots == int(alloc.sum())
        # Undersubscribed (valid demand after caps below supply): all of it is filled, at the reserve.
        if result.sold_lots < supply:
            assert result.clearing_price == reserve and result.reason == "undersubscribed_at_reserve"
            assert ((alloc + result.cut_by_cap)[prices >= reserve] == lots[prices >= reserve]).all()
    else:
        assert alloc.sum() == 0


def test_seed_commitment_is_sha256():
    assert seed_commitment(SEED) == hashlib.sha256(SEED).hexdigest()
