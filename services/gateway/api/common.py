"""Small helpers shared by the routers: paging, money and time to protobuf, object-level authorisation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.errors import ProblemError, forbidden
from services.gateway.clients import ServiceClients
from services.gateway.identity import Role, User


def page_request(page_size: Annotated[int, Query(ge=1, le=500)] = 50,
                 page_token: Annotated[str, Query(max_length=200)] = "") -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size, page_token=page_token)


PageDep = Annotated[common_pb2.PageRequest, Depends(page_request)]


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def page_out(response) -> dict:
    page = response.page
    return {"next_page_token": page.next_page_token, "total": page.total_size or None}


# ---------------------------------------------------------------- object-level authorisation
def may_read_enterprise(user: User, credit_code: str) -> None:
    """An enterprise reads only itself; regulators and administrators read every enterprise."""
    if user.reads_everything or (user.role is Role.ENTERPRISE and user.credit_code == credit_code):
        return
    raise forbidden("you may only see your own enterprise")


def may_act_for(user: User, credit_code: str) -> None:
    """Only the enterprise itself acts for itself (regulators read, never act)."""
    if user.role is Role.ENTERPRISE and user.credit_code == credit_code:
        return
    raise forbidden("you may only act for your own enterprise")


async def listing_of(clients: ServiceClients, user: User | None, listing_id: str) -> tpb.Listing:
    reply = await clients.call(clients.trading.GetListing, tpb.GetListingRequest(listing_id=listing_id), user=user)
    return reply.listing


async def owned_listing(clients: ServiceClients, user: User, listing_id: str) -> tpb.Listing:
    listing = await listing_of(clients, user, listing_id)
    if user.role is not Role.AGENCY or listing.agency_id != user.agency_id:
        raise forbidden("only the listing agency may change this listing")
    return listing


def sees_reserve(user: User | None, listing: tpb.Listing) -> bool:
    return user is not None and (user.reads_everything or user.agency_id == listing.agency_id)


def opened(listing: tpb.Listing) -> bool:
    """Sealed bids are opened at `opening_at` (open mechanisms have nothing sealed)."""
    if listing.mechanism in (tpb.MECHANISM_LISTING, tpb.MECHANISM_ENGLISH):
        return True
    if not listing.HasField("opening_at"):
        return listing.state >= tpb.LISTING_STATE_CLOSED
    return listing.opening_at.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


def not_found(what: str = "not found") -> ProblemError:
    return ProblemError(404, what)
