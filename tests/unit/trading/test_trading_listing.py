"""挂牌 listing: every close outcome, the live round countdown, dual control of the 底价."""
from datetime import datetime, timedelta

import pytest

from services.trading.domain.errors import DomainError, SealedError
from services.trading.domain.listing import (
    Listing,
    ListingSold,
    ListingStatus,
    ListingTerms,
    ListingUnsold,
    LiveRoundStarted,
)

OPENS = datetime(2025, 3, 3, 9, 0)
CLOSES = datetime(2025, 3, 14, 15, 0)
WAN = 1_000_000  # 1万元 in fen


def new_listing(reserve: int = 2_600 * WAN) -> Listing:
    listing = Listing(ListingTerms("L-1", start_price=2_570 * WAN, increment=10 * WAN, opens_at=OPENS,
                                   closes_at=CLOSES, countdown_seconds=300, confirmation_seconds=300))
    listing.enter_reserve(reserve, "clerk-a", OPENS)
    listing.approve_reserve("officer-b", OPENS)
    return listing


def at(minutes: int) -> datetime:
    return OPENS + timedelta(minutes=minutes)


def test_first_quote_at_start_price_then_start_plus_increment():
    listing = new_listing()
    with pytest.raises(DomainError) as err:
        listing.quote("B1", 2_569 * WAN, at(1))
    assert err.value.code == "QUOTE_TOO_LOW"
    [quote] = listing.quote("B1", 2_570 * WAN, at(1))
    assert quote.amount == 2_570 * WAN and quote.seq == 1
    with pytest.raises(DomainError):
        listing.quote("B2", 2_579 * WAN, at(2))
    listing.quote("B2", 2_580 * WAN, at(2))
    assert listing.current_price == 2_580 * WAN and listing.leader == "B2"


def test_quotes_refused_outside_the_listing_period_and_by_the_leader():
    listing = new_listing()
    with pytest.raises(DomainError) as err:
        listing.quote("B1", 2_570 * WAN, OPENS - timedelta(seconds=1))
    assert err.value.code == "OUTSIDE_LISTING_PERIOD"
    listing.quote("B1", 2_570 * WAN, at(1))
    with pytest.raises(DomainError) as err:
        listing.quote("B1", 2_600 * WAN, at(2))
    assert err.value.code == "ALREADY_HIGHEST"
    with pytest.raises(DomainError):
        listing.quote("B2", 2_600 * WAN, CLOSES)


def test_increment_change_is_logged_and_applies():
    listing = new_listing()
    listing.quote("B1", 2_570 * WAN, at(1))
    [change] = listing.change_increment(20 * WAN, "host", at(2))
    assert (change.changed_by, change.increment, change.previous) == ("host", 20 * WAN, 10 * WAN)
    assert listing.minimum_next_quote() == 2_590 * WAN
    with pytest.raises(DomainError) as err:
        listing.quote("B2", 2_580 * WAN, at(3))  # the old step no longer suffices
    assert err.value.code == "QUOTE_TOO_LOW"
    listing.quote("B2", 2_590 * WAN, at(3))
    with pytest.raises(DomainError) as err:
        listing.change_increment(20 * WAN, "host", at(4))
    assert err.value.code == "INCREMENT_UNCHANGED"
    with pytest.raises(DomainError) as err:
        listing.change_increment(0, "host", at(4))
    assert err.value.code == "INVALID_INCREMENT"
    with pytest.raises(DomainError) as err:
        listing.change_increment(5 * WAN, "host", CLOSES)
    assert err.value.code == "OUTSIDE_LISTING_PERIOD"


def test_the_increment_also_changes_in_the_live_round_without_moving_the_countdown():
    """§5.1 (拍卖: "the increment may be changed during the auction"), applied to the 限时竞价 live round."""
    listing = two_bidders_closed()
    listing.confirm_continue("B1", CLOSES + timedelta(seconds=10))
    listing.confirm_continue("B2", CLOSES + timedelta(seconds=20))
    deadline = listing.live_deadline
    assert listing.minimum_next_quote() == 2_600 * WAN
    listing.change_increment(5 * WAN, "host", CLOSES + timedelta(seconds=30))
    assert listing.live_deadline == deadline
    assert listing.minimum_next_quote() == 2_595 * WAN
    listing.live_bid("B2", 2_595 * WAN, CLOSES + timedelta(seconds=40))
    with pytest.raises(DomainError) as err:
        listing.change_increment(1 * WAN, "host", listing.live_deadline)
    assert err.value.code == "COUNTDOWN_EXPIRED"


