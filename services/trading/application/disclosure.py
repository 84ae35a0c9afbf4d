"""What of a sale a subject may learn, by the disclosure rules of services/trading/authorization.yaml:

- `listing.drafts`: a draft exists only for its own agency and the regulators (everybody else: NOT_FOUND,
  never in lists);
- `participants.sealed` / `participants.opened`: who took part in a sale, how many and when. Before the
  opening of a sealed sale (招标, uniform-price auction) only the trading centre learns it; afterwards,
  and for the open mechanisms, the counts are public and identities go to the subjects of
  `participants.opened` once the sale is decided. A bidder always sees its own;
- `trade.counterparty`: the other side of an order-book trade (each party sees its own side).
"""

from __future__ import annotations

import json
from typing import Any

from services.common.authz import Access, Kind, Owner
from services.common.context import current_subject

SEALED = ("tender", "uniform_price")
DECIDED_OR_CANCELLED = ("awarded", "unsold", "settled", "cancelled")


def opened(row: dict[str, Any]) -> bool:
    """A sealed sale is opened when its bids are (tender opening, uniform-price clearing: the outcome is
    then recorded); a cancellation before that opens nothing. An open mechanism, once decided."""
    if row["state"] not in DECIDED_OR_CANCELLED:
        return False
    return bool(row["outcome"]) if row["mechanism"] in SEALED else True


class Disclosure:
    def __init__(self, access: Access) -> None:
        self.access = access

    def listing_visible(self, row: dict[str, Any]) -> bool:
        return row["state"] != "draft" or self.access.allows("listing.drafts", Owner.agency(row["agency_id"]))

    def drafts_of(self) -> str | None:
        """Whose drafts a listing query includes: "" every draft (the service itself), an agency id, or
        None (no drafts)."""
        subject = current_subject()
        if subject.kind is Kind.SYSTEM:
            return ""
        if subject.kind is Kind.REGULATOR and self.access.allows("listing.drafts"):
            return ""
        if subject.kind is Kind.AGENCY and self.access.allows("listing.drafts", Owner.agency(subject.id)):
            return subject.id
        return None

    def participants(self, row: dict[str, Any]) -> bool:
        """Whether others' registrations and bids (their numbers, count and times) may be shown."""
        if row["mechanism"] in SEALED and not opened(row):
            return self.access.allows("participants.sealed", Owner.agency(row["agency_id"]))
        return True

    def identities(self, row: dict[str, Any]) -> bool:
        """Whether others' credit codes may be shown next to their bidder numbers."""
        rule = "participants.opened" if opened(row) else "participants.sealed"
        return self.access.allows(rule, Owner.agency(row["agency_id"]))

    @staticmethod
    def is_self(credit_code: str) -> bool:
        """The caller is this enterprise (the service's own work is nobody's self)."""
        return bool(credit_code) and current_subject().owns(Owner.enterprise(credit_code))

    def trade(self, trade: dict[str, Any]) -> dict[str, Any]:
        """A trade as this subject may see it: an order-book trade shows each party only its own side (a
        block trade's parties named each other in their orders; a sale's seller is its agency)."""
        if not _on_book(trade) or self.access.allows("trade.counterparty"):
            return trade
        return trade | {"buyer": trade["buyer"] if self.is_self(trade["buyer"]) else "",
                        "seller": trade["seller"] if self.is_self(trade["seller"]) else ""}


def _on_book(trade: dict[str, Any]) -> bool:
    return not trade["listing_id"] and bool(json.loads(trade.get("legs") or "{}").get("book"))
