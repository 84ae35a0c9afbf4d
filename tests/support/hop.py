"""A tiny real gRPC service for tests of what crosses a hop (deadlines, cancellation): the services' own
server (services.common.grpc_server, with every interceptor) serving one unary method, `/test.Hop/Call`,
whose handler the test writes. Health messages are its request and response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry

from services.common.config import PrincipalSpec, key_digest
from services.common.grpc_server import GrpcServer
from services.common.metrics import GrpcServerMetrics, new_registry

HOP_KEY = "test-hop-key"
HOP_AUTH = (("authorization", f"Bearer {HOP_KEY}"),)
Handler = Callable[[health_pb2.HealthCheckRequest, grpc.aio.ServicerContext], Awaitable[object]]


@dataclass
class Hop:
    server: GrpcServer
    metrics: CollectorRegistry

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def handled(self, code: str) -> float:
        """grpc_server_handled_total of the method for a code label ("OK", "Canceled", "Unknown", …)."""
        return self.metrics.get_sample_value("grpc_server_handled_total", {
            "grpc_type": "unary", "grpc_service": "test.Hop", "grpc_method": "Call", "grpc_code": code}) or 0.0


async def serve_hop(handler: Handler) -> Hop:
    """Started on a free loopback port; stop with `await hop.server.stop(0)`. Callers present HOP_KEY."""
    metrics = new_registry()
    server = GrpcServer(register=lambda s: None, service_names=("test.Hop",), metrics=GrpcServerMetrics(metrics),
                        api_keys={key_digest(HOP_KEY): PrincipalSpec(principal="t", kind="service", roles=[])},
                        host="127.0.0.1", port=0)
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Hop", {
        "Call": grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString)}),))
    await server.start()
    return Hop(server, metrics)


def hop_call(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary("/test.Hop/Call", request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                               response_deserializer=health_pb2.HealthCheckResponse.FromString)
