"""拍卖: English ascending auction with a restart-on-bid countdown (anti-sniping) and a hard stop,
a minimum number of registered bidders (39号令 practice: fewer than three cannot proceed), a public
start price and a secret reserve under dual control (trading-anchors.md §1.2 land lease, §3.5).

Persistence: commands return events; `EnglishAuction.replay(terms, events)` rebuilds the state.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from .errors import DomainError
from .money import require_fen
from .reserve import DualControlledReserve, ReserveApproved, ReserveEntered


class AuctionStatus(Enum):
    REGISTRATION = "registration"
    RUNNING = "running"
    SOLD = "sold"
    UNSOLD = "unsold"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class EnglishAuctionTerms:
    auction_id: str
    start_price: int
    increment: int
    starts_at: datetime
    hard_stop_at: datetime  # the auction ends here whatever happens (e.g. 17:00)
    countdown_seconds: int  # restarts on each valid bid (sale policy timers)
    min_registered_bidders: int = 3
    reserve_required: bool = True
    reserve_floor: int = 0
    policy_version: str = "english-v1"

    def __post_init__(self) -> None:
        require_fen(self.start_price, "start_price")
        require_fen(self.increment, "increment")
        if self.start_price <= 0 or self.increment <= 0:
            raise ValueError("start price and increment must be positive")
        if self.hard_stop_at <= self.starts_at:
            raise ValueError("hard stop must be after the start")


@dataclass(frozen=True, slots=True)
class BidderRegistered:
    bidder: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionStarted:
    deadline: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class BidAccepted:
    seq: int
    bidder: str
    amount: int
    deadline: datetime  # the effective end after this bid (restart, capped by the hard stop)
    at: datetime


@dataclass(frozen=True, slots=True)
class IncrementChanged:
    """§5.1: the increment may be changed during the auction (logged and announced)."""

    increment: int
    previous: int
    changed_by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionSold:
    bidder: str
    price: int
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionUnsold:
    reason: str  # "no_bids" | "reserve_not_met"
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionCancelled:
    reason: str  # "insufficient_bidders"
    at: datetime


EnglishAuctionEvent = (
    ReserveEntered
    | ReserveApproved
    | BidderRegistered
    | AuctionStarted
    | BidAccepted
    | IncrementChanged
    | AuctionSold
    | AuctionUnsold
    | AuctionCancelled
)


@dataclass
class EnglishAuction:
    terms: EnglishAuctionTerms
    status: AuctionStatus = AuctionStatus.REGISTRATION
    registered: list[str] = field(default_factory=list)
    bids: list[BidAccepted] = field(default_factory=list)
    deadline: datetime | None = None
    increment: int = 0  # the current increment: the terms' until a change
    reserve: DualControlledReserve = field(default_factory=DualControlledReserve, repr=False)
    outcome: AuctionSold | AuctionUnsold | AuctionCancelled | None = None

    def __post_init__(self) -> None:
        self.increment = self.increment or self.terms.increment

    @property
    def is_final(self) -> bool:
        return self.status in (AuctionStatus.SOLD, AuctionStatus.UNSOLD, AuctionStatus.CANCELLED)

    @property
    def reserve_price(self) -> int:
        return self.reserve.value(self.is_final)

    @property
    def effective_end(self) -> datetime | None:
        """What clients must display: the extended end, never the original one."""
        return self.deadline

    def minimum_next_bid(self) -> int:
        return self.terms.start_price if not self.bids else self.bids[-1].amount + self.increment

    # ------------------------------------------------------------ commands

    def enter_reserve(self, amount: int, entered_by: str, now: datetime) -> list[EnglishAuctionEvent]:
        self._require(AuctionStatus.REGISTRATION)
        return self._emit(self.reserve.enter(amount, entered_by, now, self.terms.reserve_floor))

    def approve_reserve(self, approved_by: str, now: datetime) -> list[EnglishAuctionEvent]:
        self._require(AuctionStatus.REGISTRATION)
        return self._emit(self.reserve.approve(approved_by, now))

    def register(self, bidder: str, now: datetime) -> list[EnglishAuctionEvent]:
        """Eligibility and the deposit are checked by the application layer before this call."""
        self._require(AuctionStatus.REGISTRATION)
        if now >= self.terms.starts_at:
            raise DomainError("REGISTRATION_CLOSED", now.isoformat())
        if bidder in self.registered:
            raise DomainError("ALREADY_REGISTERED", bidder)
        return self._emit(BidderRegistered(bidder, now))

    def start(self, now: datetime) -> list[EnglishAuctionEvent]:
        self._require(AuctionStatus.REGISTRATION)
        if now < self.terms.starts_at:
            raise DomainError("TOO_EARLY", "the auction has not reached its start time")
        if len(self.registered) < self.terms.min_registered_bidders:
            return self._emit(AuctionCancelled("insufficient_bidders", now))
        if self.terms.reserve_required and not self.reserve.approved:
            raise DomainError("RESERVE_NOT_APPROVED", "the reserve must be entered and approved")
        return self._emit(AuctionStarted(self._capped(now), now))

    def bid(self, bidder: str, amount: int, now: datetime) -> list[EnglishAuctionEvent]:
        require_fen(amount, "amount")
        self._require(AuctionStatus.RUNNING)
        assert self.deadline is not None
        if now >= self.deadline:
            raise DomainError("AUCTION_ENDED", now.isoformat())
        if bidder not in self.registered:
            raise DomainError("NOT_REGISTERED", bidder)
        if self.bids and self.bids[-1].bidder == bidder:
            raise DomainError("ALREADY_HIGHEST", "the current leader may not outbid itself")
        minimum = self.minimum_next_bid()
        if amount < minimum:
            raise DomainError("BID_TOO_LOW", f"minimum is {minimum}")
        # Anti-sniping: a valid improving bid restarts the countdown, never past the hard stop.
        return self._emit(BidAccepted(len(self.bids) + 1, bidder, amount, self._capped(now), now))

    def change_increment(self, increment: int, changed_by: str, now: datetime) -> list[EnglishAuctionEvent]:
        """The auctioneer changes the increment while the auction runs; it applies from the next bid on and
        does not move the deadline."""
        require_fen(increment, "increment")
        self._require(AuctionStatus.RUNNING)
        assert self.deadline is not None
        if increment <= 0:
            raise DomainError("INVALID_INCREMENT", "increment must be positive")
        if now >= self.deadline:
            raise DomainError("AUCTION_ENDED", now.isoformat())
        if increment == self.increment:
            raise DomainError("INCREMENT_UNCHANGED", f"the increment is already {increment}")
        return self._emit(IncrementChanged(increment, self.increment, changed_by, now))

    def finish(self, now: datetime) -> list[EnglishAuctionEvent]:
        """Timer: the (extended) countdown or the hard stop has been reached."""
        self._require(AuctionStatus.RUNNING)
        assert self.deadline is not None
        if now < self.deadline:
            raise DomainError("TOO_EARLY", "countdown still running")
        if not self.bids:
            return self._emit(AuctionUnsold("no_bids", now))
        best = self.bids[-1]
        if self.terms.reserve_required and not self.reserve.met_by(best.amount):
            return self._emit(AuctionUnsold("reserve_not_met", now))
        return self._emit(AuctionSold(best.bidder, best.amount, now))

    # ------------------------------------------------------------ persistence

    @classmethod
    def replay(cls, terms: EnglishAuctionTerms, events: Iterable[EnglishAuctionEvent]) -> EnglishAuction:
        auction = cls(terms)
        for event in events:
            auction.apply(event)
        return auction

    def apply(self, event: EnglishAuctionEvent) -> None:
        if isinstance(event, (ReserveEntered, ReserveApproved)):
            self.reserve.apply(event)
        elif isinstance(event, BidderRegistered):
            self.registered.append(event.bidder)
        elif isinstance(event, AuctionStarted):
            self.status, self.deadline = AuctionStatus.RUNNING, event.deadline
        elif isinstance(event, BidAccepted):
            self.bids.append(event)
            self.deadline = event.deadline
        elif isinstance(event, IncrementChanged):
            self.increment = event.increment
        elif isinstance(event, AuctionSold):
            self.status, self.outcome = AuctionStatus.SOLD, event
        elif isinstance(event, AuctionUnsold):
            self.status, self.outcome = AuctionStatus.UNSOLD, event
        elif isinstance(event, AuctionCancelled):
            self.status, self.outcome = AuctionStatus.CANCELLED, event
        else:
            raise TypeError(f"unknown event {event!r}")

    def _emit(self, event: EnglishAuctionEvent) -> list[EnglishAuctionEvent]:
        self.apply(event)
        return [event]

    def _require(self, status: AuctionStatus) -> None:
        if self.status is not status:
            raise DomainError("WRONG_STATE", f"auction is {self.status.value}, needs {status.value}")

    def _capped(self, now: datetime) -> datetime:
        return min(now + timedelta(seconds=self.terms.countdown_seconds), self.terms.hard_stop_at)
