"""Transactional outbox: events are rows written with the change; a relay publishes them to JetStream.

The relay publishes in order with Nats-Msg-Id = event id and marks a row published only after the
PubAck, so a crash in between re-publishes and the stream's duplicate window drops the copy.
It waits for NATS to come back (nats-py reconnects) and never loses a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoStreamResponseError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.authz import Kind
from services.common.context import current_principal, request_id_var
from services.common.db import READ_ONLY
from services.common.events.envelope import Event, build
from services.common.metrics import EventMetrics
from services.common.tables import InfrastructureTables
from services.common.tracing import current_trace_context

log = logging.getLogger(__name__)


def stream_of(subject: str) -> str:
    return subject.split(".", 1)[0].upper()


def event_actor() -> str:
    """Who acted, as the bus may carry it. An enterprise is not named: every subscriber reads the bus, and
    who registers or bids in a sale is that sale's secret; the audit journal records the enterprise."""
    principal = current_principal()
    if principal.subject.kind is Kind.ENTERPRISE:
        return f"{principal.name}/enterprise"
    return principal.actor


class Outbox:
    def __init__(self, tables: InfrastructureTables, source: str, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.source = source
        self.clock = clock
        self.wakeup = asyncio.Event()

    async def add(self, session: AsyncSession, event: Event) -> str:
        return (await self.add_many(session, [event]))[0]

    async def add_many(self, session: AsyncSession, events: list[Event]) -> list[str]:
        """Write events in order with one batch insert (group commit of many requests)."""
        rows = self.rows(events)
        await self.insert(session, rows)
        return [row["event_id"] for row in rows]

    def rows(self, events: list[Event]) -> list[dict]:
        """The outbox rows of events, enveloped now: in the context of whoever emits them (request id,
        actor, trace), whenever they are written."""
        at = self.clock()
        trace_context = current_trace_context()
        rows = []
        for event in events:
            event_id, envelope = build(event, source=self.source, at=at, request_id=request_id_var.get(),
                                       actor=event_actor(), trace_context=trace_context)
            rows.append(dict(event_id=event_id, subject=event.subject, envelope=envelope, created_at=at))
        return rows

    async def insert(self, session: AsyncSession, rows: list[dict]) -> None:
        if rows:
            await session.execute(insert(self.tables.outbox), rows)

    def notify(self) -> None:
        """Called after a commit that wrote events, so the relay need not wait for its next poll."""
        self.wakeup.set()


class OutboxRelay:
    def __init__(self, outbox: Outbox, sessions: async_sessionmaker[AsyncSession], nc: Client,
                 metrics: EventMetrics, *, poll_seconds: float = 0.5, batch: int = 256,
                 linger_seconds: float = 0.005, backlog_every_seconds: float = 1.0) -> None:
        self.outbox = outbox
        self.sessions = sessions
        self.js = nc.jetstream(timeout=5)
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.batch = batch
        # After a wake-up the relay lingers a moment so a burst of commits is published as one batch.
        self.linger_seconds = linger_seconds
        self.backlog_every_seconds = backlog_every_seconds
        self._backlog_refreshed = 0.0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Publish what is pending if NATS is reachable, then stop."""
        self._stopping.set()
        self.outbox.wakeup.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                published = await self.publish_pending()
                failures = 0
            except (NoStreamResponseError, NoRespondersError, NatsTimeoutError, ConnectionError, OSError) as exc:
                failures += 1
                self.metrics.publish_failures.labels(type(exc).__name__).inc()
                log.warning("outbox publish failed (%s); retrying", type(exc).__name__)
                published = 0
            except Exception:  # noqa: BLE001 - the relay must outlive any single bad moment
                failures += 1
                self.metrics.publish_failures.labels("unexpected").inc()
                log.exception("outbox relay error")
                published = 0
            if self._stopping.is_set() and (published == 0 or failures):
                return
            if published == self.batch:
                continue
            delay = min(self.poll_seconds * (2 ** min(failures, 5)), 10.0) if failures else self.poll_seconds
            self.outbox.wakeup.clear()
            try:
                await asyncio.wait_for(self.outbox.wakeup.wait(), timeout=delay)
                await asyncio.sleep(self.linger_seconds)
            except TimeoutError:
                pass

    async def publish_pending(self) -> int:
        table = self.outbox.tables.outbox
        async with self.sessions() as session:
            await session.connection(execution_options={READ_ONLY: True})  # never waits for the writer
            rows = (await session.execute(
                select(table.c.position, table.c.event_id, table.c.subject, table.c.envelope)
                .where(table.c.published_at.is_(None)).order_by(table.c.position).limit(self.batch)
            )).all()
            await session.commit()
        done: list[int] = []
        try:
            for row in rows:
                stream = stream_of(row.subject)
                await self.js.publish(row.subject, row.envelope, stream=stream,
                                      headers={"Nats-Msg-Id": row.event_id})
                done.append(row.position)
                self.metrics.published.labels(stream).inc()
        finally:
            if done:
                async with self.sessions() as session:
                    await session.execute(update(table).where(table.c.position.in_(done))
                                          .values(published_at=datetime.now(UTC)))
                    await session.commit()
            now = asyncio.get_running_loop().time()
            if not rows or now - self._backlog_refreshed >= self.backlog_every_seconds:
                self._backlog_refreshed = now
                await self.refresh_backlog()
        return len(rows)

    async def refresh_backlog(self) -> None:
        table = self.outbox.tables.outbox
        async with self.sessions() as session:
            await session.connection(execution_options={READ_ONLY: True})
            pending, oldest = (await session.execute(
                select(func.count(), func.min(table.c.created_at)).where(table.c.published_at.is_(None))
            )).one()
            await session.commit()
        self.metrics.outbox_pending.set(pending)
        if oldest is None:
            self.metrics.outbox_oldest.set(0)
        else:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            self.metrics.outbox_oldest.set((datetime.now(UTC) - oldest).total_seconds())
