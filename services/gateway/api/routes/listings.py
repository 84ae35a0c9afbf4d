"""Listings: public reads; agencies create and manage their own; enterprises register, bid and confirm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.common import (
    PageDep,
    listing_of,
    may_act_for,
    may_read_enterprise,
    money,
    not_found,
    opened,
    owned_listing,
    page_out,
    sees_reserve,
    timestamp,
)
from services.gateway.api.deps import (
    AgencyUser,
    ClientsDep,
    CurrentUser,
    EnterpriseUser,
    IdempotencyKey,
    OptionalUser,
    requires,
)
from services.gateway.api.errors import forbidden, problem_responses
from services.gateway.api.schemas import (
    BidChange,
    BidCreate,
    BidPlaced,
    BidPublic,
    CancelCreate,
    ChangeNoticePublic,
    CreditCodeBody,
    ListingCreate,
    ListingPublic,
    ListingUpdate,
    Mechanism,
    PageOf,
    RegistrationCreate,
    RegistrationPublic,
    ReservePriceCreate,
    SaleResultPublic,
    SaleStatePublic,
    TradePublic,
    from_proto,
)
from services.gateway.identity import Role, User

router = APIRouter(prefix="/listings", tags=["listings"])
ReserveApprover = Annotated[User, Depends(requires(Role.AGENCY, Role.ADMIN))]
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)

MECHANISM = {"listing": tpb.MECHANISM_LISTING, "english": tpb.MECHANISM_ENGLISH, "tender": tpb.MECHANISM_TENDER,
             "uniform_price": tpb.MECHANISM_UNIFORM_PRICE}
STATE = {name.removeprefix("LISTING_STATE_").lower(): value for name, value in tpb.ListingState.items()
         if value}
StateName = Annotated[str, Query(pattern="^(" + "|".join(STATE) + ")$")]


def listing_view(listing: tpb.Listing, user: User | None) -> ListingPublic:
    view = from_proto(ListingPublic, listing)
    if not sees_reserve(user, listing):
        view.reserve_price = None
    return view


def bid_view(bid: tpb.Bid, user: User) -> BidPublic:
    """Defence in depth: a sealed bid's amount and bidder reach only their owner, whatever a service sends."""
    view = from_proto(BidPublic, bid)
    if bid.sealed and not (user.role is Role.ENTERPRISE and user.credit_code == bid.credit_code):
        view.price = None
        view.quantity_lots = 0
    if user.role is Role.ENTERPRISE and bid.credit_code != user.credit_code:
        view.credit_code = ""
    return view


# ---------------------------------------------------------------- public reads
@router.get("", response_model=PageOf[ListingPublic], responses=ERRORS)
async def list_listings(clients: ClientsDep, user: OptionalUser, page: PageDep,
                        mechanism: Mechanism | None = None, state: StateName | None = None,
                        agency_id: Annotated[str, Query(max_length=64)] = "",
                        instrument: Annotated[str, Query(max_length=120)] = "") -> dict:
    reply = await clients.call(clients.trading.ListListings, tpb.ListListingsRequest(
        page=page, mechanism=MECHANISM.get(mechanism or "", 0), state=STATE.get(state or "", 0),
        agency_id=agency_id, instrument=instrument), user=user)
    hidden = {tpb.LISTING_STATE_DRAFT}
    data = [listing_view(li, user) for li in reply.listings
            if li.state not in hidden or (user is not None and (user.reads_everything or
                                                               user.agency_id == li.agency_id))]
    return {"data": data, **page_out(reply)}


@router.get("/{listing_id}", response_model=ListingPublic, responses=ERRORS)
async def get_listing(listing_id: str, clients: ClientsDep, user: OptionalUser) -> ListingPublic:
    listing = await listing_of(clients, user, listing_id)
    if listing.state == tpb.LISTING_STATE_DRAFT and not (
            user is not None and (user.reads_everything or user.agency_id == listing.agency_id)):
        raise not_found("no such listing")  # a draft's existence is not confirmed to others
    return listing_view(listing, user)


