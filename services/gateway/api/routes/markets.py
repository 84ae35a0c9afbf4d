"""The continuous quota market: public books; enterprises place, amend and cancel their own orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.common import may_act_for, money, not_found
from services.gateway.api.deps import ClientsDep, CurrentUser, EnterpriseUser, IdempotencyKey, OptionalUser
from services.gateway.api.errors import problem_responses
from services.gateway.api.schemas import (
    CreditCodeBody,
    MarketPublic,
    OrderAmend,
    OrderBookPublic,
    OrderCreate,
    OrderPlaced,
    OrderPublic,
    TradePublic,
    from_proto,
)
from services.gateway.identity import Role, User

router = APIRouter(tags=["markets"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)
SIDE = {"buy": tpb.SIDE_BUY, "sell": tpb.SIDE_SELL}
TYPE = {"limit": tpb.ORDER_TYPE_LIMIT, "market": tpb.ORDER_TYPE_MARKET}


@router.get("/markets", response_model=list[MarketPublic], responses=ERRORS)
async def list_markets(clients: ClientsDep, user: OptionalUser) -> list[MarketPublic]:
    reply = await clients.call(clients.trading.ListMarkets, tpb.ListMarketsRequest(), user=user)
    return [from_proto(MarketPublic, m) for m in reply.markets]


@router.get("/markets/{instrument}/book", response_model=OrderBookPublic, responses=ERRORS)
async def get_order_book(instrument: str, clients: ClientsDep, user: OptionalUser,
                         depth: Annotated[int, Query(ge=1, le=50)] = 10) -> OrderBookPublic:
    """Price levels only: who rests an order is never shown."""
    reply = await clients.call(clients.trading.GetOrderBook, tpb.GetOrderBookRequest(
        instrument=instrument, depth=depth), user=user)
    return from_proto(OrderBookPublic, reply)


@router.post("/orders", response_model=OrderPlaced, status_code=201, responses=ERRORS)
async def place_order(body: OrderCreate, clients: ClientsDep, user: EnterpriseUser,
                      key: IdempotencyKey) -> OrderPlaced:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.PlaceOrder, tpb.PlaceOrderRequest(
        idempotency_key=key, instrument=body.instrument, credit_code=body.credit_code, side=SIDE[body.side],
        type=TYPE[body.type], price=money(body.price_fen) if body.type == "limit" else None,
        quantity=body.quantity), user=user)
    return OrderPlaced(order=from_proto(OrderPublic, reply.order),
                       trades=[trade_view(t, user) for t in reply.trades])


@router.post("/orders/{order_id}/cancel", response_model=OrderPublic, responses=ERRORS)
async def cancel_order(order_id: str, body: CreditCodeBody, clients: ClientsDep, user: EnterpriseUser,
                       key: IdempotencyKey) -> OrderPublic:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.CancelOrder, tpb.CancelOrderRequest(
        idempotency_key=key, order_id=order_id, credit_code=body.credit_code), user=user)
    return from_proto(OrderPublic, reply.order)


@router.post("/orders/{order_id}/amend", response_model=OrderPlaced, responses=ERRORS)
async def amend_order(order_id: str, body: OrderAmend, clients: ClientsDep, user: EnterpriseUser,
                      key: IdempotencyKey) -> OrderPlaced:
    may_act_for(user, body.credit_code)
    reply = await clients.call(clients.trading.AmendOrder, tpb.AmendOrderRequest(
        idempotency_key=key, order_id=order_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity=body.quantity), user=user)
    return OrderPlaced(order=from_proto(OrderPublic, reply.order),
                       trades=[trade_view(t, user) for t in reply.trades])


def trade_view(trade: tpb.Trade, user: User) -> TradePublic:
    """A counterparty sees its own side; the other side's identity only for regulators and the seller agency."""
    view = from_proto(TradePublic, trade)
    if user.reads_everything:
        return view
    if user.credit_code and trade.buyer_credit_code != user.credit_code:
        view.buyer_credit_code = ""
    if user.credit_code and trade.seller != user.credit_code and trade.listing_id == "":
        view.seller = ""
    return view


@router.get("/trades/{trade_id}", response_model=TradePublic, responses=ERRORS)
async def get_trade(trade_id: str, clients: ClientsDep, user: CurrentUser) -> TradePublic:
    trade = (await clients.call(clients.trading.GetTrade, tpb.GetTradeRequest(trade_id=trade_id), user=user)).trade
    parties = {trade.buyer_credit_code, trade.seller}
    if not (user.reads_everything or (user.role is Role.ENTERPRISE and user.credit_code in parties)
            or (user.role is Role.AGENCY and user.agency_id in parties)):
        raise not_found("no such trade")  # someone else's trade: do not confirm it exists
    return trade_view(trade, user)
