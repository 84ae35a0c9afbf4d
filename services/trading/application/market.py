"""Continuous secondary markets (挂牌协议 book trading and 大宗 block trades, trading-anchors.md §3.4): one
in-memory `ContinuousMarket` per instrument, owned by a single writer with group commit.

- Journal → apply → ACK: a command is applied to the in-memory market, the batch's input events
  (`market_events`), order mirror rows, trades, ledger tasks, outbox events, audit entries and idempotency
  records are committed in ONE transaction, and only then are the callers answered. On start (or after a
  failed commit) the market is rebuilt by replaying its journal through the deterministic book, so an
  acknowledged order is never lost and a trade is never executed twice.
- Market rules are policy data: the versioned market policy (services/trading/market_policy.yaml, read at
  start and passed in) with each `markets` row's overrides (its rules JSON: band, block size and band,
  lot, tick, taker levels, sessions, time zone, trading days); `TradingSettings.markets_json` or the demo
  loader create the rows. A refusal under a rule names its key and the policy version.
- Orders: limit, market, and level orders — the 挂牌协议 taker's choice of one of the other side's best
  `taker_levels` price levels, at the price it saw there (a stale choice is refused, see
  `ContinuousMarket.place_order`), filled at that level only and the rest cancelled.
- Order entry holds in the registry before the order is acknowledged: a buy holds price × quantity fen
  (a market buy: the top of the band) on the buyer's CNY account, a sell its units on the seller's account
  (block proposals alike; they expire at the day's close as book orders do), one partial hold per order keyed by the order id (itself derived from the idempotency key and request),
  so a retry never holds twice. A hold the registry refuses refuses the order (INSUFFICIENT_FUNDS,
  INSUFFICIENT_HOLDINGS), nothing rested. An amendment up holds the extra first (IncreaseHold). Whatever an
  order no longer needs — cancelled, expired at the day's close, amended down, its unfilled rest, a better
  price than its limit, a refusal by the writer — is released by a keyed ledger task, written with the
  commit; once those tasks have run, an open order's hold keeps, besides its trades not yet settled,
  exactly what its remaining quantity may still cost.
- Each trade is settled delivery-versus-payment by the settlement worker: one linked registry transfer
  keyed by the trade id whose legs (units seller → buyer, fen buyer → seller) are paid out of the two
  orders' holds, one part of each — so funds or units spent elsewhere after entry never fail it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update

from services.common.authz import Access, Kind, Owner
from services.common.context import current_principal
from services.common.errors import (
    DependencyUnavailable,
    FieldViolation,
    IdempotencyConflict,
    InvalidArgument,
    PermissionDenied,
    RuleViolation,
    require,
)
from services.common.errors import DomainError as CommonError
from services.common.events.envelope import Event
from services.common.uow import Transaction, UnitOfWork
from services.common.write_engine import Command, WriteEngine
from services.trading.adapters.db import repository as r
from services.trading.adapters.db import tables as t
from services.trading.adapters.db.repository import TradingRepository, dumps, row_dict
from services.trading.application import idempotency as idem
from services.trading.application import limits
from services.trading.application.disclosure import Disclosure
from services.trading.application.errors import not_found, refusal, require_owned
from services.trading.application.ports import RegistryPort, RegistryRefused, RegistryUnavailable
from services.trading.application.rules import ledger_task
from services.trading.domain import continuous as C
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.market_policy import MarketConfig, MarketPolicy
from services.trading.domain.matching import OrderType
from services.trading.domain.money import band_limits
from services.trading.domain.trade_code import TradeCodeFormat, make_trade_code
from services.trading.metrics import TradingMetrics

log = logging.getLogger(__name__)

markets_t = t.MarketRow.__table__
orders_t = t.OrderRow.__table__
journal_t = t.MarketEventRow.__table__

OPEN_STATES = ("open", "partially_filled")
JOURNAL = (C.DayOpened, C.OrderAccepted, C.OrderCancelRequested, C.OrderAmended, C.BlockTradeExecuted, C.DayClosed)
EVENT_TYPES = {cls.__name__: cls for cls in JOURNAL}
ORDER_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET, "level": OrderType.LEVEL}


def account_of(credit_code: str) -> int:
    # The domain's owner ids are ints (self-trade prevention compares them): a stable digest of the code.
    return int.from_bytes(hashlib.sha256(credit_code.encode()).digest()[:7], "big") or 1


def kind_of(instrument: str) -> str:
    return instrument.split(":", 1)[0]  # metric label: the instrument kind, never a holder or an id


def order_id_for(key: str, digest: str) -> str:
    """An order's id before it is accepted: the same for every retry of one request (same key, same
    request), so its registry hold, keyed by it, is made once."""
    return "O-" + hashlib.sha256(f"{key}\n{digest}".encode()).hexdigest()[:20]


def need(order: dict) -> int:
    """What an order's hold must still keep: fen for a buy (remaining × its price), lots for a sell; nothing
    once it is done, and nothing for an order entered without a hold (before order holds existed)."""
    if order["state"] not in OPEN_STATES or not order["hold_id"]:
        return 0
    left = order["quantity"] - order["filled"]
    return left * order["price_fen"] if order["side"] == "buy" else left


# ---------------------------------------------------------------- journal codec
def encode_event(event: Any) -> tuple[str, str]:
    data = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, (date, datetime)):
            value = value.isoformat()
        elif isinstance(value, OrderType):
            value = int(value)
        data[f.name] = value
    return type(event).__name__, json.dumps(data, separators=(",", ":"))


def decode_event(type_name: str, payload: str) -> Any:
    data = json.loads(payload)
    if "at" in data:
        data["at"] = datetime.fromisoformat(data["at"])
    if "trading_day" in data:
        data["trading_day"] = date.fromisoformat(data["trading_day"])
    if "order_type" in data:
        data["order_type"] = OrderType(data["order_type"])
    return EVENT_TYPES[type_name](**data)


# ---------------------------------------------------------------- state and commands
@dataclass
class MarketState:
    row: dict
    config: MarketConfig
    market: C.ContinuousMarket
    tz: ZoneInfo
    last_seq: int
    next_order: int
    orders: dict[int, dict] = field(default_factory=dict)   # resting orders: domain id → order row
    by_id: dict[str, int] = field(default_factory=dict)     # order id → domain id (resting)
    # Open block (大宗) proposals, off the book until the named counterparty places the mirror order.
    blocks: dict[str, dict] = field(default_factory=dict)
    # What each open order's registry hold keeps and no trade has taken yet (fen for a buy, lots for a
    # sell). At every commit it equals `need(order)`: the writer releases the surplus after each command.
    free: dict[str, int] = field(default_factory=dict)
    # Orders the command being applied changed, whose holds are settled up when it ends.
    dirty: dict[str, dict] = field(default_factory=dict)
    # What reads show: the book, last price and day volume as of the last commit — never an order of a
    # batch still being written (it may yet fail, and was acknowledged to nobody).
    shown: dict = field(default_factory=dict)

    def publish(self) -> None:
        day = self.market.day
        self.shown = {"book": self.market.book.snapshot(), "last_price_fen": self.row["last_price_fen"],
                      "day": day.trading_day if day else None, "volume": day.volume if day else 0,
                      "previous_close_fen": day.previous_close if day else self.row["previous_close_fen"],
                      "band": self.market.price_limits() if day else (0, 0)}

    @property
    def instrument(self) -> str:
        return self.row["instrument"]

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_open(self, moment: datetime) -> bool:
        now = self.local(moment)
        return (self.market.calendar.is_working_day(now.date())
                and any(s.contains(now.time()) for s in self.market.rules.sessions))

    def band_high(self) -> int:
        """The top of today's band, or of the band the next day will open with (a market buy may pay it)."""
        m = self.market
        if m.day is not None:
            return m.price_limits()[1]
        return band_limits(m.last_close or self.row["previous_close_fen"], m.rules.band_bp)[1]

    def hold_deadline(self, moment: datetime) -> datetime:
        """Order holds last to the end of the trading day plus the policy's hold_days (settlement retries)."""
        rules = self.market.rules
        end = max(s.end for s in rules.sessions + rules.block_sessions)
        day = datetime.combine(self.local(moment).date(), end, tzinfo=self.tz)
        return day + timedelta(days=self.config.hold_days)

    def units(self, lots: int) -> str:
        return format(Decimal(lots) * Decimal(self.row["lot_size"]), "f")