@router.get("/{listing_id}/state", response_model=SaleStatePublic, responses=ERRORS)
async def get_sale_state(listing_id: str, clients: ClientsDep, user: OptionalUser) -> SaleStatePublic:
    reply = await clients.call(clients.trading.GetSaleState, tpb.GetSaleStateRequest(listing_id=listing_id),
                               user=user)
    return from_proto(SaleStatePublic, reply.state)


@router.get("/{listing_id}/result", response_model=SaleResultPublic, responses=ERRORS)
async def get_sale_result(listing_id: str, clients: ClientsDep, user: OptionalUser) -> SaleResultPublic:
    reply = await clients.call(clients.trading.GetSaleResult, tpb.GetSaleResultRequest(listing_id=listing_id),
                               user=user)
    return from_proto(SaleResultPublic, reply.result)


@router.get("/{listing_id}/notices", response_model=list[ChangeNoticePublic], responses=ERRORS)
async def list_change_notices(listing_id: str, clients: ClientsDep, user: OptionalUser) -> list[ChangeNoticePublic]:
    reply = await clients.call(clients.trading.ListChangeNotices,
                               tpb.ListChangeNoticesRequest(listing_id=listing_id), user=user)
    return [from_proto(ChangeNoticePublic, n) for n in reply.notices]


# ---------------------------------------------------------------- agencies
@router.post("", response_model=ListingPublic, status_code=201, responses=ERRORS)
async def create_listing(body: ListingCreate, clients: ClientsDep, user: AgencyUser,
                         key: IdempotencyKey) -> ListingPublic:
    """A draft listing of the calling agency (from a catalogue item, or of a quota instrument)."""
    listing = tpb.Listing(
        mechanism=MECHANISM[body.mechanism], agency_id=user.agency_id, resource_id=body.resource_id,
        instrument=body.instrument, quantity=common_pb2.Quantity(value=body.quantity, unit=body.unit),
        title=body.title, description=body.description, documents=body.documents,
        rules=tpb.ListingRules(start_price=money(body.start_price_fen), increment=money(body.increment_fen),
                               deposit=money(body.deposit_fen), countdown_seconds=body.countdown_seconds,
                               supply_lots=body.supply_lots, lot_size=body.lot_size,
                               bidder_cap_lots=body.bidder_cap_lots),
        eligibility=tpb.Eligibility(allowed_classes=body.allowed_classes, sale_kind=body.sale_kind,
                                    standard_land_conditions=body.standard_land_conditions),
        announce_at=timestamp(body.announce_at), bidding_opens_at=timestamp(body.bidding_opens_at),
        bidding_closes_at=timestamp(body.bidding_closes_at), opening_at=timestamp(body.opening_at))
    reply = await clients.call(clients.trading.CreateListing,
                               tpb.CreateListingRequest(idempotency_key=key, listing=listing), user=user)
    return listing_view(reply.listing, user)


@router.patch("/{listing_id}", response_model=ListingPublic, responses=ERRORS)
async def update_listing(listing_id: str, body: ListingUpdate, clients: ClientsDep, user: AgencyUser,
                         key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, user, listing_id)
    change = tpb.Listing(listing_id=listing_id, title=body.title or "", description=body.description or "",
                         bidding_closes_at=timestamp(body.bidding_closes_at), documents=body.documents or [])
    reply = await clients.call(clients.trading.UpdateListing, tpb.UpdateListingRequest(
        idempotency_key=key, listing=change, change_reason=body.change_reason), user=user)
    return listing_view(reply.listing, user)


@router.post("/{listing_id}/publish", response_model=ListingPublic, responses=ERRORS)
async def publish_listing(listing_id: str, clients: ClientsDep, user: AgencyUser,
                          key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, user, listing_id)
    reply = await clients.call(clients.trading.PublishListing, tpb.PublishListingRequest(
        idempotency_key=key, listing_id=listing_id), user=user)
    return listing_view(reply.listing, user)


