"""Uniform-price clearing of a sealed-bid multi-unit auction (RGGI, California–Québec, EU ETS;
trading-anchors.md §3.1–3.3, "What our platform should take from this").

Bids are processed high→low by price, then by a pre-committed random rank (ties); bids below the
reserve are rejected; a bid is cut back when it would take its bidder's holding over the holding
limit (California–Québec, §3.2: the room left under the limit is passed in per bid, the holding
itself comes from the registry) or its affiliation group's purchases over the purchase cap; bids are
filled until the supply is exhausted, the last one partially.
The clearing price is a parameter: the marginal accepted bid (EU) or the highest rejected bid
(RGGI). Quantities are in lots, prices in fen; numpy int64 arrays keep 1,000,000 lots well under a
second, and sums that could pass 2^62 are taken in exact Python integers instead.

Undersubscription — valid demand after the holding limits and purchase caps below the supply — has one outcome per
auction, as its terms say (§3.1, §3.3):
- cancel below a cover ratio: valid demand < supply × `min_cover_bp` (EU Art. 7(5): 10,000 = 100 %);
- cancel when the price is significantly under a reference price (EU Art. 7(6)):
  price < `reference_price` × `min_price_to_reference_bp`;
- otherwise every valid bid is filled (within its cap) at the reserve price (RGGI, California–Québec):
  nothing was rejected for lack of supply, so no bid sets a price above the reserve.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .errors import DomainError
from .money import BASIS_POINTS


class ClearingRule(Enum):
    MARGINAL_ACCEPTED = "marginal_accepted"
    HIGHEST_REJECTED = "highest_rejected"


class ClearingStatus(Enum):
    CLEARED = "cleared"
    CANCELLED = "cancelled"


# Why a clearing ended as it did (ClearingResult.reason)
RESERVE_NOT_MET = "reserve_not_met"  # no valid bid
UNDERSUBSCRIBED = "undersubscribed"  # cancelled: below the cover ratio
PRICE_BELOW_REFERENCE = "price_below_reference"  # cancelled: significantly under the reference price
UNDERSUBSCRIBED_AT_RESERVE = "undersubscribed_at_reserve"  # cleared: all valid demand filled at the reserve

# Largest lot count or price the clearing accepts (int64 arrays hold each value; sums are exact anyway).
MAX_VALUE = 2**62


@dataclass(frozen=True)
class ClearingParameters:
    supply_lots: int
    reserve_price: int
    rule: ClearingRule = ClearingRule.MARGINAL_ACCEPTED
    purchase_cap_bp: int | None = None  # e.g. 2,500 = 25 % of supply per affiliation group (RGGI)
    min_cover_bp: int = 0  # cancel if demand ≥ reserve < supply × this (EU Art. 7(5): 10,000)
    reference_price: int | None = None  # secondary-market price for the EU "significantly under" rule
    min_price_to_reference_bp: int | None = None

    @property
    def cap_lots(self) -> int | None:
        if self.purchase_cap_bp is None:
            return None
        return self.supply_lots * self.purchase_cap_bp // BASIS_POINTS


@dataclass(frozen=True)
class ClearingResult:
    status: ClearingStatus
    reason: str | None
    clearing_price: int | None
    sold_lots: int
    demand_lots: int  # valid demand (bids at or above the reserve)
    allocations: np.ndarray  # lots per bid, same order as the input arrays
    cut_by_cap: np.ndarray  # lots per bid refused by the purchase cap
    cut_by_holding: np.ndarray  # lots per bid refused by the bidder's holding limit


def tie_ranks(seed: bytes, bid_ids: list[str]) -> np.ndarray:
    """Random order fixed by a seed whose sha256 was published before the window: rank of a bid =
    first 8 bytes of sha256(seed ‖ bid id). Anyone can recompute it once the seed is revealed."""
    out = np.empty(len(bid_ids), dtype=np.uint64)
    for i, bid_id in enumerate(bid_ids):
        out[i] = int.from_bytes(hashlib.sha256(seed + b"\x00" + bid_id.encode()).digest()[:8], "big")
    return out


def seed_commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def _group_cumsum_before(groups: np.ndarray, quantities: np.ndarray) -> np.ndarray:
    """For each position (already in processing order): the sum of the earlier quantities of the
    same group."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    q = quantities[order]
    cum = np.cumsum(q)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    run_lengths = np.diff(np.r_[starts, len(g)])
    base = np.repeat(cum[starts] - q[starts], run_lengths)
    before_sorted = cum - q - base
    out = np.empty_like(before_sorted)
    out[order] = before_sorted
    return out


