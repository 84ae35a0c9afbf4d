"""TradingService over gRPC: requests → use cases → responses. No business rules and no authorization
here: who may do what is checked by the use cases (services/trading/authorization.yaml) and what a
response may show (reserve, sealed amounts, identities) by application/views.py and disclosure.py."""

from __future__ import annotations

from datetime import datetime

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.errors import InvalidArgument
from services.common.journal_check import JournalCheck
from services.common.proto_convert import from_timestamp, page_after, page_size, page_token, timestamp
from services.trading.adapters.grpc.market import MarketRpcs
from services.trading.application.trading import Trading

MECHANISM = {pb.MECHANISM_LISTING: "listing", pb.MECHANISM_ENGLISH: "english", pb.MECHANISM_TENDER: "tender",
             pb.MECHANISM_UNIFORM_PRICE: "uniform_price"}
MECHANISM_PB = {v: k for k, v in MECHANISM.items()}
STATE_PB = {"draft": pb.LISTING_STATE_DRAFT, "announced": pb.LISTING_STATE_ANNOUNCED,
            "bidding": pb.LISTING_STATE_BIDDING, "live_round": pb.LISTING_STATE_LIVE_ROUND,
            "closed": pb.LISTING_STATE_CLOSED, "awarded": pb.LISTING_STATE_AWARDED,
            "unsold": pb.LISTING_STATE_UNSOLD, "cancelled": pb.LISTING_STATE_CANCELLED,
            "settled": pb.LISTING_STATE_SETTLED}
STATE = {v: k for k, v in STATE_PB.items()}
REG_PB = {"qualified": pb.REGISTRATION_STATE_QUALIFIED, "refused": pb.REGISTRATION_STATE_REFUSED,
          "withdrawn": pb.REGISTRATION_STATE_WITHDRAWN, "needs_confirmation": pb.REGISTRATION_STATE_NEEDS_CONFIRMATION}
BID_PB = {"draft": pb.BID_STATE_DRAFT, "accepted": pb.BID_STATE_ACCEPTED, "refused": pb.BID_STATE_REFUSED,
          "withdrawn": pb.BID_STATE_WITHDRAWN, "superseded": pb.BID_STATE_SUPERSEDED}
SETTLE_PB = {"executed": pb.SETTLEMENT_STATE_EXECUTED, "settling": pb.SETTLEMENT_STATE_SETTLING,
             "settled": pb.SETTLEMENT_STATE_SETTLED, "failed": pb.SETTLEMENT_STATE_FAILED}
SETTLE = {v: k for k, v in SETTLE_PB.items()}

def money(fen: int | None) -> common_pb2.Money | None:
    return None if fen is None else common_pb2.Money(fen=fen, currency="CNY")


def ts(value) -> object:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return timestamp(value)


def listing_pb(v: dict) -> pb.Listing:
    rules, el, perf = v["rules"], v["eligibility"], v["performance"]
    return pb.Listing(
        listing_id=v["listing_id"], trade_code=v["trade_code"], mechanism=MECHANISM_PB.get(v["mechanism"], 0),
        state=STATE_PB[v["state"]], agency_id=v["agency_id"], resource_id=v["resource_id"],
        instrument=v["instrument"], quantity=common_pb2.Quantity(value=v["quantity"], unit=v["unit"]),
        title=v["title"], description=v["description"],
        rules=pb.ListingRules(start_price=money(rules.get("start_price")), increment=money(rules.get("increment")),
                              deposit=money(rules.get("deposit", 0)),
                              countdown_seconds=rules.get("countdown_seconds", 0),
                              min_bidders=rules.get("min_bidders", 0), hard_stop=ts(rules.get("hard_stop")),
                              **_auction_rules_pb(rules, v["unit"])),
        eligibility=pb.Eligibility(allowed_classes=el.get("allowed_classes", []), sale_kind=el.get("sale_kind", ""),
                                   region_prefixes=el.get("region_prefixes", []),
                                   industry_prefixes=el.get("industry_prefixes", []),
                                   standard_land_conditions=el.get("standard_land_conditions", {})),
        performance=pb.PerformanceTerms(start_production_by=ts(perf.get("start_production_by")),
                                        reach_output_by=ts(perf.get("reach_output_by")),
                                        checks=perf.get("checks", {})),
        announce_at=ts(v["announce_at"]), bidding_opens_at=ts(v["bidding_opens_at"]),
        bidding_closes_at=ts(v["bidding_closes_at"]), opening_at=ts(v["opening_at"]), version=v["version"],
        reserve_set=v["reserve_set"], reserve_price=money(v["reserve_fen"]), documents=v["documents"],
        created_at=ts(v["created_at"]), published_at=ts(v["published_at"]))


