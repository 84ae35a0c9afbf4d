"""The RPCs of the auction mechanisms (English, tender, uniform-price): the servicer routes a call here when
its listing (or the requested mechanism) is one of them, and to the 挂牌 use cases otherwise."""

from __future__ import annotations

from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.proto_convert import page_after, page_size, page_token
from services.trading.adapters.grpc.servicer import (
    MECHANISM,
    TradingServicer,
    bid_pb,
    listing_pb,
    listing_spec,
    money,
    notice_pb,
    quota_outcome_pb,
    registration_pb,
    result_pb,
    sale_state_pb,
)
from services.trading.application.auctions import AUCTIONS, Auctions


class AuctionServicer(TradingServicer):
    def __init__(self, *args, auctions: Auctions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.auctions = auctions

    async def CreateListing(self, request, context):
        if MECHANISM.get(request.listing.mechanism, "") not in AUCTIONS:
            return await super().CreateListing(request, context)
        view = await self.auctions.create_listing(request.idempotency_key, listing_spec(request.listing))
        return pb.CreateListingResponse(listing=listing_pb(view))

    async def PublishListing(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().PublishListing(request, context)
        view = await self.auctions.publish_listing(request.idempotency_key, request.listing_id)
        return pb.PublishListingResponse(listing=listing_pb(view))

    async def EnterReservePrice(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().EnterReservePrice(request, context)
        view = await self.auctions.enter_reserve(request.idempotency_key, request.listing_id,
                                                 request.reserve_price.fen)
        return pb.EnterReservePriceResponse(listing=listing_pb(view))

    async def ApproveReservePrice(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().ApproveReservePrice(request, context)
        view = await self.auctions.approve_reserve(request.idempotency_key, request.listing_id)
        return pb.ApproveReservePriceResponse(listing=listing_pb(view))

    async def ChangeIncrement(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().ChangeIncrement(request, context)
        state, notice = await self.auctions.change_increment(request.idempotency_key, request.listing_id,
                                                             request.increment.fen, request.reason)
        return pb.ChangeIncrementResponse(state=sale_state_pb(state), notice=notice_pb(notice))

    async def GetListing(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().GetListing(request, context)
        return pb.GetListingResponse(listing=listing_pb(await self.auctions.get_listing(request.listing_id)))

    async def RegisterBidder(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().RegisterBidder(request, context)
        view = await self.auctions.register(request.idempotency_key, request.listing_id, request.credit_code,
                                            request.guarantee.fen)
        return pb.RegisterBidderResponse(registration=registration_pb(view))

    async def CreateBid(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().CreateBid(request, context)
        view = await self.auctions.create_bid(request.idempotency_key, request.listing_id, request.credit_code,
                                              request.price.fen, request.quantity_lots)
        return pb.CreateBidResponse(bid=bid_pb(view))

    async def SubmitBid(self, request, context):
        listing_id = await self.auctions.listing_of_bid(request.bid_id)
        if not await self.auctions.owns(listing_id):
            return await super().SubmitBid(request, context)
        view = await self.auctions.submit_bid(request.idempotency_key, request.bid_id, request.credit_code,
                                              confirm_high_price=request.confirm_high_price)
        return pb.SubmitBidResponse(bid=bid_pb(view), state=sale_state_pb(await self.auctions.sale_state(listing_id)))

    async def PlaceBid(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().PlaceBid(request, context)
        view = await self.auctions.place_bid(request.idempotency_key, request.listing_id, request.credit_code,
                                             request.price.fen, request.quantity_lots,
                                             confirm_high_price=request.confirm_high_price)
        state = await self.auctions.sale_state(request.listing_id)
        return pb.PlaceBidResponse(bid=bid_pb(view), state=sale_state_pb(state))

    async def ModifyBid(self, request, context):
        view = await self.auctions.modify_bid(request.idempotency_key, request.bid_id, request.credit_code,
                                              request.price.fen, request.quantity_lots,
                                              confirm_high_price=request.confirm_high_price)
        return pb.ModifyBidResponse(bid=bid_pb(view))

    async def WithdrawBid(self, request, context):
        view = await self.auctions.withdraw_bid(request.idempotency_key, request.bid_id, request.credit_code)
        return pb.WithdrawBidResponse(bid=bid_pb(view))

    async def ListBids(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().ListBids(request, context)
        views = await self.auctions.list_bids(request.listing_id, request.credit_code,
                                              int(page_after(request.page) or 0), page_size(request.page))
        token = page_token(str(views[-1]["sequence"])) if len(views) == page_size(request.page) else ""
        return pb.ListBidsResponse(bids=[bid_pb(v) for v in views], page=common_pb2.PageResponse(next_page_token=token))

    async def GetSaleState(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().GetSaleState(request, context)
        return pb.GetSaleStateResponse(state=sale_state_pb(await self.auctions.sale_state(request.listing_id)))

    async def GetSaleResult(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().GetSaleResult(request, context)
        v = await self.auctions.sale_result(request.listing_id)
        result = result_pb(v)
        result.volume_lots = v.get("volume_lots", 0)
        result.cover_ratio = v.get("cover_ratio", "")
        result.allocations.extend(pb.Allocation(bidder_number=a["bidder_number"], credit_code=a["credit_code"],
                                                lots=a["lots"], amount=money(a["amount_fen"]))
                                  for a in v["allocations"])
        if "supply_lots" in v:  # uniform-price: supply, unsold and carried lots, the tie draw, the caller's bids
            result.supply_lots, result.unsold_lots = v["supply_lots"], v["unsold_lots"]
            result.rollover_lots, result.rolled_into = v["rollover_lots"], v["rolled_into"]
            result.rolled_over.extend(pb.RolledOverLots(listing_id=x["listing_id"], lots=x["lots"])
                                      for x in v["rollover"])
            if v["tie_draw"]:
                draw = v["tie_draw"]
                result.tie_draw.CopyFrom(pb.TieDraw(price=money(draw["price_fen"]), lots=draw["lots"],
                                                    ranks=draw["ranks"]))
            result.own_bids.extend(quota_outcome_pb(o) for o in v["own_bids"])
        return pb.GetSaleResultResponse(result=result)

    async def DeclareDefault(self, request, context):
        if not await self.auctions.owns(request.listing_id):
            return await super().DeclareDefault(request, context)
        result = await self.auctions.declare_default(request.idempotency_key, request.listing_id, request.reason)
        return pb.DeclareDefaultResponse(result=result_pb(result))