@dataclass
class MarketOp:
    kind: str  # place, cancel, amend, tick
    at: datetime
    actor: str
    key: str
    digest: str
    args: dict


@dataclass
class MarketBatch:
    now: datetime
    journal: list[dict] = field(default_factory=list)
    new_orders: dict[str, dict] = field(default_factory=dict)
    touched: dict[str, dict] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    # Releases of holds whose order the writer refused: written unless an earlier batch already did.
    refusal_tasks: list[dict] = field(default_factory=list)
    outbox: list[Event] = field(default_factory=list)
    audit: list[tuple[str, str, str, object]] = field(default_factory=list)
    metrics: list[Callable[[], None]] = field(default_factory=list)

    def merge(self, other: MarketBatch) -> None:
        """Add the rows of one command (staged once it is decided)."""
        for name in ("journal", "trades", "tasks", "refusal_tasks", "outbox", "audit", "metrics"):
            getattr(self, name).extend(getattr(other, name))
        self.new_orders.update(other.new_orders)
        self.touched.update(other.touched)


async def load_market(session, instrument: str, policy: MarketPolicy) -> MarketState | None:
    row = (await session.execute(select(markets_t).where(markets_t.c.instrument == instrument))).first()
    if row is None:
        return None
    row = row_dict(row)
    config = policy.configure(json.loads(row["rules"]), f"market {instrument}")
    events = (await session.execute(select(journal_t).where(journal_t.c.instrument == instrument)
                                    .order_by(journal_t.c.seq))).all()
    market = C.ContinuousMarket.replay(instrument, config.rules, (decode_event(e.type, e.payload) for e in events),
                                       config.calendar)
    last_order = (await session.execute(select(func.max(orders_t.c.sequence))
                                        .where(orders_t.c.instrument == instrument))).scalar_one()
    state = MarketState(row, config, market, ZoneInfo(config.timezone), events[-1].seq if events else 0,
                        (last_order or 0) + 1)
    open_rows = (await session.execute(select(orders_t).where(orders_t.c.instrument == instrument,
                                                               orders_t.c.state.in_(OPEN_STATES)))).all()
    for o in map(row_dict, open_rows):
        if o["block"]:
            state.blocks[o["order_id"]] = o
        elif o["sequence"] in market.book:  # the mirror agrees with the replayed book (same transaction)
            state.orders[o["sequence"]] = o
            state.by_id[o["order_id"]] = o["sequence"]
        else:
            continue
        if o["hold_id"]:
            state.free[o["order_id"]] = need(o)  # what every commit left it
    state.publish()
    return state


def refused_error(answer: dict) -> RuleViolation:
    """The recorded answer of a command the writer refused after it had held funds or units."""
    return RuleViolation(answer["refused"]["message"], reason=answer["refused"]["reason"])


ORDER_HOLD = "order:"  # the purpose of an order's hold: order:<order id>:<life of the process that made it>
ORDER_HOLDS = "order-holds"  # the write engine's partition of their reconciliation


def partition(instrument: str) -> str:
    """The write engine's partition of a market: its orders apply in one order."""
    return f"market:{instrument}"


def order_view(o: dict) -> dict:
    return {k: o[k] for k in ("order_id", "instrument", "credit_code", "side", "type", "price_fen", "quantity",
                              "filled", "state", "reject_reason", "created_at", "block", "counterparty")}


def trade_view(tr: dict) -> dict:
    return dict(tr)


