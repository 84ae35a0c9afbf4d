"""The continuous quota market: public books; enterprises place, amend and cancel their own orders."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Query
from yaosu.trading.v1 import trading_pb2 as tpb

from services.common.authz import Owner
from services.gateway.api.authz import Guard, GuardDep
from services.gateway.api.common import money, not_found
from services.gateway.api.deps import ClientsDep, IdempotencyKey
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

router = APIRouter(tags=["markets"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)
SIDE = {"buy": tpb.SIDE_BUY, "sell": tpb.SIDE_SELL}
TYPE = {"limit": tpb.ORDER_TYPE_LIMIT, "market": tpb.ORDER_TYPE_MARKET, "level": tpb.ORDER_TYPE_LEVEL}


@router.get("/markets", response_model=list[MarketPublic], responses=ERRORS)
async def list_markets(clients: ClientsDep, guard: GuardDep) -> list[MarketPublic]:
    reply = await clients.call(clients.trading.ListMarkets, tpb.ListMarketsRequest(), user=guard.user)
    return [from_proto(MarketPublic, m) for m in reply.markets]


@router.get("/markets/{instrument}/book", response_model=OrderBookPublic, responses=ERRORS)
async def get_order_book(instrument: str, clients: ClientsDep, guard: GuardDep,
                         depth: Annotated[int, Query(ge=1, le=50)] = 10) -> OrderBookPublic:
    """Price levels only, best first and numbered (`level`, what a level order names), with their quantities
    and order counts: who rests an order is never shown."""
    reply = await clients.call(clients.trading.GetOrderBook, tpb.GetOrderBookRequest(
        instrument=instrument, depth=depth), user=guard.user)
    return from_proto(OrderBookPublic, reply)


@router.post("/orders", response_model=OrderPlaced, status_code=201, responses=ERRORS)
async def place_order(body: OrderCreate, clients: ClientsDep, guard: GuardDep,
                      key: IdempotencyKey) -> OrderPlaced:
    """Place an order (limit, market, or level: the 挂牌协议 taker's choice of one of the best levels)."""
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.PlaceOrder, tpb.PlaceOrderRequest(
        idempotency_key=key, instrument=body.instrument, credit_code=body.credit_code, side=SIDE[body.side],
        type=TYPE[body.type], price=money(body.price_fen) if body.type != "market" else None,
        quantity=body.quantity, level=body.level), user=guard.user)
    return OrderPlaced(order=from_proto(OrderPublic, reply.order),
                       trades=[trade_view(t, guard) for t in reply.trades])


@router.post("/orders/{order_id}/cancel", response_model=OrderPublic, responses=ERRORS)
async def cancel_order(order_id: str, body: CreditCodeBody, clients: ClientsDep, guard: GuardDep,
                       key: IdempotencyKey) -> OrderPublic:
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.CancelOrder, tpb.CancelOrderRequest(
        idempotency_key=key, order_id=order_id, credit_code=body.credit_code), user=guard.user)
    return from_proto(OrderPublic, reply.order)


@router.post("/orders/{order_id}/amend", response_model=OrderPlaced, responses=ERRORS)
async def amend_order(order_id: str, body: OrderAmend, clients: ClientsDep, guard: GuardDep,
                      key: IdempotencyKey) -> OrderPlaced:
    guard.require(Owner.enterprise(body.credit_code))
    reply = await clients.call(clients.trading.AmendOrder, tpb.AmendOrderRequest(
        idempotency_key=key, order_id=order_id, credit_code=body.credit_code, price=money(body.price_fen),
        quantity=body.quantity), user=guard.user)
    return OrderPlaced(order=from_proto(OrderPublic, reply.order),
                       trades=[trade_view(t, guard) for t in reply.trades])


def parties(trade: tpb.Trade) -> tuple[Owner, ...]:
    """The buying enterprise; the seller, an enterprise (order book) or the listing agency (a sale)."""
    return Owner.enterprise(trade.buyer_credit_code), Owner.enterprise(trade.seller), Owner.agency(trade.seller)


def trade_view(trade: tpb.Trade, guard: Guard) -> TradePublic:
    """Of an order-book trade each party sees its own side; the other side only whom the policy shows it
    (`trade.counterparty`). A sale's buyer and seller are published with its result."""
    view = from_proto(TradePublic, trade)
    if trade.listing_id or guard.allows("trade.counterparty"):
        return view
    if not guard.subject.owns(Owner.enterprise(trade.buyer_credit_code)):
        view.buyer_credit_code = ""
    if not guard.subject.owns(Owner.enterprise(trade.seller)):
        view.seller = ""
    return view


@router.get("/trades/{trade_id}", response_model=TradePublic, responses=ERRORS)
async def get_trade(trade_id: str, clients: ClientsDep, guard: GuardDep) -> TradePublic:
    """A party's trade, or any for regulators; somebody else's answers 404 like a missing one."""
    try:
        trade = (await clients.call(clients.trading.GetTrade, tpb.GetTradeRequest(trade_id=trade_id),
                                    user=guard.user)).trade
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.PERMISSION_DENIED:  # trading's own refusal: no oracle either
            raise not_found("no such trade") from None
        raise
    guard.require(*parties(trade), conceal="no such trade")
    return trade_view(trade, guard)