def test_no_increment_change_once_closed_or_decided():
    listing = two_bidders_closed()
    with pytest.raises(DomainError) as err:  # awaiting confirmation of the live round
        listing.change_increment(5 * WAN, "host", CLOSES + timedelta(seconds=1))
    assert err.value.code == "WRONG_STATE"


def test_no_quote_is_unsold():
    listing = new_listing()
    events = listing.close(CLOSES)
    assert events[-1] == ListingUnsold("no_bids", CLOSES)
    assert listing.status is ListingStatus.UNSOLD


def test_one_bidder_at_or_above_reserve_is_sold():
    listing = new_listing(reserve=2_570 * WAN)
    listing.quote("B1", 2_570 * WAN, at(1))
    events = listing.close(CLOSES)
    assert events[-1] == ListingSold("B1", 2_570 * WAN, "listing", CLOSES)


def test_one_bidder_below_reserve_is_unsold_and_reserve_revealed_only_after():
    listing = new_listing(reserve=2_600 * WAN)
    listing.quote("B1", 2_570 * WAN, at(1))
    with pytest.raises(SealedError):
        _ = listing.reserve_price
    events = listing.close(CLOSES)
    assert events[-1] == ListingUnsold("reserve_not_met", CLOSES)
    assert listing.reserve_price == 2_600 * WAN


def two_bidders_closed(reserve: int = 2_600 * WAN) -> Listing:
    listing = new_listing(reserve)
    listing.quote("B1", 2_570 * WAN, at(1))
    listing.quote("B2", 2_580 * WAN, at(2))
    listing.quote("B1", 2_590 * WAN, at(3))
    [closed] = listing.close(CLOSES)
    assert closed.bidders_with_quotes == ("B1", "B2")
    assert listing.status is ListingStatus.AWAITING_CONFIRMATION
    return listing


def test_live_round_won_with_countdown_restart():
    listing = two_bidders_closed()
    listing.confirm_continue("B1", CLOSES + timedelta(seconds=10))
    events = listing.confirm_continue("B2", CLOSES + timedelta(seconds=20))
    started = events[-1]
    assert isinstance(started, LiveRoundStarted)
    assert started.minimum_bid == 2_600 * WAN  # highest listed price + one increment
    t0 = CLOSES + timedelta(seconds=20)
    assert listing.live_deadline == t0 + timedelta(seconds=300)
    listing.live_bid("B2", 2_600 * WAN, t0 + timedelta(seconds=299))
    # Anti-sniping: the bid at 299 s restarted the 300 s countdown.
    assert listing.live_deadline == t0 + timedelta(seconds=599)
    with pytest.raises(DomainError):
        listing.finish_live_round(t0 + timedelta(seconds=300))
    with pytest.raises(DomainError) as err:
        listing.live_bid("B1", 2_605 * WAN, t0 + timedelta(seconds=400))  # not improving by a step
    assert err.value.code == "QUOTE_TOO_LOW"
    assert listing.live_deadline == t0 + timedelta(seconds=599)  # an invalid bid does not extend
    listing.live_bid("B1", 2_610 * WAN, t0 + timedelta(seconds=500))
    with pytest.raises(DomainError) as err:
        listing.live_bid("B2", 2_700 * WAN, t0 + timedelta(seconds=800))
    assert err.value.code == "COUNTDOWN_EXPIRED"
    events = listing.finish_live_round(t0 + timedelta(seconds=800))
    assert events[-1] == ListingSold("B1", 2_610 * WAN, "live_round", t0 + timedelta(seconds=800))


def test_live_round_without_bids_then_reserve_not_met():
    listing = two_bidders_closed(reserve=3_000 * WAN)
    listing.confirm_continue("B1", CLOSES)
    listing.confirm_continue("B2", CLOSES)
    listing.live_bid("B2", 2_600 * WAN, CLOSES + timedelta(seconds=5))
    end = CLOSES + timedelta(seconds=305)
    events = listing.finish_live_round(end)
    assert events[-1] == ListingUnsold("reserve_not_met", end)
    assert listing.reserve_price == 3_000 * WAN


