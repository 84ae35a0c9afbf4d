"""Unit of work: one database transaction carrying the change, its outbox events, its audit entries and
its idempotency record — all committed together or not at all."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.audit import AuditJournal
from services.common.context import current_principal
from services.common.db import READ_ONLY
from services.common.errors import ConcurrencyConflict, IdempotencyConflict
from services.common.events.envelope import Event
from services.common.events.outbox import Outbox
from services.common.metrics import AuditMetrics
from services.common.tables import InfrastructureTables

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=256)
def adapter(kind: Any) -> TypeAdapter:
    """TypeAdapters are costly to build (a schema each) and immutable: one per type."""
    return TypeAdapter(kind)


def command_digest(command: Any) -> str:
    """Digest of a command without its idempotency key: equal bodies give equal digests."""
    data = adapter(type(command)).dump_python(command, mode="json")
    data.pop("idempotency_key", None)
    return hashlib.sha256(adapter(dict).dump_json(data)).hexdigest()


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tables: InfrastructureTables, outbox: Outbox,
                 journal: AuditJournal, audit_metrics: AuditMetrics | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.sessions = sessions
        self.tables = tables
        self.outbox = outbox
        self.journal = journal
        self.audit_metrics = audit_metrics
        self.clock = clock

    def __call__(self) -> Transaction:
        return Transaction(self)

    def read(self) -> Transaction:
        """A transaction that only reads: it never waits for the writer (on SQLite it takes no write lock
        and reads its WAL snapshot). It cannot commit."""
        return Transaction(self, read_only=True)


class Transaction:
    def __init__(self, uow: UnitOfWork, *, read_only: bool = False) -> None:
        self.uow = uow
        self.read_only = read_only
        self.session: AsyncSession = uow.sessions()
        self.now = uow.clock()
        self.events = 0
        self.audits = 0
        self.committed = False
        self._deferred: list[tuple[str, str, str, object]] | None = None  # audit entries held for one append
        self._deferred_events: list[dict] | None = None  # outbox rows held for one insert
        self._staged: dict[str, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}
        self._after_commit: list[Callable[[], None]] = []

    async def __aenter__(self) -> Transaction:
        await self.session.begin()
        if self.read_only:
            await self.session.connection(execution_options={READ_ONLY: True})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if not self.committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    async def emit(self, event: Event) -> str:
        return (await self.emit_many([event]))[0]

    async def emit_many(self, events: list[Event]) -> list[str]:
        self.events += len(events)
        if self._deferred_events is not None:  # written with the batch's other events, in one insert
            rows = self.uow.outbox.rows(events)
            self._deferred_events.extend(rows)
            return [row["event_id"] for row in rows]
        return await self.uow.outbox.add_many(self.session, events)

    async def audit_many(self, entries: list[tuple[str, str, str, object]]) -> list[int]:
        """(actor, action, subject, payload) entries of a batch; each names its own actor."""
        self.audits += len(entries)
        if self._deferred is not None:
            self._deferred.extend(entries)
            return []
        return await self.uow.journal.append_many(self.session, entries, self.now)

    async def audit(self, action: str, subject: str, payload: object) -> int:
        """Append an entry; its sequence number, or 0 while entries are deferred (see defer_writes)."""
        self.audits += 1
        if self._deferred is not None:
            self._deferred.append((current_principal().actor, action, subject, payload))
            return 0
        return await self.uow.journal.append(self.session, actor=current_principal().actor, action=action,
                                             subject=subject, payload=payload, at=self.now)

    # The write engine's batches: audit entries and outbox events are held and written once (one advance
    # of the chain, one insert), and a command refused inside its savepoint takes back what it added
    # (mark, rewind).
    def defer_writes(self) -> None:
        self._deferred = []
        self._deferred_events = []

    def mark(self) -> tuple[int, int, int, int, int]:
        return (len(self._deferred or ()), len(self._deferred_events or ()), self.events, self.audits,
                len(self._after_commit))

    def rewind(self, mark: tuple[int, int, int, int, int]) -> None:
        held, held_events, self.events, self.audits, hooks = mark
        if self._deferred is not None:
            del self._deferred[held:]
        if self._deferred_events is not None:
            del self._deferred_events[held_events:]
        del self._after_commit[hooks:]

    def stage(self, key: str, create: Callable[[], Any], flush: Callable[[Any], Awaitable[None]]) -> Any:
        """The transaction's accumulator for `key` (created on first use), written by `flush` once, just
        before the commit: the commands of a batch add rows to it and the batch writes each table once.
        A command adds to it only once all its checks have passed (a refusal must leave nothing in it)."""
        if key not in self._staged:
            self._staged[key] = (create(), flush)
        return self._staged[key][0]

    async def flush_staged(self) -> None:
        staged, self._staged = self._staged, {}
        for accumulated, flush in staged.values():
            await flush(accumulated)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the transaction has committed (e.g. publish what it changed)."""
        self._after_commit.append(hook)

    def run_after_commit(self) -> None:
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            hook()

    async def flush_deferred(self) -> None:
        if self._deferred_events:
            await self.uow.outbox.insert(self.session, self._deferred_events)
        if self._deferred:
            await self.uow.journal.append_many(self.session, self._deferred, self.now)
        self._deferred, self._deferred_events = None, None

    async def replay(self, command: Any, operation: str, result_type: type[T]) -> T | None:
        """The first result for this command's idempotency key, or None when the key is new."""
        key = getattr(command, "idempotency_key", "")
        if not key:
            return None
        table = self.uow.tables.idempotency
        row = (await self.session.execute(select(table).where(table.c.key == key))).first()
        if row is None:
            return None
        # Keys are unique per service, not per operation: a key reused for another call is refused too.
        if row.operation != operation or row.request_digest != command_digest(command):
            raise IdempotencyConflict(key)
        return adapter(result_type).validate_json(row.response)

    async def remember(self, command: Any, operation: str, result: T, result_type: type[T]) -> None:
        key = getattr(command, "idempotency_key", "")
        if not key:
            return
        await self.session.execute(insert(self.uow.tables.idempotency).values(
            key=key, operation=operation, request_digest=command_digest(command),
            response=adapter(result_type).dump_json(result), created_at=self.now))

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read transaction does not commit")
        try:
            await self.session.commit()
        except IntegrityError as exc:
            # Two concurrent requests with one key (or one unique value): the loser retries and replays.
            raise ConcurrencyConflict("a concurrent request changed the same data; retry") from exc
        self.committed = True
        if self.events:
            self.uow.outbox.notify()
        if self.audits and self.uow.audit_metrics:
            self.uow.audit_metrics.entries.inc(self.audits)
        self.run_after_commit()
