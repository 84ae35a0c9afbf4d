"""Read google.rpc details out of a gRPC error, as a client would."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return None


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rich_status(error)
    found: dict[str, str] = {}
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rich_status(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
