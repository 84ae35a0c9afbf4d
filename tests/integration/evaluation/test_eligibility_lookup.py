"""Eligibility for an enterprise registered a moment ago: evaluation's replica may not have the registry's
event yet, so a miss is asked of the registry (GetEnterprise) before the answer is UNKNOWN_ENTERPRISE, and
what it learns is recorded. A registry that cannot answer makes the answer UNAVAILABLE, never a guess.

The evaluation service here listens to a NATS of its own, so that it never hears the registry's events and
only the lookup can teach it (the race seen in CI made deterministic)."""

from __future__ import annotations

import contextlib

import grpc
import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.common.natsd import NatsServer
from tests.integration.evaluation.support import (
    TRADING,
    evaluation_running,
    new_credit_code,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import reason
from tests.support.registry import registry_running


@pytest.fixture
def deaf_nats(tmp_path):
    server = NatsServer(tmp_path / "deaf-nats")
    server.start()
    yield server
    server.stop()


def _ask(code: str) -> pb.CheckEligibilityRequest:
    return pb.CheckEligibilityRequest(credit_code=code, sale_kind="new_industrial_land")


async def test_a_replica_miss_is_looked_up_in_the_registry(database_url, nats_server, deaf_nats, tmp_path):
    async with contextlib.AsyncExitStack() as registry_stack:
        registry = await registry_stack.enter_async_context(
            registry_running(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", nats_server.url))
        # Submissions do not look codes up here: only the eligibility lookup can record the enterprise.
        async with evaluation_running(database_url, deaf_nats.url, registry.address,
                                      registry_lookup_limit=0) as evaluation:
            (fresh,) = await register_enterprises(registry.stub, 1)
            with pytest.raises(grpc.aio.AioRpcError) as not_evaluated:
                await evaluation.stub.CheckEligibility(_ask(fresh), metadata=TRADING)
            assert not_evaluated.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert reason(not_evaluated.value) == "NOT_EVALUATED"
            # What the registry said was recorded: the replica now matches the code.
            report = await submit(evaluation.stub, [row(fresh, 2024, tax_paid="1")])
            assert report.rows_accepted == 1

            with pytest.raises(grpc.aio.AioRpcError) as stranger:
                await evaluation.stub.CheckEligibility(_ask(new_credit_code()), metadata=TRADING)
            assert reason(stranger.value) == "UNKNOWN_ENTERPRISE"

            (unheard,) = await register_enterprises(registry.stub, 1)
            await registry_stack.aclose()  # the registry goes away
            with pytest.raises(grpc.aio.AioRpcError) as away:
                await evaluation.stub.CheckEligibility(_ask(unheard), metadata=TRADING)
            assert away.value.code() == grpc.StatusCode.UNAVAILABLE
            assert reason(away.value) == "REGISTRY_UNAVAILABLE"
            # What was learned before stays known without the registry.
            with pytest.raises(grpc.aio.AioRpcError) as still:
                await evaluation.stub.CheckEligibility(_ask(fresh), metadata=TRADING)
            assert reason(still.value) == "NOT_EVALUATED"
