"""Listings: public reads; agencies create and manage their own; enterprises register, bid and confirm.

Who may call each route is the policy's (services/gateway/authorization.yaml, checked by the gate before
the handler runs); a handler names the owners of what it acts on (`guard.require`) and asks the policy's
disclosure rules (`guard.allows`) for what it shows.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as tpb

from services.common.authz import Owner
from services.gateway.api.authz import Guard, GuardDep
from services.gateway.api.common import (
    PageDep,
    agency_of,
    money,
    page_out,
    phase,
    sees_participants,
    timestamp,
    visible_listing,
)
from services.gateway.api.deps import ClientsDep, IdempotencyKey
from services.gateway.api.errors import forbidden, problem_responses
from services.gateway.api.schemas import (
    BidChange,
    BidCreate,
    BidPlaced,
    BidPublic,
    CancelCreate,
    ChangeNoticePublic,
    CreditCodeBody,
    IncrementChange,
    IncrementChanged,
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
from services.gateway.clients import ServiceClients

router = APIRouter(prefix="/listings", tags=["listings"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)

MECHANISM = {"listing": tpb.MECHANISM_LISTING, "english": tpb.MECHANISM_ENGLISH, "tender": tpb.MECHANISM_TENDER,
             "uniform_price": tpb.MECHANISM_UNIFORM_PRICE}
STATE = {name.removeprefix("LISTING_STATE_").lower(): value for name, value in tpb.ListingState.items()
         if value}
StateName = Annotated[str, Query(pattern="^(" + "|".join(STATE) + ")$")]


def listing_view(listing: tpb.Listing, guard: Guard | None = None) -> ListingPublic:
    """The reserve, once trading discloses it, only to whom the policy shows it (`listing.reserve`).
    Without a Guard (the portal's pages pass their user) it is never shown."""
    view = from_proto(ListingPublic, listing)
    if not (isinstance(guard, Guard) and guard.allows("listing.reserve", agency_of(listing))):
        view.reserve_price = None
    return view


def result_view(result: tpb.SaleResult, listing: tpb.Listing, guard: Guard) -> SaleResultPublic:
    """The reserve the decision disclosed goes, as on the listing, only to whom `listing.reserve` names."""
    view = from_proto(SaleResultPublic, result)
    if not guard.allows("listing.reserve", agency_of(listing)):
        view.reserve_price = None
    if not guard.subject.owns(Owner.enterprise(guard.subject.id)):  # how each bid fared: to its bidder only
        view.own_bids = []
    return view


def sale_state_view(state: tpb.SaleState, listing: tpb.Listing, guard: Guard) -> SaleStatePublic:
    """While sealed bids are unopened, how many registered or bid is for the trading centre only."""
    view = from_proto(SaleStatePublic, state)
    if not sees_counts(listing, guard):
        seal_counts(view)
    return view


def sees_counts(listing: tpb.Listing, guard: Guard) -> bool:
    return phase(listing) != "sealed" or sees_participants(guard, listing)


def seal_counts(view: SaleStatePublic) -> SaleStatePublic:
    view.accepted_bids = view.registered_bidders = None
    view.leading_bidder_number = ""
    return view


def bid_view(bid: tpb.Bid, guard: Guard, *, identities: bool = False) -> BidPublic:
    """Defence in depth: a sealed bid's amount reaches only its owner, whatever a service sends; another's
    credit code only a viewer the policy lets see who took part (`identities`)."""
    view = from_proto(BidPublic, bid)
    own = guard.subject.owns(Owner.enterprise(bid.credit_code))
    if bid.sealed and not own:
        view.price = None
        view.quantity_lots = 0
    if not (own or identities):
        view.credit_code = ""
    if not own:
        view.outcome = None
    return view


async def owned_listing(clients: ServiceClients, guard: Guard, listing_id: str) -> tpb.Listing:
    listing = await visible_listing(clients, guard, listing_id)
    guard.require(agency_of(listing))
    return listing


# ---------------------------------------------------------------- public reads
@router.get("", response_model=PageOf[ListingPublic], responses=ERRORS)
async def list_listings(clients: ClientsDep, guard: GuardDep, page: PageDep,
                        mechanism: Mechanism | None = None, state: StateName | None = None,
                        agency_id: Annotated[str, Query(max_length=64)] = "",
                        instrument: Annotated[str, Query(max_length=120)] = "") -> dict:
    reply = await clients.call(clients.trading.ListListings, tpb.ListListingsRequest(
        page=page, mechanism=MECHANISM.get(mechanism or "", 0), state=STATE.get(state or "", 0),
        agency_id=agency_id, instrument=instrument), user=guard.user)
    data = [listing_view(li, guard) for li in reply.listings
            if li.state != tpb.LISTING_STATE_DRAFT or guard.allows("listing.drafts", agency_of(li))]
    return {"data": data, **page_out(reply)}


@router.get("/{listing_id}", response_model=ListingPublic, responses=ERRORS)
async def get_listing(listing_id: str, clients: ClientsDep, guard: GuardDep) -> ListingPublic:
    return listing_view(await visible_listing(clients, guard, listing_id), guard)


@router.get("/{listing_id}/state", response_model=SaleStatePublic, responses=ERRORS)
async def get_sale_state(listing_id: str, clients: ClientsDep, guard: GuardDep) -> SaleStatePublic:
    """The public state of the sale; of a sealed sale before opening, no counts and no leading bidder."""
    listing = await visible_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.GetSaleState, tpb.GetSaleStateRequest(listing_id=listing_id),
                               user=guard.user)
    return sale_state_view(reply.state, listing, guard)


