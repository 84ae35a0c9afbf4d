"""What leaves the service, as plain dicts the servicer translates. Confidentiality is decided here:
the reserve only once the sale is decided, a bidder's identity only to itself and to privileged callers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

DECIDED = ("awarded", "unsold", "settled")


def display_state(row: dict[str, Any], now: datetime) -> str:
    state = row["state"]
    if state == "published":
        return "bidding" if row["bidding_opens_at"] and now >= row["bidding_opens_at"] else "announced"
    return state


def listing_view(row: dict[str, Any], now: datetime, *, reserve_fen: int | None = None) -> dict[str, Any]:
    view = {k: row[k] for k in ("listing_id", "trade_code", "mechanism", "agency_id", "resource_id", "instrument",
                                "quantity", "unit", "title", "description", "announce_at", "bidding_opens_at",
                                "bidding_closes_at", "opening_at", "version", "created_at", "published_at")}
    view.update(state=display_state(row, now), rules=json.loads(row["rules"]),
                eligibility=json.loads(row["eligibility"]), performance=json.loads(row["performance"]),
                documents=json.loads(row["documents"]),
                reserve_set=bool(row["reserve_approved_by"]),
                # Only a decided sale discloses its reserve; callers pass it only then.
                reserve_fen=reserve_fen if row["state"] in DECIDED else None)
    view["rules"].pop("reserve_fen", None)
    if (unsold := unsold_lots(row)) is not None:
        view["rules"]["unsold_lots"] = unsold  # rules.rolled_into names the auction that carried them
    return view


def unsold_lots(row: dict[str, Any]) -> int | None:
    """A quota auction's lots offered and not sold — all of them when cancelled (by a rule at the clearing,
    recorded in its outcome, or by its agency); None before it is decided and for other mechanisms."""
    if row["mechanism"] != "uniform_price":
        return None
    outcome = json.loads(row["outcome"]) if row["outcome"] else {}
    supply = int(json.loads(row["rules"]).get("supply_lots") or 0)
    if outcome.get("status") == "cleared":
        return supply - int(outcome["sold_lots"])
    if outcome or row["state"] == "cancelled":
        return supply
    return None


def bid_view(bid: dict[str, Any], *, owner: bool) -> dict[str, Any]:
    view = {k: bid[k] for k in ("bid_id", "listing_id", "bidder_number", "state", "price_fen", "quantity_lots",
                                "sealed", "receipt", "accepted_at", "sequence", "refusal_reason")}
    view["credit_code"] = bid["credit_code"] if owner else ""
    if bid["sealed"] and not owner:
        view["price_fen"] = 0
    return view


def registration_view(reg: dict[str, Any], *, identity: bool) -> dict[str, Any]:
    view = dict(reg)
    view.pop("evaluation_score", None)
    if not identity:
        view["credit_code"] = ""
    return view
