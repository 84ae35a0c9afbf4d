"""tracebook-conformance adapter for our matching core (services.trading.domain.matching).

In-process: `YaosuTracebookAdapter(config)` implements tracebook's EngineAdapter protocol.
Out of process: `python -m tests.unit.trading.tracebook_adapter --tracebook-stdio` speaks the
NDJSON protocol, so `tracebook-conformance campaign --candidate-cmd '…'` works too.

Translation: prices → integer ticks of `config.tick_size`; quantities → integer units of
10^-quantity_decimal_places; tracebook `reduce` → OrderBook.reduce (keeps priority), `replace`
→ OrderBook.replace (cancel-and-new, loses priority), `clear` → OrderBook.clear.
"""
from __future__ import annotations

import sys
from decimal import Decimal

from tracebook.conformance.model import (
    BookSnapshot,
    BookState,
    ConformanceConfig,
    EngineMetadata,
    Observation,
    Outcome,
    RestingOrder,
    TradeFill,
    canonical_decimal,
)
from tracebook.core.order import OrderSide, SelfTradePolicy
from tracebook.core.order import OrderType as TbOrderType
from tracebook.events import MarketEvent

from services.trading.domain.matching import OrderBook, OrderType, SelfTradePrevention

_TYPES = {
    TbOrderType.LIMIT: OrderType.LIMIT,
    TbOrderType.MARKET: OrderType.MARKET,
    TbOrderType.IOC: OrderType.IOC,
    TbOrderType.FOK: OrderType.FOK,
}
_STP = {
    SelfTradePolicy.NONE: SelfTradePrevention.NONE,
    SelfTradePolicy.CANCEL_INCOMING: SelfTradePrevention.CANCEL_NEWEST,
    SelfTradePolicy.CANCEL_RESTING: SelfTradePrevention.CANCEL_RESTING,
}


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class YaosuTracebookAdapter:
    def __init__(self, config: ConformanceConfig) -> None:
        self.config = config
        self.metadata = EngineMetadata("yaosu-trading-book", "0.1.0", "Python")
        self._tick = Decimal(canonical_decimal(config.tick_size))
        self._qscale = Decimal(10) ** config.quantity_decimal_places
        self._stp = _STP[config.self_trade_policy]
        self._books: dict[str, OrderBook] = {}

    # -------------------------------------------------------------- units
    def _ticks(self, price: float) -> int:
        ticks = (Decimal(str(price)) / self._tick).to_integral_value()
        if ticks <= 0:
            raise _Rejected("INVALID_ORDER")
        return int(ticks)

    def _units(self, quantity: float) -> int:
        units = int((Decimal(str(quantity)) * self._qscale).to_integral_value())
        if units <= 0:
            raise _Rejected("INVALID_ORDER")
        return units

    def _price_str(self, ticks: int) -> str:
        return canonical_decimal(Decimal(ticks) * self._tick)

    def _qty_str(self, units: int) -> str:
        return canonical_decimal(Decimal(units) / self._qscale, self.config.quantity_decimal_places)

    @staticmethod
    def _engine_owner(owner: int) -> int:
        return 0 if owner == -1 else owner + 1  # our 0 = anonymous, tracebook's is -1

    # -------------------------------------------------------------- protocol
    def apply(self, event: MarketEvent, index: int) -> Observation:
        fills = ()
        is_buy = True
        try:
            fills, is_buy = self._apply(event)
            outcome = Outcome("applied")
        except _Rejected as rejected:
            outcome = Outcome("rejected", rejected.reason, None)
        trades = []
        for fill in fills:
            buy_id, sell_id = (fill.taker_order_id, fill.maker_order_id) if is_buy else (fill.maker_order_id, fill.taker_order_id)
            trades.append(TradeFill(event.symbol, buy_id, sell_id, self._price_str(fill.price), self._qty_str(fill.quantity)))
        state = self.snapshot()
        return Observation(index, outcome, tuple(trades), state.digest(), state.order_count)

    def _apply(self, event: MarketEvent):
        if event.op == "clear":
            self._books.setdefault(event.symbol, OrderBook(self._stp)).clear()
            return (), True
        if event.op == "new":
            book = self._books.setdefault(event.symbol, OrderBook(self._stp))
            if event.order_id in book:
                raise _Rejected("DUPLICATE_ORDER_ID")
            is_buy = event.side == OrderSide.BUY
            order_type = _TYPES[event.order_type]
            price = None if order_type is OrderType.MARKET else self._ticks(event.price)
            fills, _, _ = book.submit(
                event.order_id, is_buy, self._units(event.quantity), price, order_type,
                self._engine_owner(event.owner),
            )
            return fills, is_buy
        book = self._books.get(event.symbol)
        if book is None or event.order_id not in book:
            raise _Rejected("ORDER_NOT_ACTIVE")
        resting = book.order(event.order_id)
        if event.op == "cancel":
            book.cancel(event.order_id)
            return (), True
        if event.op == "reduce":
            units = self._units(event.quantity)
            if units > resting.quantity:
                raise _Rejected("INVALID_ORDER")
            book.reduce(event.order_id, units)
            return (), True
        if event.op == "replace":
            price = resting.price if event.price is None else self._ticks(event.price)
            quantity = resting.quantity if event.quantity is None else self._units(event.quantity)
            return book.replace(event.order_id, quantity, price), resting.is_buy
        raise _Rejected("INVALID_ORDER")

    def snapshot(self) -> BookState:
        books = []
        for symbol in sorted(self._books):
            book = self._books[symbol]
            sides = []
            for is_buy in (True, False):
                sides.append(tuple(
                    RestingOrder(o.order_id, self._price_str(o.price), self._qty_str(o.quantity), o.owner - 1 if o.owner else -1)
                    for o in book.side_in_priority(is_buy)
                ))
            books.append(BookSnapshot(symbol, sides[0], sides[1]))
        return BookState(tuple(books))

    def close(self) -> None:
        """Nothing to release."""


if __name__ == "__main__" and "--tracebook-stdio" in sys.argv:
    from tracebook.conformance.protocol import serve_stdio

    sys.exit(serve_stdio(YaosuTracebookAdapter))
