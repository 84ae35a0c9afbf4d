"""Server interceptors: request id, deadline, authentication, RED metrics and domain-error mapping.

Order in grpc.aio.server(interceptors=[...]): the first is outermost. We use
[RequestId, Deadline, Metrics, ErrorMapping, Authentication] so metrics see the codes the mapper and the
authenticator produce, every log line carries the request id, and every call the handler makes to
another service is bounded by the incoming call's deadline.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common import errors
from services.common.authz import Kind, Policy, Subject
from services.common.config import PrincipalSpec, key_digest
from services.common.context import Principal, deadline_var, principal_var, request_id_var
from services.common.grpc_client import outgoing_deadline
from services.common.metrics import GRPC_CODE_LABEL, GrpcServerMetrics

log = logging.getLogger(__name__)

# Paths that answer without credentials: probes and tooling.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _wrap(handler: grpc.RpcMethodHandler, wrapper: Callable[[Any], Any]) -> grpc.RpcMethodHandler:
    """Wrap whichever behaviour the handler has (unary or streaming)."""
    if handler.unary_unary:
        return handler._replace(unary_unary=wrapper(handler.unary_unary))
    if handler.stream_unary:
        return handler._replace(stream_unary=wrapper(handler.stream_unary))
    if handler.unary_stream:
        return handler._replace(unary_stream=wrapper(handler.unary_stream, streaming=True))
    return handler._replace(stream_stream=wrapper(handler.stream_stream, streaming=True))


def _metadata(details: grpc.HandlerCallDetails) -> dict[str, str]:
    return {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        request_id = _metadata(details).get("x-request-id") or uuid.uuid4().hex

        def wrapper(inner, streaming=False):
            if streaming:
                async def gen(request, context):
                    request_id_var.set(request_id)
                    async for item in inner(request, context):
                        yield item
                return gen

            async def call(request, context):
                request_id_var.set(request_id)
                return await inner(request, context)
            return call

        return _wrap(handler, wrapper)


class DeadlineInterceptor(grpc.aio.ServerInterceptor):
    """The incoming call's deadline, less a margin, bounds the calls its handler makes to other services
    (services.common.grpc_client): they time out first, and the handler still answers its caller. The
    handler runs in the call's own task, so a cancelled call (client gone, deadline passed) cancels the
    outgoing calls it is awaiting too."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None

        def wrapper(inner, streaming=False):
            if streaming:
                async def gen(request, context):
                    deadline_var.set(outgoing_deadline(context.time_remaining()))
                    async for item in inner(request, context):
                        yield item
                return gen

            async def call(request, context):
                deadline_var.set(outgoing_deadline(context.time_remaining()))
                return await inner(request, context)
            return call

        return _wrap(handler, wrapper)


def _grpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _cancelled_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """gRPC cancels the handler when its deadline passes or its client goes away: that is what the caller
    saw, not a failure of the handler (UNKNOWN)."""
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 else grpc.StatusCode.CANCELLED


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self.metrics = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        _, service, method = details.method.split("/")
        kind = _grpc_type(handler)
        m = self.metrics

        def wrapper(inner, streaming=False):
            def finish(context, started: float, code: grpc.StatusCode) -> None:
                code = context.code() or code
                if isinstance(code, int):  # aio reports an int when set via set_code(int)
                    code = grpc.StatusCode.UNKNOWN
                m.handled.labels(kind, service, method, GRPC_CODE_LABEL[code]).inc()
                m.latency.labels(kind, service, method).observe(time.perf_counter() - started)

            if streaming:
                async def gen(request, context):
                    m.started.labels(kind, service, method).inc()
                    started, code = time.perf_counter(), grpc.StatusCode.OK
                    try:
                        async for item in inner(request, context):
                            yield item
                    except asyncio.CancelledError:
                        code = _cancelled_code(context)
                        raise
                    except BaseException:
                        code = grpc.StatusCode.UNKNOWN
                        raise
                    finally:
                        finish(context, started, code)
                return gen

            async def call(request, context):
                m.started.labels(kind, service, method).inc()
                started, code = time.perf_counter(), grpc.StatusCode.OK
                try:
                    return await inner(request, context)
                except asyncio.CancelledError:
                    code = _cancelled_code(context)
                    raise
                except BaseException:
                    code = grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    finish(context, started, code)
            return call

        return _wrap(handler, wrapper)


_CODE_OF: list[tuple[type[errors.DomainError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ConcurrencyConflict, grpc.StatusCode.ABORTED),
    (errors.RuleViolation, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.DependencyUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
]


def status_for(error: errors.DomainError) -> status_pb2.Status:
    """A google.rpc.Status with details: BadRequest field violations, or ErrorInfo with the reason."""
    code = next((c for cls, c in _CODE_OF if isinstance(error, cls)), grpc.StatusCode.FAILED_PRECONDITION)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if isinstance(error, errors.InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    if error.reason:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain="yaosu"))
        status.details.append(detail)
    if isinstance(error, errors.Overloaded):
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after_seconds))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
    return status


