"""The gateway's one way to call a service (ServiceClients.call): one deadline per call, its agency-role
lookup included, handed to the service as its gRPC deadline."""

from __future__ import annotations

from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.context import deadline_var
from services.common.grpc_client import time_left
from services.gateway.clients import ServiceClients
from services.gateway.identity import Role, User


class _Registry:
    def __init__(self, seen: list) -> None:
        self.seen = seen

    async def GetAgency(self, request, *, timeout, metadata):
        self.seen.append(("GetAgency", timeout, time_left()))
        return rpb.GetAgencyResponse(agency=rpb.Agency(agency_id=request.agency_id,
                                                       roles=[rpb.AGENCY_ROLE_TRADING_CENTRE]))


async def test_the_role_lookup_and_the_call_share_one_deadline() -> None:
    seen: list = []

    async def method(request, *, timeout, metadata):
        seen.append(("call", timeout, time_left()))
        return dict(metadata)

    clients = ServiceClients(registry=_Registry(seen), trading=None, evaluation=None, timeout=5.0)
    agency = User(Role.AGENCY, "AG-1", "key:abc")
    metadata = await clients.call(method, object(), user=agency)
    assert metadata["x-on-behalf-of-roles"] == "trading_centre"
    (_, lookup_timeout, lookup_left), (_, call_timeout, call_left) = seen
    # One deadline: whatever the lookup took, the call has that much less, never more than the API's 5 s.
    assert lookup_timeout <= 5.0 and call_timeout <= lookup_timeout
    assert lookup_left is not None and call_left is not None and call_left <= lookup_left
    assert deadline_var.get() is None  # nothing outlives the call


async def test_a_longer_deadline_for_one_call_still_bounds_the_lookup_by_the_api_timeout() -> None:
    seen: list = []

    async def method(request, *, timeout, metadata):
        seen.append(("call", timeout, time_left()))

    clients = ServiceClients(registry=_Registry(seen), trading=None, evaluation=None, timeout=5.0)
    await clients.call(method, object(), user=User(Role.AGENCY, "AG-2", "key:abc"), timeout=30.0)
    (_, lookup_timeout, _), (_, call_timeout, _) = seen
    assert lookup_timeout <= 5.0 and call_timeout <= 30.0
