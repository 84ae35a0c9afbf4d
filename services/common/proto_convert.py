"""Conversions between protobuf well-known/common types and Python values, shared by servicers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2

from services.common.errors import InvalidArgument

MAX_PAGE = 500
DEFAULT_PAGE = 50


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_timestamp(value: Timestamp) -> datetime | None:
    if not value.seconds and not value.nanos:
        return None
    return value.ToDatetime(tzinfo=UTC)


def quantity(value: Decimal, unit: str) -> common_pb2.Quantity:
    return common_pb2.Quantity(value=format(value, "f"), unit=unit)


def page_size(page: common_pb2.PageRequest) -> int:
    if page.page_size <= 0:
        return DEFAULT_PAGE
    return min(page.page_size, MAX_PAGE)


def page_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode() if after else ""


def page_after(page: common_pb2.PageRequest) -> str:
    if not page.page_token:
        return ""
    try:
        return base64.urlsafe_b64decode(page.page_token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument.field("page.page_token", "is not a token this service issued") from None
