"""Sealed-bid uniform-price multi-unit auction for issuing quotas (energy-use rights, emission
allowances): (price, quantity) bids in lot multiples, modifiable and withdrawable inside the window,
guarantee ≥ value of all the bidder's bids, purchase cap per affiliation group, reserve price,
cancellation rules, configurable clearing price, ties by a seed committed before the window and
revealed after, results in two steps (price + volume, then full statistics).

Persistence: commands return events; `UniformPriceAuction.replay(terms, events)` rebuilds it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median_high, median_low

import numpy as np

from .clearing import (
    ClearingParameters,
    ClearingRule,
    ClearingStatus,
    clear_uniform_price,
    tie_ranks,
)
from .errors import DomainError, SealedError
from .money import BASIS_POINTS, require_fen, round_half_up_div


@dataclass(frozen=True)
class UniformAuctionTerms:
    auction_id: str
    supply_lots: int
    lot_size: int  # units per lot (1,000 allowances; 500 on EEX; 1 t for 用能权/排污权)
    reserve_price: int  # fen per unit
    window_opens_at: datetime
    window_closes_at: datetime
    seed_commitment: str  # sha256 hex of the tie-break seed, published before the window
    clearing_rule: ClearingRule = ClearingRule.MARGINAL_ACCEPTED
    purchase_cap_bp: int | None = 2_500
    min_cover_bp: int = 0
    reference_price: int | None = None
    min_price_to_reference_bp: int | None = None
    affiliation: Mapping[str, str] = field(default_factory=dict)  # bidder -> group (default: itself)
    guarantees: Mapping[str, int] = field(default_factory=dict)  # bidder -> guarantee, fen
    policy_version: str = "uniform-v1"

    def group_of(self, bidder: str) -> str:
        return self.affiliation.get(bidder, bidder)


@dataclass(frozen=True, slots=True)
class QuotaBidPlaced:
    bid_id: str
    bidder: str
    price: int  # fen per unit
    lots: int
    at: datetime


@dataclass(frozen=True, slots=True)
class QuotaBidWithdrawn:
    bid_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionCleared:
    """Step 1 of the results: status, clearing price and volume."""

    status: ClearingStatus
    reason: str | None
    clearing_price: int | None
    sold_lots: int
    seed_hex: str
    allocations: tuple[tuple[str, int], ...]  # (bid id, lots) for bids that won something
    at: datetime


@dataclass(frozen=True, slots=True)
class AuctionStatistics:
    """Step 2 of the results."""

    bid_count: int
    bidder_count: int
    demand_lots: int
    cover_ratio_bp: int  # demand / supply
    min_bid: int
    max_bid: int
    mean_bid: int  # quantity-weighted, fen, rounded half up
    median_bid: int  # of bid prices, fen, rounded half up
    allocation_per_bidder: tuple[tuple[str, int], ...]
    amount_due_per_bidder: tuple[tuple[str, int], ...]  # fen
    at: datetime


UniformAuctionEvent = (
    QuotaBidPlaced
    | QuotaBidWithdrawn
    | AuctionCleared
    | AuctionStatistics
)


class UniformPriceAuction:
    __slots__ = ("terms", "_bids", "cleared", "statistics")

    def __init__(self, terms: UniformAuctionTerms) -> None:
        self.terms = terms
        self._bids: dict[str, QuotaBidPlaced] = {}
        self.cleared: AuctionCleared | None = None
        self.statistics: AuctionStatistics | None = None

    def __repr__(self) -> str:
        return f"UniformPriceAuction({self.terms.auction_id!r}, bids={len(self._bids)}, cleared={self.cleared is not None})"

    @property
    def bids(self) -> tuple[QuotaBidPlaced, ...]:
        if self.cleared is None:
            raise SealedError("auction bids")
        return tuple(self._bids.values())

    def bids_of(self, bidder: str) -> tuple[QuotaBidPlaced, ...]:
        """A bidder may always see its own bids (to modify or withdraw them)."""
        return tuple(b for b in self._bids.values() if b.bidder == bidder)

    # ------------------------------------------------------------ commands

    def place_bid(self, bid_id: str, bidder: str, price: int, quantity_units: int, now: datetime) -> list[UniformAuctionEvent]:
        """New bid, or a modification when `bid_id` exists (same bidder)."""
        require_fen(price, "price")
        self._require_window(now)
        existing = self._bids.get(bid_id)
        if existing is not None and existing.bidder != bidder:
            raise DomainError("NOT_BID_OWNER", bid_id)
        if price < self.terms.reserve_price:
            raise DomainError("BELOW_RESERVE", "bid price below the reserve price")
        if quantity_units <= 0 or quantity_units % self.terms.lot_size:
            raise DomainError("NOT_LOT_MULTIPLE", f"quantity must be a positive multiple of {self.terms.lot_size}")
        lots = quantity_units // self.terms.lot_size
        self.check_guarantee(bidder, replacing=bid_id, extra_value=price * quantity_units)
        return self._emit(QuotaBidPlaced(bid_id, bidder, price, lots, now))

    def withdraw_bid(self, bid_id: str, bidder: str, now: datetime) -> list[UniformAuctionEvent]:
        self._require_window(now)
        existing = self._bids.get(bid_id)
        if existing is None or existing.bidder != bidder:
            raise DomainError("BID_NOT_FOUND", bid_id)
        return self._emit(QuotaBidWithdrawn(bid_id, now))

    def check_guarantee(self, bidder: str, replacing: str | None = None, extra_value: int = 0) -> None:
        """Pure check: the guarantee must cover the value of all the bidder's bids."""
        guarantee = self.terms.guarantees.get(bidder, 0)
        value = extra_value + sum(
            b.price * b.lots * self.terms.lot_size
            for b in self._bids.values()
            if b.bidder == bidder and b.bid_id != replacing
        )
        if value > guarantee:
            raise DomainError("GUARANTEE_INSUFFICIENT", f"bids worth {value} fen exceed the guarantee {guarantee}")

    def clear(self, seed: bytes, now: datetime) -> list[UniformAuctionEvent]:
        if self.cleared is not None:
            raise DomainError("ALREADY_CLEARED", self.terms.auction_id)
        if now < self.terms.window_closes_at:
            raise DomainError("TOO_EARLY", "the bidding window is still open")
        if hashlib.sha256(seed).hexdigest() != self.terms.seed_commitment:
            raise DomainError("SEED_MISMATCH", "the seed does not match the published commitment")
        bids = list(self._bids.values())
        groups = {g: i for i, g in enumerate(sorted({self.terms.group_of(b.bidder) for b in bids}))}
        params = ClearingParameters(
            self.terms.supply_lots,
            self.terms.reserve_price,
            self.terms.clearing_rule,
            self.terms.purchase_cap_bp,
            self.terms.min_cover_bp,
            self.terms.reference_price,
            self.terms.min_price_to_reference_bp,
        )
        result = clear_uniform_price(
            np.array([b.price for b in bids], dtype=np.int64),
            np.array([b.lots for b in bids], dtype=np.int64),
            np.array([groups[self.terms.group_of(b.bidder)] for b in bids], dtype=np.int64),
            tie_ranks(seed, [b.bid_id for b in bids]),
            params,
        )
        allocations = tuple(
            (b.bid_id, int(lots)) for b, lots in zip(bids, result.allocations, strict=True) if lots
        )
        return self._emit(
            AuctionCleared(result.status, result.reason, result.clearing_price, result.sold_lots, seed.hex(), allocations, now)
        )

    def publish_statistics(self, now: datetime) -> list[UniformAuctionEvent]:
        if self.cleared is None:
            raise DomainError("NOT_CLEARED", "publish the price and volume first")
        if self.statistics is not None:
            raise DomainError("ALREADY_PUBLISHED", self.terms.auction_id)
        bids = list(self._bids.values())
        prices = sorted(b.price for b in bids)
        demand = sum(b.lots for b in bids)
        per_bidder: dict[str, int] = {}
        lots_by_bid = dict(self.cleared.allocations)
        for b in bids:
            if b.bid_id in lots_by_bid:
                per_bidder[b.bidder] = per_bidder.get(b.bidder, 0) + lots_by_bid[b.bid_id]
        price = self.cleared.clearing_price or 0
        due = {k: v * self.terms.lot_size * price for k, v in per_bidder.items()}
        stats = AuctionStatistics(
            bid_count=len(bids),
            bidder_count=len({b.bidder for b in bids}),
            demand_lots=demand,
            cover_ratio_bp=demand * BASIS_POINTS // self.terms.supply_lots,
            min_bid=prices[0] if prices else 0,
            max_bid=prices[-1] if prices else 0,
            mean_bid=round_half_up_div(sum(b.price * b.lots for b in bids), demand) if demand else 0,
            median_bid=round_half_up_div(median_low(prices) + median_high(prices), 2) if prices else 0,
            allocation_per_bidder=tuple(sorted(per_bidder.items())),
            amount_due_per_bidder=tuple(sorted(due.items())),
            at=now,
        )
        return self._emit(stats)

    # ------------------------------------------------------------ persistence

    @classmethod
    def replay(cls, terms: UniformAuctionTerms, events: Iterable[UniformAuctionEvent]) -> UniformPriceAuction:
        auction = cls(terms)
        for event in events:
            auction.apply(event)
        return auction

    def apply(self, event: UniformAuctionEvent) -> None:
        if isinstance(event, QuotaBidPlaced):
            self._bids[event.bid_id] = event
        elif isinstance(event, QuotaBidWithdrawn):
            del self._bids[event.bid_id]
        elif isinstance(event, AuctionCleared):
            self.cleared = event
        elif isinstance(event, AuctionStatistics):
            self.statistics = event
        else:
            raise TypeError(f"unknown event {event!r}")

    def _emit(self, event: UniformAuctionEvent) -> list[UniformAuctionEvent]:
        self.apply(event)
        return [event]

    def _require_window(self, now: datetime) -> None:
        if self.cleared is not None or not self.terms.window_opens_at <= now < self.terms.window_closes_at:
            raise DomainError("OUTSIDE_BIDDING_WINDOW", now.isoformat())
