"""The local replica of the registry's enterprises: backfilled through ListEnterprises, kept current by the
`evaluation-registry` consumer (inbox: each event applied once), read through on a miss."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import DependencyUnavailable
from services.common.events.inbox import Inbox
from services.common.uow import UnitOfWork
from services.evaluation.application.fields import is_credit_code
from services.evaluation.application.ports import EnterpriseDirectory, EnterpriseFacts

log = logging.getLogger(__name__)

CONSUMER = "evaluation-registry"


@dataclass
class Lookups:
    """How many codes missing from the replica one submission may still ask the registry about."""

    remaining: int


def _row(facts: EnterpriseFacts, at) -> dict[str, Any]:
    return dict(credit_code=facts.credit_code, name=facts.name, industry_code=facts.industry_code,
                region_code=facts.region_code, park=facts.park, size_class=facts.size_class,
                land_held_mu=facts.land_held_mu or "0", status=facts.status, synced_at=at)


class EnterpriseReplica:
    def __init__(self, uow: UnitOfWork, repositories: Callable, inbox: Inbox,
                 directory: EnterpriseDirectory | None) -> None:
        self.uow = uow
        self.repositories = repositories
        self.inbox = inbox
        self.directory = directory

    async def backfill(self) -> int:
        """Copy every enterprise the registry lists; one transaction per page."""
        if self.directory is None:
            return 0
        count = 0
        async for page in self.directory.pages():
            async with self.uow() as tx:
                await self.repositories(tx.session).upsert_enterprises([_row(f, tx.now) for f in page])
                await tx.commit()
            count += len(page)
        log.info("enterprise replica backfilled", extra={"enterprises": count})
        return count

    async def apply_event(self, event_id: str, event_type: str, data: dict) -> str:
        async with self.uow() as tx:
            if not await self.inbox.claim(tx.session, CONSUMER, event_id):
                return "duplicate"
            repo = self.repositories(tx.session)
            if event_type.endswith("enterprise.registered"):
                facts = EnterpriseFacts(data["credit_code"], data.get("name", ""), data.get("industry_code", ""),
                                        data.get("region_code", ""), data.get("park", ""),
                                        data.get("size_class", ""), str(data.get("land_held_mu", "0")),
                                        data.get("status", "active"))
                await repo.upsert_enterprises([_row(facts, tx.now)])
            elif event_type.endswith("enterprise.status_changed"):
                await repo.set_enterprise_status(data["credit_code"], data["status"], tx.now)
            await tx.commit()
        return "ack"

    async def match(self, codes: Sequence[str], lookups: int | Lookups) -> dict[str, Any]:
        """Status and size class by credit code; codes the replica lacks are asked of the registry, at most `lookups`
        (a number, or what a submission has left of its allowance, which this spends). Malformed codes are
        neither queried nor asked: they match nothing."""
        allowance = lookups if isinstance(lookups, Lookups) else Lookups(lookups)
        codes = sorted({c for c in codes if is_credit_code(c)})
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).enterprise_standings(codes)
        missing = [c for c in codes if c not in found][:max(allowance.remaining, 0)]
        if not missing or self.directory is None:
            return found
        learned = []
        for code in missing:
            allowance.remaining -= 1
            try:
                facts = await self.directory.lookup(code)
            except DependencyUnavailable:  # the registry being away leaves codes unknown, not the call failed
                log.warning("registry lookup failed; codes stay unknown", exc_info=True)
                allowance.remaining = 0
                break
            if facts is not None:
                learned.append(facts)
        if learned:
            found.update(await self._record(learned))
        return found

    async def learn(self, credit_code: str) -> bool:
        """Whether the registry knows a code the replica lacks (its registration event may not have arrived
        yet); what it knows is recorded. Raises DependencyUnavailable when the registry cannot answer, so
        that "unknown" is never a guess."""
        if self.directory is None or not is_credit_code(credit_code):
            return False
        facts = await self.directory.lookup(credit_code)
        if facts is None:
            return False
        await self._record([facts])
        return True

    async def _record(self, learned: list[EnterpriseFacts]) -> dict[str, Any]:
        async with self.uow() as tx:
            repo = self.repositories(tx.session)
            await repo.upsert_enterprises([_row(f, tx.now) for f in learned])
            found = await repo.enterprises_by_code([f.credit_code for f in learned])
            await tx.commit()
        return found
