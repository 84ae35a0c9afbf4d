"""The public-resource catalogue (public reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from yaosu.registry.v1 import registry_pb2 as rpb

from services.gateway.api.authz import GuardDep
from services.gateway.api.common import PageDep, page_out
from services.gateway.api.deps import ClientsDep
from services.gateway.api.errors import problem_responses
from services.gateway.api.schemas import PageOf, ResourceKindPublic, ResourcePublic, from_proto

router = APIRouter(prefix="/catalogue", tags=["catalogue"])
ERRORS = problem_responses(400, 404, 422, 429, 503, 504)


@router.get("/kinds", response_model=list[ResourceKindPublic], responses=ERRORS)
async def list_kinds(clients: ClientsDep, guard: GuardDep) -> list[ResourceKindPublic]:
    reply = await clients.call(clients.registry.ListResourceKinds, rpb.ListResourceKindsRequest(), user=guard.user)
    return [from_proto(ResourceKindPublic, k) for k in reply.kinds]


@router.get("/resources", response_model=PageOf[ResourcePublic], responses=ERRORS)
async def list_resources(clients: ClientsDep, guard: GuardDep, page: PageDep,
                         kind: Annotated[str, Query(max_length=64)] = "",
                         region_code: Annotated[str, Query(max_length=6)] = "",
                         standard_land_only: bool = False) -> dict:
    reply = await clients.call(clients.registry.ListResources, rpb.ListResourcesRequest(
        page=page, kind=kind, region_code=region_code, standard_land_only=standard_land_only), user=guard.user)
    return {"data": [from_proto(ResourcePublic, r) for r in reply.resources], **page_out(reply)}


@router.get("/resources/{resource_id}", response_model=ResourcePublic, responses=ERRORS)
async def get_resource(resource_id: str, clients: ClientsDep, guard: GuardDep) -> ResourcePublic:
    reply = await clients.call(clients.registry.GetResource, rpb.GetResourceRequest(resource_id=resource_id),
                               user=guard.user)
    return from_proto(ResourcePublic, reply.resource)