@router.get("/{listing_id}/result", response_model=SaleResultPublic, responses=ERRORS)
async def get_sale_result(listing_id: str, clients: ClientsDep, guard: GuardDep) -> SaleResultPublic:
    listing = await visible_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.GetSaleResult, tpb.GetSaleResultRequest(listing_id=listing_id),
                               user=guard.user)
    return result_view(reply.result, listing, guard)


@router.get("/{listing_id}/notices", response_model=list[ChangeNoticePublic], responses=ERRORS)
async def list_change_notices(listing_id: str, clients: ClientsDep, guard: GuardDep) -> list[ChangeNoticePublic]:
    await visible_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.ListChangeNotices,
                               tpb.ListChangeNoticesRequest(listing_id=listing_id), user=guard.user)
    return [from_proto(ChangeNoticePublic, n) for n in reply.notices]


# ---------------------------------------------------------------- agencies
@router.post("", response_model=ListingPublic, status_code=201, responses=ERRORS)
async def create_listing(body: ListingCreate, clients: ClientsDep, guard: GuardDep,
                         key: IdempotencyKey) -> ListingPublic:
    """A draft listing of the calling agency (from a catalogue item, or of a quota instrument)."""
    agency_id = guard.subject.id
    guard.require(Owner.agency(agency_id))
    listing = tpb.Listing(
        mechanism=MECHANISM[body.mechanism], agency_id=agency_id, resource_id=body.resource_id,
        instrument=body.instrument, quantity=common_pb2.Quantity(value=body.quantity, unit=body.unit),
        title=body.title, description=body.description, documents=body.documents,
        rules=tpb.ListingRules(start_price=money(body.start_price_fen), increment=money(body.increment_fen),
                               deposit=money(body.deposit_fen), countdown_seconds=body.countdown_seconds,
                               supply_lots=body.supply_lots, lot_size=body.lot_size,
                               bidder_cap_lots=body.bidder_cap_lots, min_cover_bp=body.min_cover_bp,
                               reference_price=money(body.reference_price_fen),
                               min_price_to_reference_bp=body.min_price_to_reference_bp,
                               reserve_floor=money(body.reserve_floor_fen),
                               holding_limit=common_pb2.Quantity(value=body.holding_limit, unit=body.unit)
                               if body.holding_limit else None,
                               rollover_from=body.rollover_from),
        eligibility=tpb.Eligibility(allowed_classes=body.allowed_classes, sale_kind=body.sale_kind,
                                    standard_land_conditions=body.standard_land_conditions),
        announce_at=timestamp(body.announce_at), bidding_opens_at=timestamp(body.bidding_opens_at),
        bidding_closes_at=timestamp(body.bidding_closes_at), opening_at=timestamp(body.opening_at))
    reply = await clients.call(clients.trading.CreateListing,
                               tpb.CreateListingRequest(idempotency_key=key, listing=listing), user=guard.user)
    return listing_view(reply.listing, guard)


@router.patch("/{listing_id}", response_model=ListingPublic, responses=ERRORS)
async def update_listing(listing_id: str, body: ListingUpdate, clients: ClientsDep, guard: GuardDep,
                         key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, guard, listing_id)
    change = tpb.Listing(listing_id=listing_id, title=body.title or "", description=body.description or "",
                         bidding_closes_at=timestamp(body.bidding_closes_at), documents=body.documents or [])
    reply = await clients.call(clients.trading.UpdateListing, tpb.UpdateListingRequest(
        idempotency_key=key, listing=change, change_reason=body.change_reason), user=guard.user)
    return listing_view(reply.listing, guard)


@router.post("/{listing_id}/publish", response_model=ListingPublic, responses=ERRORS)
async def publish_listing(listing_id: str, clients: ClientsDep, guard: GuardDep,
                          key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.PublishListing, tpb.PublishListingRequest(
        idempotency_key=key, listing_id=listing_id), user=guard.user)
    return listing_view(reply.listing, guard)


