"""The write engine (services/common/write_engine.py) against a real SQLite (and PostgreSQL) database: a refused command rolls
back alone while the rest of its batch commits; a retry in the same batch or a later one answers the first
answer in one canonical form; a reused key with another body is refused; a full queue answers Overloaded
(RESOURCE_EXHAUSTED with a retry hint); commands of a partition apply in order; each command runs as its
caller; one batch advances the audit chain once and the chain verifies; drain answers what was queued."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from services.common.audit import AuditJournal
from services.common.context import Principal, principal_var
from services.common.db import make_engine, make_session_factory
from services.common.errors import IdempotencyConflict, Overloaded, RuleViolation
from services.common.events.outbox import Outbox
from services.common.interceptors import status_for
from services.common.metrics import WriteEngineMetrics
from services.common.tables import declare_infrastructure
from services.common.uow import UnitOfWork, utc_now
from services.common.write_engine import Command, WriteEngine

metadata = MetaData()
infrastructure = declare_infrastructure(metadata)
items = Table("items", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
              Column("partition", String(20), nullable=False), Column("value", Integer, nullable=False),
              Column("actor", String(100), nullable=False))


@pytest.fixture
async def engine_and_uow(database_url):
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    uow = UnitOfWork(make_session_factory(engine), infrastructure, Outbox(infrastructure, "test", utc_now),
                     AuditJournal(infrastructure))
    yield engine, uow
    await engine.dispose()


def writer(uow: UnitOfWork, **options) -> WriteEngine:
    return WriteEngine(uow, WriteEngineMetrics(CollectorRegistry()), name="test", **options)


def add(partition: str, value: int, *, key: str = "", refuse: bool = False, gate: asyncio.Event | None = None
        ) -> Command:
    async def work(tx) -> dict:
        if gate is not None:
            await gate.wait()
        actor = principal_var.get().actor if principal_var.get() else "nobody"
        await tx.session.execute(insert(items).values(partition=partition, value=value, actor=actor))
        await tx.audit("item.added", f"item:{partition}", {"value": value})
        if refuse:
            raise RuleViolation(f"{value} is refused", reason="REFUSED")
        return {"partition": partition, "value": value, "at": datetime(2026, 1, 1, 8, 0)}
    return Command(partition, "add", work, key=key, digest=f"{partition}:{value}")


async def values(engine, partition: str) -> list[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(items.c.value).where(items.c.partition == partition)
                                        .order_by(items.c.id))
        return [row.value for row in rows]


async def test_a_refused_command_rolls_back_alone_and_the_batch_commits(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow)
    answers = await asyncio.gather(write.submit(add("p", 1)), write.submit(add("p", 2, refuse=True)),
                                   write.submit(add("p", 3)), return_exceptions=True)
    assert answers[0]["value"] == 1 and answers[2]["value"] == 3
    assert isinstance(answers[1], RuleViolation) and answers[1].reason == "REFUSED"
    assert await values(engine, "p") == [1, 3]
    async with uow.sessions() as session:  # the refused command's audit entry went with its savepoint
        verified = await uow.journal.verify(session)
        entries = (await session.execute(select(func.count()).select_from(infrastructure.audit))).scalar_one()
    assert verified.intact and entries == 2
    await write.drain()


async def test_a_retry_answers_the_first_answer_in_one_canonical_form(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow)
    same_batch = await asyncio.gather(write.submit(add("p", 7, key="k1")), write.submit(add("p", 7, key="k1")))
    later = await write.submit(add("p", 7, key="k1"))
    # One write; the first answer, the in-batch retry and the later replay are equal, datetimes as ISO text.
    assert same_batch[0] == same_batch[1] == later == {"partition": "p", "value": 7, "at": "2026-01-01T08:00:00"}
    assert await values(engine, "p") == [7]
    with pytest.raises(IdempotencyConflict):
        await write.submit(add("p", 8, key="k1"))
    reused = await asyncio.gather(write.submit(add("q", 1, key="k2")), write.submit(add("q", 2, key="k2")),
                                  return_exceptions=True)
    assert reused[0]["value"] == 1 and isinstance(reused[1], IdempotencyConflict)
    assert await values(engine, "q") == [1]
    await write.drain()


async def test_a_full_queue_answers_overloaded_with_a_retry_hint(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow, queue_limit=2, max_batch=1)
    gate = asyncio.Event()
    first = asyncio.create_task(write.submit(add("p", 1, gate=gate)))  # taken by the writer, held at the gate
    while not write.partitions or write.partitions["p"].queue:
        await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(write.submit(add("p", n))) for n in (2, 3)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as full:
        await write.submit(add("p", 4))
    status = status_for(full.value)
    assert status.code == 8  # RESOURCE_EXHAUSTED
    assert any(d.type_url.endswith("google.rpc.RetryInfo") for d in status.details)
    assert (await write.submit(add("other", 9)))["value"] == 9  # another partition is not held up
    gate.set()
    await asyncio.gather(first, *waiting)
    assert await values(engine, "p") == [1, 2, 3]
    await write.drain()


async def test_commands_of_a_partition_apply_in_arrival_order_across_batches(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow, max_batch=7)
    await asyncio.gather(*(write.submit(add(f"p{n % 3}", n)) for n in range(60)))
    for p in range(3):
        assert await values(engine, f"p{p}") == [n for n in range(60) if n % 3 == p]
    await write.drain()


async def test_each_command_runs_as_its_caller(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow)

    async def as_(name: str, value: int):
        token = principal_var.set(Principal(name))
        try:
            return await write.submit(add("p", value))
        finally:
            principal_var.reset(token)
    await asyncio.gather(as_("alice", 1), as_("bob", 2))
    async with engine.connect() as connection:
        actors = dict((await connection.execute(select(items.c.value, items.c.actor))).all())
    assert actors == {1: "alice", 2: "bob"}
    await write.drain()


async def test_drain_answers_what_was_queued_and_refuses_new_work(engine_and_uow):
    engine, uow = engine_and_uow
    write = writer(uow, max_batch=4)
    queued = [asyncio.create_task(write.submit(add("p", n))) for n in range(10)]
    await asyncio.sleep(0)
    await write.drain()
    assert [(await task)["value"] for task in queued] == list(range(10))
    with pytest.raises(Overloaded):
        await write.submit(add("p", 99))


async def test_a_reader_never_waits_for_the_writer(engine_and_uow):
    """A read transaction reads its snapshot while a writer holds the write lock (SQLite: no BEGIN
    IMMEDIATE for readers): it sees what was committed before, not the writer's uncommitted row, and it
    cannot commit."""
    _, uow = engine_and_uow
    async with uow() as tx:
        await tx.session.execute(insert(items).values(partition="p", value=1, actor="a"))
        await tx.commit()
    async with uow() as writing:
        await writing.session.execute(insert(items).values(partition="p", value=2, actor="a"))
        await writing.session.flush()
        # The writer holds the lock and has not committed. A reader that took the lock would wait here
        # (the busy timeout) and then fail; a reader without it answers from the committed state.
        async with uow.read() as reading:
            seen = (await reading.session.execute(select(items.c.value).order_by(items.c.value))).scalars().all()
            with pytest.raises(RuntimeError):
                await reading.commit()
        assert seen == [1]
        await writing.commit()
    async with uow.read() as reading:
        assert (await reading.session.execute(select(func.count()).select_from(items))).scalar_one() == 2


async def test_staged_rows_are_written_once_per_batch_and_a_direct_writer_sees_them(engine_and_uow):
    """Commands that stage their rows (no savepoint) add to one accumulator written before the commit; a
    command that writes directly runs after the staged rows before it are written (it sees them); each
    command's after-commit hook runs once the batch committed, and a refused command's hook never."""
    _, uow = engine_and_uow
    write = writer(uow)
    flushes: list[list[int]] = []
    hooks: list[int] = []
    seen_by_direct: list[int] = []

    def staged(value: int, *, refuse: bool = False) -> Command:
        async def work(tx) -> dict:
            if refuse:
                tx.after_commit(lambda: hooks.append(-value))
                raise RuleViolation(f"{value} is refused", reason="REFUSED")
            rows = tx.stage("p", list, lambda batch: flush(tx, batch))
            rows.append(value)
            tx.after_commit(lambda: hooks.append(value))
            return {"value": value}
        return Command("p", "stage", work, savepoint=False)

    async def flush(tx, batch: list[int]) -> None:
        flushes.append(list(batch))
        await tx.session.execute(insert(items), [dict(partition="p", value=v, actor="s") for v in batch])

    async def direct_work(tx) -> dict:
        seen_by_direct.extend((await tx.session.execute(select(items.c.value))).scalars().all())
        await tx.session.execute(insert(items).values(partition="p", value=100, actor="d"))
        return {"value": 100}

    gate = asyncio.Event()
    blocker = asyncio.create_task(write.submit(add("p", 0, gate=gate)))
    await asyncio.sleep(0)  # the first batch holds the gate: what follows queues into the next batch
    results = asyncio.gather(write.submit(staged(1)), write.submit(staged(2)),
                             write.submit(staged(3, refuse=True)), write.submit(Command("p", "direct", direct_work)),
                             write.submit(staged(4)), return_exceptions=True)
    await asyncio.sleep(0)
    gate.set()
    await blocker
    answers = await results
    assert [a if isinstance(a, dict) else a.reason for a in answers] == [
        {"value": 1}, {"value": 2}, "REFUSED", {"value": 100}, {"value": 4}]
    assert flushes == [[1, 2], [4]]
    assert sorted(seen_by_direct) == [0, 1, 2]
    assert hooks == [1, 2, 4]
    async with uow.read() as tx:
        assert sorted((await tx.session.execute(select(items.c.value))).scalars().all()) == [0, 1, 2, 4, 100]
    await write.drain()
