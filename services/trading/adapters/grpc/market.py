"""The continuous-market RPCs of TradingService (PlaceOrder … GetMarketStatistics), as a mixin the
servicer inherits; the use cases are in application/market.py. `market` is set by the composition root."""

from __future__ import annotations

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.trading.v1 import trading_pb2 as pb

from services.common.proto_convert import from_timestamp, page_after, page_size, page_token

SIDE = {pb.SIDE_BUY: "buy", pb.SIDE_SELL: "sell"}
SIDE_PB = {v: k for k, v in SIDE.items()}
TYPE = {pb.ORDER_TYPE_UNSPECIFIED: "limit", pb.ORDER_TYPE_LIMIT: "limit", pb.ORDER_TYPE_MARKET: "market",
        pb.ORDER_TYPE_LEVEL: "level"}
TYPE_PB = {"limit": pb.ORDER_TYPE_LIMIT, "market": pb.ORDER_TYPE_MARKET, "level": pb.ORDER_TYPE_LEVEL}
ORDER_STATE_PB = {"open": pb.ORDER_STATE_OPEN, "partially_filled": pb.ORDER_STATE_PARTIALLY_FILLED,
                  "filled": pb.ORDER_STATE_FILLED, "cancelled": pb.ORDER_STATE_CANCELLED,
                  "rejected": pb.ORDER_STATE_REJECTED}


def _money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def order_pb(o: dict) -> pb.Order:
    from services.trading.adapters.grpc.servicer import ts
    return pb.Order(order_id=o["order_id"], instrument=o["instrument"], credit_code=o["credit_code"],
                    side=SIDE_PB[o["side"]], type=TYPE_PB[o["type"]],
                    price=_money(o["price_fen"]) if o["price_fen"] else None, quantity=o["quantity"],
                    filled=o["filled"], state=ORDER_STATE_PB[o["state"]], reject_reason=o["reject_reason"],
                    created_at=ts(o["created_at"]), block=o["block"], counterparty=o.get("counterparty", ""))


def _trades_pb(trades: list[dict]) -> list:
    from services.trading.adapters.grpc.servicer import trade_pb
    return [trade_pb(t) for t in trades]


class MarketRpcs:
    market = None  # application.market.Markets, set by the composition root

    async def _markets(self, context):
        if self.market is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "continuous markets are not configured")
        return self.market

    async def PlaceOrder(self, request, context):
        markets = await self._markets(context)
        result = await markets.place(request.idempotency_key, request.instrument, request.credit_code,
                                     SIDE.get(request.side, ""), TYPE.get(request.type, ""), request.price.fen,
                                     request.quantity, block=request.block, counterparty=request.counterparty,
                                     level=request.level)
        return pb.PlaceOrderResponse(order=order_pb(result["order"]), trades=_trades_pb(result["trades"]))

    async def CancelOrder(self, request, context):
        markets = await self._markets(context)
        result = await markets.cancel(request.idempotency_key, request.order_id, request.credit_code)
        return pb.CancelOrderResponse(order=order_pb(result["order"]))

    async def AmendOrder(self, request, context):
        markets = await self._markets(context)
        result = await markets.amend(request.idempotency_key, request.order_id, request.credit_code,
                                     request.price.fen, request.quantity)
        return pb.AmendOrderResponse(order=order_pb(result["order"]), trades=_trades_pb(result["trades"]))

    async def ListOrders(self, request, context):
        markets = await self._markets(context)
        size = page_size(request.page)
        orders = await markets.list_orders(request.credit_code, request.instrument, request.open_only,
                                           page_after(request.page), size)
        token = page_token(orders[-1]["order_id"]) if len(orders) == size else ""
        return pb.ListOrdersResponse(orders=[order_pb(o) for o in orders],
                                     page=common_pb2.PageResponse(next_page_token=token))

    async def GetOrderBook(self, request, context):
        from services.trading.adapters.grpc.servicer import ts
        markets = await self._markets(context)
        b = await markets.book(request.instrument, request.depth)
        return pb.GetOrderBookResponse(
            instrument=b["instrument"],
            bids=[pb.PriceLevel(price=_money(p), quantity=q, orders=n, level=i)
                  for i, (p, q, n) in enumerate(b["bids"], start=1)],
            asks=[pb.PriceLevel(price=_money(p), quantity=q, orders=n, level=i)
                  for i, (p, q, n) in enumerate(b["asks"], start=1)],
            last_price=_money(b["last_price_fen"]) if b["last_price_fen"] else None,
            previous_close=_money(b["previous_close_fen"]),
            band_low=_money(b["band_low_fen"]) if b["band_low_fen"] else None,
            band_high=_money(b["band_high_fen"]) if b["band_high_fen"] else None,
            open=b["open"], server_time=ts(b["server_time"]), taker_levels=b["taker_levels"])

    async def ListMarkets(self, request, context):
        markets = await self._markets(context)
        return pb.ListMarketsResponse(markets=[pb.Market(
            instrument=m["instrument"], name=m["name"], unit=m["unit"], lot_size=m["lot_size"],
            previous_close=_money(m["previous_close_fen"]),
            last_price=_money(m["last_price_fen"]) if m["last_price_fen"] else None,
            volume_today=m["volume_today"], open=m["open"], trade_code=m["trade_code"])
            for m in await markets.list_markets()])

    async def GetMarketStatistics(self, request, context):
        markets = await self._markets(context)
        since = from_timestamp(request.since) if request.HasField("since") else None
        s = await markets.statistics(since)
        return pb.GetMarketStatisticsResponse(
            instruments=[pb.InstrumentStatistics(
                instrument=i["instrument"], trades=i["trades"], volume=int(i["volume"]), value=_money(i["value_fen"]),
                vwap=_money(i["vwap_fen"]), high=_money(i["high_fen"]), low=_money(i["low_fen"]))
                for i in s["instruments"]],
            open_sales=s["open_sales"], settlement_backlog=s["settlement_backlog"],
            sales_by_state=s["sales_by_state"], single_bidder_sales=s["single_bidder_sales"])