@router.post("/{listing_id}/cancel", response_model=ListingPublic, responses=ERRORS)
async def cancel_listing(listing_id: str, body: CancelCreate, clients: ClientsDep, guard: GuardDep,
                         key: IdempotencyKey) -> ListingPublic:
    await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.CancelListing, tpb.CancelListingRequest(
        idempotency_key=key, listing_id=listing_id, reason=body.reason), user=guard.user)
    return listing_view(reply.listing, guard)


@router.post("/{listing_id}/reserve-price", response_model=ListingPublic, responses=ERRORS)
async def enter_reserve_price(listing_id: str, body: ReservePriceCreate, clients: ClientsDep, guard: GuardDep,
                              key: IdempotencyKey) -> ListingPublic:
    """First of the dual control: the amount never comes back before opening."""
    await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.EnterReservePrice, tpb.EnterReservePriceRequest(
        idempotency_key=key, listing_id=listing_id, reserve_price=money(body.reserve_price_fen)), user=guard.user)
    return listing_view(reply.listing, guard)


@router.post("/{listing_id}/reserve-price/approve", response_model=ListingPublic, responses=ERRORS)
async def approve_reserve_price(listing_id: str, clients: ClientsDep, guard: GuardDep,
                                key: IdempotencyKey) -> ListingPublic:
    """Second of the dual control, by another principal of the listing agency (another of its API keys):
    trading refuses the principal who entered it with 409."""
    await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.ApproveReservePrice, tpb.ApproveReservePriceRequest(
        idempotency_key=key, listing_id=listing_id), user=guard.user)
    return listing_view(reply.listing, guard)


@router.post("/{listing_id}/increment", response_model=IncrementChanged, responses=ERRORS)
async def change_increment(listing_id: str, body: IncrementChange, clients: ClientsDep, guard: GuardDep,
                           key: IdempotencyKey) -> IncrementChanged:
    """增价幅度 of a 挂牌 listing (open or in its live round) or a running 拍卖, by the listing agency: announced
    as a change notice and pushed to every viewer of the sale's live stream."""
    listing = await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.ChangeIncrement, tpb.ChangeIncrementRequest(
        idempotency_key=key, listing_id=listing_id, increment=money(body.increment_fen), reason=body.reason),
        user=guard.user)
    return IncrementChanged(state=sale_state_view(reply.state, listing, guard),
                            notice=from_proto(ChangeNoticePublic, reply.notice))


# ---------------------------------------------------------------- registration
@router.post("/{listing_id}/registrations", response_model=RegistrationPublic, status_code=201, responses=ERRORS)
async def register_bidder(listing_id: str, body: RegistrationCreate, clients: ClientsDep, guard: GuardDep,
                          key: IdempotencyKey) -> RegistrationPublic:
    """Register the own enterprise: eligibility is checked and the deposit held in the ledger."""
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.RegisterBidder, tpb.RegisterBidderRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code,
        guarantee=money(body.guarantee_fen)), user=guard.user)
    return from_proto(RegistrationPublic, reply.registration)


async def participants_listing(clients: ServiceClients, guard: Guard, listing_id: str) -> tpb.Listing:
    """The listing whose participants the caller asks about, when the policy lets it know them now."""
    listing = await visible_listing(clients, guard, listing_id)
    guard.require(agency_of(listing))
    if not sees_participants(guard, listing):
        raise forbidden("who takes part in this sale is not disclosed to you at this stage")
    return listing


@router.get("/{listing_id}/registrations", response_model=PageOf[RegistrationPublic], responses=ERRORS)
async def list_registrations(listing_id: str, clients: ClientsDep, guard: GuardDep, page: PageDep) -> dict:
    """Who registered: per the policy's `participants.*` rules for the sale's phase."""
    await participants_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.ListRegistrations, tpb.ListRegistrationsRequest(
        listing_id=listing_id, page=page), user=guard.user)
    return {"data": [from_proto(RegistrationPublic, r) for r in reply.registrations], **page_out(reply)}


@router.get("/{listing_id}/registrations/{credit_code}", response_model=RegistrationPublic, responses=ERRORS)
async def get_registration(listing_id: str, credit_code: str, clients: ClientsDep,
                           guard: GuardDep) -> RegistrationPublic:
    """An enterprise's own registration; others' per the `participants.*` rules (no oracle before then)."""
    if not guard.subject.owns(Owner.enterprise(credit_code)):
        await participants_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.GetRegistration, tpb.GetRegistrationRequest(
        listing_id=listing_id, credit_code=credit_code), user=guard.user)
    return from_proto(RegistrationPublic, reply.registration)


@router.post("/{listing_id}/registrations/{credit_code}/continue", response_model=RegistrationPublic,
             responses=ERRORS)
