"""Small helpers shared by the routers: paging, money and time to protobuf, and what a sale discloses when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as tpb

from services.common.authz import Owner
from services.gateway.api.authz import Guard
from services.gateway.api.errors import ProblemError
from services.gateway.clients import ServiceClients
from services.gateway.identity import User


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


def not_found(what: str = "not found") -> ProblemError:
    return ProblemError(404, what)


# ---------------------------------------------------------------- listings and what they disclose
SEALED_MECHANISMS = (tpb.MECHANISM_TENDER, tpb.MECHANISM_UNIFORM_PRICE)
DECIDED_STATES = (tpb.LISTING_STATE_AWARDED, tpb.LISTING_STATE_UNSOLD, tpb.LISTING_STATE_SETTLED)


async def listing_of(clients: ServiceClients, user: User | None, listing_id: str) -> tpb.Listing:
    reply = await clients.call(clients.trading.GetListing, tpb.GetListingRequest(listing_id=listing_id), user=user)
    return reply.listing


async def visible_listing(clients: ServiceClients, guard: Guard, listing_id: str) -> tpb.Listing:
    """The listing as the caller may see it: a draft of somebody else answers 404 like a missing one."""
    listing = await listing_of(clients, guard.user, listing_id)
    if listing.state == tpb.LISTING_STATE_DRAFT and not guard.allows("listing.drafts", agency_of(listing)):
        raise not_found("no such listing")
    return listing


def agency_of(listing: tpb.Listing) -> Owner:
    return Owner.agency(listing.agency_id)


def opened(listing: tpb.Listing) -> bool:
    """Sealed bids are opened when trading opens them (a tender at its opening, an auction when it is
    cleared), as trading's own disclosure decides: by the sale's recorded state, not by the gateway's clock
    (before trading's timer has opened the bids nothing is opened; after it, the gateway must not lag). A
    cancellation before that opens nothing (open mechanisms have nothing sealed). A cleared auction has
    revealed its tie-break seed, even when it was cancelled for want of valid bids."""
    if listing.mechanism not in SEALED_MECHANISMS:
        return True
    return listing.state in DECIDED_STATES or bool(listing.rules.seed)


def phase(listing: tpb.Listing) -> str:
    """Which `participants.*` rule of the policy decides who learns who took part, how many and when."""
    if listing.mechanism in SEALED_MECHANISMS:
        return "opened" if opened(listing) else "sealed"
    return "opened" if listing.state >= tpb.LISTING_STATE_CLOSED else "live"


def sees_participants(guard: Guard, listing: tpb.Listing) -> bool:
    return guard.allows(f"participants.{phase(listing)}", agency_of(listing))
