"""schemathesis against /openapi.json on the running gateway: no 5xx, every response as documented.

Bounded examples per operation. Runs in a thread: schemathesis calls are blocking and the gateway
serves on this test's event loop. Streams (SSE) never end, so they are left to their own tests.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
EXAMPLES = 15


def fuzz(base_url: str, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/events"):
            continue

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            assert response.status_code < 500, \
                f"{response.status_code} {response.text[:300]}"
            case.validate_response(response, checks=[response_schema_conformance])

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collected and reported together (hypothesis groups)
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    return failures


async def test_no_server_errors_and_schema_conformance(stack, tokens) -> None:
    # Unlimited rate for the fuzzer: it is not what is under test here.
    from services.gateway.api.limits import TokenBuckets
    saved, stack.app.state.buckets = stack.app.state.buckets, TokenBuckets(10_000, 10_000)
    try:
        failures = await asyncio.to_thread(fuzz, stack.base_url, {"Authorization": f"Bearer {tokens['regulator']}"})
    finally:
        stack.app.state.buckets = saved
    assert not failures, "\n".join(failures)