def clear_uniform_price(
    prices: np.ndarray,
    quantities: np.ndarray,
    groups: np.ndarray,
    ranks: np.ndarray,
    params: ClearingParameters,
    bidders: np.ndarray | None = None,
    room: np.ndarray | None = None,
) -> ClearingResult:
    """`bidders` (an id per bid) and `room` (per bid: the lots its bidder may still hold under the holding
    limit, the same for each of the bidder's bids; None: no limit) apply the holding limit."""
    n = len(prices)
    _check_bounds(params, prices, quantities)
    if room is not None and (bidders is None or len(room) != n or len(bidders) != n):
        raise ValueError("a bidder and a holding room per bid")
    prices = np.asarray(prices, dtype=np.int64)
    # Exact sums: int64 while no running total can pass 2^62, Python integers beyond.
    exact = n == 0 or int(np.max(quantities)) * n < MAX_VALUE
    quantities = np.asarray(quantities, dtype=np.int64 if exact else object)
    zeros = np.zeros(n, dtype=np.int64)
    valid = prices >= params.reserve_price
    demand = int(quantities[valid].sum())
    if demand == 0:
        return ClearingResult(ClearingStatus.CANCELLED, RESERVE_NOT_MET, None, 0, 0, zeros, zeros, zeros)
    if demand * BASIS_POINTS < params.supply_lots * params.min_cover_bp:
        return ClearingResult(ClearingStatus.CANCELLED, UNDERSUBSCRIBED, None, 0, demand, zeros, zeros, zeros)

    # Processing order: price descending, then tie rank ascending; invalid bids last (and unused).
    order = np.lexsort((ranks, -prices))
    order = order[valid[order]]
    p = prices[order]
    q = quantities[order]

    # Holding limit first, per bidder, then the purchase cap, per group, on what the limit left: a bid cut by
    # the cap means its group is full, so every later bid of the group gets nothing either way, and the two
    # cuts in turn equal processing each bid against both limits at once (the sequential rule of §3.2).
    held = q
    if room is not None:
        before = _group_cumsum_before(np.asarray(bidders, dtype=np.int64)[order], q)
        held = np.minimum(np.maximum(np.asarray(room, dtype=q.dtype)[order] - before, 0), q)
    cap = params.cap_lots
    if cap is not None:
        before = _group_cumsum_before(np.asarray(groups, dtype=np.int64)[order], held)
        capped = np.minimum(np.maximum(cap - before, 0), held)
    else:
        capped = held
    cum_before = np.cumsum(capped) - capped
    alloc = np.clip(params.supply_lots - cum_before, 0, capped)
    sold = int(alloc.sum())

    reason = None
    if sold < params.supply_lots:  # every valid bid filled within its cap: nothing set a price
        price, reason = params.reserve_price, UNDERSUBSCRIBED_AT_RESERVE
    elif params.rule is ClearingRule.MARGINAL_ACCEPTED:
        price = int(p[np.flatnonzero(alloc > 0)[-1]])
    else:
        rejected = np.flatnonzero(alloc < capped)  # quantity left out for lack of supply
        price = int(p[rejected[0]]) if len(rejected) else params.reserve_price
    price = max(price, params.reserve_price)

    if (
        params.reference_price is not None
        and params.min_price_to_reference_bp is not None
        and price * BASIS_POINTS < params.reference_price * params.min_price_to_reference_bp
    ):
        return ClearingResult(ClearingStatus.CANCELLED, PRICE_BELOW_REFERENCE, None, 0, demand, zeros, zeros, zeros)

    allocations = zeros.copy()
    allocations[order] = alloc.astype(np.int64)
    cut = zeros.copy()
    cut[order] = (held - capped).astype(np.int64)
    cut_holding = zeros.copy()
    cut_holding[order] = (q - held).astype(np.int64)
    return ClearingResult(ClearingStatus.CLEARED, reason, price, sold, demand, allocations, cut, cut_holding)


def tie_draw(prices, capped, allocations, ranks) -> list[int]:
    """The bids the committed random order decided between (EU Reg. 1031/2010 Art. 7(2)–(4), §3.3): at the
    price where the supply ran out, two or more bids that could still take lots (after their caps), the
    remaining volume more than zero but less than their lots together. Returned as indices in draw order
    (tie rank ascending); empty when no draw decided anything — nothing rationed, a single bid at that
    price (it takes the remaining volume alone), or the supply exhausted exactly at a higher price."""
    prices, capped, alloc = (np.asarray(x) for x in (prices, capped, allocations))
    short = np.flatnonzero((alloc < capped) & (capped > 0))
    if not len(short):
        return []
    level = prices[short].max()
    at_level = np.flatnonzero((prices == level) & (capped > 0))
    drawn = int(alloc[at_level].sum())
    if len(at_level) < 2 or drawn == 0 or drawn >= int(capped[at_level].sum()):
        return []
    return [int(i) for i in at_level[np.argsort(np.asarray(ranks)[at_level], kind="stable")]]


def _check_bounds(params: ClearingParameters, prices, quantities) -> None:
    """Every price and quantity positive-or-zero and at most MAX_VALUE, as are the terms' numbers."""
    if len(prices) != len(quantities):
        raise ValueError("one price and one quantity per bid")
    if params.supply_lots < 1:
        raise DomainError("OUT_OF_RANGE", "supply_lots must be at least 1")
    for name, value in (("supply_lots", params.supply_lots), ("reserve_price", params.reserve_price),
                        ("reference_price", params.reference_price or 0)):
        if not 0 <= value <= MAX_VALUE:
            raise DomainError("OUT_OF_RANGE", f"{name} must be from 0 to 2^62")
    for name, values in (("price", prices), ("quantity", quantities)):
        if len(values) and not (0 <= int(np.min(values)) and int(np.max(values)) <= MAX_VALUE):
            raise DomainError("OUT_OF_RANGE", f"every bid {name} must be from 0 to 2^62")
