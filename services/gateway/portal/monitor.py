"""The regulator dashboard's market figures and alerts, as pure functions over what trading returns.

Thresholds are settings (GatewaySettings.alert_*), not constants: a jurisdiction tunes them as policy.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class BidSeen:
    listing_id: str
    bidder_number: str
    accepted_at: datetime


@dataclass(frozen=True)
class SaleSeen:
    listing_id: str
    title: str
    closes_at: datetime | None
    bids: tuple[BidSeen, ...] = ()


@dataclass(frozen=True)
class ResultSeen:
    listing_id: str
    title: str
    outcome: str
    bidder_count: int
    clearing_fen: int
    reserve_fen: int


@dataclass(frozen=True)
class TradeSeen:
    trade_id: str
    instrument: str
    price_fen: int
    quantity: str
    executed_at: datetime | None


@dataclass(frozen=True)
class Alert:
    kind: str           # single_bidder | far_from_reserve | below_reserve | far_from_trades | late_bids
    subject: str        # a listing id or trade id
    text: str


def bids_per_minute(bids: list[BidSeen], now: datetime, minutes: int = 30) -> list[tuple[str, float]]:
    """Accepted bids in each of the last `minutes` minutes (oldest first), labelled HH:MM."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    counts = Counter(int((b.accepted_at - start).total_seconds() // 60) for b in bids if b.accepted_at >= start)
    return [((start + timedelta(minutes=i)).strftime("%H:%M"), float(counts.get(i, 0))) for i in range(minutes)]


def late_bid_alerts(sales: list[SaleSeen], window_minutes: float, min_bids: int) -> list[Alert]:
    """The same bidder number bidding `min_bids` times or more in the last `window_minutes` before close."""
    alerts = []
    for sale in sales:
        if sale.closes_at is None:
            continue
        since = sale.closes_at - timedelta(minutes=window_minutes)
        late = Counter(b.bidder_number for b in sale.bids if since <= b.accepted_at <= sale.closes_at)
        for number, count in sorted(late.items()):
            if count >= min_bids:
                alerts.append(Alert("late_bids", sale.listing_id,
                                    f"{sale.title}: 竞买号 {number} — {count} bids in the last "
                                    f"{window_minutes:g} min before close"))
    return alerts


def result_alerts(results: list[ResultSeen], reserve_deviation: float) -> list[Alert]:
    """After opening (a decided sale discloses its reserve): single-bidder sales, sales far above the
    reserve (a reserve set far too low, or collusion upwards), and any sale below its reserve."""
    alerts = []
    for r in results:
        if r.outcome == "sold" and r.bidder_count == 1:
            alerts.append(Alert("single_bidder", r.listing_id, f"{r.title}: sold with a single bidder"))
        if r.outcome != "sold" or r.reserve_fen <= 0 or r.clearing_fen <= 0:
            continue
        ratio = r.clearing_fen / r.reserve_fen
        if ratio < 1:
            alerts.append(Alert("below_reserve", r.listing_id, f"{r.title}: sold below the reserve ({ratio:.0%})"))
        elif ratio - 1 > reserve_deviation:
            alerts.append(Alert("far_from_reserve", r.listing_id,
                                f"{r.title}: price {ratio:.0%} of the reserve"))
    return alerts


def _unit_price(trade: TradeSeen) -> float | None:
    try:
        quantity = Decimal(trade.quantity)
    except (InvalidOperation, TypeError):
        return None
    return float(Decimal(trade.price_fen) / quantity) if quantity > 0 else None


def trade_alerts(trades: list[TradeSeen], deviation: float, min_peers: int = 3) -> list[Alert]:
    """A trade whose unit price is more than `deviation` away from the median of the other recent trades of
    its instrument (at least `min_peers` of them)."""
    by_instrument: dict[str, list[tuple[TradeSeen, float]]] = {}
    for trade in trades:
        price = _unit_price(trade)
        if price is not None:
            by_instrument.setdefault(trade.instrument, []).append((trade, price))
    alerts = []
    for instrument, priced in sorted(by_instrument.items()):
        for i, (trade, price) in enumerate(priced):
            peers = [p for j, (_, p) in enumerate(priced) if j != i]
            if len(peers) < min_peers:
                continue
            median = statistics.median(peers)
            if median > 0 and abs(price / median - 1) > deviation:
                alerts.append(Alert("far_from_trades", trade.trade_id,
                                    f"{instrument} {trade.trade_id}: unit price {price / median:.0%} of the "
                                    f"median of {len(peers)} recent trades"))
    return alerts
