"""The use case every service shares: verify its hash-chained audit journal end to end, as the policy's
`VerifyAuditJournal` allows, and report the outcome to the audit-intact gauge."""

from __future__ import annotations

from collections.abc import Callable

from services.common.audit import AuditJournal, VerifyResult
from services.common.authz import Access
from services.common.uow import UnitOfWork


class JournalCheck:
    def __init__(self, uow: UnitOfWork, journal: AuditJournal, access: Access,
                 on_verified: Callable[[bool], None]) -> None:
        self.uow = uow
        self.journal = journal
        self.access = access
        self.on_verified = on_verified  # the audit-intact gauge

    async def verify(self) -> VerifyResult:
        self.access.require("VerifyAuditJournal")
        async with self.uow.read() as tx:
            result = await self.journal.verify(tx.session)
        self.on_verified(result.intact)
        return result
