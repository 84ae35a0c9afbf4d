"""RFC 9457 problem details for every error the API returns, and the gRPC → HTTP status map.

FAILED_PRECONDITION → 409 Conflict: in yaosu it means "not in the current state" (bidding closed, already
registered, idempotency key reused), which the client resolves by re-reading the resource, as with 409.
"""

from __future__ import annotations

import logging

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import errors as domain

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    # A service stopping cancels the calls in flight: retry (not a 500 logged as a gateway bug).
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
          429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
          503: "Service Unavailable", 504: "Gateway Timeout"}
# Codes whose details are the service's own words for the client; everything else gets a generic detail.
_SAFE_DETAIL = {400, 404, 409, 429}
_GENERIC = {401: "authentication required", 403: "not allowed", 503: "a service is unavailable, try again",
            504: "a service did not answer in time", 500: "internal error", 501: "not implemented"}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    reason: str = ""
    errors: list[FieldError] = []


class ProblemError(Exception):
    """Raised by handlers for refusals decided in the gateway itself (authorisation, limits)."""

    def __init__(self, status: int, detail: str, *, errors: list[FieldError] | None = None, reason: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.reason = status, detail, errors or [], reason
        self.headers = headers or {}


def forbidden(detail: str = "not allowed for this user") -> ProblemError:
    return ProblemError(403, detail)


def problem_response(request: Request, status: int, detail: str, *, errors: list[FieldError] | None = None,
                     reason: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(type=f"https://yaosu.example/problems/{status}" if status != 500 else "about:blank",
                   title=TITLES.get(status, "Error"), status=status, detail=detail, instance=request.url.path,
                   reason=reason, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _rich(error: grpc.aio.AioRpcError) -> tuple[list[FieldError], str]:
    errors, reason = [], ""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                errors += [FieldError(field=v.field, message=v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return errors, reason


def from_grpc(request: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
    status = HTTP_STATUS.get(error.code(), 500)
    if status == 500:
        log.error("service call failed: %s", error.code().name)
    errors, reason = _rich(error)
    detail = (error.details() or "") if status in _SAFE_DETAIL else _GENERIC.get(status, "error")
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return problem_response(request, status, detail, errors=errors if status == 400 else [], reason=reason,
                            headers=headers)


def _location(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0]) if loc else ""


def install(app: FastAPI) -> None:
    @app.exception_handler(grpc.aio.AioRpcError)
    async def _grpc(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return from_grpc(request, exc)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, errors=exc.errors, reason=exc.reason,
                                headers=exc.headers)

    # The policy's refusals (services.common.authz.Access): its words are meant for the caller.
    @app.exception_handler(domain.PermissionDenied)
    async def _denied(request: Request, exc: domain.PermissionDenied) -> JSONResponse:
        return problem_response(request, 403, exc.message, reason=exc.reason)

    @app.exception_handler(domain.NotFound)
    async def _concealed(request: Request, exc: domain.NotFound) -> JSONResponse:
        return problem_response(request, 404, exc.message, reason=exc.reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_location(tuple(e.get("loc", ()))), message=str(e.get("msg", "")))
                  for e in exc.errors()]
        return problem_response(request, 422, "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        return problem_response(request, exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "internal error")


# For `responses=` in route declarations: every error documented with its media type and schema.
def problem_responses(*statuses: int) -> dict:
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": TITLES.get(s, "Error")}
            for s in statuses}
