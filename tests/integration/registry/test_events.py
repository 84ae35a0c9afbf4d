"""Every committed change reaches a durable JetStream consumer exactly once — across relay restarts,
a crash between publish and mark, and a NATS restart — on a real nats-server."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import select, update
from yaosu.registry.v1 import registry_pb2 as pb

from services.common.db import make_engine
from services.common.events.envelope import parse
from services.common.natsd import NatsServer
from services.registry.adapters.db.tables import infrastructure
from tests.integration.registry.helpers import enterprise, key
from tests.support.registry import registry_running


@pytest.fixture
def own_nats(tmp_path):
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


async def _register(registry, count: int) -> None:
    for _ in range(count):
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=enterprise()), metadata=registry.auth())


async def _outbox_ids(database_url: str, *, unpublished_only: bool = False) -> list[str]:
    engine = make_engine(database_url)
    table = infrastructure.outbox
    statement = select(table.c.event_id).order_by(table.c.position)
    if unpublished_only:
        statement = statement.where(table.c.published_at.is_(None))
    async with engine.begin() as connection:
        ids = [row.event_id for row in (await connection.execute(statement)).all()]
    await engine.dispose()
    return ids


async def _wait_published(database_url: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while await _outbox_ids(database_url, unpublished_only=True):
            await asyncio.sleep(0.05)


async def _consume_all(url: str, expected: int, timeout: float = 20.0) -> list[str]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subscription = await js.pull_subscribe_bind(durable="test-audit", stream="REGISTRY")
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while len(ids) < expected:
                try:
                    messages = await subscription.fetch(batch=100, timeout=1)
                except NatsTimeoutError:
                    continue
                for message in messages:
                    envelope, data = parse(message.data)
                    assert message.headers["Nats-Msg-Id"] == envelope.id
                    ids.append(envelope.id)
                    await message.ack_sync()
        # Nothing more arrives: no duplicates beyond what was expected.
        with pytest.raises(NatsTimeoutError):
            await subscription.fetch(batch=1, timeout=1)
    finally:
        await subscription.unsubscribe()
        await nc.drain()
    return ids


async def _declare_test_consumer(url: str) -> None:
    nc = await nats.connect(url)
    await nc.jetstream().add_consumer("REGISTRY", ConsumerConfig(
        durable_name="test-audit", name="test-audit", filter_subject="registry.>", ack_policy=AckPolicy.EXPLICIT))
    await nc.drain()


async def test_every_change_arrives_once_across_relay_and_nats_restarts(own_nats, sqlite_url) -> None:
    async with registry_running(sqlite_url, own_nats.url) as registry:
        await _declare_test_consumer(own_nats.url)
        await _register(registry, 5)
        await _wait_published(sqlite_url)
    # The relay restarts with the service; changes made before and after are all delivered.
    async with registry_running(sqlite_url, own_nats.url) as registry:
        await _register(registry, 3)
        await _wait_published(sqlite_url)
        # A crash between PubAck and marking the rows: the relay publishes them again, JetStream
        # deduplicates by Nats-Msg-Id.
        engine = make_engine(sqlite_url)
        async with engine.begin() as connection:
            await connection.execute(update(infrastructure.outbox).values(published_at=None))
        await engine.dispose()
        registry.host.infrastructure.uow.outbox.notify()
        await _wait_published(sqlite_url)
        # NATS goes away; the registry keeps committing (the outbox holds the events) …
        own_nats.stop()
        await _register(registry, 4)
        assert len(await _outbox_ids(sqlite_url, unpublished_only=True)) >= 4
        # … and when NATS is back on its port and store, the relay delivers the backlog.
        own_nats.start()
        await _wait_published(sqlite_url, timeout=30)
    committed = await _outbox_ids(sqlite_url)
    received = await _consume_all(own_nats.url, len(committed))
    assert len(received) == len(set(received)) == len(committed)
    assert set(received) == set(committed)