def test_fewer_than_two_confirmations_award_the_highest_listed_quote():
    listing = two_bidders_closed(reserve=2_590 * WAN)
    listing.confirm_continue("B2", CLOSES + timedelta(seconds=1))
    with pytest.raises(DomainError):
        listing.end_confirmation(CLOSES + timedelta(seconds=299))
    events = listing.end_confirmation(CLOSES + timedelta(seconds=300))
    assert events[-1] == ListingSold("B1", 2_590 * WAN, "listing", CLOSES + timedelta(seconds=300))


def test_only_bidders_with_a_valid_quote_may_join():
    listing = two_bidders_closed()
    with pytest.raises(DomainError) as err:
        listing.confirm_continue("B9", CLOSES)
    assert err.value.code == "NO_VALID_QUOTE"


def test_tie_goes_to_the_earlier_quote():
    from services.trading.domain.listing import QuoteAccepted

    listing = new_listing(reserve=2_570 * WAN)
    # Equal amounts can only arrive by a rule change (e.g. a restored journal); the earlier wins.
    listing.apply(QuoteAccepted(1, "B1", 2_570 * WAN, at(1), False))
    listing.apply(QuoteAccepted(2, "B2", 2_570 * WAN, at(2), False))
    decision = listing._decide_on_quotes(CLOSES, "listing")
    assert decision == ListingSold("B1", 2_570 * WAN, "listing", CLOSES)


def test_dual_control_needs_two_different_people_and_locks():
    listing = Listing(ListingTerms("L-2", 100, 10, OPENS, CLOSES, 300, 300, reserve_floor=50))
    with pytest.raises(DomainError) as err:
        listing.enter_reserve(40, "clerk-a", OPENS)
    assert err.value.code == "RESERVE_BELOW_FLOOR"
    [entered] = listing.enter_reserve(120, "clerk-a", OPENS)
    assert entered.entered_by == "clerk-a" and "120" not in repr(entered)
    with pytest.raises(DomainError) as err:
        listing.approve_reserve("clerk-a", OPENS)
    assert err.value.code == "DUAL_CONTROL"
    [approved] = listing.approve_reserve("officer-b", OPENS)
    assert approved.approved_by == "officer-b"
    with pytest.raises(DomainError) as err:
        listing.enter_reserve(130, "clerk-a", OPENS)
    assert err.value.code == "RESERVE_LOCKED"


def test_close_refused_without_approved_reserve():
    listing = Listing(ListingTerms("L-3", 100, 10, OPENS, CLOSES, 300, 300))
    listing.enter_reserve(120, "clerk-a", OPENS)
    with pytest.raises(DomainError) as err:
        listing.close(CLOSES)
    assert err.value.code == "RESERVE_NOT_APPROVED"


def test_replay_of_events_rebuilds_the_same_state():
    listing = new_listing()
    journal = []
    journal += listing.quote("B1", 2_570 * WAN, at(1))
    journal += listing.quote("B2", 2_600 * WAN, at(2))
    journal += listing.close(CLOSES)
    journal += listing.confirm_continue("B1", CLOSES)
    journal += listing.confirm_continue("B2", CLOSES)
    journal += listing.live_bid("B1", 2_610 * WAN, CLOSES + timedelta(seconds=30))
    # The reserve events were emitted by new_listing(); rebuild them in a fresh journal.
    restored = new_listing()
    for event in journal:
        restored.apply(event)
    assert restored.status is ListingStatus.LIVE_ROUND
    assert restored.live_deadline == listing.live_deadline
    assert restored.quotes == listing.quotes
    end = CLOSES + timedelta(seconds=330)
    assert restored.finish_live_round(end) == listing.finish_live_round(end)


def test_replay_keeps_the_changed_increment():
    listing = new_listing()
    events = []
    events += listing.quote("B1", 2_570 * WAN, at(1))
    events += listing.change_increment(30 * WAN, "host", at(2))
    rebuilt = Listing.replay(listing.terms, events)
    assert rebuilt.increment == 30 * WAN and rebuilt.minimum_next_quote() == 2_600 * WAN


def test_repr_never_shows_the_reserve():
    listing = new_listing(reserve=2_612_345_678)
    assert "2612345678" not in repr(listing) and "2612345678" not in str(listing.reserve)
