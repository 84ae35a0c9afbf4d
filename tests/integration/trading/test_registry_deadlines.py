"""The trading service's registry client (GrpcRegistry over open_channel, as services.trading.app wires it)
against a real registry: a call made while serving a request carries that request's remaining deadline,
and a request with no time left does not reach the registry at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from services.common.grpc_client import DEFAULT_TIMEOUT, deadline_scope, open_channel
from services.common.metrics import GrpcClientMetrics, new_registry
from services.registry.adapters.grpc.servicer import RegistryServicer
from services.trading.adapters.clients.registry import GrpcRegistry
from services.trading.application.ports import RegistryUnavailable
from tests.support.hop import HOP_AUTH, hop_call, serve_hop
from tests.support.registry import registry_running
from tests.support.services import TRADING_KEY


@pytest.fixture
def registry_saw() -> list[float | None]:
    """The time the registry's GetInstrument handler had left, per call."""
    return []


@pytest.fixture
async def registry(registry_database, nats_server, registry_saw, monkeypatch):
    # Overrides the package's fixture: the same registry, its GetInstrument noting its deadline first.
    original = RegistryServicer.GetInstrument

    async def noting(self, request, context):
        registry_saw.append(context.time_remaining())
        return await original(self, request, context)

    monkeypatch.setattr(RegistryServicer, "GetInstrument", noting)
    async with registry_running(registry_database, nats_server.url) as running:
        yield running


@pytest.fixture
async def ledger(registry) -> AsyncIterator[GrpcRegistry]:
    channel = open_channel(registry.address, api_key=TRADING_KEY, metrics=GrpcClientMetrics(new_registry()))
    try:
        yield GrpcRegistry(channel)  # its own timeout: 5 s
    finally:
        await channel.close()


async def test_a_registry_call_gets_the_remaining_deadline_of_the_request_it_serves(ledger, registry_saw) -> None:
    served: dict[str, float | None] = {}

    async def handler(request, context):  # a trading handler, in miniature
        served["remaining"] = context.time_remaining()
        served["scale"] = await ledger.instrument_scale("CNY")
        return health_pb2.HealthCheckResponse()

    hop = await serve_hop(handler)
    channel = grpc.aio.insecure_channel(hop.address)
    try:
        await hop_call(channel)(health_pb2.HealthCheckRequest(), timeout=2.0, metadata=HOP_AUTH)
    finally:
        await channel.close()
        await hop.server.stop(0)
    assert served["scale"] == 0
    assert len(registry_saw) == 1
    # The registry's deadline is the request's, less the margin — not the client's own 5 s.
    assert registry_saw[0] is not None and registry_saw[0] < served["remaining"] < DEFAULT_TIMEOUT


async def test_outside_a_request_the_client_keeps_its_own_timeout(ledger, registry_saw) -> None:
    assert await ledger.instrument_scale("CNY") == 0
    assert registry_saw[0] is not None and registry_saw[0] <= ledger.timeout + 0.01


async def test_no_time_left_fails_fast_as_registry_unavailable(ledger, registry_saw) -> None:
    with deadline_scope(0), pytest.raises(RegistryUnavailable, match="DEADLINE_EXCEEDED"):
        await ledger.instrument_scale("CNY")
    assert registry_saw == []  # the registry was never asked
