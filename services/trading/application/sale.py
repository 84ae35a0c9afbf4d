"""One sale in memory: its listing row, the mechanism's state machine rebuilt from stored domain
events, and its qualified bidders. Only the sale's writer (writer.py) changes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.trading.adapters.db.event_codec import EventCodec
from services.trading.adapters.db.repository import TradingRepository
from services.trading.domain.listing import Listing, ListingStatus, ListingTerms
from services.trading.domain.periods import SaleTimers


def rules_of(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["rules"]) if row.get("rules") else {}


def listing_terms(row: dict[str, Any], timers: SaleTimers) -> ListingTerms:
    """The domain terms of a 挂牌 listing. Its timers were fixed into its rules at publication; a draft's
    (and a listing published before they were) come from the sale policy in force."""
    rules = {**timers.rules("listing"), **{k: v for k, v in rules_of(row).items() if v}}
    return ListingTerms(
        listing_id=row["listing_id"], start_price=int(rules["start_price"]), increment=int(rules["increment"]),
        opens_at=row["bidding_opens_at"], closes_at=row["bidding_closes_at"],
        countdown_seconds=int(rules["countdown_seconds"]), confirmation_seconds=int(rules["confirmation_seconds"]),
        reserve_floor=int(rules.get("reserve_floor") or 0))


@dataclass
class Sale:
    row: dict[str, Any]
    domain: Listing
    last_seq: int = 0
    # credit code → bidder number of qualified registrations (loaded on demand by the writer)
    bidders: dict[str, str] = field(default_factory=dict)

    @property
    def listing_id(self) -> str:
        return self.row["listing_id"]

    def next_timer(self) -> datetime | None:
        """When the timer loop must look at this sale next; None once nothing more happens by time."""
        d = self.domain
        if self.row["state"] in ("draft", "cancelled") or d.is_final:
            return None
        if d.status is ListingStatus.OPEN:
            return d.terms.closes_at
        if d.status is ListingStatus.AWAITING_CONFIRMATION:
            return d.confirmation_deadline
        return d.live_deadline

    def lifecycle_state(self) -> str:
        """The stored state column: draft/published until decided, then the decision."""
        if self.row["state"] in ("draft", "cancelled", "settled"):
            return self.row["state"]
        status = self.domain.status
        return {ListingStatus.OPEN: "published", ListingStatus.AWAITING_CONFIRMATION: "closed",
                ListingStatus.LIVE_ROUND: "live_round", ListingStatus.SOLD: "awarded",
                ListingStatus.UNSOLD: "unsold"}[status]


async def load_sale(repo: TradingRepository, listing_id: str, codec: EventCodec, timers: SaleTimers
                    ) -> Sale | None:
    row = await repo.listing(listing_id)
    if row is None:
        return None
    events = await repo.sale_events(listing_id)
    domain = Listing.replay(listing_terms(row, timers), (codec.decode(e["type"], e["payload"]) for e in events))
    return Sale(row, domain, events[-1]["seq"] if events else 0)
