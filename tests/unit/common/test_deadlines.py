"""Deadlines and cancellation cross every gRPC hop: real servers on loopback (the services' own server with
its interceptors, channels from open_channel), a caller → an outer service → an inner service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2

from services.common import errors
from services.common.context import deadline_var
from services.common.grpc_client import DEFAULT_TIMEOUT, deadline_scope, open_channel, time_left
from services.common.metrics import GrpcClientMetrics, new_registry
from tests.support.hop import HOP_AUTH, HOP_KEY, Hop, hop_call, serve_hop


@dataclass
class Seen:
    """What the handlers observed; events let the test wait for them without sleeping."""

    remaining: dict[str, float | None] = field(default_factory=dict)
    inner_calls: int = 0
    outcomes: list[str] = field(default_factory=list)
    inner_started: asyncio.Event = field(default_factory=asyncio.Event)
    inner_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    outer_cancelled: asyncio.Event = field(default_factory=asyncio.Event)


def _client_handled(metrics, code: str) -> float:
    return metrics.get_sample_value("grpc_client_handled_total", {
        "grpc_type": "unary", "grpc_service": "test.Hop", "grpc_method": "Call", "grpc_code": code}) or 0.0


@dataclass
class Chain:
    seen: Seen
    outer: Hop
    inner: Hop
    caller: grpc.aio.Channel        # the test, calling the outer service
    client_metrics: object          # the outer service's client metrics (its calls to the inner one)


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    """The outer handler calls the inner service through a channel from open_channel, exactly as the
    trading service calls the registry; request.service tells each handler what to do."""
    seen = Seen()
    client_registry = new_registry()

    async def inner(request, context):
        seen.inner_calls += 1
        seen.remaining["inner"] = context.time_remaining()
        if request.service == "hang":
            seen.inner_started.set()
            try:
                await asyncio.Event().wait()  # until the call is cancelled
            except asyncio.CancelledError:
                seen.inner_cancelled.set()
                raise
        return health_pb2.HealthCheckResponse()

    inner_hop = await serve_hop(inner)
    to_inner = open_channel(inner_hop.address, api_key=HOP_KEY,
                            metrics=GrpcClientMetrics(client_registry))

    async def outer(request, context):
        seen.remaining["outer"] = context.time_remaining()
        seen.remaining["budget"] = time_left()
        if request.service == "leak":
            with deadline_scope(0):
                await hop_call(to_inner)(health_pb2.HealthCheckRequest())  # fails fast; nobody translates it
        try:
            if request.service == "hang-twice":
                for _ in range(2):
                    try:
                        await hop_call(to_inner)(health_pb2.HealthCheckRequest(service="hang"))
                    except grpc.aio.AioRpcError as exc:
                        seen.outcomes.append(exc.code().name)
                raise errors.DependencyUnavailable("the inner service did not answer; retry")
            await hop_call(to_inner)(health_pb2.HealthCheckRequest(service=request.service))
        except asyncio.CancelledError:
            seen.outer_cancelled.set()
            raise
        return health_pb2.HealthCheckResponse()

    outer_hop = await serve_hop(outer)
    caller = grpc.aio.insecure_channel(outer_hop.address)
    try:
        yield Chain(seen, outer_hop, inner_hop, caller, client_registry)
    finally:
        await caller.close()
        await to_inner.close()
        await outer_hop.server.stop(0)
        await inner_hop.server.stop(0)


async def test_the_inner_call_gets_no_later_deadline_than_the_outer_one(chain: Chain) -> None:
    await hop_call(chain.caller)(health_pb2.HealthCheckRequest(), timeout=2.0, metadata=HOP_AUTH)
    outer, inner = chain.seen.remaining["outer"], chain.seen.remaining["inner"]
    assert outer is not None and inner is not None
    # The outer handler's calls must be done a margin before its own deadline: the inner deadline is
    # earlier, though the client's own timeout (DEFAULT_TIMEOUT, 5 s) is longer than the 2 s the caller set.
    assert chain.seen.remaining["budget"] < outer
    assert inner < outer


async def test_the_client_default_still_caps_a_longer_incoming_deadline(chain: Chain) -> None:
    await hop_call(chain.caller)(health_pb2.HealthCheckRequest(), timeout=60.0, metadata=HOP_AUTH)
    # gRPC rounds a deadline up on the wire by at most 10 ms below 10 s.
    assert chain.seen.remaining["inner"] <= DEFAULT_TIMEOUT + 0.01 < chain.seen.remaining["outer"]


async def test_a_call_without_deadline_leaves_the_client_default(chain: Chain) -> None:
    await hop_call(chain.caller)(health_pb2.HealthCheckRequest(), metadata=HOP_AUTH)
    assert chain.seen.remaining["outer"] is None and chain.seen.remaining["budget"] is None
    assert chain.seen.remaining["inner"] <= DEFAULT_TIMEOUT + 0.01


async def test_an_exhausted_deadline_fails_fast_without_calling(chain: Chain) -> None:
    channel = open_channel(chain.inner.address, api_key=HOP_KEY,
                           metrics=GrpcClientMetrics(registry := new_registry()))
    try:
        with deadline_scope(0):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await hop_call(channel)(health_pb2.HealthCheckRequest(), timeout=30.0)
        assert deadline_var.get() is None  # the scope is over
    finally:
        await channel.close()
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert chain.seen.inner_calls == 0  # nothing was sent
    assert _client_handled(registry, "DeadlineExceeded") == 1


async def test_the_inner_call_times_out_first_and_the_outer_answers(chain: Chain) -> None:
    """The inner service hangs: the outer handler's call to it times out at the outer deadline less the
    margin, its next call fails at once without reaching the inner service, and the outer handler still
    answers its caller (UNAVAILABLE) instead of being cut off by its own deadline."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hop_call(chain.caller)(health_pb2.HealthCheckRequest(service="hang-twice"), timeout=2.0,
                                     metadata=HOP_AUTH)
    assert chain.seen.outcomes == ["DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"]
    assert chain.seen.inner_calls == 1
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    await asyncio.wait_for(chain.seen.inner_cancelled.wait(), 30)  # the inner server gave up on it too
    assert not chain.seen.outer_cancelled.is_set()


async def test_cancelling_the_caller_cancels_the_inner_call_quietly(chain: Chain,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    call = hop_call(chain.caller)(health_pb2.HealthCheckRequest(service="hang"), metadata=HOP_AUTH)
    await chain.seen.inner_started.wait()
    call.cancel()
    await chain.seen.outer_cancelled.wait()
    await chain.seen.inner_cancelled.wait()  # the outer handler's call was cancelled with it
    # Counted as cancelled on both sides and by the outer service's client, not as a server fault.
    assert chain.outer.handled("Canceled") == 1 and chain.outer.handled("Unknown") == 0
    assert _client_handled(chain.client_metrics, "Canceled") == 1
    assert chain.inner.handled("Canceled") == 1 and chain.inner.handled("Unknown") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_dependency_timeout_nobody_translated_answers_deadline_exceeded(
        chain: Chain, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hop_call(chain.caller)(health_pb2.HealthCheckRequest(service="leak"), timeout=5.0,
                                     metadata=HOP_AUTH)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # not UNKNOWN or INTERNAL
    assert chain.outer.handled("DeadlineExceeded") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback per request

