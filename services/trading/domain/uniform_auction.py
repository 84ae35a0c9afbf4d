"""Sealed-bid uniform-price multi-unit auction for issuing quotas (energy-use rights, emission
allowances): (price, quantity) bids in lot multiples, modifiable and withdrawable inside the window,
guarantee ≥ value of all the bidder's bids, purchase cap per affiliation group, reserve price,
cancellation rules, configurable clearing price, ties by a seed committed before the window and
revealed after, results in two steps (price + volume, then full statistics).

Holding limit (California–Québec, trading-anchors.md §3.2): a bidder's holding of the instrument after
the auction stays within `holding_limit` (units; None = no limit). §3.2 has bids "cut back if [they]
would breach the entity's … holding limit" in the bid evaluation, and the §3 summary lists the holding
limit "against registry balances" among the pre-bid checks — so it bites twice, and the domain is given
the holding each time (it never asks the registry):
- at bid entry, against the holding then: a bid that would take holding + all the bidder's bid lots over
  the limit is refused (HOLDING_LIMIT), like a bid beyond the guarantee — it could never be filled;
- in the clearing, against the holding at window close (units may have arrived since the bid): bids are
  cut back high→low to the room left, the cut recorded per bid with the holdings used.

Unsold volume (supply − sold, the whole supply when cancelled) is recorded with the clearing; a later
auction of the same instrument may carry it in (EU Art. 7(5)–(6), RGGI: §3 "roll unsold volume into the
next … auctions"), see `carried_lots`.

Each bid's outcome (`bid_outcomes`) says whether it was filled fully, partially or not at all and why,
and for the bids the committed random order decided between, their place in that draw (EU: each winner
told "which of its tied bids were randomly selected", §3.3).

Persistence: commands return events; `UniformPriceAuction.replay(terms, events)` rebuilds it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from statistics import median_high, median_low

import numpy as np

from .clearing import (
    ClearingParameters,
    ClearingRule,
    ClearingStatus,
    clear_uniform_price,
    tie_draw,
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
    holding_limit: Decimal | None = None  # units of the instrument a bidder may hold after the auction
    unit: str = "units"  # of the instrument (tce, t, allowances): named in refusals

    def holding_room_lots(self, holding: Decimal) -> int:
        """Whole lots a bidder holding `holding` units may still receive under the holding limit."""
        if self.holding_limit is None:
            raise ValueError("no holding limit")
        return max(0, int((self.holding_limit - holding) // self.lot_size))

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
    # (bid id, lots cut by the purchase cap, lots cut by the holding limit) for bids cut back
    cuts: tuple[tuple[str, int, int], ...] = ()
    holdings: tuple[tuple[str, str], ...] = ()  # (bidder, units held at window close) when a limit applies


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


# Why a bid got less than its lots (BidOutcome.reason)
HOLDING_LIMIT = "holding_limit"  # cut back to its bidder's room under the holding limit
PURCHASE_CAP = "purchase_cap"  # cut back to its affiliation group's purchase cap
TIE_DRAW = "tie_draw"  # at the clearing level, placed after others by the committed random order
REMAINING_VOLUME = "remaining_volume"  # the last bid filled: it got what was left of the supply
OUTBID = "outbid"  # the supply ran out at higher prices
AUCTION_CANCELLED = "auction_cancelled"


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """One bid's part of the result — for its bidder only (the public result has the totals)."""

    bid_id: str
    price: int  # fen per unit
    lots: int
    lots_won: int
    fill: str  # "full" | "partial" | "none"
    reason: str  # "" when filled in full, else why not (the first limit that bit)
    cut_by_purchase_cap: int = 0
    cut_by_holding_limit: int = 0
    tied: bool = False  # one of the bids the committed random order decided between
    draw_position: int = 0  # 1 = drawn first among them
    tied_bids: int = 0
    tie_rank: str = ""  # 16 hex digits: the first 8 bytes of sha256(seed ‖ 0x00 ‖ bid id)


@dataclass(frozen=True, slots=True)
class TieDraw:
    """The public side of the tie draw: at which price, how many lots it shared out, and the ranks of the
    bids in draw order (anyone can recompute each from the revealed seed and the opened bid ids)."""

    price: int
    lots: int
    ranks: tuple[str, ...]


