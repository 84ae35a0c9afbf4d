"""The authorization matrix of every gRPC service, generated from the declared policies.

For every RPC of every service and every kind of principal (and an agency without the roles a grant
needs), one call over the real wire: a kind the policy does not grant is refused with PERMISSION_DENIED
before anything else happens; a kind it grants outright is never refused for who it is. Object rules
("own": another enterprise's bid, another agency's listing) are covered per service by the regression
tests beside each service. An RPC that a service exposes but its policy does not name fails here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf import message_factory
from yaosu.evaluation.v1 import evaluation_pb2, evaluation_pb2_grpc
from yaosu.registry.v1 import registry_pb2, registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2, trading_pb2_grpc

from services.common.authz import Kind, Policy, Subject
from services.evaluation.app import build as build_evaluation
from services.evaluation.config import EvaluationSettings
from services.trading.app import build as build_trading
from services.trading.config import TradingSettings
from tests.support.registry import registry_running
from tests.support.services import (
    ADMIN_KEY,
    API_KEYS_JSON,
    EVALUATION_KEY,
    READER_KEY,
    REGISTRY_KEY,
    SERVICE_KEY,
    TRADING_KEY,
    bearer,
    on_behalf,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
ALL_AGENCY_ROLES = ("grantor", "trading_centre", "regulator", "issuer", "data_provider", "evaluator", "settlement")
ENTERPRISE = "91330106MA2GL0XX1K"


@dataclass(frozen=True)
class Caller:
    label: str
    subject: Subject          # who the policy sees
    metadata: tuple           # how it authenticates


CALLERS = (
    Caller("enterprise", Subject(Kind.ENTERPRISE, ENTERPRISE), tuple(on_behalf(f"enterprise:{ENTERPRISE}"))),
    Caller("agency with every role", Subject(Kind.AGENCY, "AG-MATRIX", frozenset(ALL_AGENCY_ROLES)),
           tuple(on_behalf("agency:AG-MATRIX", *ALL_AGENCY_ROLES))),
    Caller("agency without roles", Subject(Kind.AGENCY, "AG-MATRIX"), tuple(on_behalf("agency:AG-MATRIX"))),
    Caller("regulator", Subject(Kind.REGULATOR, "regulator"), tuple(bearer(READER_KEY))),
    Caller("admin", Subject(Kind.ADMIN, "admin"), tuple(bearer(ADMIN_KEY))),
    Caller("public", Subject(Kind.PUBLIC), tuple(bearer(SERVICE_KEY))),
    Caller("registry service", Subject(Kind.SERVICE, "registry"), tuple(bearer(REGISTRY_KEY))),
    Caller("evaluation service", Subject(Kind.SERVICE, "evaluation"), tuple(bearer(EVALUATION_KEY))),
    Caller("trading service", Subject(Kind.SERVICE, "trading"), tuple(bearer(TRADING_KEY))),
)

SERVICES = {
    "registry": (registry_pb2, registry_pb2_grpc.RegistryServiceStub, "RegistryService"),
    "evaluation": (evaluation_pb2, evaluation_pb2_grpc.EvaluationServiceStub, "EvaluationService"),
    "trading": (trading_pb2, trading_pb2_grpc.TradingServiceStub, "TradingService"),
}


def policy(service: str) -> Policy:
    return Policy.load(ROOT / "services" / service / "authorization.yaml")


def methods(service: str):
    module, _, name = SERVICES[service]
    return module.DESCRIPTOR.services_by_name[name].methods


def cases():
    for service in SERVICES:
        for method in methods(service):
            for caller in CALLERS:
                yield pytest.param(service, method.name, caller, id=f"{service}.{method.name}[{caller.label}]")


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_rpc_is_in_the_policy_and_every_entry_is_an_rpc(service):
    declared = {op for op in policy(service).operations if "." not in op}
    exposed = {method.name for method in methods(service)}
    assert exposed - declared == set(), f"RPCs of {service} missing from its authorization.yaml"
    assert declared - exposed == set(), f"entries of {service}'s authorization.yaml that are no RPC"


@contextlib.asynccontextmanager
async def suite(tmp: Path, nats_url: str) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    common = dict(nats_url=nats_url, grpc_port=0, metrics_port=0, api_keys_json=API_KEYS_JSON,
                  outbox_poll_seconds=0.05, shutdown_grace_seconds=1.0)
    async with registry_running(f"sqlite+aiosqlite:///{tmp / 'registry.db'}", nats_url) as registry:
        evaluation_host = build_evaluation(EvaluationSettings(
            database_url=f"sqlite+aiosqlite:///{tmp / 'evaluation.db'}", service_api_key=EVALUATION_KEY,
            registry_addr=registry.address, **common))
        async with running(evaluation_host):
            evaluation_addr = f"127.0.0.1:{evaluation_host.grpc_port}"
            trading_host = build_trading(TradingSettings(
                database_url=f"sqlite+aiosqlite:///{tmp / 'trading.db'}", service_api_key=TRADING_KEY,
                registry_addr=registry.address, evaluation_addr=evaluation_addr, **common))
            async with running(trading_host):
                channels = {"registry": grpc.aio.insecure_channel(registry.address),
                            "evaluation": grpc.aio.insecure_channel(evaluation_addr),
                            "trading": grpc.aio.insecure_channel(f"127.0.0.1:{trading_host.grpc_port}")}
                try:
                    yield channels
                finally:
                    for channel in channels.values():
                        await channel.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channels(nats_server, tmp_path_factory):
    async with suite(tmp_path_factory.mktemp("matrix"), nats_server.url) as running_channels:
        yield running_channels


async def call(channel: grpc.aio.Channel, service: str, method_name: str, metadata) -> grpc.StatusCode:
    module, stub_class, _ = SERVICES[service]
    method = next(m for m in methods(service) if m.name == method_name)
    request = message_factory.GetMessageClass(method.input_type)()
    rpc = getattr(stub_class(channel), method_name)
    try:
        if method.client_streaming:
            async def one():
                yield request
            reply = rpc(one(), metadata=metadata, timeout=20)
        else:
            reply = rpc(request, metadata=metadata, timeout=20)
        if method.server_streaming:
            async for _ in reply:
                pass
        else:
            await reply
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("service", "method_name", "caller"), list(cases()))
async def test_the_policy_decides_who_may_call(channels, service, method_name, caller):
    grant = policy(service).grant(caller.subject, method_name)
    code = await call(channels[service], service, method_name, list(caller.metadata))
    assert code is not grpc.StatusCode.UNAUTHENTICATED
    if grant is None:
        assert code is grpc.StatusCode.PERMISSION_DENIED, f"{caller.label} got {code.name}, the policy grants nothing"
    elif not grant.own:
        assert code is not grpc.StatusCode.PERMISSION_DENIED, f"{caller.label} was refused what the policy grants"
