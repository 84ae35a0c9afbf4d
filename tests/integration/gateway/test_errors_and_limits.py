"""problem+json for every error path; the gRPC → HTTP map; idempotency keys; size and rate limits."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from starlette.requests import Request

from services.common.natsd import free_port
from services.gateway.api.deps import idempotency_key
from services.gateway.api.errors import from_grpc
from services.gateway.api.limits import TokenBuckets
from services.gateway.app import create_app
from services.gateway.identity import Role, User
from tests.integration.gateway.stack import CLOSED_PORT_ADDR, serve

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROBLEM = "application/problem+json"


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/api/v1/x", "headers": [], "query_string": b""})


@pytest.mark.parametrize(("code", "status"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 400), (grpc.StatusCode.NOT_FOUND, 404),
    (grpc.StatusCode.ALREADY_EXISTS, 409), (grpc.StatusCode.PERMISSION_DENIED, 403),
    (grpc.StatusCode.UNAUTHENTICATED, 401), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.FAILED_PRECONDITION, 409), (grpc.StatusCode.ABORTED, 409),
    (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.CANCELLED, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.INTERNAL, 500), (grpc.StatusCode.UNKNOWN, 500), (grpc.StatusCode.DATA_LOSS, 500),
])
async def test_grpc_codes_map_to_http(code, status) -> None:
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="secret stack trace")
    reply = from_grpc(_request(), error)
    assert reply.status_code == status
    assert reply.media_type == PROBLEM
    body = reply.body.decode()
    # Internal text never leaks from codes whose details are not the service's words for the client.
    assert ("secret stack trace" in body) == (status in (400, 404, 409, 429))


async def test_field_violations_become_errors() -> None:
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="price", description="must be positive")])
    detail = any_pb2.Any()
    detail.Pack(bad)
    status = status_pb2.Status(code=3, message="price: must be positive", details=[detail])
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    error = grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), trailing,
                                 details=status.message)
    body = from_grpc(_request(), error).body
    assert b'"errors":[{"field":"price","message":"must be positive"}]' in body


async def test_idempotency_keys_are_namespaced_by_principal() -> None:
    a = idempotency_key(User(Role.ENTERPRISE, "91330100A", "ent1"), "k1")
    b = idempotency_key(User(Role.ENTERPRISE, "91330100B", "ent2"), "k1")
    assert a != b and a.endswith(":k1")


async def test_token_bucket_refills() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2)
    assert buckets.take("a", now=0.0) == 0 and buckets.take("a", now=0.0) == 0
    assert buckets.take("a", now=0.0) > 0
    assert buckets.take("a", now=1.0) == 0
    assert buckets.take("b", now=0.0) == 0


async def test_problem_json_paths(stack, tokens) -> None:
    ent = {"Authorization": f"Bearer {tokens['ent1']}"}
    async with stack.client() as client:
        unauthenticated = await client.get("/api/v1/auth/me")
        assert unauthenticated.status_code == 401 and unauthenticated.headers["content-type"] == PROBLEM
        assert unauthenticated.json()["title"] == "Unauthorized"
        bad_token = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nope"})
        assert bad_token.status_code == 401
        wrong_password = await client.post("/api/v1/auth/token", json={"username": "ent1", "password": "x"})
        assert wrong_password.status_code == 401
        invalid = await client.post("/api/v1/listings/L-NONE/bids", headers={**ent, "Idempotency-Key": "k"},
                                    json={"credit_code": "short", "price_fen": -1})
        assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM
        fields = {e["field"] for e in invalid.json()["errors"]}
        assert {"credit_code", "price_fen"} <= fields
        no_key = await client.post("/api/v1/listings/L-NONE/bids", headers=ent,
                                   json={"credit_code": stack.enterprises[0].credit_code, "price_fen": 1})
        assert no_key.status_code == 422
        assert any(e["field"] == "Idempotency-Key" for e in no_key.json()["errors"])
        missing = await client.get("/api/v1/catalogue/resources/R-NOT-THERE")
        assert missing.status_code == 404 and missing.json()["instance"] == "/api/v1/catalogue/resources/R-NOT-THERE"
        unknown_route = await client.get("/api/v1/nowhere")
        assert unknown_route.status_code == 404 and unknown_route.headers["content-type"] == PROBLEM
        too_large = await client.post("/api/v1/auth/token", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                                      headers={"content-type": "application/json"})
        assert too_large.status_code == 413 and too_large.headers["content-type"] == PROBLEM


async def test_unavailable_service_is_503(stack, tmp_path) -> None:
    # A second gateway beside the stack's, whose trading address has nothing listening.
    settings = stack.app.state.settings.model_copy(update={
        "trading_addr": CLOSED_PORT_ADDR, "data_dir": tmp_path,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"})
    port = free_port()
    async with serve(create_app(settings), port), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        reply = await client.get("/api/v1/listings")
    assert reply.status_code == 503 and reply.json()["detail"] == "a service is unavailable, try again"
    assert "Retry-After" in reply.headers


async def test_rate_limit_answers_429_with_retry_after(stack, tokens) -> None:
    saved = stack.app.state.buckets
    stack.app.state.buckets = TokenBuckets(rate=0.01, burst=2)
    try:
        async with stack.client() as client:
            statuses = [(await client.get("/api/v1/catalogue/kinds")).status_code for _ in range(3)]
            limited = await client.get("/api/v1/catalogue/kinds")
    finally:
        stack.app.state.buckets = saved
    assert statuses[:2] == [200, 200] and limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1 and limited.headers["content-type"] == PROBLEM


async def test_refresh_and_metrics(stack) -> None:
    async with stack.client() as client:
        login = await client.post("/api/v1/auth/token", json={"username": stack.regulator.username,
                                                               "password": stack.regulator.password})
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
        assert refreshed.status_code == 200
        access_as_refresh = await client.post("/api/v1/auth/refresh",
                                              json={"refresh_token": login.json()["access_token"]})
        assert access_as_refresh.status_code == 401
    # The middleware counts after the response is sent: poll briefly.
    for _ in range(50):
        metrics = await stack.metrics()
        if 'route="/api/v1/auth/refresh",status="200"' in metrics:
            break
        await asyncio.sleep(0.05)
    assert 'http_requests_total{method="POST",route="/api/v1/auth/refresh",status="200"}' in metrics
    assert 'gateway_logins_total{outcome="success",role="regulator"}' in metrics


async def test_metrics_are_served_on_their_own_port_not_the_public_one(stack) -> None:
    # Counts by route and RPC would tell anyone that a sealed sale has bids (issue 10): the public port answers
    # /metrics as any unknown route; Prometheus reads the metrics port.
    async with stack.client() as client:
        public = await client.get("/metrics")
    assert public.status_code == 404 and public.headers["content-type"] == PROBLEM
    assert public.json()["instance"] == "/metrics" and "http_requests_total" not in public.text
    assert stack.app.state.metrics_port not in (0, int(stack.base_url.rsplit(":", 1)[1]))
    async with httpx.AsyncClient(timeout=30.0) as client:
        internal = await client.get(stack.metrics_url)
    assert internal.status_code == 200 and internal.headers["content-type"].startswith("text/plain")
    assert "# TYPE http_requests_total counter" in internal.text
    assert "# TYPE grpc_client_handled_total counter" in internal.text


async def test_reads_and_audit(stack, tokens) -> None:
    regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        resources = await client.get("/api/v1/catalogue/resources", params={"page_size": 5})
        assert resources.status_code == 200 and len(resources.json()["data"]) == 5
        second = await client.get("/api/v1/catalogue/resources",
                                  params={"page_size": 5, "page_token": resources.json()["next_page_token"]})
        assert {r["resource_id"] for r in second.json()["data"]}.isdisjoint(
            {r["resource_id"] for r in resources.json()["data"]})
        holdings = await client.get(f"/api/v1/enterprises/{own}/holdings",
                                    headers={"Authorization": f"Bearer {tokens['ent1']}"})
        assert "CNY" in {a["instrument"] for a in holdings.json()["data"]}
        account = next(a for a in holdings.json()["data"] if a["instrument"] == "CNY")
        history = await client.get(f"/api/v1/enterprises/{own}/holdings/{account['account_id']}/history",
                                   headers={"Authorization": f"Bearer {tokens['ent1']}"})
        assert history.status_code == 200 and history.json()["data"][0]["type"] == "deposit"
        audit = await client.get("/api/v1/regulator/audit/registry", headers=regulator)
        assert audit.status_code == 200 and audit.json()["intact"] is True
        ready = await client.get("/readyz")
        assert ready.json()["services"]["registry"] is True
