"""The registry as an enterprise directory, over its gRPC API (ListEnterprises pages, GetEnterprise)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.errors import DependencyUnavailable
from services.evaluation.application.ports import EnterpriseFacts

SIZE = {pb.SIZE_CLASS_ABOVE: "above", pb.SIZE_CLASS_BELOW: "below"}
STATUS = {pb.SUBJECT_STATUS_ACTIVE: "active", pb.SUBJECT_STATUS_SUSPENDED: "suspended",
          pb.SUBJECT_STATUS_DEREGISTERED: "deregistered"}
PAGE = 500


def facts(e: pb.Enterprise) -> EnterpriseFacts:
    return EnterpriseFacts(e.credit_code, e.name, e.industry_code, e.region_code, e.park, SIZE.get(e.size_class, ""),
                           e.land_held.value or "0", STATUS.get(e.status, "active"))


class RegistryDirectory:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 10.0) -> None:
        self.stub = registry_pb2_grpc.RegistryServiceStub(channel)
        self.timeout = timeout

    async def pages(self) -> AsyncIterator[list[EnterpriseFacts]]:
        token = ""
        while True:
            response = await self.stub.ListEnterprises(pb.ListEnterprisesRequest(
                page=common_pb2.PageRequest(page_size=PAGE, page_token=token)), timeout=self.timeout)
            if response.enterprises:
                yield [facts(e) for e in response.enterprises]
            token = response.page.next_page_token
            if not token:
                return

    async def lookup(self, credit_code: str) -> EnterpriseFacts | None:
        try:
            response = await self.stub.GetEnterprise(pb.GetEnterpriseRequest(credit_code=credit_code),
                                                     timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise DependencyUnavailable(f"the registry did not answer ({exc.code().name}); retry",
                                        reason="REGISTRY_UNAVAILABLE") from None
        return facts(response.enterprise)
