"""The move from one row per value (indicator_values) to one record per enterprise-year, department and
submission (indicator_records) keeps every value on record with its source, submission and time, on SQLite
and PostgreSQL, and going back restores the rows as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from services.common.db import make_engine, make_session_factory
from services.evaluation.adapters.db.repository import EvaluationRepository, RecordedValues
from services.evaluation.application.inputs import effective_values

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "evaluation" / "adapters" / "db" / "migrations"
BEFORE = "55868b1e1b45"  # the initial schema, one row per value
CODE, TAX, STATS = "91330106MA2AAAAA01", "AG-TEST-SW", "AG-TEST-TJ"
T1 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
T2, T3 = T1 + timedelta(days=1), T1 + timedelta(days=2)

OLD_VALUES = sa.Table(
    "indicator_values", sa.MetaData(),
    sa.Column("credit_code", sa.String(18), primary_key=True), sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("field", sa.String(80), primary_key=True), sa.Column("source_department", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(60)), sa.Column("submission_id", sa.String(40)),
    sa.Column("recorded_at", sa.DateTime(timezone=True)))
# TAX sent tax_paid and kwh (sub-1), then corrected tax_paid (sub-2, which replaced the row); STATS sent
# value_added and its own tax_paid later (sub-3).
ROWS = [
    dict(credit_code=CODE, year=2024, field="kwh", source_department=TAX, value="5000", submission_id="sub-1",
         recorded_at=T1),
    dict(credit_code=CODE, year=2024, field="tax_paid", source_department=TAX, value="120",
         submission_id="sub-2", recorded_at=T2),
    dict(credit_code=CODE, year=2024, field="value_added", source_department=STATS, value="900.5",
         submission_id="sub-3", recorded_at=T3),
    dict(credit_code=CODE, year=2024, field="tax_paid", source_department=STATS, value="118",
         submission_id="sub-3", recorded_at=T3),
]


def _migrate(revision: str, *, down: bool = False):
    def run(sync_connection) -> None:  # noqa: ANN001
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = sync_connection
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


async def test_values_move_to_records_and_back(database_url):
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate(BEFORE))
            await connection.execute(OLD_VALUES.insert(), ROWS)
        async with engine.begin() as connection:
            await connection.run_sync(_migrate("head"))
        async with make_session_factory(engine)() as session:
            repo = EvaluationRepository(session)
            on_record = [(v.field, v.value, v.source_department, v.submission_id, v.recorded_at.replace(tzinfo=UTC))
                         for v in await repo.values_of(CODE, 2024)]
            records = await repo.values_for_year(2024, "")  # no enterprise replica here: nothing joins
            stored = await repo.stored_fields([CODE], [2024], ["kwh", "main_revenue"])
            count = (await session.execute(sa.text("SELECT COUNT(*) FROM indicator_records"))).scalar_one()
        assert count == 3  # sub-1 and sub-2 of TAX, sub-3 of STATS
        assert on_record == [("kwh", "5000", TAX, "sub-1", T1), ("tax_paid", "118", STATS, "sub-3", T3),
                             ("tax_paid", "120", TAX, "sub-2", T2), ("value_added", "900.5", STATS, "sub-3", T3)]
        assert records == [] and stored == {(CODE, 2024, "kwh")}

        async with engine.begin() as connection:
            await connection.run_sync(_migrate(BEFORE, down=True))
        async with engine.begin() as connection:
            back = (await connection.execute(sa.select(OLD_VALUES))).all()
        assert sorted((r.field, r.source_department, r.value, r.submission_id, r.recorded_at.replace(tzinfo=UTC))
                      for r in back) == sorted((r["field"], r["source_department"], r["value"], r["submission_id"],
                                                r["recorded_at"]) for r in ROWS)
    finally:
        await engine.dispose()


def test_runs_use_the_latest_record_of_each_field():
    """Per field, the latest record naming it wins; ties at one time go to the greater department."""
    records = [
        RecordedValues(CODE, TAX, "sub-2", T2, {"tax_paid": "120"}),
        RecordedValues(CODE, TAX, "sub-1", T1, {"tax_paid": "100", "kwh": "5000"}),
        RecordedValues(CODE, STATS, "sub-3", T2, {"tax_paid": "121", "value_added": "9"}),
        RecordedValues("91330106MA2AAAAA02", TAX, "sub-1", T1, {"kwh": "7"}),
    ]
    assert effective_values(records) == {
        CODE: {"tax_paid": "121", "kwh": "5000", "value_added": "9"}, "91330106MA2AAAAA02": {"kwh": "7"}}
