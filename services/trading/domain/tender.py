"""招标 sealed tender for a land-use right: bids sealed until the opening time. Every accepted bid
returns a receipt = commitment digest sha256(listing id, bidder number, amount, nonce), which the
bidder can recompute; the state machine refuses to reveal amounts before opening (any accessor
raises `SealedError`, repr/str show nothing). At opening the award goes by price, or by a
comprehensive score with configurable weights for price and for the bidder's evaluation score.
Ties go to the earlier bid.

The public start price (起始价) is a published term: a lower bid is refused on entry. The 标底 is
secret like the 底价 (evaluation-and-land.md §5, "kept secret until the end and never below the
national minimum price"): entered and approved under dual control, never below the policy's floor,
and used only at the opening — a bid below it is ranked but not awarded, so entering a bid tells a
bidder nothing about it. With fewer valid bidders than the policy's minimum (39号令: a tender with
fewer than three bidders is terminated) the tender is unsuccessful.

Persistence: commands return events; `Tender.replay(terms, events)` rebuilds the state. The amount
inside `TenderBidSealed` is a `Sealed` the adapter encrypts at rest.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from .errors import DomainError, SealedError
from .money import BASIS_POINTS, require_fen
from .reserve import DualControlledReserve, ReserveApproved, ReserveEntered
from .sealed import Sealed

TOO_FEW_BIDDERS = "too_few_bidders"
RESERVE_NOT_MET = "reserve_not_met"
NO_BIDS = "no_bids"
RESERVE_NOT_APPROVED = "reserve_not_approved"


class AwardRule(Enum):
    PRICE = "price"
    SCORE = "score"


class TenderStatus(Enum):
    ACCEPTING = "accepting"
    AWARDED = "awarded"
    UNSUCCESSFUL = "unsuccessful"


@dataclass(frozen=True, slots=True)
class TenderTerms:
    listing_id: str
    submission_deadline: datetime
    opening_at: datetime
    minimum_price: int  # public 起始价: lower bids are refused on entry
    award_rule: AwardRule = AwardRule.PRICE
    price_weight_bp: int = 10_000  # SCORE rule: weights in basis points, summing to 10,000
    evaluation_weight_bp: int = 0
    min_bidders: int = 3  # fewer valid bidders at the opening: unsuccessful (39号令)
    reserve_floor: int = 0  # national minimum price: the secret 标底 may not be lower
    policy_version: str = "tender-v2"

    def __post_init__(self) -> None:
        require_fen(self.minimum_price, "minimum_price")
        if self.min_bidders < 1:
            raise ValueError("a tender needs at least one bidder")
        if self.opening_at < self.submission_deadline:
            raise ValueError("opening cannot precede the submission deadline")
        if self.price_weight_bp + self.evaluation_weight_bp != BASIS_POINTS:
            raise ValueError("weights must sum to 10,000 basis points")


def commitment_digest(listing_id: str, bidder: str, amount: int, nonce: str) -> str:
    """The receipt. Fields are length-prefixed so no two field tuples share an encoding."""
    h = hashlib.sha256()
    for part in (listing_id, bidder, str(amount), nonce):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class TenderBidSealed:
    seq: int
    bidder: str
    amount: Sealed
    nonce: str = field(repr=False)
    receipt: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RankedBid:
    bidder: str
    amount: int
    evaluation_score_bp: int
    price_score_bp: int
    total_score_bp: int
    seq: int


@dataclass(frozen=True, slots=True)
class TenderOpened:
    ranking: tuple[RankedBid, ...]  # best first
    winner: str | None
    price: int | None
    at: datetime
    reason: str | None = None  # why there is no winner: no_bids | too_few_bidders | reserve_not_met | …


TenderEvent = (
    TenderBidSealed
    | TenderOpened
    | ReserveEntered
    | ReserveApproved
)


class Tender:
    """One sealed tender. Bid amounts live only inside `Sealed` values until `open()`."""

    __slots__ = ("terms", "_bids", "_opened", "reserve")

    def __init__(self, terms: TenderTerms) -> None:
        self.terms = terms
        self._bids: dict[str, TenderBidSealed] = {}  # latest bid per bidder
        self._opened: TenderOpened | None = None
        self.reserve = DualControlledReserve()  # the secret 标底, when the grantor sets one

    def __repr__(self) -> str:
        return (
            f"Tender({self.terms.listing_id!r}, status={self.status.value}, "
            f"bids={len(self._bids)}, amounts=sealed)" if self._opened is None
            else f"Tender({self.terms.listing_id!r}, status={self.status.value}, winner={self._opened.winner!r})"
        )

    __str__ = __repr__

    @property
    def status(self) -> TenderStatus:
        if self._opened is None:
            return TenderStatus.ACCEPTING
        return TenderStatus.AWARDED if self._opened.winner else TenderStatus.UNSUCCESSFUL

    @property
    def bid_count(self) -> int:
        """How many bidders bid is not secret in Chinese practice; amounts are."""
        return len(self._bids)

    @property
    def bids(self) -> dict[str, int]:
        if self._opened is None:
            raise SealedError("tender bids")
        return {b.bidder: b.amount.reveal(True) for b in self._bids.values()}

    def bid_amount(self, bidder: str) -> int:
        if self._opened is None:
            raise SealedError("tender bid")
        return self._bids[bidder].amount.reveal(True)

    @property
    def result(self) -> TenderOpened:
        if self._opened is None:
            raise SealedError("tender result")
        return self._opened

    @property
    def reserve_price(self) -> int:
        """The 标底, once the tender is opened (SealedError before)."""
        return self.reserve.value(self._opened is not None)

    # ------------------------------------------------------------ commands

    def enter_reserve(self, amount: int, entered_by: str, now: datetime) -> list[TenderEvent]:
        if self._opened is not None:
            raise DomainError("ALREADY_OPENED", "the 标底 is fixed before the opening")
        return self._emit(self.reserve.enter(amount, entered_by, now, self.terms.reserve_floor))

    def approve_reserve(self, approved_by: str, now: datetime) -> list[TenderEvent]:
        if self._opened is not None:
            raise DomainError("ALREADY_OPENED", "the 标底 is fixed before the opening")
        return self._emit(self.reserve.approve(approved_by, now))

    def submit(self, bidder: str, amount: int, nonce: str, now: datetime) -> list[TenderEvent]:
        """A later submission by the same bidder before the deadline replaces its earlier bid."""
        require_fen(amount, "amount")
        if self._opened is not None or now >= self.terms.submission_deadline:
            raise DomainError("SUBMISSION_CLOSED", now.isoformat())
        if amount < self.terms.minimum_price:
            raise DomainError("BID_BELOW_MINIMUM", "bid below the minimum price")
        if len(nonce) < 16:
            raise DomainError("NONCE_TOO_SHORT", "nonce must have at least 16 characters")
        receipt = commitment_digest(self.terms.listing_id, bidder, amount, nonce)
        seq = max((b.seq for b in self._bids.values()), default=0) + 1
        return self._emit(TenderBidSealed(seq, bidder, Sealed(amount, "tender bid"), nonce, receipt, now))

    def open(self, now: datetime, evaluation_scores_bp: Mapping[str, int] | None = None) -> list[TenderEvent]:
        """At the opening time. `evaluation_scores_bp`: the expert evaluation of each bidder's
        plan, 0..10,000 basis points (only used by the SCORE rule)."""
        if self._opened is not None:
            raise DomainError("ALREADY_OPENED", self.terms.listing_id)
        if now < self.terms.opening_at:
            raise DomainError("TOO_EARLY", "bids stay sealed until the opening time")
        scores = dict(evaluation_scores_bp or {})
        if self.terms.award_rule is AwardRule.SCORE:
            missing = [b for b in self._bids if b not in scores]
            if missing:
                raise DomainError("EVALUATION_MISSING", ",".join(sorted(missing)))
            if any(not 0 <= s <= BASIS_POINTS for s in scores.values()):
                raise DomainError("EVALUATION_OUT_OF_RANGE", "scores are 0..10,000 basis points")
        bids = [(b, b.amount.reveal(True)) for b in self._bids.values()]
        top = max((amount for _, amount in bids), default=0)
        ranked = []
        for bid, amount in bids:
            # The seller wants the highest price: the best price gets the full price score.
            price_score = amount * BASIS_POINTS // top if top else 0
            evaluation = scores.get(bid.bidder, 0)
            if self.terms.award_rule is AwardRule.PRICE:
                total = price_score
            else:
                total = (price_score * self.terms.price_weight_bp + evaluation * self.terms.evaluation_weight_bp) // BASIS_POINTS
            ranked.append(RankedBid(bid.bidder, amount, evaluation, price_score, total, bid.seq))
        key = (lambda r: (-r.amount, r.seq)) if self.terms.award_rule is AwardRule.PRICE else (
            lambda r: (-r.total_score_bp, -r.amount, r.seq)
        )
        ranked.sort(key=key)
        reason = None
        unapproved = self.reserve.pending is not None and not self.reserve.approved
        awardable = [] if unapproved else [r for r in ranked
                                          if self.reserve.pending is None or self.reserve.met_by(r.amount)]
        if not ranked:
            reason = NO_BIDS
        elif len(ranked) < self.terms.min_bidders:
            reason = TOO_FEW_BIDDERS
        elif unapproved:  # a 标底 nobody approved cannot decide, and no bid may win without it
            reason = RESERVE_NOT_APPROVED
        elif not awardable:
            reason = RESERVE_NOT_MET
        winner = awardable[0] if reason is None else None
        return self._emit(TenderOpened(tuple(ranked), winner.bidder if winner else None,
                                       winner.amount if winner else None, now, reason))

    def next_awardable(self, excluded: Iterable[str]) -> RankedBid | None:
        """After the award failed (the winner defaulted): the next bid in the opening's ranking that could
        have won — not of an excluded bidder, meeting the 标底 — or None. 招标投标法实施条例 第五十五条: the
        candidates follow in the order of the ranking."""
        opened = self.result
        if opened.winner is None:
            return None
        skip = set(excluded)
        return next((r for r in opened.ranking if r.bidder not in skip
                     and (self.reserve.pending is None or self.reserve.met_by(r.amount))), None)

    def verify_receipt(self, bidder: str, receipt: str) -> bool:
        """A bidder checks that its receipt is the one on record (reveals nothing)."""
        bid = self._bids.get(bidder)
        return bid is not None and bid.receipt == receipt

    # ------------------------------------------------------------ persistence

    @classmethod
    def replay(cls, terms: TenderTerms, events: Iterable[TenderEvent]) -> Tender:
        tender = cls(terms)
        for event in events:
            tender.apply(event)
        return tender

    def apply(self, event: TenderEvent) -> None:
        if isinstance(event, TenderBidSealed):
            self._bids[event.bidder] = event
        elif isinstance(event, TenderOpened):
            self._opened = event
        elif isinstance(event, ReserveEntered | ReserveApproved):
            self.reserve.apply(event)
        else:
            raise TypeError(f"unknown event {event!r}")

    def _emit(self, event: TenderEvent) -> list[TenderEvent]:
        self.apply(event)
        return [event]
