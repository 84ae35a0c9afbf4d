"""Changes to a sale through the service's write engine.

Every change to a sale — a bid, a confirmation, a reserve entry, a timer firing — is a command of the
sale's partition of the write engine (services/common/write_engine.py): the commands of a sale apply in
arrival order to its in-memory state machine, each stages its rows (bid rows, domain events, outbox events,
audit entries, the listing's mirror and timer) into the batch's accumulator of that sale, the batch writes
each table once and commits once, and only then are the callers answered. So a bid is acknowledged only
once it is durable, and a sale has a single writer (no lost updates, no row locks). If a batch does not
commit, the sale is dropped from memory and rebuilt from the database on next use.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.errors import RuleViolation
from services.common.events.envelope import Event
from services.common.uow import Transaction
from services.common.write_engine import Command, WriteEngine
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.event_codec import EventCodec, encode
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application.errors import refusal
from services.trading.application.sale import Sale, load_sale
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.periods import SaleTimers


@dataclass
class Op:
    """A command for one sale. `at` is when it reached the server: that is the time that counts."""

    kind: str  # bid, tick, confirm, reserve_enter, reserve_approve
    at: datetime
    actor: str = "system"
    key: str = ""
    digest: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    future: asyncio.Future | None = None


@dataclass
class Batch:
    """Rows of one group commit, written with one executemany per table."""

    now: datetime
    bids: list[dict] = field(default_factory=list)
    bid_updates: list[tuple[str, dict]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    outbox: list[Event] = field(default_factory=list)
    audit: list[tuple[str, str, str, object]] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    registration_updates: list[tuple[list[str], dict]] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)  # change notices (an increment change is announced)
    listing_updates: dict[str, Any] = field(default_factory=dict)  # columns of the listing row beyond the mirror
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def merge(self, other: Batch) -> None:
        """Add the rows of one command (staged once all its checks have passed)."""
        for name in ("bids", "bid_updates", "events", "outbox", "audit", "trades", "tasks",
                     "registration_updates", "notices"):
            getattr(self, name).extend(getattr(other, name))
        self.listing_updates.update(other.listing_updates)


async def flush_sale(tx, repo: TradingRepository, sale: Sale, batch: Batch) -> None:
    """Write a sale's staged rows, table by table, and its listing mirror."""
    await repo.insert_many(r.bids, batch.bids)
    for bid_id, values in batch.bid_updates:
        await repo.update_bid(bid_id, **values)
    await repo.insert_many(r.sale_events, batch.events)
    for codes, values in batch.registration_updates:
        await repo.update_registrations(sale.listing_id, codes, **values)
    await repo.insert_many(r.trades, batch.trades)
    await repo.insert_many(r.tasks, batch.tasks)
    await repo.insert_many(r.notices, batch.notices)
    d = sale.domain
    last = d.quotes[-1] if d.quotes else None
    outcome = None
    if d.outcome is not None:
        type_name, payload = encode(d.outcome)
        outcome = dumps({"type": type_name, **json.loads(payload)})
    await repo.update_listing(
        sale.listing_id, state=sale.lifecycle_state(), next_timer_at=sale.next_timer(),
        current_price_fen=last.amount if last else 0, leader=last.bidder if last else "",
        accepted_bids=len(d.quotes), outcome=outcome or "", reserve_entered_by=d.reserve.entered_by or "",
        reserve_approved_by=d.reserve.approved_by or "", **batch.listing_updates)
    sale.row.update(state=sale.lifecycle_state(), next_timer_at=sale.next_timer(),
                    reserve_approved_by=d.reserve.approved_by or "", **batch.listing_updates)
    if batch.outbox:
        await tx.emit_many(batch.outbox)
    if batch.audit:
        await tx.audit_many(batch.audit)


class Writers:
    """The sales of this process: their commands go to the write engine, their state is cached here."""

    def __init__(self, engine: WriteEngine, clock: Callable[[], datetime], rules, codec: EventCodec,
                 timers: SaleTimers) -> None:
        self.engine = engine
        self.timers = timers  # the sale policy's, for a sale whose rules do not fix them
        self.codec = codec
        self.clock = clock
        self.rules = rules  # SaleRules: how an Op changes a sale (rules.py)
        self.cache: dict[str, Sale] = {}
        # English auctions between bids: (state machine, last event's seq, listing row, registrations).
        self.auctions: dict[str, tuple[Any, int, dict, list[dict]]] = {}

    async def submit(self, listing_id: str, op: Op) -> Any:
        """Apply the op to the sale; answered once its batch is committed."""
        async def work(tx: Transaction) -> Any:
            repo = TradingRepository(tx.session)
            sale = await self.sale(repo, listing_id)
            await self._load_bidders(repo, sale, op)
            own = Batch(self.clock())
            try:
                result = await self.rules.apply(sale, op, own, repo)
            except TradingRuleError as exc:
                self.rules.refused(sale, op, exc.code)
                raise refusal(exc) from None
            staged = tx.stage(partition(listing_id), lambda: Batch(own.now),
                              lambda batch: flush_sale(tx, repo, sale, batch))
            staged.merge(own)
            for hook in own.after_commit:
                tx.after_commit(hook)
            return result
        return await self.engine.submit(Command(partition(listing_id), op.kind, work, key=op.key, digest=op.digest,
                                                savepoint=False, abandon=lambda: self.forget(listing_id)))

    async def sale(self, repo: TradingRepository, listing_id: str) -> Sale:
        """The sale's state machine: the cached one, or rebuilt from its events."""
        sale = self.cache.get(listing_id)
        if sale is None:
            sale = await load_sale(repo, listing_id, self.codec, self.timers)
            if sale is None:
                raise RuleViolation(f"listing {listing_id} not found", reason="NOT_FOUND")
            self.cache[listing_id] = sale
        return sale

    @staticmethod
    async def _load_bidders(repo: TradingRepository, sale: Sale, op: Op) -> None:
        code = op.args.get("credit_code")
        if code and code not in sale.bidders:
            reg = await repo.registration(sale.listing_id, code)
            if reg is not None and reg["state"] == "qualified":
                sale.bidders[code] = reg["bidder_number"]

    def forget(self, listing_id: str) -> None:
        """Drop the cached state (after a change made outside the state machine, e.g. a change notice)."""
        self.cache.pop(listing_id, None)
        self.auctions.pop(listing_id, None)


LISTINGS = "listings"  # the write engine's partition of listing creation (trade-code serials in order)


def partition(listing_id: str) -> str:
    """The write engine's partition of a sale: its changes apply in one order."""
    return f"sale:{listing_id}"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"

