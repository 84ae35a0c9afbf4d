"""Client side: channels with credentials, request-id propagation, client metrics and deadlines.

Deadlines propagate: while a service serves a call, every call it makes to another service gets the
time its own caller has left (less a margin), never more than the client's own timeout. The server
interceptor (services.common.interceptors.DeadlineInterceptor) puts the incoming call's deadline in
`deadline_var`; the channel interceptor below caps each outgoing call's timeout with it, and refuses a
call with DEADLINE_EXCEEDED, without sending it, when no time is left. Application code and adapters pass
their usual `timeout=` and need no plumbing. The gateway (no incoming gRPC call) opens a
`deadline_scope` per service call instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.common.context import deadline_var, request_id_var
from services.common.metrics import GRPC_CODE_LABEL, GrpcClientMetrics

DEFAULT_TIMEOUT = 5.0
# What a hop keeps back of its caller's remaining time, so that its own calls time out first and it can
# still answer (UNAVAILABLE, DEADLINE_EXCEEDED) before its caller gives up: 5 % of it, at least 50 ms, at
# most 1 s — more than gRPC rounds a deadline up on the wire (10 ms below 10 s, 100 ms below 100 s).
MARGIN_SHARE, MIN_MARGIN, MAX_MARGIN = 0.05, 0.05, 1.0


def deadline_margin(remaining: float) -> float:
    return min(MAX_MARGIN, max(MIN_MARGIN, remaining * MARGIN_SHARE))


def outgoing_deadline(remaining: float | None) -> float | None:
    """The time.monotonic() by which a handler's outgoing calls must be answered, given what its incoming
    call has left (`ServicerContext.time_remaining()`; None: the caller set no deadline)."""
    return None if remaining is None else time.monotonic() + remaining - deadline_margin(remaining)


def time_left() -> float | None:
    """Seconds left for the current request's outgoing calls (≤ 0: none), None without a deadline."""
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()


def call_timeout(default: float = DEFAULT_TIMEOUT) -> float:
    """The timeout of an outgoing call: the client's own, never longer than the request it serves has left."""
    left = time_left()
    return default if left is None else min(default, left)


@contextlib.contextmanager
def deadline_scope(seconds: float) -> Iterator[None]:
    """The service calls made inside share one deadline, `seconds` from now (or the one already in force,
    if earlier). The gateway's deadline for a request to a service, its role lookup included."""
    deadline = time.monotonic() + seconds
    current = deadline_var.get()
    token = deadline_var.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        deadline_var.reset(token)


def deadline_exhausted(method: str) -> grpc.aio.AioRpcError:
    """What a call made with no time left fails with at once, as if it had timed out."""
    return grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                details=f"no time left before the request's deadline to call {method}")


def _method_name(details: grpc.aio.ClientCallDetails) -> str:
    return details.method.decode() if isinstance(details.method, bytes) else details.method


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
        timeout = call_timeout(details.timeout if details.timeout is not None else DEFAULT_TIMEOUT)
        return grpc.aio.ClientCallDetails(details.method, timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    def _count(self, kind: str, details, code: grpc.StatusCode, seconds: float | None) -> None:
        if self.metrics is None:
            return
        _, service, name = _method_name(details).split("/")
        self.metrics.handled.labels(kind, service, name, GRPC_CODE_LABEL[code]).inc()
        if seconds is not None:
            self.metrics.latency.labels(kind, service, name).observe(seconds)

    def _check_time_left(self, kind: str, details) -> None:
        if details.timeout <= 0:
            self._count(kind, details, grpc.StatusCode.DEADLINE_EXCEEDED, None)
            raise deadline_exhausted(_method_name(details))

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
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED  # our caller went away: the call is cancelled with it
            raise
        finally:
            self._count(kind, details, code, time.perf_counter() - started)

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        details = self._details(client_call_details)
        self._check_time_left("unary", details)
        call = await continuation(details, request)
        if self.metrics is None:
            return call
        await self._observe("unary", details, call)
        return call

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        details = self._details(client_call_details)
        self._check_time_left("client_stream", details)
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
