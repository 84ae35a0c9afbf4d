"""What a fact may show to any viewer: a whitelist, so a new field in an event is private until listed here.

Bidders appear by bidder number (竞买号) only, never by name or credit code; amounts of sealed bids and
reserve prices never appear.
"""

from __future__ import annotations

from typing import Any

LISTING_FIELDS = ("listing_id", "trade_code", "state", "bidder_number", "sequence", "accepted_at", "at", "closes_at",
                  "version", "outcome", "current_price", "leading_bidder_number", "accepted_bids",
                  "registered_bidders", "next_minimum_bid", "countdown_seconds", "extended", "reason",
                  "clearing_price", "winner_bidder_number", "volume_lots", "live_round", "deadline", "bidders",
                  "confirmation_deadline", "via")
PRICE_FIELDS = ("price", "amount", "minimum_bid")
MARKET_FIELDS = ("instrument", "side", "type", "price", "quantity", "executed_at", "last_price", "state", "block",
                 "trading_day", "previous_close", "close_price", "volume")
_SECRET = ("reserve", "credit_code", "name", "buyer", "seller", "receipt", "seed")


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):  # Money {fen, currency} or Quantity {value, unit}
        return {k: v for k, v in value.items() if k in ("fen", "currency", "value", "unit")}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def kind_of(event_type: str) -> str:
    """yaosu.trading.bid.accepted → bid.accepted"""
    return event_type.removeprefix("yaosu.trading.")


def _money(data: dict[str, Any]) -> dict[str, Any]:
    """Trading's events carry amounts as `<name>_fen` integers; the API shows Money {fen, currency}."""
    out = dict(data)
    for key, value in data.items():
        if key.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
            out.setdefault(key.removesuffix("_fen"), {"fen": value, "currency": "CNY"})
    if "at" in data and "accepted_at" not in data and "bidder_number" in data:
        out["accepted_at"] = data["at"]  # bid.accepted: when the bid was accepted
    return out


def listing_fact(data: dict[str, Any], *, sealed_mechanism: bool) -> dict[str, Any]:
    allowed = LISTING_FIELDS if sealed_mechanism or data.get("sealed") else LISTING_FIELDS + PRICE_FIELDS
    data = _money(data)
    return {k: _scalar(data[k]) for k in allowed if k in data and not any(s in k for s in _SECRET)}


def market_fact(data: dict[str, Any]) -> dict[str, Any]:
    data = _money(data)
    return {k: _scalar(data[k]) for k in MARKET_FIELDS if k in data}
