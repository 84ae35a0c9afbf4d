"""The trading service's tables (its own SQLModel registry; no other service reads them).

Secret values — the reserve price and sealed bid amounts — live in ordinary columns that no read path
returns before the opening time; the adapters decide what leaves the service, the tables keep the truth.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.common.tables import declare_infrastructure


class TradingTable(SQLModel, registry=registry()):
    pass


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


def _big(**kw) -> Column:
    return Column(BigInteger, **kw)


class ListingRow(TradingTable, table=True):
    __tablename__ = "listings"
    listing_id: str = Field(primary_key=True, max_length=64)
    trade_code: str = Field(unique=True, max_length=40)
    mechanism: str = Field(max_length=20, index=True)
    state: str = Field(max_length=20, index=True)
    agency_id: str = Field(max_length=64, index=True)
    resource_id: str = ""
    instrument: str = ""
    quantity: str = "0"
    unit: str = ""
    title: str
    description: str = ""
    rules: str = Field(sa_column=Column(Text, nullable=False))          # JSON
    eligibility: str = Field(sa_column=Column(Text, nullable=False))    # JSON
    performance: str = Field(sa_column=Column(Text, nullable=False))    # JSON
    documents: str = Field(sa_column=Column(Text, nullable=False))      # JSON list
    announce_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    bidding_opens_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    bidding_closes_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    opening_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    version: int = 1
    reserve_entered_by: str = ""
    reserve_approved_by: str = ""
    # The mechanism's state machine is not snapshotted: it is rebuilt by replaying `sale_events`.
    # Public mirror of that state (last accepted price, leader's bidder number, accepted bids) for reads.
    current_price_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    leader: str = ""
    accepted_bids: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # JSON once decided
    # When the timer loop must look at this listing next (open, close, countdown end, opening).
    next_timer_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True, index=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_by: str = ""


class SaleEventRow(TradingTable, table=True):
    """Append-only domain events of one sale; `Listing.replay(terms, events)` rebuilds its state."""

    __tablename__ = "sale_events"
    listing_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    type: str = Field(max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=_ts(nullable=False))


class LedgerTaskRow(TradingTable, table=True):
    """A registry call the service owes (settle a trade, void or forfeit a deposit, move a catalogue
    item). Written in the transaction that decided it; the settlement worker performs it with the
    task id as the registry idempotency key, so it happens exactly once however often it is retried."""

    __tablename__ = "ledger_tasks"
    task_id: str = Field(primary_key=True, max_length=120)
    kind: str = Field(max_length=20)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    trade_id: str = Field(default="", max_length=64, index=True)
    state: str = Field(max_length=10, index=True)  # pending, done, failed
    attempts: int = 0
    error: str = ""
    next_attempt_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ChangeNoticeRow(TradingTable, table=True):
    __tablename__ = "change_notices"
    __table_args__ = (UniqueConstraint("listing_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    listing_id: str = Field(foreign_key="listings.listing_id", index=True)
    version: int
    reason: str
    changed_fields: str  # comma-separated
    bids_invalidated: bool = False
    published_at: datetime = Field(sa_column=_ts(nullable=False))
    # An increment change (增价幅度) is announced as a notice of its own: the new and the old value, fen.
    increment_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0, server_default="0"))
    previous_increment_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0, server_default="0"))


class RegistrationRow(TradingTable, table=True):
    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("listing_id", "credit_code"), UniqueConstraint("listing_id", "bidder_number"))
    registration_id: str = Field(primary_key=True, max_length=64)
    listing_id: str = Field(foreign_key="listings.listing_id", index=True)
    credit_code: str = Field(max_length=18, index=True)
    bidder_number: str = Field(max_length=16)
    state: str = Field(max_length=24)
    eligibility_rule: str = ""
    eligibility_detail: str = ""
    evaluation_score: str = ""       # for comprehensive tender scoring
    deposit_hold_id: str = ""
    deposit_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    deposit_state: str = ""          # held, applied, forfeited, released
    confirmed_continue: bool = False
    registered_at: datetime = Field(sa_column=_ts(nullable=False))


class BidRow(TradingTable, table=True):
    __tablename__ = "bids"
    __table_args__ = (Index("ix_bids_listing_sequence", "listing_id", "sequence"),)
    bid_id: str = Field(primary_key=True, max_length=64)
    listing_id: str = Field(foreign_key="listings.listing_id")
    credit_code: str = Field(max_length=18, index=True)
    bidder_number: str = Field(max_length=16)
    state: str = Field(max_length=16)
    price_fen: int = Field(sa_column=_big(nullable=False))
    quantity_lots: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    sealed: bool = False
    receipt: str = ""
    nonce: str = ""
    tender_document: str = ""
    accepted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    sequence: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    listing_version: int = 1
    refusal_reason: str = ""
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class TradeRow(TradingTable, table=True):
    __tablename__ = "trades"
    trade_id: str = Field(primary_key=True, max_length=64)
    trade_code: str = Field(max_length=40)
    listing_id: str = Field(default="", index=True)
    instrument: str = Field(default="", index=True)
    buyer: str = Field(max_length=64, index=True)
    seller: str = Field(max_length=64, index=True)
    quantity: str
    unit: str = ""
    price_fen: int = Field(sa_column=_big(nullable=False))
    amount_fen: int = Field(sa_column=_big(nullable=False))
    # The ledger legs to settle, as JSON: [{from_holder, to_holder, instrument, quantity, from_hold_id}]
    legs: str = Field(sa_column=Column(Text, nullable=False))
    settlement_state: str = Field(max_length=10, index=True)
    settlement_operation_id: str = ""
    settlement_attempts: int = 0
    settlement_error: str = ""
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True, index=True))
    executed_at: datetime = Field(sa_column=_ts(nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    confirmed: bool = False


class OrderRow(TradingTable, table=True):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_open", "instrument", "state"),)
    order_id: str = Field(primary_key=True, max_length=64)
    instrument: str = Field(max_length=128)
    credit_code: str = Field(max_length=18, index=True)
    side: str = Field(max_length=4)
    type: str = Field(max_length=6)
    price_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    quantity: int = Field(sa_column=_big(nullable=False))
    filled: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    state: str = Field(max_length=20)
    reject_reason: str = ""
    block: bool = False
    counterparty: str = Field(default="", max_length=18)  # block trades: the agreed counterparty
    sequence: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    hold_id: str = ""
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class MarketRow(TradingTable, table=True):
    __tablename__ = "markets"
    instrument: str = Field(primary_key=True, max_length=128)
    name: str
    unit: str
    lot_size: str
    trade_code: str = ""
    rules: str = Field(sa_column=Column(Text, nullable=False))     # JSON: band, block size, hours
    previous_close_fen: int = Field(sa_column=_big(nullable=False))
    last_price_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    trading_day: str = ""
    day_volume: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    day_value_fen: int = Field(default=0, sa_column=_big(nullable=False, default=0))
    seller_of_record: str = ""


class MarketEventRow(TradingTable, table=True):
    """The journal of one continuous market: its input events (day opened/closed, order accepted, cancel
    requested, amended, block trade). Replaying them through the deterministic book rebuilds the market;
    trades and cancellations are derived, regenerated by the replay (mirrored in `orders`/`trades`)."""

    __tablename__ = "market_events"
    instrument: str = Field(primary_key=True, max_length=128)
    seq: int = Field(primary_key=True)
    type: str = Field(max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=_ts(nullable=False))


class SerialRow(TradingTable, table=True):
    """Serial numbers of 统一交易标识码 per (region, trade type, year)."""

    __tablename__ = "trade_code_serials"
    scope: str = Field(primary_key=True, max_length=40)
    last: int = 0


metadata = TradingTable.metadata
infrastructure = declare_infrastructure(metadata)