def listing_spec(listing: pb.Listing) -> dict:
    r, e, p = listing.rules, listing.eligibility, listing.performance
    rules = {"start_price": r.start_price.fen, "increment": r.increment.fen, "deposit": r.deposit.fen}
    if r.countdown_seconds:
        rules["countdown_seconds"] = r.countdown_seconds
    if r.min_bidders:
        rules["min_bidders"] = r.min_bidders
    if r.HasField("hard_stop"):
        rules["hard_stop"] = from_timestamp(r.hard_stop).isoformat()
    rules |= _auction_rules(r)
    return dict(
        mechanism=MECHANISM.get(listing.mechanism, ""), agency_id=listing.agency_id, resource_id=listing.resource_id,
        instrument=listing.instrument, quantity=listing.quantity.value, unit=listing.quantity.unit,
        title=listing.title, description=listing.description, rules=rules,
        eligibility={"allowed_classes": list(e.allowed_classes), "sale_kind": e.sale_kind,
                     "region_prefixes": list(e.region_prefixes), "industry_prefixes": list(e.industry_prefixes),
                     "standard_land_conditions": dict(e.standard_land_conditions)},
        performance={"start_production_by": _iso(p.start_production_by), "reach_output_by": _iso(p.reach_output_by),
                     "checks": dict(p.checks)},
        documents=list(listing.documents), announce_at=from_timestamp(listing.announce_at),
        bidding_opens_at=from_timestamp(listing.bidding_opens_at),
        bidding_closes_at=from_timestamp(listing.bidding_closes_at), opening_at=from_timestamp(listing.opening_at))


_AUCTION_RULES = ("supply_lots", "lot_size", "bidder_cap_lots", "clearing_rule", "award_rule", "price_weight",
                  "evaluation_weight", "statistics_delay_seconds", "min_cover_bp", "min_price_to_reference_bp")


def _auction_rules(r: pb.ListingRules) -> dict:
    # Rules of the auction mechanisms (application/auctions.py); the seed is generated by the service.
    rules: dict = {name: getattr(r, name) for name in _AUCTION_RULES if getattr(r, name)}
    if r.reference_price.fen:
        rules["reference_price"] = r.reference_price.fen
    if r.reserve_floor.fen:
        rules["reserve_floor"] = r.reserve_floor.fen
    if r.affiliations:
        rules["affiliations"] = dict(r.affiliations)
    if r.holding_limit.value:
        rules["holding_limit"] = r.holding_limit.value
        if r.holding_limit.unit:  # checked against the listing's unit
            rules["holding_limit_unit"] = r.holding_limit.unit
    if r.rollover_from:
        rules["rollover_from"] = list(r.rollover_from)
    return rules


# Uniform-price supply as the service records it (never taken from a request).
_QUOTA_SUPPLY_OUT = ("rollover_lots", "unsold_lots", "rolled_into")


def _auction_rules_pb(rules: dict, unit: str) -> dict:
    out = {name: rules[name] for name in (*_AUCTION_RULES, *_QUOTA_SUPPLY_OUT, "seed_digest", "seed")
           if rules.get(name)}
    for name in ("reference_price", "reserve_floor"):
        if rules.get(name):
            out[name] = money(rules[name])
    if rules.get("affiliations"):
        out["affiliations"] = rules["affiliations"]
    if rules.get("holding_limit"):
        out["holding_limit"] = common_pb2.Quantity(value=rules["holding_limit"], unit=unit)
    if rules.get("rollover_from"):
        out["rollover_from"] = rules["rollover_from"]
        out["rolled_over"] = [pb.RolledOverLots(listing_id=x["listing_id"], lots=x["lots"])
                              for x in rules.get("rollover") or []]
    return out


def _iso(value) -> str | None:
    moment = from_timestamp(value)
    return moment.isoformat() if moment else None


