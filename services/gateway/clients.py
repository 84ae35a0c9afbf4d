"""gRPC clients of the three services, with the gateway's key and the end user named on every call."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.grpc_client import open_channel
from services.common.metrics import GrpcClientMetrics
from services.gateway.identity import User

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


@dataclass
class ServiceClients:
    registry: Any
    trading: Any
    evaluation: Any | None
    timeout: float = 5.0
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    async def call(self, method, request, *, user: User | None = None, timeout: float | None = None):
        """One unary call: a deadline always, and `x-on-behalf-of` naming the end user for the audit record."""
        metadata = (("x-on-behalf-of", user.on_behalf_of),) if user is not None else ()
        return await method(request, timeout=timeout or self.timeout, metadata=metadata)

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
            metrics: GrpcClientMetrics | None = None) -> ServiceClients:
    channels = {name: open_channel(addr, api_key=api_key, metrics=metrics)
                for name, addr in (("registry", registry_addr), ("trading", trading_addr),
                                   ("evaluation", evaluation_addr))}
    evaluation_cls = evaluation_stub_class()
    return ServiceClients(
        registry=registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
        trading=trading_pb2_grpc.TradingServiceStub(channels["trading"]),
        evaluation=evaluation_cls(channels["evaluation"]) if evaluation_cls else None,
        timeout=timeout, channels=channels)
