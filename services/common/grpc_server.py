"""The aio gRPC server every service runs: interceptors, standard health and reflection, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.authz import Policy
from services.common.config import PrincipalSpec
from services.common.interceptors import (
    AuthenticationInterceptor,
    DeadlineInterceptor,
    ErrorMappingInterceptor,
    MetricsInterceptor,
    PolicyGateInterceptor,
    RequestIdInterceptor,
)
from services.common.metrics import GrpcServerMetrics

log = logging.getLogger(__name__)


class GrpcServer:
    """Owns the grpc.aio server and its health servicer; start() binds, stop() drains."""

    def __init__(
        self,
        *,
        register: Callable[[grpc.aio.Server], None],
        service_names: Iterable[str],
        metrics: GrpcServerMetrics,
        api_keys: dict[str, PrincipalSpec],
        host: str,
        port: int,
        policy: Policy | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.service_names = tuple(service_names)
        self.server = grpc.aio.server(
            interceptors=[
                RequestIdInterceptor(),
                DeadlineInterceptor(),
                MetricsInterceptor(metrics),
                ErrorMappingInterceptor(),
                AuthenticationInterceptor(api_keys),
                *([PolicyGateInterceptor(policy)] if policy is not None else []),
            ],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        register(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind gRPC port {host}:{port}")

    async def start(self) -> None:
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        for name in self.service_names:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC serving", extra={"port": self.port, "services": list(self.service_names)})

    async def stop(self, grace: float) -> None:
        # Probes fail first so balancers stop sending, then in-flight RPCs get the grace period.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