@router.post("/{listing_id}/cancel", response_model=ListingPublic, responses=ERRORS)
async def cancel_listing(listing_id: str, body: CancelCreate, clients: ClientsDep, user: AgencyUser,
                         key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, user, listing_id)
    reply = await clients.call(clients.trading.CancelListing, tpb.CancelListingRequest(
        idempotency_key=key, listing_id=listing_id, reason=body.reason), user=user)
    return listing_view(reply.listing, user)


@router.post("/{listing_id}/reserve-price", response_model=ListingPublic, responses=ERRORS)
async def enter_reserve_price(listing_id: str, body: ReservePriceCreate, clients: ClientsDep, user: AgencyUser,
                              key: IdempotencyKey) -> ListingPublic:
    """First of the dual control: the amount never comes back before opening."""
    await owned_listing(clients, user, listing_id)
    reply = await clients.call(clients.trading.EnterReservePrice, tpb.EnterReservePriceRequest(
        idempotency_key=key, listing_id=listing_id, reserve_price=money(body.reserve_price_fen)), user=user)
    return listing_view(reply.listing, user)


@router.post("/{listing_id}/reserve-price/approve", response_model=ListingPublic, responses=ERRORS)
async def approve_reserve_price(listing_id: str, clients: ClientsDep, user: ReserveApprover,
                                key: IdempotencyKey) -> ListingPublic:
    """Second of the dual control, by a principal other than the one who entered it (trading refuses the
    same principal with 409): the listing agency, or an administrator."""
    if user.role is not Role.ADMIN:
        await owned_listing(clients, user, listing_id)
    reply = await clients.call(clients.trading.ApproveReservePrice, tpb.ApproveReservePriceRequest(
        idempotency_key=key, listing_id=listing_id), user=user)
    return listing_view(reply.listing, user)


# ---------------------------------------------------------------- registration
@router.post("/{listing_id}/registrations", response_model=RegistrationPublic, status_code=201, responses=ERRORS)
async def register_bidder(listing_id: str, body: RegistrationCreate, clients: ClientsDep, user: EnterpriseUser,
                          key: IdempotencyKey) -> RegistrationPublic:
    """Register the own enterprise: eligibility is checked and the deposit held in the ledger."""
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.RegisterBidder, tpb.RegisterBidderRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code), user=user)
    return from_proto(RegistrationPublic, reply.registration)


@router.get("/{listing_id}/registrations", response_model=PageOf[RegistrationPublic], responses=ERRORS)
async def list_registrations(listing_id: str, clients: ClientsDep, user: CurrentUser, page: PageDep) -> dict:
    """Regulators at any time; the listing agency once bidding has closed (who registered stays secret)."""
    if not user.reads_everything:
        listing = await listing_of(clients, user, listing_id)
        if user.agency_id != listing.agency_id or listing.state < tpb.LISTING_STATE_CLOSED:
            raise forbidden("registrations are visible to regulators, and to the agency after close")
    reply = await clients.call(clients.trading.ListRegistrations, tpb.ListRegistrationsRequest(
        listing_id=listing_id, page=page), user=user)
    return {"data": [from_proto(RegistrationPublic, r) for r in reply.registrations], **page_out(reply)}


@router.get("/{listing_id}/registrations/{credit_code}", response_model=RegistrationPublic, responses=ERRORS)
async def get_registration(listing_id: str, credit_code: str, clients: ClientsDep,
                           user: CurrentUser) -> RegistrationPublic:
    may_read_enterprise(user, credit_code)
    reply = await clients.call(clients.trading.GetRegistration, tpb.GetRegistrationRequest(
        listing_id=listing_id, credit_code=credit_code), user=user)
    return from_proto(RegistrationPublic, reply.registration)


