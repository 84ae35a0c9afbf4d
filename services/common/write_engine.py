"""One write path: commands queue to a single writer per partition, which commits them in batches.

A partition is what must be ordered (a ledger, a listing, a market). Its writer takes up to `max_batch`
queued commands, runs each one in its own savepoint of ONE transaction — a refused command rolls back
alone and its caller hears the refusal —, writes each accepted command's idempotency record, appends the
batch's audit entries with one advance of the chain, commits once, and only then answers the callers.
So an answer means committed, a database sees one commit per batch instead of one per command, and the
commands of a partition apply in arrival order.

A retry with the same idempotency key answers the stored result (in the same batch: the first command's)
in one canonical form: every result goes through its JSON encoding, first answers included, so a first
answer and a replay are equal. A key reused with another request is refused (IDEMPOTENCY_KEY_REUSED).

The queue of a partition is bounded: when full, a command is refused at once with Overloaded
(RESOURCE_EXHAUSTED with a retry hint) instead of waiting without end. `drain()` lets the queued work
finish and refuses new work (shutdown).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from services.common.context import deadline_var
from services.common.errors import DomainError, IdempotencyConflict, Overloaded, RuleViolation
from services.common.metrics import WriteEngineMetrics
from services.common.uow import Transaction, UnitOfWork

log = logging.getLogger(__name__)

Work = Callable[[Transaction], Awaitable[Any]]


def canonical(result: Any) -> str:
    """The one stored and answered form of a result: compact JSON, keys in order, datetimes as ISO text."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: a quantity's text, never a float
    raise TypeError(f"{type(value).__name__} is not a result value")


@dataclass
class Command:
    """A change to one partition. `work` runs inside the batch's transaction (in its own savepoint) and
    returns a JSON-able result; `digest` identifies the request body for idempotency (same key, other
    digest → refused)."""

    partition: str
    operation: str
    work: Work
    key: str = ""
    digest: str = ""
    # Checks that come before a stored answer is replayed (may the caller act on the objects it names?);
    # reads only, in the batch's transaction.
    guard: Work | None = None
    # False for work that only reads and stages its writes (Transaction.stage): a refusal leaves nothing
    # to roll back, so the batch spares the savepoint's round trips.
    savepoint: bool = True
    # Runs in the batch when the command is refused before its work ran (a reused key): undoes what the
    # caller prepared for it outside this transaction (e.g. a hold in another service).
    compensate: Work | None = None
    # Called when the batch did not commit after the work ran: state the work keeps in memory is stale.
    abandon: Callable[[], None] | None = None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    future: asyncio.Future | None = None
    queued_at: float = 0.0
    replayed: bool = False  # answered from the stored answer of an earlier request with the same key


async def _nothing(tx: Transaction) -> None:
    return None


