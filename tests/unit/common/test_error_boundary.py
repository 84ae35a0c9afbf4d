"""The error boundary of every gRPC server, on a real server with a tiny servicer."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import errors
from services.common.config import PrincipalSpec, key_digest
from services.common.grpc_server import GrpcServer
from services.common.metrics import GrpcServerMetrics, new_registry
from tests.support.grpc_errors import field_violations


class _Failing(health_pb2_grpc.HealthServicer):
    """Abuses the health service's shape to have a servicer whose behaviour the test chooses."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    async def Check(self, request, context):
        raise self.failure


async def _serve(failure: Exception) -> tuple[GrpcServer, grpc.aio.Channel]:
    registry = new_registry()
    server = GrpcServer(register=lambda s: None, service_names=("test.Service",),
                        metrics=GrpcServerMetrics(registry),
                        api_keys={key_digest("k"): PrincipalSpec(principal="t", kind="service", roles=[])},
                        host="127.0.0.1", port=0)
    # A second generic handler named like a business service, so authentication applies.
    handler = grpc.method_handlers_generic_handler("test.Failing", {
        "Check": grpc.unary_unary_rpc_method_handler(
            _Failing(failure).Check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString)})
    server.server.add_generic_rpc_handlers((handler,))
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")


async def _call(channel: grpc.aio.Channel, metadata=(("authorization", "Bearer k"),)):
    method = channel.unary_unary("/test.Failing/Check",
                                 request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                 response_deserializer=health_pb2.HealthCheckResponse.FromString)
    return await method(health_pb2.HealthCheckRequest(), metadata=metadata)


@pytest.mark.parametrize(("failure", "code"), [
    (errors.NotFound("enterprise x not found"), grpc.StatusCode.NOT_FOUND),
    (errors.RuleViolation("market closed"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AlreadyExists("dup"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
    (errors.ConcurrencyConflict("retry"), grpc.StatusCode.ABORTED),
    (errors.DependencyUnavailable("registry down"), grpc.StatusCode.UNAVAILABLE),
])
async def test_domain_errors_map_to_their_status(failure, code) -> None:
    server, channel = await _serve(failure)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(channel)
        assert caught.value.code() == code and caught.value.details() == failure.message
    finally:
        await channel.close()
        await server.stop(0)


async def test_field_violations_travel_as_bad_request_details() -> None:
    failure = errors.InvalidArgument("two problems", [errors.FieldViolation("a", "bad a"),
                                                      errors.FieldViolation("b.c", "bad c")])
    server, channel = await _serve(failure)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(channel)
        assert field_violations(caught.value) == {"a": "bad a", "b.c": "bad c"}
    finally:
        await channel.close()
        await server.stop(0)


async def test_unexpected_exceptions_become_a_generic_internal_error(caplog) -> None:
    server, channel = await _serve(RuntimeError("secret table name users_private"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(channel)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in caught.value.details() and caught.value.details() == "internal error"
        assert "secret table name" in caplog.text  # the traceback goes to the log
    finally:
        await channel.close()
        await server.stop(0)


async def test_health_answers_without_credentials_but_services_do_not() -> None:
    server, channel = await _serve(errors.NotFound("x"))
    try:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(channel, metadata=())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await server.stop(0)
    finally:
        await channel.close()
