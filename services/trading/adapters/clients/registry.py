"""The registry ledger and catalogue over gRPC, behind RegistryPort. Every mutating call carries the
caller's idempotency key, so a retry after a timeout or a crash never moves a unit or a fen twice."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.grpc_client import error_reason
from services.common.proto_convert import timestamp
from services.trading.application.ports import LedgerLeg, PendingHold, RegistryRefused, RegistryUnavailable

# Codes after which the same call may succeed later; anything else is the registry's answer.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN,
                       grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL})
STATUS_PB = {"available": pb.RESOURCE_STATUS_AVAILABLE, "listed": pb.RESOURCE_STATUS_LISTED,
             "allocated": pb.RESOURCE_STATUS_ALLOCATED}
STATUS = {v: k for k, v in STATUS_PB.items()} | {pb.RESOURCE_STATUS_REGISTERED: "registered",
                                                 pb.RESOURCE_STATUS_RETIRED: "retired"}


class GrpcRegistry:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 5.0) -> None:
        self.channel = channel
        self.stub = registry_pb2_grpc.RegistryServiceStub(channel)
        self.timeout = timeout

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT:
                raise RegistryUnavailable(f"registry {exc.code().name}") from exc
            raise RegistryRefused(exc.code().name, exc.details() or "", error_reason(exc)) from exc

    async def account(self, holder: str, instrument: str, *, open_if_missing: bool) -> str:
        found = await self._call(self.stub.ListAccounts, pb.ListAccountsRequest(holder=holder, instrument=instrument))
        if found.accounts:
            return found.accounts[0].account_id
        if not open_if_missing:
            raise RegistryRefused("NOT_FOUND", f"{holder} has no {instrument} account")
        opened = await self._call(self.stub.OpenAccount, pb.OpenAccountRequest(
            idempotency_key=f"trading:account:{holder}:{instrument}", holder=holder, instrument=instrument))
        return opened.account.account_id

    async def holding(self, holder: str, instrument: str) -> str:
        """The units of an instrument the holder holds: the balances of its accounts (units held for a pending
        sale are still its own), "0" without an account."""
        found = await self._call(self.stub.ListAccounts, pb.ListAccountsRequest(holder=holder, instrument=instrument))
        return str(sum((Decimal(a.balance.value or "0") for a in found.accounts), Decimal(0)))

    async def create_hold(self, key: str, account_id: str, quantity: str, deadline: datetime, purpose: str, *,
                          partial: bool = False) -> str:
        response = await self._call(self.stub.CreateHold, pb.CreateHoldRequest(
            idempotency_key=key, account_id=account_id, quantity=common_pb2.Quantity(value=quantity),
            deadline=timestamp(deadline), purpose=purpose, partial=partial))
        return response.hold.hold_id

    async def post_hold(self, key: str, hold_id: str, to_account_id: str) -> str:
        response = await self._call(self.stub.PostHold, pb.PostHoldRequest(
            idempotency_key=key, hold_id=hold_id, to_account_id=to_account_id))
        return response.operation.operation_id

    def connected(self) -> bool:
        return self.channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY

    async def pending_holds(self, purpose_prefix: str) -> list[PendingHold]:
        found: list[PendingHold] = []
        after = ""
        while True:
            page = await self._call(self.stub.ListHolds, pb.ListHoldsRequest(
                purpose_prefix=purpose_prefix, pending_only=True, page=common_pb2.PageRequest(page_size=500, page_token=after)))
            found += [PendingHold(h.hold_id, h.purpose) for h in page.holds]
            after = page.page.next_page_token
            if not after:
                return found

    async def void_hold(self, key: str, hold_id: str, reason: str) -> None:
        await self._call(self.stub.VoidHold, pb.VoidHoldRequest(idempotency_key=key, hold_id=hold_id, reason=reason))

    async def release_hold(self, key: str, hold_id: str, quantity: str, reason: str) -> None:
        await self._call(self.stub.VoidHold, pb.VoidHoldRequest(
            idempotency_key=key, hold_id=hold_id, reason=reason, quantity=common_pb2.Quantity(value=quantity)))

    async def increase_hold(self, key: str, hold_id: str, quantity: str) -> None:
        await self._call(self.stub.IncreaseHold, pb.IncreaseHoldRequest(
            idempotency_key=key, hold_id=hold_id, quantity=common_pb2.Quantity(value=quantity)))

    async def transfer(self, key: str, legs: list[LedgerLeg], memo: str, reference: str) -> str:
        response = await self._call(self.stub.Transfer, pb.TransferRequest(
            idempotency_key=key, memo=memo, reference=reference,
            legs=[pb.TransferLeg(from_account_id=leg.from_account_id, to_account_id=leg.to_account_id,
                                 quantity=common_pb2.Quantity(value=leg.quantity), from_hold_id=leg.from_hold_id)
                  for leg in legs]))
        return response.operation.operation_id

    async def transition_resource(self, key: str, resource_id: str, status: str, reason: str,
                                  holder: str = "") -> None:
        await self._call(self.stub.TransitionResource, pb.TransitionResourceRequest(
            idempotency_key=key, resource_id=resource_id, to_status=STATUS_PB[status], reason=reason, holder=holder))

    async def resource_status(self, resource_id: str) -> str:
        found = await self._call(self.stub.GetResource, pb.GetResourceRequest(resource_id=resource_id))
        return STATUS.get(found.resource.status, "unknown")

    async def resource_controller(self, resource_id: str) -> str:
        """The agency controlling a catalogue item (RegistryRefused NOT_FOUND if unknown)."""
        found = await self._call(self.stub.GetResource, pb.GetResourceRequest(resource_id=resource_id))
        return found.resource.controller_agency_id

    async def instrument_scale(self, instrument: str) -> int:
        """Decimal places the ledger keeps of the instrument (RegistryRefused NOT_FOUND if unknown)."""
        found = await self._call(self.stub.GetInstrument, pb.GetInstrumentRequest(code=instrument))
        return found.instrument.scale

