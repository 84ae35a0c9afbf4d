"""挂牌 listing of a land-use right (国土资源部令第39号; evaluation-and-land.md §5.1, §5.3 and the
online practice of trading-anchors.md §3.5).

Flow: quotes during the listing period, each ≥ current price + increment (the first ≥ the start
price), each accepted quote published → at close:
  * no quote                                    → unsold (no_bids)
  * one bidder                                  → sold if its quote ≥ 底价, else unsold
  * ≥ 2 bidders with valid quotes               → confirmation window; bidders who quoted may
    confirm that they continue. ≥ 2 confirm     → 限时竞价 live round from highest + increment,
    countdown (the sale policy's timer) restarting on every valid improving bid; < 2 confirm → the highest
    quote (ties: the earlier quote) wins if ≥ 底价.
  * after the live round                        → the highest bid wins if ≥ 底价, else unsold.
Server time is passed in (`now`); "times are those at which data reach the server".

Persistence: commands return events; `Listing.replay(terms, events)` rebuilds the state.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from .errors import DomainError
from .money import require_fen
from .reserve import DualControlledReserve, ReserveApproved, ReserveEntered


class ListingStatus(Enum):
    OPEN = "open"  # accepting quotes (before opens_at quotes are refused by time)
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    LIVE_ROUND = "live_round"
    SOLD = "sold"
    UNSOLD = "unsold"


@dataclass(frozen=True, slots=True)
class ListingTerms:
    listing_id: str
    start_price: int  # 起始价, fen (public)
    increment: int  # 增价幅度, fen (public; may be changed during the listing)
    opens_at: datetime
    closes_at: datetime
    countdown_seconds: int  # 限时竞价 countdown, restarts on each valid bid (sale policy timers)
    confirmation_seconds: int  # window to confirm joining the live round (sale policy timers)
    reserve_floor: int = 0  # national minimum price; the 底价 may not be lower
    allow_self_outbid: bool = False  # may the current leader raise its own price?
    policy_version: str = "39hao-ling-2007"

    def __post_init__(self) -> None:
        for name in ("start_price", "increment", "reserve_floor"):
            require_fen(getattr(self, name), name)
        if self.start_price <= 0 or self.increment <= 0:
            raise ValueError("start price and increment must be positive")
        if self.closes_at <= self.opens_at:
            raise ValueError("listing must close after it opens")


@dataclass(frozen=True, slots=True)
class QuoteAccepted:
    seq: int
    bidder: str  # bidder number (竞买号), not the identity
    amount: int
    at: datetime
    live_round: bool


@dataclass(frozen=True, slots=True)
class QuotesInvalidated:
    """A change notice altered the conditions after quotes were made: they no longer bind (kept for the
    record); bidders confirm again before quoting, and the listing restarts from its start price."""

    notice_version: int
    quotes: int
    at: datetime


@dataclass(frozen=True, slots=True)
class IncrementChanged:
    increment: int
    changed_by: str
    at: datetime
    previous: int = 0  # the increment it replaced (0 in events stored before it was recorded)


@dataclass(frozen=True, slots=True)
class ListingClosed:
    at: datetime
    bidders_with_quotes: tuple[str, ...]
    confirmation_deadline: datetime | None


@dataclass(frozen=True, slots=True)
class ContinuationConfirmed:
    bidder: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LiveRoundStarted:
    participants: tuple[str, ...]
    minimum_bid: int
    deadline: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class ListingSold:
    bidder: str
    price: int
    via: str  # "listing" | "live_round"
    at: datetime


@dataclass(frozen=True, slots=True)
class ListingUnsold:
    reason: str  # "no_bids" | "reserve_not_met"
    at: datetime


ListingEvent = (
    ReserveEntered
    | ReserveApproved
    | QuoteAccepted
    | IncrementChanged
    | ListingClosed
    | ContinuationConfirmed
    | LiveRoundStarted
    | ListingSold
    | ListingUnsold
    | QuotesInvalidated
)


@dataclass
class Listing:
    terms: ListingTerms
    status: ListingStatus = ListingStatus.OPEN
    increment: int = 0
    quotes: list[QuoteAccepted] = field(default_factory=list)  # public: each one is published
    invalidated: list[QuoteAccepted] = field(default_factory=list)  # quotes a change notice voided
    reserve: DualControlledReserve = field(default_factory=DualControlledReserve, repr=False)
    quoting_bidders: tuple[str, ...] = ()
    confirmation_deadline: datetime | None = None
    confirmed: list[str] = field(default_factory=list)
    live_participants: tuple[str, ...] = ()
    live_deadline: datetime | None = None
    outcome: ListingSold | ListingUnsold | None = None

    def __post_init__(self) -> None:
        self.increment = self.increment or self.terms.increment

    # ------------------------------------------------------------ queries

    @property
    def current_price(self) -> int | None:
        return self.quotes[-1].amount if self.quotes else None

    @property
    def leader(self) -> str | None:
        return self.quotes[-1].bidder if self.quotes else None

    def minimum_next_quote(self) -> int:
        return self.terms.start_price if not self.quotes else self.quotes[-1].amount + self.increment

    @property
    def is_final(self) -> bool:
        return self.status in (ListingStatus.SOLD, ListingStatus.UNSOLD)

    @property
    def reserve_price(self) -> int:
        """Revealed only once the listing is decided; raises SealedError before."""
        return self.reserve.value(self.is_final)

    # ------------------------------------------------------------ commands

    def enter_reserve(self, amount: int, entered_by: str, now: datetime) -> list[ListingEvent]:
        self._require(ListingStatus.OPEN)
        return self._emit(self.reserve.enter(amount, entered_by, now, self.terms.reserve_floor))

    def approve_reserve(self, approved_by: str, now: datetime) -> list[ListingEvent]:
        self._require(ListingStatus.OPEN)
        return self._emit(self.reserve.approve(approved_by, now))

    def change_increment(self, increment: int, changed_by: str, now: datetime) -> list[ListingEvent]:
        """39号令 / §5.3: the increment may be changed while the listing is open and during the live round
        (an auction, §5.1); each change is logged and announced. It applies from the next quote on and
        neither restarts the countdown nor touches quotes already made."""
        require_fen(increment, "increment")
        if increment <= 0:
            raise DomainError("INVALID_INCREMENT", "increment must be positive")
        if self.status is ListingStatus.OPEN:
            if not self.terms.opens_at <= now < self.terms.closes_at:
                raise DomainError("OUTSIDE_LISTING_PERIOD", now.isoformat())
        elif self.status is ListingStatus.LIVE_ROUND:
            assert self.live_deadline is not None
            if now >= self.live_deadline:
                raise DomainError("COUNTDOWN_EXPIRED", now.isoformat())
        else:
            raise DomainError("WRONG_STATE", f"listing is {self.status.value}; the increment changes only while "
                                             "it is open or in its live round")
        if increment == self.increment:
            raise DomainError("INCREMENT_UNCHANGED", f"the increment is already {increment}")
        return self._emit(IncrementChanged(increment, changed_by, now, self.increment))

    def quote(self, bidder: str, amount: int, now: datetime) -> list[ListingEvent]:
        require_fen(amount, "amount")
        self._require(ListingStatus.OPEN)
        if not self.terms.opens_at <= now < self.terms.closes_at:
            raise DomainError("OUTSIDE_LISTING_PERIOD", now.isoformat())
        self._check_improves(bidder, amount)
        return self._emit(QuoteAccepted(self._next_seq(), bidder, amount, now, False))

    def close(self, now: datetime) -> list[ListingEvent]:
        """At or after the listed close time. Decides at once unless ≥ 2 bidders quoted."""
        self._require(ListingStatus.OPEN)
        if now < self.terms.closes_at:
            raise DomainError("TOO_EARLY", "the listing period has not ended")
        if not self.reserve.approved:
            raise DomainError("RESERVE_NOT_APPROVED", "the 底价 must be entered and approved before close")
        bidders = tuple(dict.fromkeys(q.bidder for q in self.quotes))
        if len(bidders) >= 2:
            deadline = now + timedelta(seconds=self.terms.confirmation_seconds)
            return self._emit(ListingClosed(now, bidders, deadline))
        events = self._emit(ListingClosed(now, bidders, None))
        return events + self._emit(self._decide_on_quotes(now, "listing"))

    def confirm_continue(self, bidder: str, now: datetime) -> list[ListingEvent]:
        self._require(ListingStatus.AWAITING_CONFIRMATION)
        assert self.confirmation_deadline is not None
        if now >= self.confirmation_deadline:
            raise DomainError("CONFIRMATION_CLOSED", now.isoformat())
        if bidder not in self.quoting_bidders:
            raise DomainError("NO_VALID_QUOTE", "only bidders with a valid quote may join the live round")
        if bidder in self.confirmed:
            raise DomainError("ALREADY_CONFIRMED", bidder)
        events = self._emit(ContinuationConfirmed(bidder, now))
        if len(self.confirmed) == len(self.quoting_bidders):
            events += self._start_live_round(now)  # everyone answered: no need to wait
        return events

    def end_confirmation(self, now: datetime) -> list[ListingEvent]:
        """Timer: the confirmation window has passed."""
        self._require(ListingStatus.AWAITING_CONFIRMATION)
        assert self.confirmation_deadline is not None
        if now < self.confirmation_deadline:
            raise DomainError("TOO_EARLY", "confirmation window still open")
        if len(self.confirmed) >= 2:
            return self._start_live_round(now)
        return self._emit(self._decide_on_quotes(now, "listing"))

    def live_bid(self, bidder: str, amount: int, now: datetime) -> list[ListingEvent]:
        require_fen(amount, "amount")
        self._require(ListingStatus.LIVE_ROUND)
        assert self.live_deadline is not None
        if now >= self.live_deadline:
            raise DomainError("COUNTDOWN_EXPIRED", now.isoformat())
        if bidder not in self.live_participants:
            raise DomainError("NOT_A_PARTICIPANT", bidder)
        self._check_improves(bidder, amount)
        # Anti-sniping: only a valid, improving bid restarts the countdown.
        return self._emit(QuoteAccepted(self._next_seq(), bidder, amount, now, True))

    def invalidate_quotes(self, notice_version: int, now: datetime) -> list[ListingEvent]:
        """A change notice that alters the conditions voids the quotes made under the old ones."""
        self._require(ListingStatus.OPEN)
        if not self.quotes:
            return []
        return self._emit(QuotesInvalidated(notice_version, len(self.quotes), now))

    def finish_live_round(self, now: datetime) -> list[ListingEvent]:
        """Timer: the countdown ran out with no further valid bid."""
        self._require(ListingStatus.LIVE_ROUND)
        assert self.live_deadline is not None
        if now < self.live_deadline:
            raise DomainError("TOO_EARLY", "countdown still running")
        return self._emit(self._decide_on_quotes(now, "live_round"))

    # ------------------------------------------------------------ persistence

    @classmethod
    def replay(cls, terms: ListingTerms, events: Iterable[ListingEvent]) -> Listing:
        listing = cls(terms)
        for event in events:
            listing.apply(event)
        return listing

    def apply(self, event: ListingEvent) -> None:
        if isinstance(event, (ReserveEntered, ReserveApproved)):
            self.reserve.apply(event)
        elif isinstance(event, QuoteAccepted):
            self.quotes.append(event)
            if event.live_round:
                self.live_deadline = event.at + timedelta(seconds=self.terms.countdown_seconds)
        elif isinstance(event, IncrementChanged):
            self.increment = event.increment
        elif isinstance(event, QuotesInvalidated):
            self.invalidated.extend(self.quotes)
            self.quotes = []
        elif isinstance(event, ListingClosed):
            self.quoting_bidders = event.bidders_with_quotes
            self.confirmation_deadline = event.confirmation_deadline
            if event.confirmation_deadline is not None:
                self.status = ListingStatus.AWAITING_CONFIRMATION
        elif isinstance(event, ContinuationConfirmed):
            self.confirmed.append(event.bidder)
        elif isinstance(event, LiveRoundStarted):
            self.status = ListingStatus.LIVE_ROUND
            self.live_participants = event.participants
            self.live_deadline = event.deadline
        elif isinstance(event, ListingSold):
            self.status, self.outcome = ListingStatus.SOLD, event
        elif isinstance(event, ListingUnsold):
            self.status, self.outcome = ListingStatus.UNSOLD, event
        else:
            raise TypeError(f"unknown event {event!r}")

    # ------------------------------------------------------------ internals

    def _emit(self, event: ListingEvent) -> list[ListingEvent]:
        self.apply(event)
        return [event]

    def _next_seq(self) -> int:
        # Sequence numbers stay unique across invalidations (bid rows and pages are keyed by them).
        return len(self.quotes) + len(self.invalidated) + 1

    def _require(self, status: ListingStatus) -> None:
        if self.status is not status:
            raise DomainError("WRONG_STATE", f"listing is {self.status.value}, needs {status.value}")

    def _check_improves(self, bidder: str, amount: int) -> None:
        minimum = self.minimum_next_quote()
        if amount < minimum:
            raise DomainError("QUOTE_TOO_LOW", f"minimum is {minimum}")
        if self.quotes and self.leader == bidder and not self.terms.allow_self_outbid:
            raise DomainError("ALREADY_HIGHEST", "the current leader may not outbid itself")

    def _start_live_round(self, now: datetime) -> list[ListingEvent]:
        # The live round starts at the highest listed price + one increment.
        deadline = now + timedelta(seconds=self.terms.countdown_seconds)
        return self._emit(LiveRoundStarted(tuple(self.confirmed), self.minimum_next_quote(), deadline, now))

    def _decide_on_quotes(self, now: datetime, via: str) -> ListingSold | ListingUnsold:
        if not self.quotes:
            return ListingUnsold("no_bids", now)
        # Highest amount wins; on equal amounts the earlier quote (lower seq) wins.
        best = min(self.quotes, key=lambda q: (-q.amount, q.seq))
        if not self.reserve.met_by(best.amount):
            return ListingUnsold("reserve_not_met", now)
        return ListingSold(best.bidder, best.amount, via if best.live_round else "listing", now)
