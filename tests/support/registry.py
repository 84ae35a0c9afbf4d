"""Start a real registry for a test: its own database, a free gRPC port, the test NATS."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc

from services.registry.app import build
from services.registry.config import RegistrySettings
from tests.support.services import ADMIN_KEY, API_KEYS_JSON, BANK_APPROVER_KEY, BANK_TELLER_KEY, bearer, running


@dataclass
class RunningRegistry:
    host: object
    address: str
    channel: grpc.aio.Channel
    stub: registry_pb2_grpc.RegistryServiceStub
    metrics_port: int

    @staticmethod
    def auth(key: str = ADMIN_KEY) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {key}")]


def registry_settings(database_url: str, nats_url: str, **overrides) -> RegistrySettings:
    values = dict(database_url=database_url, nats_url=nats_url, grpc_port=0, metrics_port=0,
                  api_keys_json=API_KEYS_JSON, outbox_poll_seconds=0.05, hold_sweep_seconds=0.2,
                  shutdown_grace_seconds=1.0)
    return RegistrySettings(**{**values, **overrides})


@contextlib.asynccontextmanager
async def registry_running(database_url: str, nats_url: str, **overrides) -> AsyncIterator[RunningRegistry]:
    host = build(registry_settings(database_url, nats_url, **overrides))
    async with running(host):
        address = f"127.0.0.1:{host.grpc_port}"
        channel = grpc.aio.insecure_channel(address)
        try:
            yield RunningRegistry(host, address, channel, registry_pb2_grpc.RegistryServiceStub(channel),
                                  host.metrics_port)
        finally:
            await channel.close()


async def deposit_cny(stub: registry_pb2_grpc.RegistryServiceStub, account_id: str, fen: int) -> rpb.CashMovement:
    """Fund a CNY account the only way money enters: the settlement bank's teller requests a deposit and
    a second bank principal approves it (two-person rule)."""
    requested = await stub.RequestCashMovement(rpb.RequestCashMovementRequest(
        idempotency_key=uuid.uuid4().hex, kind=rpb.CASH_MOVEMENT_KIND_DEPOSIT, account_id=account_id,
        amount=common_pb2.Money(fen=fen, currency="CNY"), bank_reference=f"test-{uuid.uuid4().hex[:12]}"),
        metadata=bearer(BANK_TELLER_KEY))
    approved = await stub.ApproveCashMovement(rpb.ApproveCashMovementRequest(
        idempotency_key=uuid.uuid4().hex, movement_id=requested.movement.movement_id),
        metadata=bearer(BANK_APPROVER_KEY))
    return approved.movement
