"""NATS accepts only the suite's services, each publishing only its own facts (issue 10, finding 8)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError

from services.common.events import topology
from services.common.natsd import NatsServer, NatsUser


@pytest.fixture
def guarded_nats(tmp_path):
    users = tuple(NatsUser(name, f"pw-{name}-secret", topology.nats_permissions(name))
                  for name in topology.NATS_USERS)
    server = NatsServer(tmp_path / "nats", users=users)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_stranger_cannot_connect(guarded_nats):
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(guarded_nats.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(guarded_nats.url.replace("nats://", "nats://registry:wrong@"), allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=2)


async def test_each_service_publishes_only_its_own_events(guarded_nats):
    violations: list[str] = []
    violated = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc))
        violated.set()

    registry = await nats.connect(guarded_nats.url_for("registry"), error_cb=on_error, allow_reconnect=False)
    try:
        js = registry.jetstream()
        await topology.apply(js)  # a service may declare the topology through the JetStream API
        ack = await js.publish("registry.enterprise.registered", b"{}", timeout=5)
        assert ack.stream == "REGISTRY"
        # Forging another service's fact: the server refuses the publish, so no stream acknowledges it.
        with pytest.raises((NatsTimeout, NoStreamResponseError, nats.errors.Error)):
            await js.publish("evaluation.enterprise.classified", b"{}", timeout=2)
        # Reading another stream's subjects directly (not through its own durable) is refused too.
        await registry.subscribe("trading.>")
        await registry.flush()
        await asyncio.wait_for(violated.wait(), timeout=10)
        assert any("permissions violation" in text.lower() for text in violations), violations
        info = await js.stream_info("EVALUATION")
        assert info.state.messages == 0
    finally:
        await registry.close()


async def test_evaluation_publishes_its_run_events_and_nobody_forges_them(guarded_nats):
    evaluation = await nats.connect(guarded_nats.url_for("evaluation"), allow_reconnect=False, error_cb=_ignore)
    trading = await nats.connect(guarded_nats.url_for("trading"), allow_reconnect=False, error_cb=_ignore)
    try:
        js = evaluation.jetstream()
        await topology.apply(js)
        for subject in ("evaluation.run.completed", "evaluation.run.published", "evaluation.enterprise.classified"):
            assert (await js.publish(subject, b"{}", timeout=5)).stream == "EVALUATION"
        with pytest.raises((NatsTimeout, NoStreamResponseError, nats.errors.Error)):
            await trading.jetstream().publish("evaluation.run.published", b"{}", timeout=2)
        assert (await js.stream_info("EVALUATION")).state.messages == 3
    finally:
        await evaluation.close()
        await trading.close()


async def test_the_gateway_publishes_no_events(guarded_nats):
    gateway = await nats.connect(guarded_nats.url_for("gateway"), allow_reconnect=False, error_cb=_ignore)
    try:
        js = gateway.jetstream()
        await topology.apply(js)
        with pytest.raises((NatsTimeout, NoStreamResponseError, nats.errors.Error)):
            await js.publish("trading.bid.placed", b"{}", timeout=2)
    finally:
        await gateway.close()


async def _ignore(exc: Exception) -> None:
    return None