class _Partition:
    def __init__(self, engine: WriteEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.queue: list[Command] = []
        self.busy = False  # a batch is being committed
        self.wakeup = asyncio.Event()
        # A fresh context: the writer is nobody; each command runs in the context of its caller.
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"writer:{engine.name}:{name}",
                                                           context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                batch, self.queue = self.queue[: self.engine.max_batch], self.queue[self.engine.max_batch:]
                self.engine.metrics.queue_depth.labels(self.engine.name).dec(len(batch))
                self.busy = True
                try:
                    await self.engine._commit(batch)
                finally:
                    self.busy = False


class WriteEngine:
    def __init__(self, uow: UnitOfWork, metrics: WriteEngineMetrics, *, name: str, max_batch: int = 256,
                 queue_limit: int = 4096, retry_after_seconds: float = 0.05, serial: bool = False) -> None:
        self.uow = uow
        self.metrics = metrics
        self.name = name  # a metric label: which service's engine
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.retry_after_seconds = retry_after_seconds
        self.partitions: dict[str, _Partition] = {}
        self.draining = False
        # SQLite has one writer per file: the partitions share one writer here (one commit for the batch of
        # all of them) instead of taking turns in SQLite's busy handler, which sleeps. On PostgreSQL each
        # partition has its own writer, and they commit side by side.
        self.serial = serial

    async def submit(self, command: Command) -> Any:
        """Queue the command to its partition's writer and answer once its batch is committed."""
        if self.draining:
            raise Overloaded("the service is stopping; retry on another replica",
                             retry_after_seconds=self.retry_after_seconds)
        # One queue in arrival order keeps each partition's order when partitions share a writer.
        writer = "*" if self.serial else command.partition
        partition = self.partitions.get(writer)
        if partition is None:
            partition = self.partitions[writer] = _Partition(self, writer)
        if len(partition.queue) >= self.queue_limit:
            self.metrics.overloaded.labels(self.name).inc()
            raise Overloaded(f"too many changes are waiting for {command.partition}; retry shortly",
                             retry_after_seconds=self.retry_after_seconds)
        # The work runs whoever waits: the caller's deadline must not fail a batch it is part of.
        command.context.run(deadline_var.set, None)
        command.future = asyncio.get_running_loop().create_future()
        command.queued_at = time.perf_counter()
        partition.queue.append(command)
        self.metrics.queue_depth.labels(self.name).inc()
        partition.wakeup.set()
        return await command.future

    async def stored_answer(self, key: str, operation: str, digest: str) -> Any | None:
        """The answer a request with this key was given, read outside the writer (None when the key is
        new): a retry of a decided request is answered before the caller prepares anything for it."""
        if not key:
            return None
        async with self.uow.read() as tx:
            stored = await self._stored(tx, [key])
        probe = Command("", operation, _nothing, key=key, digest=digest)
        replayed = self._replay(probe, stored, {})
        if replayed is None:
            return None
        text, error = replayed
        if error is not None:
            raise error
        return json.loads(text)

    async def drain(self) -> None:
        """Refuse new commands, let every queued one be committed and answered, then stop the writers."""
        self.draining = True
        while any(p.queue or p.busy for p in self.partitions.values()):
            await asyncio.sleep(0.01)
        for partition in self.partitions.values():
            partition.task.cancel()
        for partition in self.partitions.values():
            try:
                await partition.task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------ one batch
    async def _commit(self, batch: list[Command]) -> None:
        answers: list[tuple[Command, str | None, BaseException | None]] = []
        started = time.perf_counter()
        try:
            async with self.uow() as tx:
                tx.defer_writes()  # one advance of the chain, one insert of events, for the whole batch
                stored = await self._stored(tx, [c.key for c in batch if c.key])
                first: dict[str, tuple[Command, str]] = {}
                records: list[dict] = []  # the accepted commands' idempotency records, written in one insert
                for command in batch:
                    if command.guard is not None:
                        try:
                            await self._in_context(command, command.guard(tx))
                        except DomainError as exc:
                            answers.append((command, None, exc))
                            continue
                    replayed = self._replay(command, stored, first)
                    if replayed is not None:
                        command.replayed = True
                        if replayed[1] is not None and command.compensate is not None:
                            await self._in_context(command, command.compensate(tx))
                        answers.append((command, *replayed))
                        continue
                    mark = tx.mark()
                    if command.savepoint:
                        await tx.flush_staged()  # a command that writes directly sees what came before it
                    savepoint = await tx.session.begin_nested() if command.savepoint else None
                    try:
                        result = await self._in_context(command, command.work(tx))
                        text = canonical(result)
                    except DomainError as exc:
                        if savepoint is not None:
                            await savepoint.rollback()
                        tx.rewind(mark)
                        answers.append((command, None, exc))
                        continue
                    if savepoint is not None:
                        await savepoint.commit()
                    if command.key:
                        first[command.key] = (command, text)
                        records.append(dict(key=command.key, operation=command.operation,
                                            request_digest=command.digest, response=text.encode(),
                                            created_at=tx.now))
                    answers.append((command, text, None))
                await tx.flush_staged()
                if records:
                    await tx.session.execute(self.uow.tables.idempotency.insert(), records)
                await tx.flush_deferred()
                await tx.commit()
        except BaseException as exc:  # noqa: BLE001 - nothing of the batch was committed: every caller hears it
            for command in batch:
                if command.abandon is not None:
                    command.abandon()
            if not isinstance(exc, DomainError | asyncio.CancelledError):
                log.exception("write batch failed", extra={"engine": self.name})
            error = exc if isinstance(exc, DomainError) else RuleViolation(
                "the change was not recorded; retry", reason="NOT_COMMITTED")
            for command in batch:
                if command.future is not None and not command.future.done():
                    command.future.set_exception(error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        done = time.perf_counter()
        self.metrics.batch_size.labels(self.name).observe(len(batch))
        self.metrics.commit_seconds.labels(self.name).observe(done - started)
        for command, text, error in answers:
            self.metrics.command_seconds.labels(self.name).observe(done - command.queued_at)
            if command.future is None or command.future.done():
                continue
            if error is not None:
                command.future.set_exception(error)
            else:
                command.future.set_result(json.loads(text))

    @staticmethod
    async def _in_context(command: Command, step: Awaitable[Any]) -> Any:
        """Run the step in the writer's task with the caller's context variables (who acts, its request
        id): as if the caller ran it itself, without a task of its own — a task per command would cost two
        turns of a busy event loop each."""
        tokens = [(variable, variable.set(value)) for variable, value in command.context.items()]
        try:
            return await step
        finally:
            for variable, token in reversed(tokens):
                variable.reset(token)

    async def _stored(self, tx: Transaction, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        table = self.uow.tables.idempotency
        rows = (await tx.session.execute(select(table).where(table.c.key.in_(set(keys))))).all()
        return {row.key: row for row in rows}

    @staticmethod
    def _replay(command: Command, stored: dict[str, Any], first: dict[str, tuple[Command, str]]
                ) -> tuple[str | None, BaseException | None] | None:
        if not command.key:
            return None
        if command.key in first:
            earlier, text = first[command.key]
            same = earlier.operation == command.operation and earlier.digest == command.digest
            return (text, None) if same else (None, IdempotencyConflict(command.key))
        row = stored.get(command.key)
        if row is None:
            return None
        if row.operation != command.operation or row.request_digest != command.digest:
            return None, IdempotencyConflict(command.key)
        response = row.response
        return (response.decode() if isinstance(response, bytes) else response), None

