"""Append-only, hash-chained audit journal (全程留痕 / 来源可溯).

entry_hash = sha256(previous_hash | sequence | actor | action | subject | payload_digest | at).
Verification walks the chain and reports the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.tables import InfrastructureTables

GENESIS = "0" * 64


def canonical_json(payload: object) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def chain_hash(previous_hash: str, sequence: int, actor: str, action: str, subject: str,
               payload_digest: str, at: datetime) -> str:
    material = "|".join((previous_hash, str(sequence), actor, action, subject, payload_digest, at.isoformat()))
    return digest(material)


@dataclass(frozen=True)
class VerifyResult:
    intact: bool
    entries_checked: int
    first_broken_sequence: int = 0
    problem: str = ""


class AuditJournal:
    def __init__(self, tables: InfrastructureTables) -> None:
        self.tables = tables

    async def append(self, session: AsyncSession, *, actor: str, action: str, subject: str,
                     payload: object, at: datetime) -> int:
        return (await self.append_many(session, [(actor, action, subject, payload)], at))[0]

    async def append_many(self, session: AsyncSession, entries: list[tuple[str, str, str, object]],
                          at: datetime) -> list[int]:
        """Append (actor, action, subject, payload) entries in order: one head read, one batch insert."""
        if not entries:
            return []
        head_table = self.tables.audit_head
        head = await self._locked_head(session)
        rows, sequences = [], []
        previous_hash, sequence = head.entry_hash, head.sequence
        for actor, action, subject, payload in entries:
            sequence += 1
            text = canonical_json(payload)
            payload_digest = digest(text)
            entry_hash = chain_hash(previous_hash, sequence, actor, action, subject, payload_digest, at)
            rows.append(dict(sequence=sequence, previous_hash=previous_hash, entry_hash=entry_hash, actor=actor,
                             action=action, subject=subject, payload_digest=payload_digest, payload=text, at=at))
            sequences.append(sequence)
            previous_hash = entry_hash
        await session.execute(insert(self.tables.audit), rows)
        await session.execute(update(head_table).where(head_table.c.id == 1)
                              .values(sequence=sequence, entry_hash=previous_hash))
        return sequences

    async def _locked_head(self, session: AsyncSession):
        """The chain's head row, locked. The first append creates it — with ON CONFLICT DO NOTHING, so that
        two first appends at once (PostgreSQL) wait for each other instead of one failing on the key."""
        head_table = self.tables.audit_head
        locked = select(head_table).where(head_table.c.id == 1).with_for_update()
        head = (await session.execute(locked)).first()
        if head is None:
            dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
            await session.execute(dialect.insert(head_table).values(id=1, sequence=0, entry_hash=GENESIS)
                                  .on_conflict_do_nothing())
            head = (await session.execute(locked)).first()
        return head

    async def verify(self, session: AsyncSession, batch: int = 5000) -> VerifyResult:
        table = self.tables.audit
        previous_hash, expected_sequence, checked = GENESIS, 1, 0
        while True:
            rows = (await session.execute(
                select(table).where(table.c.sequence >= expected_sequence).order_by(table.c.sequence).limit(batch)
            )).all()
            for row in rows:
                problem = ""
                at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
                if row.sequence != expected_sequence:
                    problem = f"sequence gap: expected {expected_sequence}, found {row.sequence}"
                elif row.previous_hash != previous_hash:
                    problem = "previous_hash does not match the entry before"
                elif digest(row.payload) != row.payload_digest:
                    problem = "payload does not match its digest"
                elif chain_hash(row.previous_hash, row.sequence, row.actor, row.action, row.subject,
                                row.payload_digest, at) != row.entry_hash:
                    problem = "entry_hash does not match the entry"
                if problem:
                    return VerifyResult(False, checked, expected_sequence, problem)
                previous_hash, expected_sequence, checked = row.entry_hash, expected_sequence + 1, checked + 1
            if len(rows) < batch:
                break
        head = (await session.execute(select(self.tables.audit_head))).first()
        if head and (head.sequence != checked or head.entry_hash != previous_hash):
            return VerifyResult(False, checked, checked + 1, "entries after the last one found are missing")
        return VerifyResult(True, checked)

