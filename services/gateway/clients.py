"""gRPC clients of the three services, with the gateway's delegate key and the end user named on every call."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.grpc_client import call_timeout, deadline_scope, open_channel
from services.common.metrics import GrpcClientMetrics
from services.gateway.identity import Role, User

SERVICE_NAMES = {"registry": "yaosu.registry.v1.RegistryService",
                 "evaluation": "yaosu.evaluation.v1.EvaluationService",
                 "trading": "yaosu.trading.v1.TradingService"}


def evaluation_stub_class() -> type | None:
    """The evaluation contract is generated from proto/yaosu/evaluation; absent until it is written."""
    try:
        module = importlib.import_module("yaosu.evaluation.v1.evaluation_pb2_grpc")
    except ImportError:
        return None
    return module.EvaluationServiceStub


def role_name(role: int) -> str:
    """AGENCY_ROLE_TRADING_CENTRE → trading_centre: the names the policies use."""
    return rpb.AgencyRole.Name(role).removeprefix("AGENCY_ROLE_").lower()


@dataclass
class AgencyRoles:
    """An agency's roles as the registry records them, cached per agency for `ttl` seconds: a role the
    registry grants or withdraws takes effect in the gateway within that time."""

    ttl: float = 30.0
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)

    def cached(self, agency_id: str, now: float) -> frozenset[str] | None:
        found = self._cache.get(agency_id)
        return found[1] if found is not None and found[0] > now else None

    def remember(self, agency_id: str, roles: frozenset[str], now: float) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()  # a bound on memory; forgetting only costs a lookup
        self._cache[agency_id] = (now + self.ttl, roles)


@dataclass
class ServiceClients:
    registry: Any
    trading: Any
    evaluation: Any | None
    timeout: float = 5.0
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    roles: AgencyRoles = field(default_factory=AgencyRoles)

    async def call(self, method, request, *, user: User | None = None, timeout: float | None = None):
        """One unary call: a deadline always, and the end user in `x-on-behalf-of` (none: an anonymous
        visitor, whom the services treat as public), with an agency's registry roles in
        `x-on-behalf-of-roles`. The services authorise that user; the gateway's key grants nothing itself.

        The deadline (`timeout`, else the API's `self.timeout`) covers the role lookup and the call
        together (services.common.grpc_client.deadline_scope); the service gets what is left as its gRPC
        deadline and passes it on to the services it calls in turn."""
        with deadline_scope(timeout or self.timeout):
            metadata: tuple[tuple[str, str], ...] = ()
            if user is not None:
                metadata = (("x-on-behalf-of", user.on_behalf_of),)
                if user.role is Role.AGENCY:
                    roles = await self.agency_roles(user.agency_id)
                    if roles:
                        metadata += (("x-on-behalf-of-roles", ",".join(sorted(roles))),)
            return await method(request, timeout=call_timeout(timeout or self.timeout), metadata=metadata)

    async def agency_roles(self, agency_id: str) -> frozenset[str]:
        """The agency's roles per the registry (asked as the agency itself); none for an agency the
        registry does not know."""
        now = time.monotonic()
        found = self.roles.cached(agency_id, now)
        if found is not None:
            return found
        try:
            reply = await self.registry.GetAgency(rpb.GetAgencyRequest(agency_id=agency_id),
                                                  timeout=call_timeout(self.timeout),
                                                  metadata=(("x-on-behalf-of", f"agency:{agency_id}"),))
            roles = frozenset(role_name(r) for r in reply.agency.roles if r)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise
            roles = frozenset()
        self.roles.remember(agency_id, roles, now)
        return roles

    async def health(self) -> dict[str, bool]:
        serving = {}
        for name, channel in self.channels.items():
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=1.0)
                serving[name] = reply.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.aio.AioRpcError:
                serving[name] = False
        return serving

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=None)


def connect(*, registry_addr: str, trading_addr: str, evaluation_addr: str, api_key: str, timeout: float,
            metrics: GrpcClientMetrics | None = None, agency_roles_ttl: float = 30.0) -> ServiceClients:
    channels = {name: open_channel(addr, api_key=api_key, metrics=metrics)
                for name, addr in (("registry", registry_addr), ("trading", trading_addr),
                                   ("evaluation", evaluation_addr))}
    evaluation_cls = evaluation_stub_class()
    return ServiceClients(
        registry=registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
        trading=trading_pb2_grpc.TradingServiceStub(channels["trading"]),
        evaluation=evaluation_cls(channels["evaluation"]) if evaluation_cls else None,
        timeout=timeout, channels=channels, roles=AgencyRoles(agency_roles_ttl))
