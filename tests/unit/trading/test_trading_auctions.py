"""拍卖 (English, anti-sniping, hard stop), 招标 (sealed tender) and confidentiality."""
import pickle
from datetime import datetime, timedelta

import pytest

from services.trading.domain.english_auction import (
    AuctionCancelled,
    AuctionSold,
    AuctionUnsold,
    EnglishAuction,
    EnglishAuctionTerms,
)
from services.trading.domain.errors import DomainError, SealedError
from services.trading.domain.tender import AwardRule, Tender, TenderTerms, commitment_digest

START = datetime(2025, 6, 2, 9, 0)
STOP = datetime(2025, 6, 2, 17, 0)


def english(min_bidders: int = 3) -> EnglishAuction:
    auction = EnglishAuction(
        EnglishAuctionTerms("A-1", start_price=1_000, increment=100, starts_at=START, hard_stop_at=STOP,
                            countdown_seconds=180, min_registered_bidders=min_bidders)
    )
    auction.enter_reserve(1_200, "clerk", START - timedelta(days=1))
    auction.approve_reserve("officer", START - timedelta(days=1))
    for b in ("B1", "B2", "B3")[:min_bidders]:
        auction.register(b, START - timedelta(hours=1))
    return auction


def s(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


def test_too_few_registered_bidders_cancels():
    auction = EnglishAuction(EnglishAuctionTerms("A-2", 1_000, 100, START, STOP, 300))
    auction.register("B1", START - timedelta(hours=1))
    auction.register("B2", START - timedelta(hours=1))
    assert auction.start(START) == [AuctionCancelled("insufficient_bidders", START)]


def test_anti_sniping_restart_and_sale_above_reserve():
    auction = english()
    auction.start(START)
    assert auction.effective_end == s(180)
    with pytest.raises(DomainError):
        auction.bid("B1", 999, s(10))
    auction.bid("B1", 1_000, s(10))
    auction.bid("B2", 1_100, s(189))  # sniping attempt at the last second
    assert auction.effective_end == s(369)
    with pytest.raises(DomainError):
        auction.bid("B2", 1_300, s(200))  # leader may not outbid itself; no extension either
    assert auction.effective_end == s(369)
    auction.bid("B3", 1_200, s(300))
    with pytest.raises(DomainError):
        auction.finish(s(479))
    assert auction.finish(s(480)) == [AuctionSold("B3", 1_200, s(480))]
    assert auction.reserve_price == 1_200


def test_the_auctioneer_changes_the_increment_during_the_auction():
    """§5.1: "The increment may be changed during the auction." It applies from the next bid, moves no
    deadline, is refused before the start, after the end and when nothing changes, and survives replay."""
    auction = english()
    with pytest.raises(DomainError) as err:
        auction.change_increment(50, "host", START - timedelta(minutes=1))
    assert err.value.code == "WRONG_STATE"
    events = auction.start(START)
    events += auction.bid("B1", 1_000, s(10))
    end = auction.effective_end
    events += auction.change_increment(250, "host", s(20))
    assert events[-1].previous == 100 and auction.effective_end == end
    assert auction.minimum_next_bid() == 1_250
    with pytest.raises(DomainError) as err:
        auction.bid("B2", 1_100, s(30))
    assert err.value.code == "BID_TOO_LOW"
    events += auction.bid("B2", 1_250, s(30))
    with pytest.raises(DomainError) as err:
        auction.change_increment(250, "host", s(40))
    assert err.value.code == "INCREMENT_UNCHANGED"
    rebuilt = EnglishAuction.replay(auction.terms, events)
    assert rebuilt.increment == 250 and rebuilt.minimum_next_bid() == 1_500
    with pytest.raises(DomainError) as err:
        auction.change_increment(10, "host", auction.effective_end)
    assert err.value.code == "AUCTION_ENDED"


def test_hard_stop_caps_the_extension():
    auction = english()
    auction.start(START)
    t = START
    leader = "B1"
    while t + timedelta(seconds=170) < STOP:
        t += timedelta(seconds=170)
        auction.bid(leader, auction.minimum_next_bid(), t)
        leader = "B2" if leader == "B1" else "B1"
    assert auction.effective_end == STOP
    with pytest.raises(DomainError) as err:
        auction.bid(leader, auction.minimum_next_bid(), STOP)
    assert err.value.code == "AUCTION_ENDED"
    assert isinstance(auction.finish(STOP)[0], AuctionSold)


def test_reserve_not_met_and_no_bids():
    auction = english()
    auction.start(START)
    with pytest.raises(SealedError):
        _ = auction.reserve_price
    auction.bid("B1", 1_100, s(1))
    assert auction.finish(s(181)) == [AuctionUnsold("reserve_not_met", s(181))]
    other = english()
    other.start(START)
    assert other.finish(s(180)) == [AuctionUnsold("no_bids", s(180))]


def test_english_auction_replay():
    auction = english()
    journal = list(auction.start(START)) + auction.bid("B1", 1_000, s(5)) + auction.bid("B2", 1_300, s(50))
    restored = english()
    for event in journal:
        restored.apply(event)
    assert restored.effective_end == auction.effective_end
    assert restored.finish(s(230)) == auction.finish(s(230))


# ------------------------------------------------------------------ tender

DEADLINE = datetime(2025, 7, 1, 9, 0)
NONCE = "n" * 16


def tender(rule: AwardRule = AwardRule.PRICE, price_w: int = 10_000, eval_w: int = 0, min_bidders: int = 1,
           reserve_floor: int = 0) -> Tender:
    # The award tests below use a policy that awards even a single bidder; the minimum has its own tests.
    return Tender(TenderTerms("T-1", DEADLINE, DEADLINE, minimum_price=500, award_rule=rule,
                              price_weight_bp=price_w, evaluation_weight_bp=eval_w, min_bidders=min_bidders,
                              reserve_floor=reserve_floor))


def test_tender_receipt_is_the_commitment_digest_and_amounts_stay_sealed():
    t = tender()
    [event] = t.submit("B1", 987_654, NONCE, DEADLINE - timedelta(hours=1))
    assert event.receipt == commitment_digest("T-1", "B1", 987_654, NONCE)
    assert t.verify_receipt("B1", event.receipt)
    for reader in (lambda: t.bids, lambda: t.bid_amount("B1"), lambda: t.result):
        with pytest.raises(SealedError):
            reader()
    for text in (repr(t), str(t), repr(event), str(event)):
        assert "987654" not in text and NONCE not in text
    with pytest.raises(SealedError):
        pickle.dumps(event.amount)
    with pytest.raises(DomainError) as err:
        t.open(DEADLINE - timedelta(seconds=1))
    assert err.value.code == "TOO_EARLY"


def test_tender_award_by_price_tie_to_earlier_and_late_bid_refused():
    t = tender()
    t.submit("B1", 800, NONCE, DEADLINE - timedelta(hours=3))
    t.submit("B2", 900, NONCE, DEADLINE - timedelta(hours=2))
    t.submit("B3", 900, NONCE, DEADLINE - timedelta(hours=1))
    with pytest.raises(DomainError):
        t.submit("B4", 2_000, NONCE, DEADLINE)
    [opened] = t.open(DEADLINE)
    assert (opened.winner, opened.price) == ("B2", 900)
    assert [r.bidder for r in opened.ranking] == ["B2", "B3", "B1"]
    assert t.bids == {"B1": 800, "B2": 900, "B3": 900}


def test_tender_award_by_comprehensive_score():
    t = tender(AwardRule.SCORE, price_w=4_000, eval_w=6_000)
    t.submit("B1", 1_000, NONCE, DEADLINE - timedelta(hours=2))  # best price, weak plan
    t.submit("B2", 900, NONCE, DEADLINE - timedelta(hours=1))  # 90 % of the price score, strong plan
    with pytest.raises(DomainError):
        t.open(DEADLINE, {"B1": 5_000})
    [opened] = t.open(DEADLINE, {"B1": 5_000, "B2": 9_000})
    # B1: 0.4*10000 + 0.6*5000 = 7000; B2: 0.4*9000 + 0.6*9000 = 9000
    assert [(r.bidder, r.total_score_bp) for r in opened.ranking] == [("B2", 9_000), ("B1", 7_000)]
    assert opened.winner == "B2" and opened.price == 900


def test_tender_replay_and_resubmission_replaces():
    t = tender()
    journal = t.submit("B1", 600, NONCE, DEADLINE - timedelta(hours=2))
    journal += t.submit("B1", 700, "m" * 16, DEADLINE - timedelta(hours=1))
    restored = Tender.replay(t.terms, journal)
    assert restored.bid_count == 1
    assert restored.open(DEADLINE)[0].price == 700


def test_a_tender_with_fewer_bidders_than_the_policy_minimum_is_unsuccessful():
    # 39号令: a tender with fewer than three bidders is terminated; the default policy says 3.
    assert TenderTerms("T-1", DEADLINE, DEADLINE, minimum_price=500).min_bidders == 3
    t = tender(min_bidders=3)
    t.submit("B1", 900, NONCE, DEADLINE - timedelta(hours=2))
    t.submit("B2", 800, NONCE, DEADLINE - timedelta(hours=1))
    [opened] = t.open(DEADLINE)
    assert (opened.winner, opened.price, opened.reason) == (None, None, "too_few_bidders")
    assert [r.bidder for r in opened.ranking] == ["B1", "B2"]  # opened and published all the same
    assert tender(min_bidders=3).open(DEADLINE)[0].reason == "no_bids"


def test_the_secret_biaodi_decides_only_at_the_opening():
    t = tender(reserve_floor=600)
    with pytest.raises(DomainError) as low:  # never below the national minimum
        t.enter_reserve(599, "staff", DEADLINE - timedelta(days=1))
    assert low.value.code == "RESERVE_BELOW_FLOOR"
    journal = t.enter_reserve(850, "staff", DEADLINE - timedelta(days=1))
    with pytest.raises(DomainError) as alone:
        t.approve_reserve("staff", DEADLINE - timedelta(days=1))
    assert alone.value.code == "DUAL_CONTROL"
    journal += t.approve_reserve("supervisor", DEADLINE - timedelta(days=1))
    # A bid below the 标底 but above the public start price is accepted like any other: entry tells nothing.
    journal += t.submit("B1", 800, NONCE, DEADLINE - timedelta(hours=3))
    journal += t.submit("B2", 860, NONCE, DEADLINE - timedelta(hours=2))
    with pytest.raises(SealedError):
        t.reserve_price  # noqa: B018 - reading it is the test
    assert "850" not in repr(t)
    [opened] = t.open(DEADLINE)
    assert (opened.winner, opened.price, opened.reason) == ("B2", 860, None)
    assert t.reserve_price == 850
    # B2 above the 标底 wins although B1 bid less; had nobody reached it, nobody would have won.
    low_bids = Tender.replay(t.terms, [e for e in journal if getattr(e, "bidder", "") != "B2"])
    assert low_bids.open(DEADLINE)[0].reason == "reserve_not_met"


def test_after_a_default_the_next_ranked_bid_meeting_the_biaodi_is_offered():
    """招标投标法实施条例 第五十五条: the candidates follow the ranking; a bid under the 标底 never wins."""
    t = tender()
    t.enter_reserve(850, "staff", DEADLINE - timedelta(days=1))
    t.approve_reserve("supervisor", DEADLINE - timedelta(days=1))
    for bidder, amount in (("B1", 900), ("B2", 800), ("B3", 870), ("B4", 870)):
        t.submit(bidder, amount, NONCE, DEADLINE - timedelta(hours=3))
    [opened] = t.open(DEADLINE)
    assert opened.winner == "B1"
    assert t.next_awardable({"B1"}).bidder == "B3"  # 870 equals B4's; B3 bid first
    assert t.next_awardable({"B1", "B3"}).bidder == "B4"
    assert t.next_awardable({"B1", "B3", "B4"}) is None  # B2's 800 is under the 标底


def test_an_unapproved_biaodi_awards_nobody():
    t = tender()
    t.enter_reserve(700, "staff", DEADLINE - timedelta(days=1))
    t.submit("B1", 900, NONCE, DEADLINE - timedelta(hours=1))
    assert t.open(DEADLINE)[0].reason == "reserve_not_approved"
