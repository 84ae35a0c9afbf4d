"""Price-time priority limit order book: the pure, single-writer matching core of one instrument.

Units: prices are integer ticks (fen for CNY instruments), quantities integer minimal units
(1 t CO2e for CEA, 1 tce for 用能权, …). No floats, no clock: the book is a deterministic
function of the sequence of commands, so the adapter rebuilds it by replaying its journal
(or from `snapshot()` rows via `OrderBook.restore`).

Design for speed (benchmarked in tests/bench/bench_matching.py): an order is a small list
record, a price level is `[live_quantity, deque_of_records, dead_count, price]`, each side keeps
a sorted list of level keys with the best level last (bids: key = price; asks: key = -price) so
the best level is `keys[-1]` and removing it is `keys.pop()`. Cancels are lazy: the record's
quantity is zeroed and the level's live quantity reduced; dead heads are skipped while matching
and a level is dropped as soon as its live quantity reaches zero.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator, Sequence
from enum import Enum, IntEnum
from typing import NamedTuple


class OrderType(IntEnum):
    LIMIT = 0  # rests any unfilled remainder
    MARKET = 1  # no price limit; remainder cancelled
    IOC = 2  # limit price; remainder cancelled
    FOK = 3  # limit price; fills completely at once or does nothing
    LEVEL = 4  # the taker's choice of one opposite price level (CEA 挂牌协议); remainder cancelled


class SelfTradePrevention(Enum):
    NONE = "none"
    CANCEL_NEWEST = "cancel_newest"  # the incoming remainder is cancelled at the first own order
    CANCEL_RESTING = "cancel_resting"  # own resting orders met while matching are cancelled


class Fill(NamedTuple):
    maker_order_id: int
    taker_order_id: int
    price: int
    quantity: int


class RestingOrder(NamedTuple):
    order_id: int
    is_buy: bool
    price: int
    quantity: int
    owner: int


# Record fields (a list, mutated in place: cheaper than an object with attributes).
_ID, _QTY, _PRICE, _BUY, _OWNER, _LEVEL = range(6)
# Level fields.
_LIVE, _QUEUE, _DEAD, _LPRICE = range(4)
_COMPACT_MIN_DEAD = 64

NO_FILLS: tuple = ()
NO_OWNER = 0


class OrderBook:
    """One instrument's book. Command methods validate everything before mutating anything."""

    __slots__ = (
        "_orders",
        "_bid_levels",
        "_ask_levels",
        "_bid_keys",
        "_ask_keys",
        "_stp",
        "traded_quantity",
        "stp_cancelled",
        "stp_stopped_taker",
    )

    def __init__(self, self_trade_prevention: SelfTradePrevention = SelfTradePrevention.NONE) -> None:
        self._orders: dict[int, list] = {}
        self._bid_levels: dict[int, list] = {}
        self._ask_levels: dict[int, list] = {}
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        self._stp = self_trade_prevention
        self.traded_quantity = 0  # cumulative quantity executed (counted once per fill)
        # Resting orders cancelled by self-trade prevention since the caller last cleared it.
        self.stp_cancelled: list[RestingOrder] = []
        # Id of the last incoming order whose remainder CANCEL_NEWEST cancelled (reader resets it).
        self.stp_stopped_taker: int | None = None

    # ------------------------------------------------------------------ commands

    def limit(self, order_id: int, is_buy: bool, quantity: int, price: int, owner: int = NO_OWNER):
        """Limit order: match what crosses, rest the remainder. Returns the fills (maybe empty)."""
        orders = self._orders
        if order_id in orders:
            raise ValueError(f"order {order_id} is already resting")
        if quantity <= 0 or price <= 0:
            raise ValueError("quantity and price must be positive")
        fills, remaining = self._match(order_id, is_buy, quantity, price, owner)
        if remaining:
            self._rest(order_id, is_buy, remaining, price, owner)
        return fills

    def submit(
        self,
        order_id: int,
        is_buy: bool,
        quantity: int,
        price: int | None,
        order_type: OrderType = OrderType.LIMIT,
        owner: int = NO_OWNER,
        level: int = 0,
    ):
        """Any order type (a LEVEL order names its `level` and that level's `price`). Returns (fills,
        rested_quantity, cancelled_quantity)."""
        if order_type is OrderType.LIMIT:
            fills = self.limit(order_id, is_buy, quantity, price, owner)  # type: ignore[arg-type]
            rested = self._orders[order_id][_QTY] if order_id in self._orders else 0
            executed = sum(f.quantity for f in fills)
            return fills, rested, quantity - executed - rested
        if order_id in self._orders:
            raise ValueError(f"order {order_id} is already resting")
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if order_type is OrderType.MARKET:
            limit_price = None
        else:
            if price is None or price <= 0:
                raise ValueError("price must be positive")
            limit_price = price
        if order_type is OrderType.FOK and not self._can_fill(is_buy, quantity, limit_price, owner):
            return NO_FILLS, 0, quantity
        if order_type is OrderType.LEVEL:
            fills = self._take_level(order_id, is_buy, quantity, level, limit_price, owner)  # type: ignore[arg-type]
        else:
            fills, _ = self._match(order_id, is_buy, quantity, limit_price, owner)
        return fills, 0, quantity - sum(f.quantity for f in fills)

    def cancel(self, order_id: int) -> int:
        """Cancel a resting order. Returns the cancelled quantity; 0 if not resting (no-op)."""
        record = self._orders.pop(order_id, None)
        if record is None:
            return 0
        quantity = record[_QTY]
        record[_QTY] = 0
        level = record[_LEVEL]
        level[_LIVE] -= quantity
        if level[_LIVE] == 0:
            self._drop_level(record[_BUY], level[_LPRICE])
        else:
            level[_DEAD] += 1
            if level[_DEAD] >= _COMPACT_MIN_DEAD and 2 * level[_DEAD] > len(level[_QUEUE]):
                # Keep memory bounded on deep levels that churn without reaching the spread.
                level[_QUEUE] = deque(r for r in level[_QUEUE] if r[_QTY])
                level[_DEAD] = 0
        return quantity

    def reduce(self, order_id: int, by_quantity: int) -> int:
        """Reduce a resting order's quantity keeping its queue position. Returns what remains."""
        record = self._orders.get(order_id)
        if record is None:
            raise KeyError(order_id)
        if not 0 < by_quantity <= record[_QTY]:
            raise ValueError("reduction must be positive and at most the remaining quantity")
        if by_quantity == record[_QTY]:
            self.cancel(order_id)
            return 0
        record[_QTY] -= by_quantity
        record[_LEVEL][_LIVE] -= by_quantity
        return record[_QTY]

    def replace(self, order_id: int, new_quantity: int, new_price: int):
        """Cancel-and-new under the same id: loses priority and may trade at once. Returns fills."""
        record = self._orders.get(order_id)
        if record is None:
            raise KeyError(order_id)
        if new_quantity <= 0 or new_price <= 0:
            raise ValueError("quantity and price must be positive")
        is_buy, owner = record[_BUY], record[_OWNER]
        self.cancel(order_id)
        return self.limit(order_id, is_buy, new_quantity, new_price, owner)

    def amend(self, order_id: int, new_quantity: int, new_price: int | None = None):
        """The exchange amend rule: a quantity decrease at the same price keeps priority; a price
        change or a quantity increase is a replace (back of the queue, may trade). Returns fills."""
        record = self._orders.get(order_id)
        if record is None:
            raise KeyError(order_id)
        price = record[_PRICE] if new_price is None else new_price
        if price == record[_PRICE] and 0 < new_quantity <= record[_QTY]:
            if new_quantity < record[_QTY]:
                self.reduce(order_id, record[_QTY] - new_quantity)
            return NO_FILLS
        return self.replace(order_id, new_quantity, price)

    def clear(self) -> list[RestingOrder]:
        """Remove every resting order (end of day for day orders). Returns what was removed."""
        removed = list(self.resting_orders())
        self._orders.clear()
        self._bid_levels.clear()
        self._ask_levels.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        return removed

    # ------------------------------------------------------------------ queries

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def order(self, order_id: int) -> RestingOrder | None:
        r = self._orders.get(order_id)
        return None if r is None else RestingOrder(r[_ID], r[_BUY], r[_PRICE], r[_QTY], r[_OWNER])

    def best_bid(self) -> int | None:
        return self._bid_keys[-1] if self._bid_keys else None

    def best_ask(self) -> int | None:
        return -self._ask_keys[-1] if self._ask_keys else None

    def resting_quantity(self) -> tuple[int, int]:
        """(total buy quantity, total sell quantity) resting."""
        return (
            sum(level[_LIVE] for level in self._bid_levels.values()),
            sum(level[_LIVE] for level in self._ask_levels.values()),
        )

    def depth(self, is_buy: bool, levels: int = 5) -> list[tuple[int, int]]:
        """[(price, quantity)] best first — the 5 price levels a CEA taker chooses from."""
        keys, book = (self._bid_keys, self._bid_levels) if is_buy else (self._ask_keys, self._ask_levels)
        return [(book[k][_LPRICE], book[k][_LIVE]) for k in reversed(keys[-levels:])] if levels else []

    def side_in_priority(self, is_buy: bool) -> Iterator[RestingOrder]:
        keys, book = (self._bid_keys, self._bid_levels) if is_buy else (self._ask_keys, self._ask_levels)
        for key in reversed(keys):
            for r in book[key][_QUEUE]:
                if r[_QTY]:
                    yield RestingOrder(r[_ID], r[_BUY], r[_PRICE], r[_QTY], r[_OWNER])

    def resting_orders(self) -> Iterator[RestingOrder]:
        """Every resting order, bids then asks, each in matching priority (the snapshot rows)."""
        yield from self.side_in_priority(True)
        yield from self.side_in_priority(False)

    def snapshot(self) -> list[RestingOrder]:
        return list(self.resting_orders())

    @classmethod
    def restore(
        cls,
        rows: Sequence[RestingOrder],
        self_trade_prevention: SelfTradePrevention = SelfTradePrevention.NONE,
        traded_quantity: int = 0,
    ) -> OrderBook:
        """Rebuild from snapshot rows given in priority order (as `snapshot()` returns them)."""
        book = cls(self_trade_prevention)
        for row in rows:
            if row.order_id in book._orders:
                raise ValueError(f"duplicate order {row.order_id} in snapshot")
            book._rest(row.order_id, row.is_buy, row.quantity, row.price, row.owner)
        if book.is_crossed():
            raise ValueError("snapshot is crossed")
        book.traded_quantity = traded_quantity
        return book

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    # ------------------------------------------------------------------ internals

    def _rest(self, order_id: int, is_buy: bool, quantity: int, price: int, owner: int) -> None:
        if is_buy:
            key, levels, keys = price, self._bid_levels, self._bid_keys
        else:
            key, levels, keys = -price, self._ask_levels, self._ask_keys
        level = levels.get(key)
        if level is None:
            level = levels[key] = [0, deque(), 0, price]
            if not keys or key > keys[-1]:
                keys.append(key)  # the common case: a new best level
            else:
                insort(keys, key)
        record = [order_id, quantity, price, is_buy, owner, level]
        level[_QUEUE].append(record)
        level[_LIVE] += quantity
        self._orders[order_id] = record

    def _drop_level(self, is_buy: bool, price: int) -> None:
        if is_buy:
            key, levels, keys = price, self._bid_levels, self._bid_keys
        else:
            key, levels, keys = -price, self._ask_levels, self._ask_keys
        del levels[key]
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def _match(self, taker_id: int, is_buy: bool, quantity: int, limit_price: int | None, owner: int):
        """Match an incoming order against the opposite side. Returns (fills, unfilled quantity);
        the unfilled quantity is 0 when self-trade prevention cancelled the incoming remainder."""
        if is_buy:
            levels, keys = self._ask_levels, self._ask_keys
            threshold = None if limit_price is None else -limit_price
        else:
            levels, keys = self._bid_levels, self._bid_keys
            threshold = limit_price
        if not keys or (threshold is not None and keys[-1] < threshold):
            return NO_FILLS, quantity  # nothing crosses: the common case for a passive order
        orders = self._orders
        stp = self._stp is not SelfTradePrevention.NONE and owner != NO_OWNER
        fills = []
        append = fills.append
        remaining = quantity
        while remaining and keys:
            key = keys[-1]
            if threshold is not None and key < threshold:
                break
            level = levels[key]
            queue = level[_QUEUE]
            price = level[_LPRICE]
            while remaining:
                record = queue[0]
                resting = record[_QTY]
                if not resting:  # lazily cancelled
                    queue.popleft()
                    level[_DEAD] -= 1
                    continue
                if stp and record[_OWNER] == owner:
                    if self._stp is SelfTradePrevention.CANCEL_NEWEST:
                        self.traded_quantity += quantity - remaining
                        self.stp_stopped_taker = taker_id
                        return fills, 0
                    self.stp_cancelled.append(
                        RestingOrder(record[_ID], record[_BUY], price, resting, record[_OWNER])
                    )
                    self.cancel(record[_ID])  # may drop the level or compact its queue
                    if level[_LIVE] == 0:
                        break
                    queue = level[_QUEUE]
                    continue
                if resting <= remaining:
                    remaining -= resting
                    record[_QTY] = 0
                    queue.popleft()
                    del orders[record[_ID]]
                    level[_LIVE] -= resting
                    append(Fill(record[_ID], taker_id, price, resting))
                    if level[_LIVE] == 0:
                        del levels[key]
                        keys.pop()
                        break
                else:
                    record[_QTY] = resting - remaining
                    level[_LIVE] -= remaining
                    append(Fill(record[_ID], taker_id, price, remaining))
                    remaining = 0
        self.traded_quantity += quantity - remaining
        return fills, remaining

    def _take_level(self, taker_id: int, is_buy: bool, quantity: int, level: int, price: int, owner: int) -> list:
        """Match against the opposite side's `level`-th best price level only (1 = best), which must be at
        `price`: at that price, in time priority within the level, never through to another level. Self-trade
        prevention applies as in `_match`. Returns the fills; the caller cancels what is left."""
        if is_buy:
            levels, keys = self._ask_levels, self._ask_keys
        else:
            levels, keys = self._bid_levels, self._bid_keys
        if not 1 <= level <= len(keys):
            raise ValueError(f"the opposite side has no price level {level}")
        key = keys[-level]
        book_level = levels[key]
        if book_level[_LPRICE] != price:
            raise ValueError(f"price level {level} is at {book_level[_LPRICE]}, not {price}")
        orders = self._orders
        stp = self._stp is not SelfTradePrevention.NONE and owner != NO_OWNER
        fills: list[Fill] = []
        remaining = quantity
        while remaining and book_level[_LIVE]:
            queue = book_level[_QUEUE]
            record = queue[0]
            resting = record[_QTY]
            if not resting:  # lazily cancelled
                queue.popleft()
                book_level[_DEAD] -= 1
                continue
            if stp and record[_OWNER] == owner:
                if self._stp is SelfTradePrevention.CANCEL_NEWEST:
                    self.stp_stopped_taker = taker_id
                    break
                self.stp_cancelled.append(RestingOrder(record[_ID], record[_BUY], price, resting, record[_OWNER]))
                self.cancel(record[_ID])  # drops the level when it was the last live order
                continue
            executed = min(resting, remaining)
            record[_QTY] = resting - executed
            book_level[_LIVE] -= executed
            remaining -= executed
            if not record[_QTY]:
                queue.popleft()
                del orders[record[_ID]]
            fills.append(Fill(record[_ID], taker_id, price, executed))
        if not book_level[_LIVE] and levels.get(key) is book_level:
            self._drop_level(not is_buy, price)
        self.traded_quantity += quantity - remaining
        return fills

    def _can_fill(self, is_buy: bool, quantity: int, limit_price: int | None, owner: int) -> bool:
        """Would `quantity` fill completely right now? Mirrors `_match` including self-trade rules."""
        if is_buy:
            levels, keys = self._ask_levels, self._ask_keys
            threshold = None if limit_price is None else -limit_price
        else:
            levels, keys = self._bid_levels, self._bid_keys
            threshold = limit_price
        stp = self._stp is not SelfTradePrevention.NONE and owner != NO_OWNER
        needed = quantity
        for key in reversed(keys):
            if threshold is not None and key < threshold:
                return False
            level = levels[key]
            if not stp:
                needed -= level[_LIVE]
                if needed <= 0:
                    return True
                continue
            for record in level[_QUEUE]:
                if not record[_QTY]:
                    continue
                if record[_OWNER] == owner:
                    if self._stp is SelfTradePrevention.CANCEL_NEWEST:
                        return False
                    continue
                needed -= record[_QTY]
                if needed <= 0:
                    return True
        return False