def _units(value: Decimal) -> str:
    """A quantity as people write it: 100, 12.5 (never 100.000 or 1E+2)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def carried_lots(unsold_lots: int, source_lot_size: int, lot_size: int) -> int:
    """Lots of `lot_size` units that `unsold_lots` of `source_lot_size` units make in a later auction (the
    same units of the instrument, so the same amount); refused unless they make whole lots."""
    units = unsold_lots * source_lot_size
    if units % lot_size:
        raise DomainError("ROLLOVER_NOT_WHOLE_LOTS",
                          f"{units} unsold units are not a whole number of lots of {lot_size}")
    return units // lot_size


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

    def place_bid(self, bid_id: str, bidder: str, price: int, quantity_units: int, now: datetime,
                  holding: Decimal | None = None) -> list[UniformAuctionEvent]:
        """New bid, or a modification when `bid_id` exists (same bidder). `holding`: the bidder's units of
        the instrument now, required when the auction has a holding limit."""
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
        self.check_holding_limit(bidder, holding, replacing=bid_id, extra_lots=lots)
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

    def check_holding_limit(self, bidder: str, holding: Decimal | None, replacing: str | None = None,
                            extra_lots: int = 0) -> None:
        """Pure check: the holding plus every lot the bidder bids for stays within the holding limit."""
        limit = self.terms.holding_limit
        if limit is None:
            return
        if holding is None:
            raise ValueError("the auction has a holding limit: the bidder's holding is required")
        lots = extra_lots + sum(b.lots for b in self._bids.values() if b.bidder == bidder and b.bid_id != replacing)
        if holding + lots * self.terms.lot_size > limit:
            unit, room = self.terms.unit, self.terms.holding_room_lots(holding)
            raise DomainError("HOLDING_LIMIT",
                              f"holding limit {_units(limit)} {unit}: you hold {_units(holding)} {unit} and your "
                              f"bids would add {lots * self.terms.lot_size} {unit} ({lots} lots); at most {room} "
                              "lots in all")

    def clear(self, seed: bytes, now: datetime,
              holdings: Mapping[str, Decimal] | None = None) -> list[UniformAuctionEvent]:
        """`holdings`: each bidder's units of the instrument at window close, required (for every bidder
        with a bid) when the auction has a holding limit."""
        if self.cleared is not None:
            raise DomainError("ALREADY_CLEARED", self.terms.auction_id)
        if now < self.terms.window_closes_at:
            raise DomainError("TOO_EARLY", "the bidding window is still open")
        if hashlib.sha256(seed).hexdigest() != self.terms.seed_commitment:
            raise DomainError("SEED_MISMATCH", "the seed does not match the published commitment")
        bids = list(self._bids.values())
        groups = {g: i for i, g in enumerate(sorted({self.terms.group_of(b.bidder) for b in bids}))}
        bidder_ids = {c: i for i, c in enumerate(sorted({b.bidder for b in bids}))}
        room, recorded = None, ()
        if self.terms.holding_limit is not None:
            missing = sorted(set(bidder_ids) - set(holdings or {}))
            if missing:
                raise ValueError(f"no holding given for {missing}")
            room = np.array([self.terms.holding_room_lots(holdings[b.bidder]) for b in bids], dtype=np.int64)
            recorded = tuple((c, str(holdings[c])) for c in sorted(bidder_ids))
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
            np.array([bidder_ids[b.bidder] for b in bids], dtype=np.int64),
            room,
        )
        allocations = tuple(
            (b.bid_id, int(lots)) for b, lots in zip(bids, result.allocations, strict=True) if lots
        )
        cuts = tuple(
            (b.bid_id, int(cap), int(holding))
            for b, cap, holding in zip(bids, result.cut_by_cap, result.cut_by_holding, strict=True)
            if cap or holding
        )
        return self._emit(
            AuctionCleared(result.status, result.reason, result.clearing_price, result.sold_lots, seed.hex(),
                           allocations, now, cuts, recorded)
        )

    # ------------------------------------------------------------ results

    @property
    def unsold_lots(self) -> int | None:
        """Lots offered (incl. any carried in) and not sold — all of them when cancelled; None before the
        clearing."""
        if self.cleared is None:
            return None
        if self.cleared.status is ClearingStatus.CLEARED:
            return self.terms.supply_lots - self.cleared.sold_lots
        return self.terms.supply_lots

    def bid_outcomes(self, bidder: str | None = None) -> dict[str, BidOutcome]:
        """Each bid's outcome once cleared (of one bidder's bids when `bidder` is given)."""
        if self.cleared is None:
            raise SealedError("bid outcomes")
        cleared, bids = self.cleared, list(self._bids.values())
        won = dict(cleared.allocations)
        cuts = {bid_id: (cap, holding) for bid_id, cap, holding in cleared.cuts}
        ranks = tie_ranks(bytes.fromhex(cleared.seed_hex), [b.bid_id for b in bids])
        valid = [b.price >= self.terms.reserve_price for b in bids]
        capped = [b.lots - sum(cuts.get(b.bid_id, (0, 0))) if ok else 0 for b, ok in zip(bids, valid, strict=True)]
        order: list[int] = []
        if cleared.status is ClearingStatus.CLEARED:
            order = tie_draw([b.price for b in bids], capped, [won.get(b.bid_id, 0) for b in bids], ranks)
        position = {i: n for n, i in enumerate(order, start=1)}
        out = {}
        for i, b in enumerate(bids):
            if bidder is not None and b.bidder != bidder:
                continue
            lots_won = won.get(b.bid_id, 0)
            cap_cut, holding_cut = cuts.get(b.bid_id, (0, 0))
            if lots_won == b.lots:
                reason = ""
            elif cleared.status is not ClearingStatus.CLEARED:
                reason = AUCTION_CANCELLED
            elif holding_cut:
                reason = HOLDING_LIMIT
            elif cap_cut:
                reason = PURCHASE_CAP
            elif i in position:
                reason = TIE_DRAW
            else:
                reason = REMAINING_VOLUME if lots_won else OUTBID
            out[b.bid_id] = BidOutcome(
                b.bid_id, b.price, b.lots, lots_won,
                "full" if lots_won == b.lots else "partial" if lots_won else "none", reason,
                cap_cut, holding_cut, i in position, position.get(i, 0), len(order) if i in position else 0,
                f"{int(ranks[i]):016x}")
        return out

    def tie_draw(self) -> TieDraw | None:
        """The published side of the tie draw, if one decided anything."""
        if self.cleared is None:
            raise SealedError("tie draw")
        tied = [o for o in self.bid_outcomes().values() if o.tied]
        if not tied:
            return None
        tied.sort(key=lambda o: o.draw_position)
        return TieDraw(tied[0].price, sum(o.lots_won for o in tied), tuple(o.tie_rank for o in tied))

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