@router.post("/{listing_id}/registrations/{credit_code}/continue", response_model=RegistrationPublic,
             responses=ERRORS)
async def confirm_continue(listing_id: str, credit_code: str, clients: ClientsDep, user: EnterpriseUser,
                           key: IdempotencyKey) -> RegistrationPublic:
    """Confirm taking part in the live round (挂牌 → 限时竞价), or again after a change notice."""
    may_act_for(user, credit_code)
    reply = await clients.call(clients.trading.ConfirmContinue, tpb.ConfirmContinueRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=credit_code), user=user)
    return from_proto(RegistrationPublic, reply.registration)


# ---------------------------------------------------------------- bids
@router.post("/{listing_id}/bids", response_model=BidPlaced, status_code=201, responses=ERRORS)
async def place_bid(listing_id: str, body: BidCreate, clients: ClientsDep, user: EnterpriseUser,
                    key: IdempotencyKey) -> BidPlaced:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.PlaceBid, tpb.PlaceBidRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity_lots=body.quantity_lots, tender_document=body.tender_document), user=user)
    state = from_proto(SaleStatePublic, reply.state) if reply.HasField("state") else None
    return BidPlaced(bid=bid_view(reply.bid, user), state=state)


@router.get("/{listing_id}/bids", response_model=PageOf[BidPublic], responses=ERRORS)
async def list_bids(listing_id: str, clients: ClientsDep, user: CurrentUser, page: PageDep,
                    credit_code: Annotated[str, Query(max_length=18)] = "") -> dict:
    """An enterprise: its own bids. Regulators: all bids, sealed ones after opening. The listing agency:
    all bids after close."""
    if user.role is Role.ENTERPRISE:
        if credit_code and credit_code != user.credit_code:
            raise forbidden("you may only see your own bids")
        credit_code = user.credit_code
    elif user.role is Role.AGENCY:
        listing = await listing_of(clients, user, listing_id)
        if listing.agency_id != user.agency_id or listing.state < tpb.LISTING_STATE_CLOSED or not opened(listing):
            raise forbidden("bids are visible to the listing agency after close")
    elif not user.reads_everything:
        raise forbidden()
    reply = await clients.call(clients.trading.ListBids, tpb.ListBidsRequest(
        listing_id=listing_id, credit_code=credit_code, page=page), user=user)
    return {"data": [bid_view(b, user) for b in reply.bids], **page_out(reply)}


@router.post("/{listing_id}/award/confirm", response_model=TradePublic, responses=ERRORS)
async def confirm_award(listing_id: str, body: CreditCodeBody, clients: ClientsDep, user: EnterpriseUser,
                        key: IdempotencyKey) -> TradePublic:
    """The winner signs the 成交确认书."""
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.ConfirmAward, tpb.ConfirmAwardRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code), user=user)
    return from_proto(TradePublic, reply.trade)


bids_router = APIRouter(prefix="/bids", tags=["listings"])


@bids_router.post("/{bid_id}/withdraw", response_model=BidPublic, responses=ERRORS)
async def withdraw_bid(bid_id: str, body: CreditCodeBody, clients: ClientsDep, user: EnterpriseUser,
                       key: IdempotencyKey) -> BidPublic:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.WithdrawBid, tpb.WithdrawBidRequest(
        idempotency_key=key, bid_id=bid_id, credit_code=body.credit_code), user=user)
    return bid_view(reply.bid, user)


@bids_router.post("/{bid_id}/modify", response_model=BidPublic, responses=ERRORS)
async def modify_bid(bid_id: str, body: BidChange, clients: ClientsDep, user: EnterpriseUser,
                     key: IdempotencyKey) -> BidPublic:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.ModifyBid, tpb.ModifyBidRequest(
        idempotency_key=key, bid_id=bid_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity_lots=body.quantity_lots), user=user)
    return bid_view(reply.bid, user)