class MarketRules:
    """How one command changes a market, and what each domain event leaves behind in the batch."""

    def __init__(self, metrics: TradingMetrics) -> None:
        self.metrics = metrics

    def apply(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        try:
            self.ensure_day(state, op.at, batch)
            return getattr(self, f"_{op.kind}")(state, op, batch)
        finally:  # whatever the command changed before it was refused (a day roll) is settled up too
            self.settle_holds(state, batch, op.at)

    def ensure_day(self, state: MarketState, at: datetime, batch: MarketBatch) -> None:
        """Close a past trading day at its last session end (resting orders expire), open today's."""
        m, now = state.market, state.local(at)
        if m.day is not None and m.day.trading_day < now.date():
            end = max(s.end for s in m.rules.sessions + m.rules.block_sessions)
            closing = datetime.combine(m.day.trading_day, end, tzinfo=state.tz)
            self.record(state, m.close_day(closing), batch, "system", at)
        if m.day is None and m.calendar.is_working_day(now.date()):
            previous = m.last_close or state.row["previous_close_fen"]
            self.record(state, m.open_day(now.date(), previous), batch, "system", at)

    # ------------------------------------------------------------ holds
    def settle_holds(self, state: MarketState, batch: MarketBatch, at: datetime) -> None:
        """Release, by a keyed ledger task, what each order the command changed no longer needs: its
        unfilled rest, the better price it traded at, an amendment down, its expiry or cancellation. The
        key names the order and the journal position, so each release is made once."""
        for order_id, order in state.dirty.items():
            if not order["hold_id"]:
                continue
            free, needed = state.free.get(order_id, 0), need(order)
            surplus = free - needed
            if surplus < 0:  # refused before the domain is asked (see `_amend`, `_place`): never expected
                log.error("order hold short", extra={"order_id": order_id, "free": free, "need": needed})
            elif surplus:
                quantity = str(surplus) if order["side"] == "buy" else state.units(surplus)
                ledger_task(batch, f"trading:order:{order_id}:release:{state.last_seq}", "release_hold",
                            {"hold_id": order["hold_id"], "quantity": quantity,
                             "reason": f"order {order['state']}"})
                free = needed
            if order["state"] in OPEN_STATES:
                state.free[order_id] = free
            else:
                state.free.pop(order_id, None)
        state.dirty.clear()

    def refused(self, state: MarketState, op: MarketOp, batch: MarketBatch, error: CommonError) -> dict | None:
        """A command that had already held funds or units (an order's hold, an amendment's extra) and that
        the writer refused: the hold is released, and the refusal is the key's answer — a retry gets it
        again (its hold is gone), a new attempt takes a new key. Returns that answer, or None when there was
        nothing held (the refusal is then simply raised)."""
        a = op.args
        if op.kind == "place" and a.get("hold_id"):
            hold_id, amount, is_buy = a["hold_id"], a["held"], a["side"] == "buy"
        elif op.kind == "amend" and a.get("extra"):
            hold_id, amount, is_buy = a["hold_id"], a["extra"], a["is_buy"]
        else:
            return None
        quantity = str(amount) if is_buy else state.units(amount)
        suffix = hashlib.sha256(op.key.encode()).hexdigest()[:16]
        ledger_task(batch, f"trading:order:{a['order_id']}:refused:{suffix}", "release_hold",
                    {"hold_id": hold_id, "quantity": quantity, "reason": f"{op.kind} refused"})
        batch.refusal_tasks.append(batch.tasks.pop())
        if isinstance(error, IdempotencyConflict):  # the key belongs to another request: not ours to answer
            return None
        return {"refused": {"reason": error.reason, "message": error.message}}

    def _spend(self, state: MarketState, order: dict, price: int, quantity: int) -> None:
        """A trade takes its part of the order's hold (settlement pays it out of the hold)."""
        if order["hold_id"]:
            spent = price * quantity if order["side"] == "buy" else quantity
            state.free[order["order_id"]] = state.free.get(order["order_id"], 0) - spent
        state.dirty[order["order_id"]] = order

    # ------------------------------------------------------------ commands
    def _tick(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        return {}  # the day roll in `apply` is all a tick does

    def _new_order(self, state: MarketState, op: MarketOp, *, block: bool, sequence: int) -> dict:
        a = op.args
        order = dict(order_id=a["order_id"], instrument=state.instrument, credit_code=a["credit_code"], side=a["side"],
                     type=a["type"], price_fen=a["price_fen"], quantity=a["quantity"], filled=0, state="open",
                     reject_reason="", block=block, counterparty=a["counterparty"], sequence=sequence,
                     hold_id=a["hold_id"], created_at=op.at)
        state.free[order["order_id"]] = a["held"]
        state.dirty[order["order_id"]] = order
        return order

    def _place(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        a = op.args
        if a["block"]:
            return self._block(state, op, batch)
        m, seq = state.market, state.next_order
        is_buy, order_type = a["side"] == "buy", ORDER_TYPES[a["type"]]
        if is_buy and order_type is OrderType.MARKET and m.day is not None \
                and a["held"] < a["quantity"] * m.price_limits()[1]:
            raise TradingRuleError("BAND_MOVED", "the day's band moved above what the market buy holds; place it "
                                                 "again with a new key")
        events = m.place_order(seq, account_of(a["credit_code"]), is_buy, a["quantity"], state.local(op.at),
                               a["price_fen"] or None, order_type, a["level"])
        state.next_order += 1
        order = self._new_order(state, op, block=False, sequence=seq)
        state.orders[seq] = order
        state.by_id[order["order_id"]] = seq
        batch.new_orders[order["order_id"]] = order
        first_trade = len(batch.trades)
        self.record(state, events, batch, op.actor, op.at)
        batch.metrics.append(lambda: self.metrics.orders.labels(a["side"], "accepted", "").inc())
        return {"order": order_view(order), "trades": [trade_view(x) for x in batch.trades[first_trade:]]}

    def _block(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        """A 大宗协议 proposal: checked like the trade it would be; it executes (BlockTradeExecuted,
        journaled) when the named counterparty has proposed the mirror trade, else it waits off the book
        (until the day's close, like any order)."""
        a, m, now = op.args, state.market, state.local(op.at)
        m.check_block(account_of(a["credit_code"]), account_of(a["counterparty"]) if a["counterparty"] else 0,
                      a["quantity"], a["price_fen"], now)
        match = next((o for o in state.blocks.values()
                      if o["credit_code"] == a["counterparty"] and o["counterparty"] == a["credit_code"]
                      and o["side"] != a["side"] and o["price_fen"] == a["price_fen"]
                      and o["quantity"] == a["quantity"]), None)
        order = self._new_order(state, op, block=True, sequence=0)
        batch.new_orders[order["order_id"]] = order
        batch.metrics.append(lambda: self.metrics.orders.labels(a["side"], "accepted", "").inc())
        batch.audit.append((op.actor, "block.proposed", f"market:{state.instrument}", order_view(order)))
        if match is None:
            state.blocks[order["order_id"]] = order
            return {"order": order_view(order), "trades": []}
        buyer, seller = (order, match) if a["side"] == "buy" else (match, order)
        events = m.block_trade(account_of(buyer["credit_code"]), account_of(seller["credit_code"]), a["price_fen"],
                               a["quantity"], now)
        self.record(state, events, batch, op.actor, op.at)
        for o in (order, match):
            o.update(filled=o["quantity"], state="filled")
            self._touch(batch, o)
            self._spend(state, o, a["price_fen"], a["quantity"])
        state.blocks.pop(match["order_id"], None)
        trade = self._trade(state, batch, buyer, seller, a["price_fen"], a["quantity"], events[0].trade_seq, op.at)
        return {"order": order_view(order), "trades": [trade_view(trade)]}

    def _resting(self, state: MarketState, op: MarketOp) -> tuple[int, dict]:
        seq = state.by_id.get(op.args["order_id"])
        if seq is None:
            raise TradingRuleError("ORDER_NOT_ACTIVE", f"order {op.args['order_id']} is not resting")
        order = state.orders[seq]
        if order["credit_code"] != op.args["credit_code"]:
            raise TradingRuleError("NOT_ORDER_OWNER", "only the order's owner may change it")
        return seq, order

    def _cancel(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        proposal = state.blocks.get(op.args["order_id"])
        if proposal is not None:  # off the book: its mirror row is its whole record
            if proposal["credit_code"] != op.args["credit_code"]:
                raise TradingRuleError("NOT_ORDER_OWNER", "only the order's owner may change it")
            proposal.update(state="cancelled", reject_reason="requested")
            self._touch(batch, proposal)
            state.dirty[proposal["order_id"]] = proposal
            state.blocks.pop(proposal["order_id"])
            batch.audit.append((op.actor, "block.cancelled", f"market:{state.instrument}",
                                {"order_id": proposal["order_id"]}))
            return {"order": order_view(proposal), "trades": []}
        seq, order = self._resting(state, op)
        self.record(state, state.market.cancel_order(seq, account_of(order["credit_code"]), state.local(op.at)),
                    batch, op.actor, op.at)
        return {"order": order_view(order), "trades": []}

    def _amend(self, state: MarketState, op: MarketOp, batch: MarketBatch) -> dict:
        a = op.args
        if a["order_id"] in state.blocks:
            raise TradingRuleError("BLOCK_NOT_AMENDABLE", "cancel the block proposal and propose again")
        seq, order = self._resting(state, op)
        if order["hold_id"]:
            # The extra was held against the order as it was then; a trade since may have taken part of it.
            price = a["price_fen"] or order["price_fen"]
            wanted = a["quantity"] * price if order["side"] == "buy" else a["quantity"]
            if state.free.get(order["order_id"], 0) + a.get("extra", 0) < wanted:
                raise TradingRuleError("ORDER_TRADED_MEANWHILE", "the order traded while its amendment was held; "
                                                                 "amend it again with a new key")
        first_trade = len(batch.trades)
        events = state.market.amend_order(seq, account_of(order["credit_code"]), state.local(op.at), a["quantity"],
                                          a["price_fen"] or None)
        if a.get("extra"):
            state.free[order["order_id"]] += a["extra"]
        state.dirty[order["order_id"]] = order
        self.record(state, events, batch, op.actor, op.at)
        return {"order": order_view(order), "trades": [trade_view(x) for x in batch.trades[first_trade:]]}

    # ------------------------------------------------------------ events → rows
    def record(self, state: MarketState, events: list, batch: MarketBatch, actor: str, at: datetime) -> None:
        for event in events:
            if isinstance(event, JOURNAL):
                state.last_seq += 1
                type_name, payload = encode_event(event)
                batch.journal.append(dict(instrument=state.instrument, seq=state.last_seq, type=type_name,
                                          payload=payload, at=at))
            handler = getattr(self, f"_on_{type(event).__name__}", None)
            if handler:
                handler(state, event, batch, actor, at)

    def _touch(self, batch: MarketBatch, order: dict) -> None:
        if order["order_id"] not in batch.new_orders:
            batch.touched[order["order_id"]] = order

    def _forget(self, state: MarketState, order: dict) -> None:
        state.orders.pop(order["sequence"], None)
        state.by_id.pop(order["order_id"], None)

    def _on_OrderAccepted(self, state, e, batch, actor, at) -> None:
        order = state.orders[e.order_id]
        batch.outbox.append(Event("trading.market.order_accepted", "yaosu.trading.market.order_accepted",
                                  f"order:{order['order_id']}",
                                  {"instrument": state.instrument, "order_id": order["order_id"],
                                   "side": order["side"], "type": order["type"], "price_fen": order["price_fen"],
                                   "quantity": order["quantity"]}))
        batch.audit.append((actor, "order.accepted", f"market:{state.instrument}", order_view(order)))

    def _on_OrderAmended(self, state, e, batch, actor, at) -> None:
        order = state.orders[e.order_id]
        order.update(quantity=order["filled"] + e.new_quantity, price_fen=e.new_price)
        self._touch(batch, order)
        batch.audit.append((actor, "order.amended", f"market:{state.instrument}",
                            {"order_id": order["order_id"], "quantity": e.new_quantity, "price_fen": e.new_price,
                             "keeps_priority": e.keeps_priority}))

    def _on_OrderCancelled(self, state, e, batch, actor, at) -> None:
        order = state.orders.get(e.order_id)
        if order is None:
            return
        order.update(state="cancelled", reject_reason=e.reason)
        self._touch(batch, order)
        state.dirty[order["order_id"]] = order
        self._forget(state, order)
        batch.outbox.append(Event("trading.market.order_cancelled", "yaosu.trading.market.order_cancelled",
                                  f"order:{order['order_id']}", {"instrument": state.instrument,
                                                                 "order_id": order["order_id"],
                                                                 "quantity": e.quantity, "reason": e.reason}))
        batch.audit.append((actor, "order.cancelled", f"market:{state.instrument}",
                            {"order_id": order["order_id"], "quantity": e.quantity, "reason": e.reason}))

    def _on_TradeExecuted(self, state, e, batch, actor, at) -> None:
        maker, taker = state.orders[e.maker_order_id], state.orders[e.taker_order_id]
        for order in (maker, taker):
            order["filled"] += e.quantity
            order["state"] = "filled" if order["filled"] >= order["quantity"] else "partially_filled"
            self._touch(batch, order)
            self._spend(state, order, e.price, e.quantity)
        buyer, seller = (maker, taker) if maker["side"] == "buy" else (taker, maker)
        self._trade(state, batch, buyer, seller, e.price, e.quantity, e.trade_seq, at, actor)
        for order in (maker, taker):
            if order["state"] == "filled":
                self._forget(state, order)

    def _trade(self, state: MarketState, batch: MarketBatch, buyer: dict, seller: dict, price: int, quantity: int,
               trade_seq: int, at: datetime, actor: str = "system") -> dict:
        """The trade row, its DvP ledger task (keyed by the trade id, paid out of both orders' holds), the
        public event and the record."""
        market = state.row
        units = Decimal(quantity) * Decimal(market["lot_size"])
        trade_id = f"{market['trade_code']}-T{trade_seq}"  # trade_seq is the replayed market's: stable
        amount = price * quantity
        trade = dict(trade_id=trade_id, trade_code=market["trade_code"], listing_id="", instrument=state.instrument,
                     buyer=buyer["credit_code"], seller=seller["credit_code"], quantity=format(units, "f"),
                     unit=market["unit"], price_fen=price, amount_fen=amount,
                     legs=dumps({"book": not buyer["block"], "buy_order": buyer["order_id"],
                                 "sell_order": seller["order_id"], "buy_hold": buyer["hold_id"],
                                 "sell_hold": seller["hold_id"]}),
                     settlement_state="settling", settlement_operation_id="", settlement_attempts=0,
                     settlement_error="", next_attempt_at=None, executed_at=at, settled_at=None, confirmed=True)
        batch.trades.append(trade)
        ledger_task(batch, f"trading:settle:{trade_id}", "settle_book", {}, trade_id)
        batch.outbox.append(Event("trading.market.trade", "yaosu.trading.market.trade", f"trade:{trade_id}",
                                  {"instrument": state.instrument, "trade_id": trade_id, "price_fen": price,
                                   "quantity": quantity, "block": bool(buyer["block"]),
                                   "executed_at": at.isoformat()}))
        batch.audit.append((actor, "trade.executed", f"market:{state.instrument}",
                            {"trade_id": trade_id, "buyer": buyer["credit_code"], "seller": seller["credit_code"],
                             "price_fen": price, "quantity": quantity}))
        kind = kind_of(state.instrument)
        batch.metrics.append(lambda: self.metrics.trade(kind, float(units), amount, price))
        market.update(last_price_fen=price)
        return trade

    def _on_DayOpened(self, state, e, batch, actor, at) -> None:
        state.row.update(trading_day=e.trading_day.isoformat(), previous_close_fen=e.previous_close)
        batch.outbox.append(Event("trading.market.day_opened", "yaosu.trading.market.day_opened",
                                  f"market:{state.instrument}", {"instrument": state.instrument,
                                                                 "trading_day": e.trading_day.isoformat(),
                                                                 "previous_close_fen": e.previous_close}))

    def _on_DayClosed(self, state, e, batch, actor, at) -> None:
        # The book's resting orders and the open block proposals expire: their mirror rows follow (the
        # domain clears its book), and their holds are released.
        for order in [*state.orders.values(), *state.blocks.values()]:
            order.update(state="cancelled", reject_reason="day_end")
            self._touch(batch, order)
            state.dirty[order["order_id"]] = order
            self._forget(state, order)
        state.blocks.clear()
        state.row.update(previous_close_fen=e.close_price)
        batch.outbox.append(Event("trading.market.day_closed", "yaosu.trading.market.day_closed",
                                  f"market:{state.instrument}", {"instrument": state.instrument,
                                                                 "trading_day": e.trading_day.isoformat(),
                                                                 "close_price_fen": e.close_price,
                                                                 "volume": e.book_volume}))


async def flush_market(tx, state: MarketState, batch: MarketBatch) -> None:
    """Write a market's staged rows of one batch, table by table, and its row."""
    s = tx.session
    if batch.journal:
        await s.execute(insert(journal_t), batch.journal)
    if batch.new_orders:
        await s.execute(insert(orders_t), [dict(o) for o in batch.new_orders.values()])
    for order_id, o in batch.touched.items():
        await s.execute(update(orders_t).where(orders_t.c.order_id == order_id).values(
            filled=o["filled"], state=o["state"], reject_reason=o["reject_reason"], quantity=o["quantity"],
            price_fen=o["price_fen"]))
    repo = TradingRepository(s)
    await repo.insert_many(r.trades, batch.trades)
    if batch.refusal_tasks:  # a request retried after a conflict may have queued its release before
        ids = [x["task_id"] for x in batch.refusal_tasks]
        done = set((await s.execute(select(r.tasks.c.task_id).where(r.tasks.c.task_id.in_(ids)))).scalars())
        fresh = {x["task_id"]: x for x in batch.refusal_tasks if x["task_id"] not in done}
        batch.tasks.extend(fresh.values())
    await repo.insert_many(r.tasks, batch.tasks)
    row = state.row
    await s.execute(update(markets_t).where(markets_t.c.instrument == state.instrument).values(
        last_price_fen=row["last_price_fen"], previous_close_fen=row["previous_close_fen"],
        trading_day=row["trading_day"]))
    if batch.outbox:
        await tx.emit_many(batch.outbox)
    if batch.audit:
        await tx.audit_many(batch.audit)


class Markets:
    """Use cases of the continuous markets (the gRPC mixin in adapters/grpc/market.py calls these)."""

    def __init__(self, uow: UnitOfWork, writes: WriteEngine, registry: RegistryPort, metrics: TradingMetrics,
                 clock: Callable[[], datetime], *, access: Access, policy: MarketPolicy, region_code: str,
                 on_tasks: Callable[[], None]) -> None:
        self.uow, self.writes, self.registry, self.metrics, self.clock = uow, writes, registry, metrics, clock
        self.access, self.disclosure, self.policy = access, Disclosure(access), policy
        self.region_code, self.on_tasks = region_code, on_tasks
        self.rules = MarketRules(metrics)
        self.cache: dict[str, MarketState] = {}
        self.life = uuid.uuid4().hex[:12]  # this process's life: part of its order holds' keys and purposes
        self.holds_reconciled = False
        self.accounts: dict[tuple[str, str], str] = {}  # (holder, instrument) → registry account id

    # ------------------------------------------------------------ configuration
    async def ensure_market(self, config: dict) -> dict:
        """Create a market from its configuration if it does not exist. Its row keeps the market's own
        rules (overrides of the market policy); the rest follows the policy in force, whose version each
        trading day records (DayOpened) and each refusal names."""
        instrument = config["instrument"]
        # Refuse a malformed configuration before storing it (at start: the service does not serve then).
        self.policy.configure(config.get("rules", {}), f"market {instrument}")
        async with self.uow() as tx:
            existing = (await tx.session.execute(select(markets_t).where(markets_t.c.instrument == instrument)))\
                .first()
            if existing is not None:
                return row_dict(existing)
            repo = TradingRepository(tx.session)
            now = self.clock()
            trade_type = {"energy_use_right": "energy_use_right", "pollutant_discharge_right": "emission_right"}\
                .get(kind_of(instrument), "carbon_quota")
            serial = await repo.next_serial(f"{self.region_code}:{trade_type}:{now.year}")
            row = dict(instrument=instrument, name=config.get("name", instrument), unit=config.get("unit", ""),
                       lot_size=str(config.get("lot_size", "1")),
                       trade_code=make_trade_code(TradeCodeFormat(), self.region_code, trade_type, now.year, serial),
                       rules=dumps(config.get("rules", {})), previous_close_fen=int(config["previous_close_fen"]),
                       last_price_fen=0, trading_day="", day_volume=0, day_value_fen=0,
                       seller_of_record=config.get("seller_of_record", ""))
            await tx.session.execute(insert(markets_t).values(**row))
            await tx.audit("market.created", f"market:{instrument}", {k: v for k, v in row.items()})
            await tx.commit()
        return row

    # ------------------------------------------------------------ commands
    def _act_for(self, credit_code: str, operation: str) -> None:
        """Only the enterprise itself orders (checked before anything is asked of the registry)."""
        if not credit_code:
            raise InvalidArgument.field("credit_code", "required")
        self.access.require(operation, Owner.enterprise(credit_code))

    def _shown(self, result: dict) -> dict:
        """An answer with its trades as the caller may see them: each party only its own side; a refusal
        recorded as the key's answer is raised again."""
        if "refused" in result:
            raise refused_error(result)
        return result | {"trades": [self.disclosure.trade(x) for x in result.get("trades", [])]}

    async def place(self, key: str, instrument: str, credit_code: str, side: str, order_type: str, price_fen: int,
                    quantity: int, *, block: bool = False, counterparty: str = "", level: int = 0) -> dict:
        self._act_for(credit_code, "PlaceOrder")
        limits.order_numbers(price_fen, quantity)
        actor = current_principal().actor
        v = []
        if side not in ("buy", "sell"):
            v.append(("side", "buy or sell"))
        if order_type not in ORDER_TYPES:
            v.append(("type", "limit, market or level"))
        if quantity <= 0:
            v.append(("quantity", "must be positive"))
        if order_type in ("limit", "level") and price_fen <= 0:
            v.append(("price.fen", "a limit order needs a positive price" if order_type == "limit" else
                      "a level order carries the price shown at its chosen level"))
        if order_type == "market" and price_fen:
            v.append(("price.fen", "a market order carries no price"))
        if order_type == "level" and level <= 0:
            v.append(("level", "the chosen price level of the other side: 1 for the best, up to the market's "
                               "taker_levels"))
        if order_type != "level" and level:
            v.append(("level", "only a level order names a price level"))
        if not key:
            v.append(("idempotency_key", "required"))
        if block and (order_type != "limit" or not counterparty):
            v.append(("counterparty", "a block order is a limit order naming its counterparty"))
        if v:
            require([FieldViolation(f, d) for f, d in v])
        args = dict(credit_code=credit_code, side=side, type=order_type, price_fen=price_fen, quantity=quantity,
                    block=block, counterparty=counterparty if block else "", **({"level": level} if level else {}))
        digest = idem.digest("market_place", {"i": instrument, **args})
        # A retry of a decided order is answered as it was, before anything is asked of the registry.
        if (first := await self._replayed(key, "market_place", digest)) is not None:
            return self._shown(first)
        state = await self._state(instrument)
        is_buy = side == "buy"
        try:
            self._rules_first(state, credit_code, quantity, price_fen, order_type, level, block, counterparty)
            order_id = order_id_for(key, digest)
            held, hold_id = await self._hold_order(state, order_id, credit_code, is_buy, order_type, price_fen,
                                                   quantity)
        except RuleViolation as exc:
            self.metrics.orders.labels(side, "refused", exc.reason).inc()
            raise
        held_args = {"order_id": order_id, "hold_id": hold_id, "held": held, "level": level}
        return self._shown(await self._submit(instrument,
            MarketOp("place", self.clock(), actor, key, digest, {**args, **held_args})))

    async def cancel(self, key: str, order_id: str, credit_code: str) -> dict:
        self._act_for(credit_code, "CancelOrder")
        order = await self._own_order("CancelOrder", order_id, credit_code)
        args = dict(order_id=order_id, credit_code=credit_code)
        digest = idem.digest("market_cancel", args)
        return await self._submit(order["instrument"],
            MarketOp("cancel", self.clock(), current_principal().actor, key, digest, args))

    async def amend(self, key: str, order_id: str, credit_code: str, price_fen: int, quantity: int) -> dict:
        """Change a resting order's price or remaining quantity. What the amendment adds to the order's cost is
        held first (the hold's extra, keyed by the order and the request); what it no longer needs is released
        once it is applied."""
        self._act_for(credit_code, "AmendOrder")
        if not key:
            raise InvalidArgument.field("idempotency_key", "required: an amendment may hold more funds or units")
        order = await self._own_order("AmendOrder", order_id, credit_code)
        limits.order_numbers(price_fen, quantity)
        args = dict(order_id=order_id, credit_code=credit_code, price_fen=price_fen, quantity=quantity)
        digest = idem.digest("market_amend", args)
        if (first := await self._replayed(key, "market_amend", digest)) is not None:
            return self._shown(first)
        state = await self._state(order["instrument"])
        seq = state.by_id.get(order_id)
        extra = 0
        if seq is not None and state.orders[seq]["hold_id"]:
            current = state.orders[seq]
            price = price_fen or current["price_fen"]
            try:
                state.market.check_order(quantity, price)  # the rules first, then the registry
            except TradingRuleError as exc:
                raise refusal(exc) from None
            is_buy = current["side"] == "buy"
            extra = max(0, (quantity * price if is_buy else quantity) - state.free.get(order_id, 0))
            if extra:
                await self._increase_hold(state, current, key, extra)
            args_held = {"hold_id": current["hold_id"], "is_buy": is_buy, "extra": extra}
        else:
            args_held = {}
        return self._shown(await self._submit(order["instrument"],
            MarketOp("amend", self.clock(), current_principal().actor, key, digest, {**args, **args_held})))

    async def _replayed(self, key: str, operation: str, digest: str) -> dict | None:
        return await self.writes.stored_answer(key, operation, digest)

    async def _own_order(self, operation: str, order_id: str, credit_code: str) -> dict:
        """The caller's own order; an unknown order id and somebody else's answer alike (NOT_FOUND)."""
        async with self.uow.read() as tx:
            row = (await tx.session.execute(select(orders_t).where(orders_t.c.order_id == order_id))).first()
        order = row_dict(row) if row is not None else None
        owned = order is not None and order["credit_code"] == credit_code
        require_owned(self.access, operation, "order", order_id, [Owner.enterprise(credit_code)] if owned else None)
        return order

    def _rules_first(self, state: MarketState, credit_code: str, quantity: int, price_fen: int, order_type: str,
                     level: int, block: bool, counterparty: str) -> None:
        """The market's own refusals come before anything is held (the writer checks them again)."""
        m, now = state.market, state.local(self.clock())
        try:
            if block:
                m.check_block(account_of(credit_code), account_of(counterparty) if counterparty else 0, quantity,
                              price_fen, now)
            else:
                m.check_hours(now)
                m.check_order(quantity, price_fen or None, ORDER_TYPES[order_type], level)
        except TradingRuleError as exc:
            if exc.code == "LEVEL_OUT_OF_RANGE":  # the request's own number, beyond what the market offers
                raise InvalidArgument.field("level", exc.message) from None
            raise refusal(exc) from None

    async def _account(self, holder: str, instrument: str) -> str:
        """The holder's registry account of the instrument (account ids never change: kept once found)."""
        found = self.accounts.get((holder, instrument))
        if found is None:
            found = self.accounts[(holder, instrument)] = await self.registry.account(holder, instrument,
                                                                                       open_if_missing=False)
        return found

    async def _hold_order(self, state: MarketState, order_id: str, credit_code: str, is_buy: bool, order_type: str,
                          price_fen: int, quantity: int) -> tuple[int, str]:
        """Hold what the order may cost before it is acknowledged: price × quantity fen of a buy (a market
        buy: the top of the band), the units of a sell. Keyed by the order id and the amount: a retry holds
        once. Returns (held, in fen or lots; the hold id)."""
        if is_buy:
            held = (price_fen or state.band_high()) * quantity
            instrument, amount = "CNY", str(held)
        else:
            held, instrument, amount = quantity, state.instrument, state.units(quantity)
        try:
            account = await self._account(credit_code, instrument)
            # Keyed by this process's life too: a retry after a restart holds afresh, and the hold the crash
            # left behind (made for an order never recorded) is released by reconcile_order_holds.
            hold_id = await self.registry.create_hold(
                f"trading:order:{order_id}:hold:{held}:{self.life}", account, amount,
                state.hold_deadline(self.clock()), f"{ORDER_HOLD}{order_id}:{self.life}", partial=True)
        except RegistryUnavailable:
            raise DependencyUnavailable("the registry is unavailable; retry", reason="REGISTRY_UNAVAILABLE") from None
        except RegistryRefused as exc:
            raise self._hold_refused(exc, is_buy, amount, state, "this order") from None
        return held, hold_id

    async def _increase_hold(self, state: MarketState, order: dict, key: str, extra: int) -> None:
        is_buy = order["side"] == "buy"
        amount = str(extra) if is_buy else state.units(extra)
        suffix = hashlib.sha256(key.encode()).hexdigest()[:16]
        try:
            await self.registry.increase_hold(f"trading:order:{order['order_id']}:increase:{suffix}:{extra}",
                                              order["hold_id"], amount)
        except RegistryUnavailable:
            raise DependencyUnavailable("the registry is unavailable; retry", reason="REGISTRY_UNAVAILABLE") from None
        except RegistryRefused as exc:
            if exc.reason == "HOLD_RESOLVED":  # the order was done (filled, cancelled) and its hold settled
                raise RuleViolation(f"order {order['order_id']} is not resting", reason="ORDER_NOT_ACTIVE") from None
            raise self._hold_refused(exc, is_buy, amount, state, "the amendment") from None

    @staticmethod
    def _hold_refused(exc: RegistryRefused, is_buy: bool, amount: str, state: MarketState, what: str) -> RuleViolation:
        if exc.reason == "INSUFFICIENT_FUNDS" or exc.code == "NOT_FOUND":
            if is_buy:
                return RuleViolation(f"the available CNY does not cover the {amount} fen {what} may cost "
                                     f"({exc.message})", reason="INSUFFICIENT_FUNDS")
            return RuleViolation(f"the available {state.instrument} does not cover the {amount} {state.row['unit']} "
                                 f"{what} sells ({exc.message})", reason="INSUFFICIENT_HOLDINGS")
        return RuleViolation(f"registry refused the hold: {exc.message}", reason=f"REGISTRY_{exc.reason or exc.code}")

    async def _submit(self, instrument: str, op: MarketOp) -> dict:
        """Apply the op to the market through the write engine; answered once its batch is committed."""
        def stage(tx: Transaction, state: MarketState, own: MarketBatch) -> None:
            def accumulator() -> MarketBatch:
                batch = MarketBatch(own.now)

                def published() -> None:  # once per batch: the book's snapshot and depth cost O(orders)
                    state.publish()
                    for hook in batch.metrics:
                        hook()
                    if batch.tasks:
                        self.on_tasks()
                    self.refresh_depth(state)
                tx.after_commit(published)
                return batch
            staged = tx.stage(partition(instrument), accumulator, lambda batch: flush_market(tx, state, batch))
            staged.merge(own)

        async def work(tx: Transaction) -> dict:
            state = await self._writer_state(tx, instrument)
            own = MarketBatch(self.clock())
            try:
                result = self.rules.apply(state, op, own)
            except (TradingRuleError, CommonError) as exc:
                error = refusal(exc) if isinstance(exc, TradingRuleError) else exc
                if op.kind == "place":
                    self.metrics.orders.labels(op.args["side"], "refused", error.reason).inc()
                answer = self.rules.refused(state, op, own, error)
                if answer is None:
                    raise error from None
                stage(tx, state, own)  # the hold goes back, and the refusal is the key's answer
                return answer
            stage(tx, state, own)
            return result

        async def compensate(tx: Transaction) -> None:
            # The key is another request's: the hold made for this one goes back.
            state = await self._writer_state(tx, instrument)
            own = MarketBatch(self.clock())
            self.rules.refused(state, op, own, IdempotencyConflict(op.key))
            stage(tx, state, own)
        return await self.writes.submit(Command(
            partition(instrument), f"market_{op.kind}", work, key=op.key, digest=op.digest, savepoint=False,
            compensate=compensate, abandon=lambda: self.cache.pop(instrument, None)))

    async def _writer_state(self, tx: Transaction, instrument: str) -> MarketState:
        state = self.cache.get(instrument)
        if state is None:
            state = await load_market(tx.session, instrument, self.policy)
            if state is None:
                raise not_found("market", instrument)
            self.cache[instrument] = state
        return state

    async def _state(self, instrument: str) -> MarketState:
        state = self.cache.get(instrument)
        if state is None:
            async with self.uow.read() as tx:
                state = await load_market(tx.session, instrument, self.policy)
            if state is None:
                raise not_found("market", instrument)
            # A writer that loaded meanwhile keeps its own copy: it is the one that changes.
            state = self.cache.setdefault(instrument, state)
        return state

    async def reconcile_order_holds(self) -> None:
        """Release the order holds an earlier life of this service made for orders it never recorded (it
        stopped between the hold and the commit): each is voided by a keyed ledger task. Holds of this life
        are never touched, nor one whose order was recorded with it. Done once, as soon as this process has
        reached the registry (its first order does); retried while the registry does not answer."""
        if self.holds_reconciled or not self.registry.connected():
            return  # asked once the registry is reached (a call to an absent one would only delay the next)
        try:
            pending = await self.registry.pending_holds(ORDER_HOLD)
        except RegistryUnavailable:
            log.warning("order holds not reconciled yet: the registry did not answer")
            return
        earlier = {}
        for hold in pending:
            order_id, _, life = hold.purpose.removeprefix(ORDER_HOLD).rpartition(":")
            if order_id and life != self.life:
                earlier[hold.hold_id] = order_id
        if earlier:
            released = await self.writes.submit(Command(ORDER_HOLDS, "reconcile_order_holds",
                                                        partial(self._release_orphans, earlier)))
            if released:
                log.warning("released order holds left by an earlier run", extra={"holds": released})
                self.on_tasks()
        self.holds_reconciled = True

    async def _release_orphans(self, earlier: dict[str, str], tx: Transaction) -> int:
        recorded = {(row.order_id, row.hold_id) for row in (await tx.session.execute(
            select(orders_t.c.order_id, orders_t.c.hold_id).where(orders_t.c.order_id.in_(set(earlier.values())))))}
        batch = MarketBatch(self.clock())
        for hold_id, order_id in earlier.items():
            if (order_id, hold_id) not in recorded:
                ledger_task(batch, f"trading:order-hold:{hold_id}:orphaned", "void_hold",
                            {"hold_id": hold_id, "reason": "order never recorded (service restarted)"})
        ids = [task["task_id"] for task in batch.tasks]
        done = set((await tx.session.execute(select(r.tasks.c.task_id).where(r.tasks.c.task_id.in_(ids)))).scalars())
        fresh = [task for task in batch.tasks if task["task_id"] not in done]
        await TradingRepository(tx.session).insert_many(r.tasks, fresh)
        return len(fresh)

    async def warm_up(self) -> None:
        """Rebuild every market from its journal at start, so the book and its gauges are there at once."""
        async with self.uow.read() as tx:
            instruments = [x for (x,) in (await tx.session.execute(select(markets_t.c.instrument))).all()]
            for instrument in instruments:
                if instrument not in self.cache:
                    self.cache[instrument] = await load_market(tx.session, instrument, self.policy)
        for state in self.cache.values():
            self.refresh_depth(state)
        await self.tick_all()

    async def tick_all(self) -> None:
        """Roll each market's trading day on time (open today's, expire yesterday's resting orders), so
        that the first order of a day meets an open day and its band, whoever comes first."""
        await self.reconcile_order_holds()
        for instrument in list(self.cache):
            try:
                await self._submit(instrument, MarketOp("tick", self.clock(), "system", "", "", {}))
            except Exception:  # noqa: BLE001 - one market's failure must not stop the others' days
                log.exception("market day roll failed", extra={"instrument": instrument})

    def refresh_depth(self, state: MarketState) -> None:
        # The gauge is per instrument kind (labels never name an instrument): the sum over its markets.
        kind = kind_of(state.instrument)
        bids = asks = 0
        for other in self.cache.values():
            if kind_of(other.instrument) == kind:
                b, a = other.market.book.resting_quantity()
                bids, asks = bids + b, asks + a
        self.metrics.book_depth.labels(kind, "buy").set(bids)
        self.metrics.book_depth.labels(kind, "sell").set(asks)

    # ------------------------------------------------------------ reads
    async def book(self, instrument: str, depth: int) -> dict:
        """Each side's best `depth` (default 5) price levels, best first, with their quantities and order
        counts: level n of the other side is what a level order names (up to the market's taker_levels)."""
        self.access.require("GetOrderBook")
        state = await self._state(instrument)
        depth = min(max(depth or 5, 1), 50)
        shown, now = state.shown, self.clock()

        def levels(is_buy: bool) -> list[tuple[int, int, int]]:
            out: list[list[int]] = []
            for o in shown["book"]:  # in priority order, bids then asks
                if o.is_buy != is_buy:
                    continue
                if out and out[-1][0] == o.price:
                    out[-1][1] += o.quantity
                    out[-1][2] += 1
                elif len(out) == depth:
                    break
                else:
                    out.append([o.price, o.quantity, 1])
            return [tuple(x) for x in out]

        low, high = shown["band"]
        return {"instrument": instrument, "bids": levels(True), "asks": levels(False),
                "last_price_fen": shown["last_price_fen"], "previous_close_fen": shown["previous_close_fen"],
                "band_low_fen": low, "band_high_fen": high, "open": state.is_open(now), "server_time": now,
                "taker_levels": state.market.rules.taker_levels}

    async def list_markets(self) -> list[dict]:
        self.access.require("ListMarkets")
        async with self.uow.read() as tx:
            rows = [row_dict(x) for x in (await tx.session.execute(select(markets_t)
                                                                    .order_by(markets_t.c.instrument))).all()]
        now, out = self.clock(), []
        for row in rows:
            state = await self._state(row["instrument"])
            shown = state.shown
            out.append({**row, "last_price_fen": shown["last_price_fen"],
                        "previous_close_fen": shown["previous_close_fen"],
                        "volume_today": shown["volume"] if shown["day"] == state.local(now).date() else 0,
                        "open": state.is_open(now)})
        return out

    async def list_orders(self, credit_code: str, instrument: str, open_only: bool, after: str,
                          limit: int) -> list[dict]:
        scope = self.access.scope("ListOrders")
        if scope.owner is not None and scope.owner.kind is Kind.ENTERPRISE:  # its own orders only
            if credit_code not in ("", scope.owner.id):
                raise PermissionDenied("an enterprise lists its own orders only", reason="NOT_OWNER")
            credit_code = scope.owner.id
        query = select(orders_t)
        if credit_code:
            query = query.where(orders_t.c.credit_code == credit_code)
        if instrument:
            query = query.where(orders_t.c.instrument == instrument)
        if open_only:
            query = query.where(orders_t.c.state.in_(OPEN_STATES))
        if after:
            query = query.where(orders_t.c.order_id > after)
        async with self.uow.read() as tx:
            rows = (await tx.session.execute(query.order_by(orders_t.c.order_id).limit(limit))).all()
        return [order_view(row_dict(x)) for x in rows]

    async def statistics(self, since: datetime | None) -> dict:
        self.access.require("GetMarketStatistics")
        trades_t, listings_t, bids_t = r.trades, r.listings, r.bids
        query = select(trades_t.c.instrument, trades_t.c.quantity, trades_t.c.price_fen, trades_t.c.amount_fen)\
            .where(trades_t.c.listing_id == "", trades_t.c.settlement_state != "failed")
        if since is not None:
            query = query.where(trades_t.c.executed_at >= since)
        per: dict[str, dict] = {}
        async with self.uow.read() as tx:
            s = tx.session
            for row in (await s.execute(query)).all():
                st = per.setdefault(row.instrument, {"instrument": row.instrument, "trades": 0, "volume": Decimal(0),
                                                     "value_fen": 0, "high_fen": 0, "low_fen": 0})
                st["trades"] += 1
                st["volume"] += Decimal(row.quantity)
                st["value_fen"] += row.amount_fen
                st["high_fen"] = max(st["high_fen"], row.price_fen)
                st["low_fen"] = min(st["low_fen"] or row.price_fen, row.price_fen)
            by_state = {state: n for state, n in (await s.execute(
                select(listings_t.c.state, func.count()).where(listings_t.c.state != "draft")
                .group_by(listings_t.c.state))).all()}
            backlog = await TradingRepository(s).backlog()
            bidders = (select(bids_t.c.listing_id, func.count(func.distinct(bids_t.c.credit_code)).label("n"))
                       .where(bids_t.c.state == "accepted").group_by(bids_t.c.listing_id).subquery())
            single = (await s.execute(select(func.count()).select_from(listings_t.join(
                bidders, bidders.c.listing_id == listings_t.c.listing_id)).where(
                listings_t.c.state.in_(("awarded", "settled")), bidders.c.n == 1))).scalar_one()
        for st in per.values():
            # VWAP per unit of the instrument: value / volume, rounded half up to the fen.
            st["vwap_fen"] = int((Decimal(st["value_fen"]) / st["volume"]).to_integral_value()) if st["volume"] else 0
        open_sales = sum(n for state, n in by_state.items() if state in ("published", "closed", "live_round"))
        return {"instruments": sorted(per.values(), key=lambda x: x["instrument"]), "open_sales": open_sales,
                "settlement_backlog": backlog, "sales_by_state": by_state, "single_bidder_sales": single}


__all__ = ["Markets", "account_of"]