def registration_pb(v: dict) -> pb.Registration:
    return pb.Registration(
        registration_id=v["registration_id"], listing_id=v["listing_id"], credit_code=v["credit_code"],
        bidder_number=v["bidder_number"], state=REG_PB[v["state"]], eligibility_rule=v["eligibility_rule"],
        eligibility_detail=v["eligibility_detail"], deposit_hold_id=v["deposit_hold_id"],
        deposit=money(v["deposit_fen"]), deposit_state=v["deposit_state"], confirmed_continue=v["confirmed_continue"],
        registered_at=ts(v["registered_at"]))


def bid_pb(v: dict) -> pb.Bid:
    return pb.Bid(bid_id=v["bid_id"], listing_id=v["listing_id"], bidder_number=v["bidder_number"],
                  credit_code=v["credit_code"], state=BID_PB[v["state"]],
                  price=money(v["price_fen"]) if v["price_fen"] else None, quantity_lots=v["quantity_lots"],
                  sealed=v["sealed"], receipt=v["receipt"], accepted_at=ts(v["accepted_at"]),
                  sequence=v["sequence"], refusal_reason=v["refusal_reason"], nonce=v.get("nonce", ""),
                  outcome=quota_outcome_pb(v["outcome"]) if v.get("outcome") else None)


def quota_outcome_pb(o: dict) -> pb.QuotaBidOutcome:
    return pb.QuotaBidOutcome(
        bid_id=o["bid_id"], price=money(o["price_fen"]), lots=o["lots"], lots_won=o["lots_won"], fill=o["fill"],
        reason=o["reason"], cut_by_purchase_cap_lots=o["cut_by_purchase_cap_lots"],
        cut_by_holding_limit_lots=o["cut_by_holding_limit_lots"], tied=o["tied"], draw_position=o["draw_position"],
        tied_bids=o["tied_bids"], tie_rank=o["tie_rank"])


def sale_state_pb(v: dict) -> pb.SaleState:
    return pb.SaleState(
        listing_id=v["listing_id"], state=STATE_PB[v["state"]], current_price=money(v["current_price_fen"]),
        leading_bidder_number=v["leading_bidder_number"], accepted_bids=v["accepted_bids"],
        registered_bidders=v["registered_bidders"], closes_at=ts(v["closes_at"]), server_time=ts(v["server_time"]),
        version=v["version"], next_minimum_bid=money(v["next_minimum_bid_fen"]),
        increment=money(v.get("increment_fen") or None))


def trade_pb(t: dict) -> pb.Trade:
    return pb.Trade(
        trade_id=t["trade_id"], trade_code=t["trade_code"], listing_id=t["listing_id"], instrument=t["instrument"],
        buyer_credit_code=t["buyer"], seller=t["seller"], quantity=common_pb2.Quantity(value=t["quantity"],
                                                                                         unit=t["unit"]),
        price=money(t["price_fen"]), amount=money(t["amount_fen"]), settlement_state=SETTLE_PB[t["settlement_state"]],
        settlement_operation_id=t["settlement_operation_id"], settlement_attempts=t["settlement_attempts"],
        settlement_error=t["settlement_error"], executed_at=ts(t["executed_at"]), settled_at=ts(t["settled_at"]),
        confirmed=t["confirmed"])


def result_pb(v: dict) -> pb.SaleResult:
    return pb.SaleResult(
        listing_id=v["listing_id"], outcome=v["outcome"], reason=v["reason"],
        clearing_price=money(v.get("clearing_price_fen")), winner_bidder_number=v.get("winner_bidder_number", ""),
        winner_credit_code=v.get("winner_credit_code", ""), statistics_published=v["statistics_published"],
        bid_count=v["bid_count"], bidder_count=v["bidder_count"], min_bid=money(v["min_bid_fen"]),
        max_bid=money(v["max_bid_fen"]), mean_bid=money(v["mean_bid_fen"]), median_bid=money(v["median_bid_fen"]),
        trade_id=v.get("trade_id", ""), decided_at=ts(v["decided_at"]), reserve_price=money(v["reserve_fen"]))


