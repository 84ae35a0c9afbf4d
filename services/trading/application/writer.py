"""One writer per sale, with group commit.

Every change to a sale — a bid, a confirmation, a reserve entry, a timer firing — is queued to the sale's
writer. The writer drains its queue, applies the commands in arrival order to the in-memory state
machine, writes the whole batch in ONE transaction (bid rows, domain events, outbox events, audit
entries, idempotency records, the listing's mirror and timer) and only after the commit resolves the
callers. So a bid is acknowledged only once it is durable, and a sale has a single writer (no lost
updates, no row locks) while the database sees one commit per batch instead of one per bid.
If the commit fails, the sale is dropped from memory and rebuilt from the database on next use, and
every caller of the batch gets the error (nothing of it was acknowledged).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.errors import DomainError as CommonError
from services.common.errors import IdempotencyConflict, RuleViolation
from services.common.events.envelope import Event
from services.common.uow import UnitOfWork
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.event_codec import EventCodec, encode
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application.errors import refusal
from services.trading.application.sale import Sale, load_sale
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.periods import SaleTimers

log = logging.getLogger(__name__)


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
    idempotency: list[dict] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    registration_updates: list[tuple[list[str], dict]] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)  # change notices (an increment change is announced)
    listing_updates: dict[str, Any] = field(default_factory=dict)  # columns of the listing row beyond the mirror
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.events or self.bids or self.bid_updates or self.idempotency)


class SaleWriter:
    def __init__(self, writers: Writers, listing_id: str) -> None:
        self.writers = writers
        self.listing_id = listing_id
        self.queue: list[Op] = []
        self.wakeup = asyncio.Event()
        # A fresh context: the writer acts as the system, never as the caller that happened to start it.
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"sale-writer:{listing_id}",
                                                           context=contextvars.Context())

    async def submit(self, op: Op) -> Any:
        op.future = asyncio.get_running_loop().create_future()
        self.queue.append(op)
        self.wakeup.set()
        return await op.future

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                ops, self.queue = self.queue[: self.writers.max_batch], self.queue[self.writers.max_batch:]
                await self._process(ops)

    async def _process(self, ops: list[Op]) -> None:
        outcomes: list[tuple[Op, Any, BaseException | None]] = []
        w = self.writers
        try:
            async with w.uow() as tx:
                repo = TradingRepository(tx.session)
                sale = w.cache.get(self.listing_id) or await load_sale(repo, self.listing_id, w.codec, w.timers)
                if sale is None:
                    raise RuleViolation(f"listing {self.listing_id} not found", reason="NOT_FOUND")
                w.cache[self.listing_id] = sale
                await self._load_bidders(repo, sale, ops)
                records = await repo.idempotency_records(w.uow.tables.idempotency, (o.key for o in ops))
                batch = Batch(w.clock())
                in_batch: dict[str, tuple[Op, dict]] = {}
                for op in ops:
                    replay = self._replay(op, records, in_batch)
                    if replay is not None:
                        outcomes.append((op, *replay))
                        continue
                    try:
                        result = await w.rules.apply(sale, op, batch, repo)
                    except TradingRuleError as exc:
                        w.rules.refused(sale, op, exc.code)
                        outcomes.append((op, None, refusal(exc)))
                        continue
                    except CommonError as exc:
                        outcomes.append((op, None, exc))
                        continue
                    if op.key:
                        in_batch[op.key] = (op, result)
                        batch.idempotency.append(dict(key=op.key, operation=op.kind, request_digest=op.digest,
                                                      response=dumps(result).encode(), created_at=batch.now))
                    outcomes.append((op, result, None))
                if batch.changed:
                    await self._flush(tx, repo, sale, batch)
                    await tx.commit()
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear; the sale is rebuilt from the DB
            w.cache.pop(self.listing_id, None)
            if not isinstance(exc, CommonError):
                log.exception("sale writer batch failed", extra={"listing_id": self.listing_id})
            error = exc if isinstance(exc, CommonError) else RuleViolation("the bid was not recorded; retry",
                                                                            reason="NOT_COMMITTED")
            for op in ops:
                if op.future and not op.future.done():
                    op.future.set_exception(error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for hook in batch.after_commit:
            hook()
        for op, result, error in outcomes:
            if op.future and not op.future.done():
                if error is not None:
                    op.future.set_exception(error)
                else:
                    op.future.set_result(result)

    def _replay(self, op: Op, records: dict, in_batch: dict) -> tuple[Any, BaseException | None] | None:
        if not op.key:
            return None
        if op.key in in_batch:
            first, result = in_batch[op.key]
            if first.kind != op.kind or first.digest != op.digest:
                return None, IdempotencyConflict(op.key)
            return result, None
        record = records.get(op.key)
        if record is None:
            return None
        if record.operation != op.kind or record.request_digest != op.digest:
            return None, IdempotencyConflict(op.key)
        return json.loads(record.response), None

    async def _load_bidders(self, repo: TradingRepository, sale: Sale, ops: list[Op]) -> None:
        unknown = {o.args["credit_code"] for o in ops if o.args.get("credit_code")} - sale.bidders.keys()
        for code in unknown:
            reg = await repo.registration(sale.listing_id, code)
            if reg is not None and reg["state"] == "qualified":
                sale.bidders[code] = reg["bidder_number"]

    async def _flush(self, tx, repo: TradingRepository, sale: Sale, batch: Batch) -> None:
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
        await repo.insert_many(self.writers.uow.tables.idempotency, batch.idempotency)


class Writers:
    """The sale writers of this process and the cache of sales they own."""

    def __init__(self, uow: UnitOfWork, clock: Callable[[], datetime], rules, codec: EventCodec,
                 timers: SaleTimers, max_batch: int = 512) -> None:
        self.uow = uow
        self.timers = timers  # the sale policy's, for a sale whose rules do not fix them
        self.codec = codec
        self.clock = clock
        self.rules = rules  # SaleRules: how an Op changes a sale (rules.py)
        self.max_batch = max_batch
        self.cache: dict[str, Sale] = {}
        self.writers: dict[str, SaleWriter] = {}

    def writer(self, listing_id: str) -> SaleWriter:
        writer = self.writers.get(listing_id)
        if writer is None:
            writer = self.writers[listing_id] = SaleWriter(self, listing_id)
        return writer

    async def submit(self, listing_id: str, op: Op) -> Any:
        return await self.writer(listing_id).submit(op)

    def forget(self, listing_id: str) -> None:
        """Drop the cached state (after a change made outside the writer, e.g. a change notice)."""
        self.cache.pop(listing_id, None)

    async def stop(self) -> None:
        for writer in self.writers.values():
            writer.task.cancel()
        for writer in self.writers.values():
            try:
                await writer.task
            except asyncio.CancelledError:
                pass


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"

