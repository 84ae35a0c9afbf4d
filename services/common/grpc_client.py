"""Client side: channels with credentials, request-id propagation, client metrics and deadlines."""

from __future__ import annotations

import time

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.common.context import request_id_var
from services.common.metrics import GRPC_CODE_LABEL, GrpcClientMetrics

DEFAULT_TIMEOUT = 5.0


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, api_key: str, metrics: GrpcClientMetrics | None) -> None:
        self.api_key = api_key
        self.metrics = metrics

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or [])
        keys = {k for k, _ in metadata}
        if "authorization" not in keys and self.api_key:
            metadata.append(("authorization", f"Bearer {self.api_key}"))
        if "x-request-id" not in keys and request_id_var.get():
            metadata.append(("x-request-id", request_id_var.get()))
        timeout = details.timeout if details.timeout is not None else DEFAULT_TIMEOUT
        return grpc.aio.ClientCallDetails(details.method, timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    async def _observe(self, kind: str, details, call):
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            result = await call
            code = grpc.StatusCode.OK
            return result
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        finally:
            if self.metrics is not None:
                method = details.method.decode() if isinstance(details.method, bytes) else details.method
                _, service, name = method.split("/")
                self.metrics.handled.labels(kind, service, name, GRPC_CODE_LABEL[code]).inc()
                self.metrics.latency.labels(kind, service, name).observe(time.perf_counter() - started)

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        details = self._details(client_call_details)
        call = await continuation(details, request)
        if self.metrics is None:
            return call
        await self._observe("unary", details, call)
        return call

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        details = self._details(client_call_details)
        return await continuation(details, request_iterator)


def open_channel(address: str, *, api_key: str = "", metrics: GrpcClientMetrics | None = None,
                 options: list[tuple[str, object]] | None = None) -> grpc.aio.Channel:
    """A channel to a yaosu service. Reconnect backoff is capped at 2 s (gRPC's default grows to 120 s),
    so a caller notices a restarted dependency quickly; `options` add to or override the defaults."""
    defaults = {"grpc.max_receive_message_length": 16 * 1024 * 1024,
                "grpc.max_send_message_length": 16 * 1024 * 1024,
                "grpc.max_reconnect_backoff_ms": 2000}
    defaults.update(dict(options or []))
    return grpc.aio.insecure_channel(address, interceptors=[_ClientInterceptor(api_key, metrics)],
                                     options=list(defaults.items()))


def call_timeout(context: grpc.aio.ServicerContext | None, default: float = DEFAULT_TIMEOUT) -> float:
    """The deadline for a downstream call: never longer than what our own caller has left."""
    if context is None:
        return default
    remaining = context.time_remaining()
    return default if remaining is None else max(0.05, min(default, remaining))


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The google.rpc.ErrorInfo reason another service sent with its refusal (INSUFFICIENT_FUNDS …), or ""."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info.reason
    return ""
