"""Continuous secondary trading of quotas under the national carbon market rules (trading-anchors.md
§3.4): one book per instrument, price-time priority, limit and market orders, the 挂牌协议 taker's
choice of one of the counterparty's best price levels (level orders), a daily band around the previous
close for book orders below the block size, block trades (≥ block size) within the block band in the
block session, closing price = volume-weighted average of the day's book trades (previous close if
none), self-trade prevention, cancel/amend, trading hours.

The numbers (band, block size and band, sessions, tick, lot, levels) are not here: they are policy data
(services/trading/market_policy.yaml, `market_policy.MarketPolicy`), and a refusal under one of them
names its key and the policy version (`ContinuousTradingRules.refuse`).

Units: prices integer fen per unit, quantities integer units (1 t CO2e / 1 tce / 1 kg …).

Persistence: every accepted command yields events; the input events (`DayOpened`,
`OrderAccepted`, `OrderCancelRequested`, `OrderAmended`, `BlockTradeExecuted`, `DayClosed`) are the
journal. `ContinuousMarket.replay(…, events)` rebuilds the state by re-applying them: the book is
deterministic, so derived events (`TradeExecuted`, `OrderCancelled`) are regenerated, not read.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from .calendar import WorkingDayCalendar
from .errors import DomainError
from .matching import Fill, OrderBook, OrderType, SelfTradePrevention
from .money import band_limits, require_fen, round_half_up_div


@dataclass(frozen=True, slots=True)
class Session:
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class ContinuousTradingRules:
    """One market's rules, made by `MarketPolicy.configure` (the policy's, with the market's overrides)."""

    policy_version: str
    band_bp: int  # ± around the previous close for book (挂牌协议) orders
    block_band_bp: int  # ± around the previous close for block (大宗协议) trades
    block_size: int  # units; book orders must be smaller, block trades at least this
    tick_fen: int
    lot_units: int
    taker_levels: int  # a level order chooses among the counterparty's best this many price levels
    sessions: tuple[Session, ...]
    block_sessions: tuple[Session, ...]
    self_trade_prevention: SelfTradePrevention
    overrides: frozenset[str] = frozenset()  # the rules the market set itself

    def refuse(self, code: str, rule: str, message: str) -> DomainError:
        """A refusal under one rule, naming its key and the policy version (and a market's own setting)."""
        source = "set by this market, " if rule in self.overrides else ""
        return DomainError(code, f"{message} (rule {rule}, {source}market policy {self.policy_version})")


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class DayOpened:
    trading_day: date
    previous_close: int
    policy_version: str = ""  # the market policy the day opened under (a record; replay does not need it)


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    order_id: int
    account: int
    is_buy: bool
    quantity: int
    order_type: OrderType
    price: int | None
    at: datetime
    level: int = 0  # a level order: the chosen price level of the other side (1 = best), at `price`


@dataclass(frozen=True, slots=True)
class TradeExecuted:
    trade_seq: int
    maker_order_id: int
    taker_order_id: int
    price: int
    quantity: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: int
    quantity: int
    reason: str  # "requested", "self_trade", "unfilled_remainder", "day_end"
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderCancelRequested:
    order_id: int
    account: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderAmended:
    order_id: int
    account: int
    new_quantity: int
    new_price: int
    keeps_priority: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class BlockTradeExecuted:
    trade_seq: int
    buyer: int
    seller: int
    price: int
    quantity: int
    at: datetime


@dataclass(frozen=True, slots=True)
class DayClosed:
    trading_day: date
    close_price: int
    book_volume: int
    book_value_fen: int
    open_price: int | None
    at: datetime


MarketEvent = (
    DayOpened
    | OrderAccepted
    | TradeExecuted
    | OrderCancelled
    | OrderCancelRequested
    | OrderAmended
    | BlockTradeExecuted
    | DayClosed
)


@dataclass(slots=True)
class _DayStats:
    trading_day: date
    previous_close: int
    volume: int = 0
    value_fen: int = 0
    open_price: int | None = None


