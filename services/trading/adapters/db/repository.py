"""SQL of the trading service (SQLAlchemy Core on the tables of tables.py). Batch writes use one
executemany per table so a group commit costs a handful of statements whatever its size."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.trading.adapters.db import tables as t

listings = t.ListingRow.__table__
sale_events = t.SaleEventRow.__table__
registrations = t.RegistrationRow.__table__
bids = t.BidRow.__table__
trades = t.TradeRow.__table__
tasks = t.LedgerTaskRow.__table__
notices = t.ChangeNoticeRow.__table__
serials = t.SerialRow.__table__

FINAL_STATES = ("draft", "awarded", "unsold", "cancelled", "settled")


def aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every time in this service is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def row_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = aware(value)
    return data


class TradingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------ listings
    async def listing(self, listing_id: str, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(listings).where(listings.c.listing_id == listing_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return row_dict(row) if row else None

    async def insert_listing(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(listings).values(**values))

    async def update_listing(self, listing_id: str, **values: Any) -> None:
        await self.session.execute(update(listings).where(listings.c.listing_id == listing_id).values(**values))

    async def list_listings(self, *, mechanism: str = "", state: Sequence[str] = (), agency_id: str = "",
                            instrument: str = "", after: str = "", limit: int = 50,
                            include_drafts_of: str | None = None) -> tuple[list[dict], int]:
        conditions = []
        if mechanism:
            conditions.append(listings.c.mechanism == mechanism)
        if state:
            conditions.append(listings.c.state.in_(state))
        if agency_id:
            conditions.append(listings.c.agency_id == agency_id)
        if instrument:
            conditions.append(listings.c.instrument == instrument)
        # Drafts are invisible to everyone but the agency that owns them (and admins).
        if include_drafts_of is None:
            conditions.append(listings.c.state != "draft")
        elif include_drafts_of:
            conditions.append((listings.c.state != "draft") | (listings.c.agency_id == include_drafts_of))
        where = and_(*conditions) if conditions else True
        total = (await self.session.execute(select(func.count()).select_from(listings).where(where))).scalar_one()
        query = select(listings).where(where)
        if after:
            query = query.where(listings.c.listing_id > after)
        rows = (await self.session.execute(query.order_by(listings.c.listing_id).limit(limit))).all()
        return [row_dict(r) for r in rows], total

    async def due_listings(self, now: datetime, mechanism: str = "") -> list[str]:
        query = (select(listings.c.listing_id).where(listings.c.next_timer_at <= now)
                 .where(listings.c.state.not_in(FINAL_STATES)).order_by(listings.c.next_timer_at).limit(200))
        if mechanism:  # each mechanism family has its own timer loop (auctions: application/auctions.py)
            query = query.where(listings.c.mechanism == mechanism)
        return [r.listing_id for r in (await self.session.execute(query)).all()]

    async def open_sales(self) -> list[tuple[str, str]]:
        query = select(listings.c.mechanism, listings.c.state).where(listings.c.state.not_in(FINAL_STATES))
        return [(r.mechanism, r.state) for r in (await self.session.execute(query)).all()]

    async def next_serial(self, scope: str) -> int:
        row = (await self.session.execute(select(serials).where(serials.c.scope == scope).with_for_update())).first()
        if row is None:
            await self.session.execute(insert(serials).values(scope=scope, last=1))
            return 1
        await self.session.execute(update(serials).where(serials.c.scope == scope).values(last=row.last + 1))
        return row.last + 1

    # ------------------------------------------------------------ sale events
    async def sale_events(self, listing_id: str) -> list[dict]:
        query = select(sale_events).where(sale_events.c.listing_id == listing_id).order_by(sale_events.c.seq)
        return [row_dict(r) for r in (await self.session.execute(query)).all()]

    async def insert_many(self, table, rows: list[dict]) -> None:
        if rows:
            await self.session.execute(insert(table), rows)

    # ------------------------------------------------------------ change notices
    async def insert_notice(self, values: dict) -> None:
        await self.session.execute(insert(notices).values(**values))

    async def notices(self, listing_id: str) -> list[dict]:
        query = select(notices).where(notices.c.listing_id == listing_id).order_by(notices.c.version)
        return [row_dict(r) for r in (await self.session.execute(query)).all()]

    # ------------------------------------------------------------ registrations
    async def registration(self, listing_id: str, credit_code: str) -> dict | None:
        query = select(registrations).where(registrations.c.listing_id == listing_id,
                                            registrations.c.credit_code == credit_code)
        row = (await self.session.execute(query)).first()
        return row_dict(row) if row else None

    async def registrations(self, listing_id: str, *, after: str = "", limit: int = 10_000) -> list[dict]:
        query = select(registrations).where(registrations.c.listing_id == listing_id)
        if after:
            query = query.where(registrations.c.bidder_number > after)
        query = query.order_by(registrations.c.bidder_number).limit(limit)
        return [row_dict(r) for r in (await self.session.execute(query)).all()]

    async def insert_registration(self, values: dict) -> None:
        await self.session.execute(insert(registrations).values(**values))

    async def update_registrations(self, listing_id: str, credit_codes: Sequence[str], **values: Any) -> None:
        if credit_codes:
            await self.session.execute(update(registrations).where(
                registrations.c.listing_id == listing_id, registrations.c.credit_code.in_(credit_codes))
                .values(**values))

    # ------------------------------------------------------------ bids
    async def bid(self, bid_id: str) -> dict | None:
        row = (await self.session.execute(select(bids).where(bids.c.bid_id == bid_id))).first()
        return row_dict(row) if row else None

    async def bids(self, listing_id: str, *, credit_code: str = "", after: int = 0, limit: int = 50,
                   include_drafts: bool = False) -> list[dict]:
        query = select(bids).where(bids.c.listing_id == listing_id)
        if credit_code:
            query = query.where(bids.c.credit_code == credit_code)
        if not include_drafts:
            query = query.where(bids.c.state != "draft").where(bids.c.sequence > after)
        elif after:
            query = query.where(bids.c.sequence > after)
        else:  # drafts have no sequence yet (0): they come on the first page
            query = query.where((bids.c.sequence > 0) | (bids.c.state == "draft"))
        query = query.order_by(bids.c.sequence, bids.c.created_at).limit(limit)
        return [row_dict(r) for r in (await self.session.execute(query)).all()]

    async def count_bids(self, listing_id: str, state: str) -> int:
        query = select(func.count()).select_from(bids).where(bids.c.listing_id == listing_id, bids.c.state == state)
        return (await self.session.execute(query)).scalar_one()

    async def update_bid(self, bid_id: str, **values: Any) -> None:
        await self.session.execute(update(bids).where(bids.c.bid_id == bid_id).values(**values))

    # ------------------------------------------------------------ trades and ledger tasks
    async def trade(self, trade_id: str, *, lock: bool = False) -> dict | None:
        query = select(trades).where(trades.c.trade_id == trade_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return row_dict(row) if row else None

    async def trades(self, *, credit_code: str = "", instrument: str = "", state: str = "", listing_id: str = "",
                     after: str = "", limit: int = 50) -> tuple[list[dict], int]:
        conditions = []
        if credit_code:
            conditions.append((trades.c.buyer == credit_code) | (trades.c.seller == credit_code))
        if instrument:
            conditions.append(trades.c.instrument == instrument)
        if state:
            conditions.append(trades.c.settlement_state == state)
        if listing_id:
            conditions.append(trades.c.listing_id == listing_id)
        where = and_(*conditions) if conditions else True
        total = (await self.session.execute(select(func.count()).select_from(trades).where(where))).scalar_one()
        query = select(trades).where(where)
        if after:
            query = query.where(trades.c.trade_id > after)
        rows = (await self.session.execute(query.order_by(trades.c.trade_id).limit(limit))).all()
        return [row_dict(r) for r in rows], total

    async def update_trade(self, trade_id: str, **values: Any) -> None:
        await self.session.execute(update(trades).where(trades.c.trade_id == trade_id).values(**values))

    async def due_tasks(self, now: datetime, limit: int = 50) -> list[dict]:
        query = (select(tasks).where(tasks.c.state == "pending", tasks.c.next_attempt_at <= now)
                 .order_by(tasks.c.created_at, tasks.c.task_id).limit(limit))
        return [row_dict(r) for r in (await self.session.execute(query)).all()]

    async def update_task(self, task_id: str, **values: Any) -> None:
        await self.session.execute(update(tasks).where(tasks.c.task_id == task_id).values(**values))

    async def backlog(self) -> int:
        query = select(func.count()).select_from(trades).where(trades.c.settlement_state.in_(("executed",
                                                                                              "settling")))
        return (await self.session.execute(query)).scalar_one()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)

