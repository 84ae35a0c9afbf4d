"""Inbox: a consumer records each event id in the same transaction as its effects, so it runs once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import InfrastructureTables


class Inbox:
    def __init__(self, tables: InfrastructureTables) -> None:
        self.table = tables.inbox

    async def claim(self, session: AsyncSession, consumer: str, event_id: str) -> bool:
        """True the first time this consumer sees the event (and records it); False for a repeat."""
        seen = (await session.execute(select(self.table.c.event_id).where(
            self.table.c.consumer == consumer, self.table.c.event_id == event_id))).first()
        if seen:
            return False
        await session.execute(insert(self.table).values(
            consumer=consumer, event_id=event_id, processed_at=datetime.now(UTC)))
        return True
