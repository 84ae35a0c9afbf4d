"""The audit journal's batch append continues the same chain as single appends (real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData

from services.common.audit import AuditJournal
from services.common.db import make_engine, make_session_factory
from services.common.tables import declare_infrastructure


async def test_batch_and_single_appends_form_one_verifiable_chain(tmp_path) -> None:
    metadata = MetaData()
    tables = declare_infrastructure(metadata)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = make_session_factory(engine)
    journal = AuditJournal(tables)
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        assert await journal.append(session, actor="a", action="x", subject="s1", payload={"n": 1}, at=at) == 1
        assert await journal.append_many(session, [("b", "y", "s2", {"n": 2}), ("c", "z", "s3", {"n": 3})],
                                         at) == [2, 3]
        assert await journal.append(session, actor="d", action="w", subject="s4", payload=[4], at=at) == 4
    async with sessions() as session:
        result = await journal.verify(session)
    assert (result.intact, result.entries_checked) == (True, 4)
    await engine.dispose()