# A call to another service that no adapter translated, failed for want of time or of the service: our
# caller hears the same, without a traceback per request (the dependency's own log has the cause).
_DOWNSTREAM_CODE = {grpc.StatusCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.CANCELLED: grpc.StatusCode.UNAVAILABLE}


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Domain errors become their status with details; a dependency's timeout or absence that no adapter
    translated, DEADLINE_EXCEEDED or UNAVAILABLE; anything else a generic INTERNAL (traceback logged). A
    cancelled call (asyncio.CancelledError) is not an error: it passes untouched."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None

        async def fail(context, exc: BaseException):
            if isinstance(exc, errors.DomainError):
                await context.abort_with_status(rpc_status.to_status(status_for(exc)))
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _DOWNSTREAM_CODE:
                log.warning("a call to another service failed in %s: %s", details.method, exc.code().name)
                await context.abort(_DOWNSTREAM_CODE[exc.code()],
                                    f"a service this call depends on did not answer ({exc.code().name}); retry")
            log.exception("unhandled error in %s", details.method)
            await context.abort_with_status(
                rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))
            )

        def wrapper(inner, streaming=False):
            if streaming:
                async def gen(request, context):
                    try:
                        async for item in inner(request, context):
                            yield item
                    except grpc.aio.AbortError:
                        raise
                    except grpc.aio.AioRpcError as exc:  # a call to another service
                        await fail(context, exc)
                    except grpc.RpcError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the boundary where everything is mapped
                        await fail(context, exc)
                return gen

            async def call(request, context):
                try:
                    return await inner(request, context)
                except grpc.aio.AbortError:
                    raise
                except grpc.aio.AioRpcError as exc:  # a call to another service
                    await fail(context, exc)
                except grpc.RpcError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    await fail(context, exc)
            return call

        return _wrap(handler, wrapper)


ON_BEHALF_KINDS = {"enterprise": Kind.ENTERPRISE, "agency": Kind.AGENCY, "regulator": Kind.REGULATOR,
                   "admin": Kind.ADMIN}


def subject_of(spec: PrincipalSpec, on_behalf_of: str, on_behalf_roles: str) -> Subject | None:
    """Who acts: the key's own identity, or for the delegate key the end user it names (none = an
    anonymous portal visitor). None when the named user is malformed."""
    if not spec.delegate:
        if on_behalf_of:
            return None  # only the delegate may name somebody else
        kind = Kind(spec.kind)
        ident = spec.agency_id if kind is Kind.AGENCY else spec.principal
        roles = frozenset(spec.roles) if kind is Kind.AGENCY else frozenset()
        return Subject(kind, ident, roles, spec.principal)
    if not on_behalf_of:
        return Subject(Kind.PUBLIC, "", frozenset(), spec.principal)
    prefix, _, rest = on_behalf_of.partition(":")
    kind = ON_BEHALF_KINDS.get(prefix)
    # "agency:<id>/key:<n>": the agency is the part before "/"; the rest names which of its keys acted.
    ident = rest.split("/", 1)[0] if kind is Kind.AGENCY else rest
    if kind is None or not ident or len(on_behalf_of) > 200:
        return None
    roles = frozenset(r for r in on_behalf_roles.split(",") if r) if kind is Kind.AGENCY else frozenset()
    return Subject(kind, ident, roles, f"{spec.principal}/{on_behalf_of}")


class AuthenticationInterceptor(grpc.aio.ServerInterceptor):
    """Every call but probes presents `authorization: Bearer <api key>`; the key names the principal.

    The delegate (the gateway) names the end user it acts for in `x-on-behalf-of` (and an agency user's
    roles, as the registry records them, in `x-on-behalf-of-roles`); the record then shows both. What the
    subject may do is decided by the policy in each service's application layer.
    """

    def __init__(self, api_keys: dict[str, PrincipalSpec]) -> None:
        self.api_keys = api_keys

    def authenticate(self, metadata: dict[str, str]) -> Principal | None:
        header = metadata.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        digest = key_digest(header.removeprefix("Bearer ").strip())
        for known, spec in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                on_behalf = metadata.get("x-on-behalf-of", "")
                subject = subject_of(spec, on_behalf, metadata.get("x-on-behalf-of-roles", ""))
                if subject is None:
                    return None
                return Principal(spec.principal, frozenset(spec.roles), on_behalf if spec.delegate else "",
                                 subject)
        return None

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        principal = self.authenticate(_metadata(details))

        def wrapper(inner, streaming=False):
            async def refuse(context):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key")

            if streaming:
                async def gen(request, context):
                    if principal is None:
                        await refuse(context)
                    principal_var.set(principal)
                    async for item in inner(request, context):
                        yield item
                return gen

            async def call(request, context):
                if principal is None:
                    await refuse(context)
                principal_var.set(principal)
                return await inner(request, context)
            return call

        return _wrap(handler, wrapper)


class PolicyGateInterceptor(grpc.aio.ServerInterceptor):
    """Fail closed at the door: an RPC the service's declared policy does not name, or names for no grant
    of the caller's kind and roles, is refused before any use case runs. The use case still makes the
    whole check (object rules included) in the application layer; this gate only guarantees that a
    forgotten check can never open an RPC the policy does not grant."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        operation = details.method.rsplit("/", 1)[-1]

        def wrapper(inner, streaming=False):
            def check() -> None:
                subject = principal_var.get().subject
                if self.policy.grant(subject, operation) is None:
                    raise errors.PermissionDenied(f"{subject.kind.value} callers may not {operation}",
                                                  reason="NOT_PERMITTED")

            if streaming:
                async def gen(request, context):
                    check()
                    async for item in inner(request, context):
                        yield item
                return gen

            async def call(request, context):
                check()
                return await inner(request, context)
            return call

        return _wrap(handler, wrapper)


Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