def unimplemented(name: str):
    async def method(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not available in this release")
    return method


class TradingServicer(MarketRpcs, trading_pb2_grpc.TradingServiceServicer):
    def __init__(self, trading: Trading, journal: JournalCheck) -> None:
        self.trading, self.journal = trading, journal

    # ------------------------------------------------------------ listings
    async def CreateListing(self, request, context):
        view = await self.trading.create_listing(request.idempotency_key, listing_spec(request.listing))
        return pb.CreateListingResponse(listing=listing_pb(view))

    async def UpdateListing(self, request, context):
        spec = listing_spec(request.listing)
        # Proto3 cannot tell "unset" from empty: only non-empty scalar fields count as changes.
        changes = {k: spec[k] for k in ("title", "description") if spec[k]}
        if request.listing.documents:
            changes["documents"] = spec["documents"]
        if request.listing.HasField("performance"):
            changes["performance"] = spec["performance"]
        if request.listing.HasField("eligibility"):
            changes["eligibility"] = spec["eligibility"]
        if request.listing.HasField("rules"):
            changes["rules"] = spec["rules"]
        for name in ("bidding_opens_at", "bidding_closes_at", "announce_at"):
            if request.listing.HasField(name):
                changes[name] = spec[name]
        view, notice = await self.trading.update_listing(request.idempotency_key, request.listing.listing_id,
                                                         changes, request.change_reason)
        return pb.UpdateListingResponse(listing=listing_pb(view), notice=notice_pb(notice) if notice else None)

    async def PublishListing(self, request, context):
        view = await self.trading.publish_listing(request.idempotency_key, request.listing_id)
        return pb.PublishListingResponse(listing=listing_pb(view))

    async def CancelListing(self, request, context):
        view = await self.trading.cancel_listing(request.idempotency_key, request.listing_id, request.reason)
        return pb.CancelListingResponse(listing=listing_pb(view))

    async def EnterReservePrice(self, request, context):
        view = await self.trading.enter_reserve(request.idempotency_key, request.listing_id,
                                                request.reserve_price.fen)
        return pb.EnterReservePriceResponse(listing=listing_pb(view))

    async def ApproveReservePrice(self, request, context):
        view = await self.trading.approve_reserve(request.idempotency_key, request.listing_id)
        return pb.ApproveReservePriceResponse(listing=listing_pb(view))

    async def ChangeIncrement(self, request, context):
        state, notice = await self.trading.change_increment(request.idempotency_key, request.listing_id,
                                                            request.increment.fen, request.reason)
        return pb.ChangeIncrementResponse(state=sale_state_pb(state), notice=notice_pb(notice))

    async def GetListing(self, request, context):
        return pb.GetListingResponse(listing=listing_pb(await self.trading.get_listing(request.listing_id)))

    async def ListListings(self, request, context):
        filters = {"mechanism": MECHANISM.get(request.mechanism, ""), "state": STATE.get(request.state, ""),
                   "agency_id": request.agency_id, "instrument": request.instrument}
        views, total = await self.trading.list_listings(filters, page_after(request.page), page_size(request.page))
        token = page_token(views[-1]["listing_id"]) if len(views) == page_size(request.page) else ""
        return pb.ListListingsResponse(listings=[listing_pb(v) for v in views],
                                       page=common_pb2.PageResponse(next_page_token=token, total_size=total))

    async def ListChangeNotices(self, request, context):
        notices = await self.trading.change_notices(request.listing_id)
        return pb.ListChangeNoticesResponse(notices=[notice_pb(n) for n in notices])

    # ------------------------------------------------------------ registration
    async def RegisterBidder(self, request, context):
        view = await self.trading.register(request.idempotency_key, request.listing_id, request.credit_code)
        return pb.RegisterBidderResponse(registration=registration_pb(view))

    async def GetRegistration(self, request, context):
        view = await self.trading.registration(request.listing_id, request.credit_code)
        return pb.GetRegistrationResponse(registration=registration_pb(view))

    async def ListRegistrations(self, request, context):
        views = await self.trading.registrations(request.listing_id, page_after(request.page),
                                                 page_size(request.page))
        token = page_token(views[-1]["bidder_number"]) if len(views) == page_size(request.page) else ""
        return pb.ListRegistrationsResponse(registrations=[registration_pb(v) for v in views],
                                            page=common_pb2.PageResponse(next_page_token=token))

    async def ConfirmContinue(self, request, context):
        view = await self.trading.confirm_continue(request.idempotency_key, request.listing_id, request.credit_code)
        return pb.ConfirmContinueResponse(registration=registration_pb(view))

    # ------------------------------------------------------------ bids
    async def CreateBid(self, request, context):
        view = await self.trading.create_bid(request.idempotency_key, request.listing_id, request.credit_code,
                                             request.price.fen)
        return pb.CreateBidResponse(bid=bid_pb(view))

    async def SubmitBid(self, request, context):
        view = await self.trading.submit_bid(request.idempotency_key, request.bid_id, request.credit_code,
                                             confirm_high_price=request.confirm_high_price)
        state = await self.trading.sale_state(view["listing_id"])
        return pb.SubmitBidResponse(bid=bid_pb(view), state=sale_state_pb(state))

    async def PlaceBid(self, request, context):
        view = await self.trading.place_bid(request.idempotency_key, request.listing_id, request.credit_code,
                                            request.price.fen, confirm_high_price=request.confirm_high_price)
        return pb.PlaceBidResponse(bid=bid_pb(view))

    async def ListBids(self, request, context):
        after = page_after(request.page)
        views = await self.trading.list_bids(request.listing_id, request.credit_code, int(after or 0),
                                             page_size(request.page))
        token = page_token(str(views[-1]["sequence"])) if len(views) == page_size(request.page) else ""
        return pb.ListBidsResponse(bids=[bid_pb(v) for v in views], page=common_pb2.PageResponse(next_page_token=token))

    async def GetSaleState(self, request, context):
        return pb.GetSaleStateResponse(state=sale_state_pb(await self.trading.sale_state(request.listing_id)))

    async def GetSaleResult(self, request, context):
        return pb.GetSaleResultResponse(result=result_pb(await self.trading.sale_result(request.listing_id)))

    # ------------------------------------------------------------ awards and trades
    async def ConfirmAward(self, request, context):
        trade = await self.trading.confirm_award(request.idempotency_key, request.listing_id, request.credit_code)
        return pb.ConfirmAwardResponse(trade=trade_pb(trade))

    async def DeclareDefault(self, request, context):
        result = await self.trading.declare_default(request.idempotency_key, request.listing_id, request.reason)
        return pb.DeclareDefaultResponse(result=result_pb(result))

    async def GetTrade(self, request, context):
        return pb.GetTradeResponse(trade=trade_pb(await self.trading.trade(request.trade_id)))

    async def ListTrades(self, request, context):
        filters = {"credit_code": request.credit_code, "instrument": request.instrument,
                   "state": SETTLE.get(request.settlement_state, ""), "listing_id": request.listing_id}
        trades, total = await self.trading.trades(filters, page_after(request.page), page_size(request.page))
        token = page_token(trades[-1]["trade_id"]) if len(trades) == page_size(request.page) else ""
        return pb.ListTradesResponse(trades=[trade_pb(t) for t in trades],
                                     page=common_pb2.PageResponse(next_page_token=token, total_size=total))

    # ------------------------------------------------------------ record
    async def VerifyAuditJournal(self, request, context):
        result = await self.journal.verify()
        return pb.VerifyAuditJournalResponse(intact=result.intact, entries_checked=result.entries_checked,
                                             first_broken_sequence=result.first_broken_sequence,
                                             problem=result.problem)

    # Mechanisms whose state machines exist in the domain but are not wired to the service yet.
    ModifyBid = unimplemented("ModifyBid")
    WithdrawBid = unimplemented("WithdrawBid")


def notice_pb(n: dict) -> pb.ChangeNotice:
    return pb.ChangeNotice(listing_id=n["listing_id"], version=n["version"], reason=n["reason"],
                           changed_fields=[f for f in n["changed_fields"].split(",") if f],
                           published_at=ts(n["published_at"]), bids_invalidated=n["bids_invalidated"],
                           increment=money(n.get("increment_fen") or None),
                           previous_increment=money(n.get("previous_increment_fen") or None))


def register(server: grpc.aio.Server, servicer: TradingServicer) -> None:
    trading_pb2_grpc.add_TradingServiceServicer_to_server(servicer, server)


__all__ = ["InvalidArgument", "TradingServicer", "register"]