async def confirm_continue(listing_id: str, credit_code: str, clients: ClientsDep, guard: GuardDep,
                           key: IdempotencyKey) -> RegistrationPublic:
    """Confirm taking part in the live round (挂牌 → 限时竞价), or again after a change notice."""
    reply = await clients.call(clients.trading.ConfirmContinue, tpb.ConfirmContinueRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=credit_code), user=guard.user)
    return from_proto(RegistrationPublic, reply.registration)


# ---------------------------------------------------------------- bids
@router.post("/{listing_id}/bids", response_model=BidPlaced, status_code=201, responses=ERRORS)
async def place_bid(listing_id: str, body: BidCreate, clients: ClientsDep, guard: GuardDep,
                    key: IdempotencyKey) -> BidPlaced:
    """A bid of the own enterprise. One above the sale's price collar needs `confirm_high_price`."""
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.PlaceBid, tpb.PlaceBidRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity_lots=body.quantity_lots, tender_document=body.tender_document,
        confirm_high_price=body.confirm_high_price), user=guard.user)
    state = from_proto(SaleStatePublic, reply.state) if reply.HasField("state") else None
    if state is not None and reply.bid.sealed:  # a sealed bid: the sale's counts stay sealed to its bidder too
        seal_counts(state)
    return BidPlaced(bid=bid_view(reply.bid, guard), state=state)


@router.get("/{listing_id}/bids", response_model=PageOf[BidPublic], responses=ERRORS)
async def list_bids(listing_id: str, clients: ClientsDep, guard: GuardDep, page: PageDep,
                    credit_code: Annotated[str, Query(max_length=18)] = "") -> dict:
    """An enterprise: its own bids. Others: per the `participants.*` rules for the sale's phase."""
    bidder = Owner.enterprise(guard.subject.id)
    if guard.scope().owner == bidder:  # a bidder's own bids only
        if credit_code and Owner.enterprise(credit_code) != bidder:
            raise forbidden("you may only see your own bids")
        credit_code, identities = bidder.id, False
    else:  # the listing's: its agency (own), the trading centre and regulators, by the sale's phase
        await participants_listing(clients, guard, listing_id)
        identities = True
    reply = await clients.call(clients.trading.ListBids, tpb.ListBidsRequest(
        listing_id=listing_id, credit_code=credit_code, page=page), user=guard.user)
    return {"data": [bid_view(b, guard, identities=identities) for b in reply.bids], **page_out(reply)}


@router.post("/{listing_id}/award/confirm", response_model=TradePublic, responses=ERRORS)
async def confirm_award(listing_id: str, body: CreditCodeBody, clients: ClientsDep, guard: GuardDep,
                        key: IdempotencyKey) -> TradePublic:
    """The winner signs the 成交确认书."""
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.ConfirmAward, tpb.ConfirmAwardRequest(
        idempotency_key=key, listing_id=listing_id, credit_code=body.credit_code), user=guard.user)
    return from_proto(TradePublic, reply.trade)


@router.post("/{listing_id}/award/default", response_model=SaleResultPublic, responses=ERRORS)
async def declare_default(listing_id: str, body: CancelCreate, clients: ClientsDep, guard: GuardDep,
                          key: IdempotencyKey) -> SaleResultPublic:
    """The listing agency records that the winner did not sign its 成交确认书: the winner's deposit is forfeited
    and the award goes to the next bidder where the mechanism has one (挂牌, 招标), else the sale is unsold."""
    listing = await owned_listing(clients, guard, listing_id)
    reply = await clients.call(clients.trading.DeclareDefault, tpb.DeclareDefaultRequest(
        idempotency_key=key, listing_id=listing_id, reason=body.reason), user=guard.user)
    return result_view(reply.result, listing, guard)


bids_router = APIRouter(prefix="/bids", tags=["listings"])


@bids_router.post("/{bid_id}/withdraw", response_model=BidPublic, responses=ERRORS)
async def withdraw_bid(bid_id: str, body: CreditCodeBody, clients: ClientsDep, guard: GuardDep,
                       key: IdempotencyKey) -> BidPublic:
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.WithdrawBid, tpb.WithdrawBidRequest(
        idempotency_key=key, bid_id=bid_id, credit_code=body.credit_code), user=guard.user)
    return bid_view(reply.bid, guard)


@bids_router.post("/{bid_id}/modify", response_model=BidPublic, responses=ERRORS)
async def modify_bid(bid_id: str, body: BidChange, clients: ClientsDep, guard: GuardDep,
                     key: IdempotencyKey) -> BidPublic:
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.ModifyBid, tpb.ModifyBidRequest(
        idempotency_key=key, bid_id=bid_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity_lots=body.quantity_lots), user=guard.user)
    return bid_view(reply.bid, guard)
