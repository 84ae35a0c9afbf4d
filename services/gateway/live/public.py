"""What a fact may show to any viewer: a whitelist, so a new field in an event is private until listed here.

Bidders appear by bidder number (竞买号) only, never by name or credit code; amounts of sealed bids and
reserve prices never appear. Of a sealed sale (招标, quota auction) no fact about a bid or a registration is
shown at all — who bid, how many and when stay sealed — and while its bids are unopened no count either.
"""

from __future__ import annotations

from typing import Any

LISTING_FIELDS = ("listing_id", "trade_code", "state", "bidder_number", "sequence", "accepted_at", "at", "closes_at",
                  "version", "outcome", "current_price", "leading_bidder_number", "accepted_bids",
                  "registered_bidders", "next_minimum_bid", "countdown_seconds", "extended", "reason",
                  "clearing_price", "winner_bidder_number", "volume_lots", "live_round", "deadline", "bidders",
                  "confirmation_deadline", "via", "increment", "previous_increment")
PRICE_FIELDS = ("price", "amount", "minimum_bid")
MARKET_FIELDS = ("instrument", "side", "type", "price", "quantity", "executed_at", "last_price", "state", "block",
                 "trading_day", "previous_close", "close_price", "volume")
_SECRET = ("reserve", "credit_code", "name", "buyer", "seller", "receipt", "seed")
# Facts that exist only for sealed bids: never on a live stream, not even kept for replay (live/hub.py).
NEVER_PUBLIC = frozenset({"bid.sealed", "bid.modified", "bid.withdrawn"})
# Of a sealed sale: facts naming a participant (bidder number and time) and, before opening, counts.
PARTICIPANT_FACTS = ("bid.", "registration.")
COUNT_FIELDS = ("accepted_bids", "registered_bidders", "bidders", "leading_bidder_number", "bidder_number")


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):  # Money {fen, currency} or Quantity {value, unit}
        return {k: v for k, v in value.items() if k in ("fen", "currency", "value", "unit")}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def kind_of(event_type: str) -> str:
    """yaosu.trading.bid.accepted → bid.accepted"""
    return event_type.removeprefix("yaosu.trading.")


def never_public(event_type: str) -> bool:
    return kind_of(event_type) in NEVER_PUBLIC


def _money(data: dict[str, Any]) -> dict[str, Any]:
    """Trading's events carry amounts as `<name>_fen` integers; the API shows Money {fen, currency}."""
    out = dict(data)
    for key, value in data.items():
        if key.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
            out.setdefault(key.removesuffix("_fen"), {"fen": value, "currency": "CNY"})
    if "at" in data and "accepted_at" not in data and "bidder_number" in data:
        out["accepted_at"] = data["at"]  # bid.accepted: when the bid was accepted
    return out


def listing_fact(kind: str, data: dict[str, Any], *, sealed_mechanism: bool, counts: bool = True
                 ) -> dict[str, Any] | None:
    """The fact as any viewer of the sale may see it, or None when it is not to be shown. `counts`: the
    viewer may see how many take part (false for a sealed sale before opening, but to the trading centre)."""
    if kind in NEVER_PUBLIC or (sealed_mechanism and kind.startswith(PARTICIPANT_FACTS)):
        return None
    allowed = LISTING_FIELDS if sealed_mechanism or data.get("sealed") else LISTING_FIELDS + PRICE_FIELDS
    if not counts:
        allowed = tuple(k for k in allowed if k not in COUNT_FIELDS)
    data = _money(data)
    return {k: _scalar(data[k]) for k in allowed if k in data and not any(s in k for s in _SECRET)}


def market_fact(data: dict[str, Any]) -> dict[str, Any]:
    data = _money(data)
    return {k: _scalar(data[k]) for k in MARKET_FIELDS if k in data}
