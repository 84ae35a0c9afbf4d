"""Use cases of the audit journal (全程留痕): verify the hash chain, page through its entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from services.common.journal_check import JournalCheck
from services.registry.application.views import Page, PageOf


@dataclass(frozen=True)
class AuditEntryView:
    sequence: int
    previous_hash: str
    entry_hash: str
    actor: str
    action: str
    subject: str
    payload_digest: str
    at: datetime


class AuditTrail(JournalCheck):
    """Verify the chain (JournalCheck) and page through its entries."""

    async def entries(self, subject: str, page: Page) -> PageOf[AuditEntryView]:
        self.access.require("ListAuditEntries")
        table = self.uow.tables.audit
        after = int(page.after) if page.after.isdigit() else 0
        statement = select(table).where(table.c.sequence > after)
        if subject:
            statement = statement.where(table.c.subject == subject)
        async with self.uow.read() as tx:
            rows = (await tx.session.execute(statement.order_by(table.c.sequence).limit(page.size + 1))).all()
        items = [AuditEntryView(r.sequence, r.previous_hash, r.entry_hash, r.actor, r.action, r.subject,
                                r.payload_digest, r.at) for r in rows[:page.size]]
        return PageOf(items, str(rows[page.size - 1].sequence) if len(rows) > page.size else "", 0)
