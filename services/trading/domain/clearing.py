"""Uniform-price clearing of a sealed-bid multi-unit auction (RGGI, California–Québec, EU ETS;
trading-anchors.md §3.1–3.3, "What our platform should take from this").

Bids are processed high→low by price, then by a pre-committed random rank (ties); bids below the
reserve are rejected; each affiliation group's purchases are capped (a bid is cut back when it
would exceed the cap); bids are filled until the supply is exhausted, the last one partially.
The clearing price is a parameter: the marginal accepted bid (EU) or the highest rejected bid
(RGGI; the reserve when nothing is rejected for lack of supply). Quantities are in lots, prices
in fen; numpy int64 arrays keep 1,000,000 lots well under a second.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .money import BASIS_POINTS


class ClearingRule(Enum):
    MARGINAL_ACCEPTED = "marginal_accepted"
    HIGHEST_REJECTED = "highest_rejected"


class ClearingStatus(Enum):
    CLEARED = "cleared"
    CANCELLED = "cancelled"


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
) -> ClearingResult:
    n = len(prices)
    prices = np.asarray(prices, dtype=np.int64)
    quantities = np.asarray(quantities, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    valid = prices >= params.reserve_price
    demand = int(quantities[valid].sum())
    if demand == 0:
        return ClearingResult(ClearingStatus.CANCELLED, "reserve_not_met", None, 0, 0, zeros, zeros)
    if demand * BASIS_POINTS < params.supply_lots * params.min_cover_bp:
        return ClearingResult(ClearingStatus.CANCELLED, "undersubscribed", None, 0, demand, zeros, zeros)

    # Processing order: price descending, then tie rank ascending; invalid bids last (and unused).
    order = np.lexsort((ranks, -prices))
    order = order[valid[order]]
    p = prices[order]
    q = quantities[order]

    cap = params.cap_lots
    if cap is not None:
        before = _group_cumsum_before(np.asarray(groups, dtype=np.int64)[order], q)
        capped = np.clip(cap - before, 0, q)
    else:
        capped = q
    cum_before = np.cumsum(capped) - capped
    alloc = np.clip(params.supply_lots - cum_before, 0, capped)
    sold = int(alloc.sum())

    filled = np.flatnonzero(alloc > 0)
    if params.rule is ClearingRule.MARGINAL_ACCEPTED:
        price = int(p[filled[-1]]) if len(filled) else params.reserve_price
    else:
        rejected = np.flatnonzero(alloc < capped)  # quantity left out for lack of supply
        price = int(p[rejected[0]]) if len(rejected) else params.reserve_price
    price = max(price, params.reserve_price)

    if (
        params.reference_price is not None
        and params.min_price_to_reference_bp is not None
        and price * BASIS_POINTS < params.reference_price * params.min_price_to_reference_bp
    ):
        return ClearingResult(ClearingStatus.CANCELLED, "price_below_reference", None, 0, demand, zeros, zeros)

    allocations = zeros.copy()
    allocations[order] = alloc
    cut = zeros.copy()
    cut[order] = q - capped
    return ClearingResult(ClearingStatus.CLEARED, None, price, sold, demand, allocations, cut)