@dataclass
class ContinuousMarket:
    instrument: str
    rules: ContinuousTradingRules
    calendar: WorkingDayCalendar = field(default_factory=WorkingDayCalendar)
    book: OrderBook = field(init=False)
    day: _DayStats | None = field(default=None, init=False)
    last_close: int | None = field(default=None, init=False)
    trade_seq: int = field(default=0, init=False)
    owners: dict[int, int] = field(default_factory=dict, init=False)  # resting order -> account

    def __post_init__(self) -> None:
        self.book = OrderBook(self.rules.self_trade_prevention)

    # ------------------------------------------------------------ day lifecycle

    def open_day(self, trading_day: date, previous_close: int) -> list[MarketEvent]:
        require_fen(previous_close, "previous_close")
        if self.day is not None:
            raise DomainError("DAY_ALREADY_OPEN", str(self.day.trading_day))
        if not self.calendar.is_working_day(trading_day):
            raise self.rules.refuse("NOT_A_TRADING_DAY", "trading_days", f"{trading_day} is not a trading day")
        if previous_close <= 0:
            raise DomainError("INVALID_PREVIOUS_CLOSE", "previous close must be positive")
        return self._emit([DayOpened(trading_day, previous_close, self.rules.policy_version)])

    def close_day(self, now: datetime) -> list[MarketEvent]:
        day = self._require_day(now.date())
        if any(s.contains(now.time()) for s in self.rules.sessions + self.rules.block_sessions):
            raise DomainError("SESSION_STILL_OPEN", "close the day after the last session")
        close = (
            round_half_up_div(day.value_fen, day.volume) if day.volume else day.previous_close
        )
        return self._emit(
            [DayClosed(day.trading_day, close, day.volume, day.value_fen, day.open_price, now)]
        )

    def price_limits(self) -> tuple[int, int]:
        day = self._require_day(None)
        return band_limits(day.previous_close, self.rules.band_bp)

    def block_price_limits(self) -> tuple[int, int]:
        day = self._require_day(None)
        return band_limits(day.previous_close, self.rules.block_band_bp)

    # ------------------------------------------------------------ orders

    def place_order(
        self,
        order_id: int,
        account: int,
        is_buy: bool,
        quantity: int,
        now: datetime,
        price: int | None = None,
        order_type: OrderType = OrderType.LIMIT,
        level: int = 0,
    ) -> list[MarketEvent]:
        """A book order. A level order (CEA 挂牌协议 taker) names one of the other side's best
        `taker_levels` price levels and the price it saw there; it trades at that level only, at that
        price, in time priority within it, and its unfilled rest is cancelled — never rested, never traded
        through to another level.

        A stale choice is refused (LEVEL_PRICE_CHANGED, LEVEL_EMPTY), never re-pointed at what the level
        holds now. The CEA rule (trading-anchors.md §3.4) has the taker look at the real-time quotes and
        choose, "以对手方价格为成交价", the counterparty price it trades at, the fill being its own declared
        quantity: the price is the substance of the choice and the level number only where it was seen.
        Trading at whatever moved into that level would make a trade at a price the taker never chose."""
        self._require_session(now, self.rules.sessions, "sessions")
        if order_id in self.book or order_id <= 0:
            raise DomainError("DUPLICATE_ORDER_ID", str(order_id))
        self.check_order(quantity, price, order_type, level)
        if order_type is OrderType.LEVEL:
            self._check_level(is_buy, level, price)  # type: ignore[arg-type]
        return self._emit([OrderAccepted(order_id, account, is_buy, quantity, order_type, price, now, level)])

    def check_order(self, quantity: int, price: int | None, order_type: OrderType = OrderType.LIMIT,
                    level: int = 0) -> None:
        """The rules an order meets whatever the book holds: lot, block size, tick, the band once a day is
        open, a level within `taker_levels` (the service asks them before it holds the order's funds)."""
        self._check_quantity(quantity)
        if quantity >= self.rules.block_size:
            raise self.rules.refuse("BLOCK_SIZE_ON_BOOK", "block_size",
                                    f"orders of {self.rules.block_size} or more trade as block trades")
        if order_type is OrderType.LEVEL:
            if not 1 <= level <= self.rules.taker_levels:
                raise self.rules.refuse("LEVEL_OUT_OF_RANGE", "taker_levels",
                                        f"a level order chooses one of the best {self.rules.taker_levels} "
                                        f"price levels, not {level}")
        elif level:
            raise DomainError("LEVEL_NOT_ALLOWED", "only a level order names a price level")
        if order_type is OrderType.MARKET:
            if price is not None:
                raise DomainError("MARKET_ORDER_PRICE", "a market order carries no price")
            return
        self._check_price(price, self.price_limits() if self.day else None, "PRICE_OUTSIDE_BAND", "band_bp")

    def cancel_order(self, order_id: int, account: int, now: datetime) -> list[MarketEvent]:
        self._require_session(now, self.rules.sessions, "sessions")
        self._require_own_resting(order_id, account)
        return self._emit([OrderCancelRequested(order_id, account, now)])

    def amend_order(
        self,
        order_id: int,
        account: int,
        now: datetime,
        new_quantity: int,
        new_price: int | None = None,
    ) -> list[MarketEvent]:
        """Quantity down at the same price keeps priority; a price change or quantity up loses it."""
        self._require_session(now, self.rules.sessions, "sessions")
        resting = self._require_own_resting(order_id, account)
        price = resting.price if new_price is None else new_price
        self.check_order(new_quantity, price)
        keeps = price == resting.price and new_quantity <= resting.quantity
        return self._emit([OrderAmended(order_id, account, new_quantity, price, keeps, now)])

    def check_block(self, party: int, counterparty: int, quantity: int, price: int, now: datetime) -> None:
        """What a block (大宗协议) trade requires: asked of each party's proposal (`counterparty` 0 = none
        named) and again when both agree (`block_trade`)."""
        self._require_session(now, self.rules.block_sessions, "block_sessions")
        if not counterparty:
            raise DomainError("COUNTERPARTY_REQUIRED", "a block trade names another party as its counterparty")
        if counterparty == party:
            raise DomainError("SELF_TRADE", "a block trade names another party as its counterparty")
        self._check_quantity(quantity)
        if quantity < self.rules.block_size:
            raise self.rules.refuse("BELOW_BLOCK_SIZE", "block_size",
                                    f"block trades need at least {self.rules.block_size}")
        self._check_price(price, self.block_price_limits(), "PRICE_OUTSIDE_BLOCK_BAND", "block_band_bp")

    def block_trade(
        self, buyer: int, seller: int, price: int, quantity: int, now: datetime
    ) -> list[MarketEvent]:
        """A negotiated block (大宗协议) trade both parties confirmed; it does not touch the book
        and does not enter the closing price."""
        self.check_block(buyer, seller, quantity, price, now)
        return self._emit([BlockTradeExecuted(self.trade_seq + 1, buyer, seller, price, quantity, now)])

    # ------------------------------------------------------------ persistence

    @classmethod
    def replay(
        cls,
        instrument: str,
        rules: ContinuousTradingRules,
        events: Iterable[MarketEvent],
        calendar: WorkingDayCalendar | None = None,
    ) -> ContinuousMarket:
        market = cls(instrument, rules, calendar or WorkingDayCalendar())
        for event in events:
            market.apply(event)
        return market

    def apply(self, event: MarketEvent) -> list[MarketEvent]:
        """Apply one journal event; returns the derived events it produced (trades, cancels)."""
        if isinstance(event, OrderAccepted):
            return self._apply_accepted(event)
        if isinstance(event, OrderCancelRequested):
            quantity = self.book.cancel(event.order_id)
            self.owners.pop(event.order_id, None)
            return [OrderCancelled(event.order_id, quantity, "requested", event.at)]
        if isinstance(event, OrderAmended):
            fills = self.book.amend(event.order_id, event.new_quantity, event.new_price)
            out = self._record_fills(fills, event.at) + self._drain_stp(event.at)
            if self.book.stp_stopped_taker == event.order_id:
                self.book.stp_stopped_taker = None
                left = event.new_quantity - sum(f.quantity for f in fills)
                out.append(OrderCancelled(event.order_id, left, "self_trade", event.at))
            if event.order_id not in self.book:
                self.owners.pop(event.order_id, None)
            return out
        if isinstance(event, BlockTradeExecuted):
            self.trade_seq = event.trade_seq
            return []
        if isinstance(event, DayOpened):
            self.day = _DayStats(event.trading_day, event.previous_close)
            return []
        if isinstance(event, DayClosed):
            expired = [
                OrderCancelled(o.order_id, o.quantity, "day_end", event.at) for o in self.book.clear()
            ]
            self.owners.clear()
            self.last_close = event.close_price
            self.day = None
            return expired
        if isinstance(event, (TradeExecuted, OrderCancelled)):
            return []  # derived: regenerated by the deterministic book
        raise TypeError(f"unknown event {event!r}")

    # ------------------------------------------------------------ internals

    def _emit(self, events: Sequence[MarketEvent]) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for event in events:
            out.append(event)
            out.extend(self.apply(event))
        return out

    def _apply_accepted(self, e: OrderAccepted) -> list[MarketEvent]:
        fills, rested, cancelled = self.book.submit(
            e.order_id, e.is_buy, e.quantity, e.price, e.order_type, e.account, e.level
        )
        if rested:
            self.owners[e.order_id] = e.account
        out = self._record_fills(fills, e.at) + self._drain_stp(e.at)
        if cancelled:
            stopped = self.book.stp_stopped_taker == e.order_id
            self.book.stp_stopped_taker = None
            reason = "self_trade" if stopped else "unfilled_remainder"
            out.append(OrderCancelled(e.order_id, cancelled, reason, e.at))
        return out

    def _record_fills(self, fills: Sequence[Fill], at: datetime) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        day = self.day
        for fill in fills:
            self.trade_seq += 1
            if fill.maker_order_id not in self.book:
                self.owners.pop(fill.maker_order_id, None)
            if day is not None:
                day.volume += fill.quantity
                day.value_fen += fill.quantity * fill.price
                if day.open_price is None:
                    day.open_price = fill.price
            out.append(
                TradeExecuted(self.trade_seq, fill.maker_order_id, fill.taker_order_id, fill.price, fill.quantity, at)
            )
        return out

    def _drain_stp(self, at: datetime) -> list[MarketEvent]:
        if not self.book.stp_cancelled:
            return []
        out: list[MarketEvent] = [OrderCancelled(o.order_id, o.quantity, "self_trade", at) for o in self.book.stp_cancelled]
        for o in self.book.stp_cancelled:
            self.owners.pop(o.order_id, None)
        self.book.stp_cancelled.clear()
        return out

    def _require_day(self, on: date | None) -> _DayStats:
        if self.day is None or (on is not None and on != self.day.trading_day):
            raise DomainError("DAY_NOT_OPEN", "no trading day is open")
        return self.day

    def check_hours(self, now: datetime, *, block: bool = False) -> None:
        """A trading day and inside the (block) sessions — whether or not the day has been opened yet."""
        if not self.calendar.is_working_day(now.date()):
            raise self.rules.refuse("NOT_A_TRADING_DAY", "trading_days", f"{now.date()} is not a trading day")
        if block:
            self._check_hours(now, self.rules.block_sessions, "block_sessions")
        else:
            self._check_hours(now, self.rules.sessions, "sessions")

    def _require_session(self, now: datetime, sessions: tuple[Session, ...], rule: str) -> None:
        self._require_day(now.date())
        self._check_hours(now, sessions, rule)

    def _check_hours(self, now: datetime, sessions: tuple[Session, ...], rule: str) -> None:
        if not any(s.contains(now.time()) for s in sessions):
            hours = ", ".join(f"{s.start:%H:%M}–{'24:00' if s.end == time.max else f'{s.end:%H:%M}'}" for s in sessions)
            raise self.rules.refuse("OUTSIDE_TRADING_HOURS", rule, f"{now.time():%H:%M:%S} is outside {hours}")

    def _check_level(self, is_buy: bool, level: int, price: int) -> None:
        """The taker's chosen level still shows the price it chose there (see `place_order`)."""
        side = "sell" if is_buy else "buy"
        shown = self.book.depth(not is_buy, level)
        if len(shown) < level:
            raise DomainError("LEVEL_EMPTY", f"the {side} side shows {len(shown)} price levels: level {level} is "
                                             "empty; the book moved, choose again")
        now_at = shown[level - 1][0]
        if now_at != price:
            raise DomainError("LEVEL_PRICE_CHANGED", f"level {level} of the {side} side is at {now_at} fen now, not "
                                                     f"{price}: the book moved, choose again")

    def _require_own_resting(self, order_id: int, account: int):
        resting = self.book.order(order_id)
        if resting is None:
            raise DomainError("ORDER_NOT_ACTIVE", str(order_id))
        if self.owners.get(order_id) != account:
            raise DomainError("NOT_ORDER_OWNER", str(order_id))
        return resting

    def _check_quantity(self, quantity: int) -> None:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise DomainError("INVALID_QUANTITY", "quantity must be a positive integer")
        if quantity % self.rules.lot_units:
            raise self.rules.refuse("INVALID_QUANTITY", "lot_units",
                                    f"quantity must be a multiple of {self.rules.lot_units}")

    def _check_price(self, price: int | None, limits: tuple[int, int] | None, code: str, rule: str) -> None:
        if price is None:
            raise DomainError("PRICE_REQUIRED", "limit and level orders carry a price")
        require_fen(price, "price")
        if price % self.rules.tick_fen:
            raise self.rules.refuse("PRICE_OFF_TICK", "tick_fen",
                                    f"price must be a multiple of {self.rules.tick_fen} fen")
        if limits is None:
            return
        lower, upper = limits
        if not lower <= price <= upper:
            raise self.rules.refuse(code, rule, f"{price} outside [{lower}, {upper}]")
