"""SQL of the evaluation service: core statements on its own tables, bulk where collections are large."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.adapters.db.tables import (
    CurrentClassRow,
    EnterpriseRow,
    IndicatorRecordRow,
    PolicyRow,
    RegradeRow,
    ResultRow,
    RollupRow,
    RunInputsRow,
    RunRow,
    SubmissionRow,
)

POLICIES: Table = PolicyRow.__table__  # type: ignore[assignment]
ENTERPRISES: Table = EnterpriseRow.__table__  # type: ignore[assignment]
SUBMISSIONS: Table = SubmissionRow.__table__  # type: ignore[assignment]
RECORDS: Table = IndicatorRecordRow.__table__  # type: ignore[assignment]
RUNS: Table = RunRow.__table__  # type: ignore[assignment]
RUN_INPUTS: Table = RunInputsRow.__table__  # type: ignore[assignment]
RESULTS: Table = ResultRow.__table__  # type: ignore[assignment]
ROLLUPS: Table = RollupRow.__table__  # type: ignore[assignment]
CURRENT: Table = CurrentClassRow.__table__  # type: ignore[assignment]
REGRADES: Table = RegradeRow.__table__  # type: ignore[assignment]

# Rows per executemany / IN list: below SQLite's and asyncpg's parameter limits, large enough to be fast.
CHUNK = 5000
# Records per driver executemany: each record binds its own six values, so no parameter limit applies; large
# chunks spare round trips to the driver's thread.
RECORD_CHUNK = 50_000


STANDINGS_SQLITE = ("SELECT e.credit_code, e.status, e.size_class FROM json_each(?) AS j "
                    "JOIN enterprises AS e ON e.credit_code = j.value")
STANDINGS_POSTGRESQL = "SELECT credit_code, status, size_class FROM enterprises WHERE credit_code = ANY($1::varchar[])"
# The columns of indicator_records, the first four as SubmissionCheck.accepted gives them.
RECORD_COLUMNS = ("year", "credit_code", "source_department", "document", "submission_id", "recorded_at")


class Standing(NamedTuple):
    """An enterprise as matching a submission sees it."""

    credit_code: str
    status: str
    size_class: str


class RecordedValues(NamedTuple):
    """The values one submission recorded for an enterprise-year from one department."""

    credit_code: str
    source_department: str
    submission_id: str
    recorded_at: datetime
    values: dict[str, str]


class StoredValue(NamedTuple):
    """One value on record with its provenance."""

    field: str
    value: str
    source_department: str
    submission_id: str
    recorded_at: datetime


def chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class EvaluationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind is not None else "sqlite"

    async def _upsert(self, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
        if not rows:
            return
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(table)
        columns = [c for c in rows[0] if c not in keys]
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in columns})
        for part in chunks(rows):
            await self.session.execute(statement, list(part))

    async def _insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        for part in chunks(rows):
            await self.session.execute(table.insert(), list(part))

    # ------------------------------------------------------------ policies
    async def add_policy(self, row: dict[str, Any]) -> None:
        await self.session.execute(POLICIES.insert().values(**row))

    async def policy(self, ref: str):
        return (await self.session.execute(select(POLICIES).where(POLICIES.c.policy_ref == ref))).first()

    async def latest_policy(self, policy_id: str):
        return (await self.session.execute(
            select(POLICIES).where(POLICIES.c.policy_id == policy_id)
            .order_by(POLICIES.c.published_at.desc(), POLICIES.c.policy_ref.desc()).limit(1))).first()

    async def policies(self, policy_id: str = "") -> list:
        statement = select(POLICIES).order_by(POLICIES.c.policy_id, POLICIES.c.published_at)
        if policy_id:
            statement = statement.where(POLICIES.c.policy_id == policy_id)
        return list((await self.session.execute(statement)).all())

    # ------------------------------------------------------------ enterprise replica
    async def upsert_enterprises(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._upsert(ENTERPRISES, rows, ("credit_code",))

    async def set_enterprise_status(self, credit_code: str, status: str, at) -> bool:
        result = await self.session.execute(update(ENTERPRISES).where(ENTERPRISES.c.credit_code == credit_code)
                                            .values(status=status, synced_at=at))
        return bool(result.rowcount)

    async def enterprise_standings(self, codes: Sequence[str]) -> dict[str, Standing]:
        """Status and size class by credit code: what matching a submission needs. The codes travel as one
        parameter (a JSON array for SQLite, an array for PostgreSQL) and the rows come back through the
        driver as plain tuples: a county's 50,000 codes are read in tens of milliseconds."""
        if not codes:
            return {}
        connection = await self.session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        if self.dialect == "postgresql":
            rows = await driver.fetch(STANDINGS_POSTGRESQL, list(codes))
        else:
            rows = await driver.execute_fetchall(STANDINGS_SQLITE, (json.dumps(list(codes)),))
        return {row[0]: Standing(*row) for row in rows}

    async def enterprises_by_code(self, codes: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        unique = sorted(set(codes))
        for part in chunks(unique):
            for row in (await self.session.execute(
                    select(ENTERPRISES).where(ENTERPRISES.c.credit_code.in_(part)))).all():
                found[row.credit_code] = row
        return found

    async def enterprises_in(self, region_prefix: str) -> list:
        return list((await self.session.execute(
            select(ENTERPRISES).where(ENTERPRISES.c.region_code.startswith(region_prefix))
            .order_by(ENTERPRISES.c.credit_code))).all())

    async def enterprise_count(self) -> int:
        return (await self.session.execute(select(func.count()).select_from(ENTERPRISES))).scalar_one()

    # ------------------------------------------------------------ indicator values
    async def add_submission(self, row: dict[str, Any]) -> None:
        await self.session.execute(SUBMISSIONS.insert().values(**row))

    async def add_records(self, submission_id: str, recorded_at: datetime,
                          records: Sequence[tuple[int, str, str, str]]) -> None:
        """One submission's records, (year, credit code, source department, document) each, by the driver's
        executemany in chunks: the statement is compiled once, the two values common to every record are
        converted once, and no per-row parameter processing stands between the rows and the database."""
        if not records:
            return
        dialect = self.session.bind.dialect
        compiled = RECORDS.insert().compile(dialect=dialect, column_keys=list(RECORD_COLUMNS))
        common = {"submission_id": submission_id, "recorded_at": recorded_at}
        for name in common:
            processor = RECORDS.c[name].type._cached_bind_processor(dialect)
            if processor is not None:
                common[name] = processor(common[name])
        # Each record extended by the common values, then put in the statement's parameter order.
        tail = (common["submission_id"], common["recorded_at"])
        arrange = itemgetter(*(RECORD_COLUMNS.index(name) for name in compiled.positiontup))
        connection = await self.session.connection()
        for part in chunks(records, RECORD_CHUNK):
            await connection.exec_driver_sql(str(compiled), [arrange(record + tail) for record in part])

    async def stored_fields(self, codes: Sequence[str], years: Sequence[int], fields: Sequence[str]) -> set:
        """(credit_code, year, field) triples on record with a non-empty value."""
        found: set[tuple[str, int, str]] = set()
        wanted = set(fields)
        for part in chunks(sorted(set(codes))):
            rows = await self.session.execute(select(RECORDS.c.credit_code, RECORDS.c.year, RECORDS.c.document).where(
                RECORDS.c.year.in_(sorted(set(years))), RECORDS.c.credit_code.in_(part)))
            for r in rows:
                found.update((r.credit_code, r.year, field) for field in json.loads(r.document).keys() & wanted)
        return found

    async def values_for_year(self, year: int, region_prefix: str) -> list[RecordedValues]:
        statement = (select(RECORDS.c.credit_code, RECORDS.c.source_department, RECORDS.c.submission_id,
                            RECORDS.c.recorded_at, RECORDS.c.document)
                     .join(ENTERPRISES, ENTERPRISES.c.credit_code == RECORDS.c.credit_code)
                     .where(RECORDS.c.year == year, ENTERPRISES.c.region_code.startswith(region_prefix)))
        loads = json.loads
        return [RecordedValues(code, source, submission, at, loads(document))
                for code, source, submission, at, document in (await self.session.execute(statement)).all()]

    async def values_of(self, credit_code: str, year: int) -> list[StoredValue]:
        """Each department's value of each field on record (its latest record naming the field), ordered by
        field, newest first, ties to the greater department."""
        records = (await self.session.execute(
            select(RECORDS).where(RECORDS.c.year == year, RECORDS.c.credit_code == credit_code)
            .order_by(RECORDS.c.recorded_at.desc(), RECORDS.c.source_department.desc()))).all()
        latest: dict[tuple[str, str], StoredValue] = {}
        for record in records:
            for field, value in json.loads(record.document).items():
                latest.setdefault((field, record.source_department), StoredValue(
                    field, value, record.source_department, record.submission_id, record.recorded_at))
        values = sorted(latest.values(), key=lambda v: (v.recorded_at, v.source_department), reverse=True)
        return sorted(values, key=lambda v: v.field)

    async def has_indicator_data(self) -> bool:
        return (await self.session.execute(select(RECORDS.c.credit_code).limit(1))).first() is not None

    # ------------------------------------------------------------ runs
    async def add_run(self, row: dict[str, Any]) -> None:
        await self.session.execute(RUNS.insert().values(**row))

    async def run(self, run_id: str):
        return (await self.session.execute(select(RUNS).where(RUNS.c.run_id == run_id))).first()

    async def update_run(self, run_id: str, **values) -> None:
        await self.session.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**values))

    async def save_run(self, row: dict[str, Any]) -> None:
        """The run's row as given: updated in place, or written again if it was removed meanwhile."""
        values = {name: value for name, value in row.items() if name != "run_id"}
        updated = await self.session.execute(update(RUNS).where(RUNS.c.run_id == row["run_id"]).values(**values))
        if updated.rowcount == 0:
            await self.add_run(row)

    async def add_run_inputs(self, run_id: str, snapshot: bytes) -> None:
        await self.session.execute(RUN_INPUTS.insert().values(run_id=run_id, snapshot=snapshot))

    async def run_inputs(self, run_id: str) -> bytes | None:
        row = (await self.session.execute(select(RUN_INPUTS.c.snapshot).where(RUN_INPUTS.c.run_id == run_id))).first()
        return None if row is None else row.snapshot

    async def delete_run(self, run_id: str) -> None:
        await self.session.execute(delete(RUNS).where(RUNS.c.run_id == run_id, RUNS.c.status == "running"))

    async def delete_running_runs(self) -> int:
        return (await self.session.execute(delete(RUNS).where(RUNS.c.status == "running"))).rowcount

    async def runs(self, year: int, status: str, after: str, size: int) -> tuple[list, int]:
        conditions = []
        if year:
            conditions.append(RUNS.c.year == year)
        if status:
            conditions.append(RUNS.c.status == status)
        where = and_(*conditions) if conditions else None
        count = select(func.count()).select_from(RUNS)
        statement = select(RUNS).order_by(RUNS.c.run_id).limit(size + 1)
        if where is not None:
            count, statement = count.where(where), statement.where(where)
        if after:
            statement = statement.where(RUNS.c.run_id > after)
        return (list((await self.session.execute(statement)).all()),
                (await self.session.execute(count)).scalar_one())

    async def latest_published(self, region_prefix: str, year: int):
        return (await self.session.execute(
            select(RUNS).where(RUNS.c.region_prefix == region_prefix, RUNS.c.year == year,
                               RUNS.c.status == "published")
            .order_by(RUNS.c.published_at.desc()).limit(1))).first()

    async def supersede(self, region_prefix: str, year: int, except_run: str) -> None:
        await self.session.execute(update(RUNS).where(
            RUNS.c.region_prefix == region_prefix, RUNS.c.year == year, RUNS.c.status == "published",
            RUNS.c.run_id != except_run).values(status="superseded"))

    async def has_runs(self) -> bool:
        return (await self.session.execute(select(RUNS.c.run_id).limit(1))).first() is not None

    # ------------------------------------------------------------ results and roll-ups
    async def add_results(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._insert(RESULTS, rows)

    async def add_rollups(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._insert(ROLLUPS, rows)

    async def result(self, run_id: str, credit_code: str):
        return (await self.session.execute(select(RESULTS).where(
            RESULTS.c.run_id == run_id, RESULTS.c.credit_code == credit_code))).first()

    async def update_result(self, run_id: str, credit_code: str, **values) -> None:
        await self.session.execute(update(RESULTS).where(
            RESULTS.c.run_id == run_id, RESULTS.c.credit_code == credit_code).values(**values))

    async def result_classes(self, run_id: str) -> list:
        return list((await self.session.execute(
            select(RESULTS.c.credit_code, RESULTS.c.final_class, RESULTS.c.size_class, RESULTS.c.year,
                   RESULTS.c.consecutive_d_years).where(RESULTS.c.run_id == run_id, RESULTS.c.final_class != "")
            .order_by(RESULTS.c.credit_code))).all())

    async def result_page(self, where, after: str, size: int) -> tuple[list, int]:
        conditions = [RESULTS.c.run_id == where.run_id]
        if where.grade:
            conditions.append(RESULTS.c.final_class == where.grade)
        if where.region_prefix:
            conditions.append(RESULTS.c.region_code.startswith(where.region_prefix))
        if where.park:
            conditions.append(RESULTS.c.park == where.park)
        if where.industry_prefix:
            conditions.append(RESULTS.c.industry_code.startswith(where.industry_prefix))
        if where.size_class:
            conditions.append(RESULTS.c.size_class == where.size_class)
        total = (await self.session.execute(select(func.count()).select_from(RESULTS)
                                            .where(*conditions))).scalar_one()
        columns = [RESULTS.c[name] for name in ("credit_code", "name", "region_code", "park", "industry_code",
                                                "size_class", "status", "total", "final_class", "rank_in_pool",
                                                "document")]
        statement = select(*columns).where(*conditions)
        if where.by_total:
            # Offset paging: a total order by (total desc, credit code).
            statement = statement.order_by(RESULTS.c.total.desc(), RESULTS.c.credit_code) \
                .offset(int(after or 0)).limit(size + 1)
        else:
            if after:
                statement = statement.where(RESULTS.c.credit_code > after)
            statement = statement.order_by(RESULTS.c.credit_code).limit(size + 1)
        return list((await self.session.execute(statement)).all()), total

    async def history(self, credit_code: str) -> list:
        return list((await self.session.execute(
            select(RESULTS.c.run_id, RESULTS.c.year, RESULTS.c.document, RUNS.c.policy_ref, RUNS.c.status,
                   RUNS.c.published_at)
            .join(RUNS, RUNS.c.run_id == RESULTS.c.run_id)
            .where(RESULTS.c.credit_code == credit_code, RUNS.c.status.in_(("published", "superseded")))
            .order_by(RESULTS.c.year, RUNS.c.published_at))).all())

    async def rollups(self, run_id: str, dimension: str = "") -> list:
        statement = select(ROLLUPS).where(ROLLUPS.c.run_id == run_id)
        if dimension:
            statement = statement.where(ROLLUPS.c.dimension == dimension)
        return list((await self.session.execute(
            statement.order_by(ROLLUPS.c.dimension, ROLLUPS.c.rank, ROLLUPS.c.key))).all())

    async def rollup(self, run_id: str, dimension: str, key: str):
        return (await self.session.execute(select(ROLLUPS).where(
            ROLLUPS.c.run_id == run_id, ROLLUPS.c.dimension == dimension, ROLLUPS.c.key == key))).first()

    async def update_rollup(self, run_id: str, dimension: str, key: str, document: str) -> None:
        await self.session.execute(update(ROLLUPS).where(
            ROLLUPS.c.run_id == run_id, ROLLUPS.c.dimension == dimension, ROLLUPS.c.key == key)
            .values(document=document))

    # ------------------------------------------------------------ current classes (eligibility)
    async def current_classes(self, codes: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for part in chunks(sorted(set(codes))):
            for row in (await self.session.execute(select(CURRENT).where(CURRENT.c.credit_code.in_(part)))).all():
                found[row.credit_code] = row
        return found

    async def current_class(self, credit_code: str):
        return (await self.session.execute(select(CURRENT).where(CURRENT.c.credit_code == credit_code))).first()

    async def upsert_current(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._upsert(CURRENT, rows, ("credit_code",))

    async def current_counts(self) -> list[tuple[str, str, int]]:
        rows = await self.session.execute(select(CURRENT.c.final_class, CURRENT.c.size_class, func.count())
                                          .group_by(CURRENT.c.final_class, CURRENT.c.size_class))
        return [(r[0], r[1], r[2]) for r in rows]

    # ------------------------------------------------------------ regrades
    async def add_regrade(self, row: dict[str, Any]) -> None:
        await self.session.execute(REGRADES.insert().values(**row))

    async def regrade(self, regrade_id: str):
        return (await self.session.execute(select(REGRADES).where(REGRADES.c.regrade_id == regrade_id))).first()

    async def update_regrade(self, regrade_id: str, **values) -> None:
        await self.session.execute(update(REGRADES).where(REGRADES.c.regrade_id == regrade_id).values(**values))

    async def regrades_of(self, credit_code: str) -> list:
        return list((await self.session.execute(select(REGRADES).where(
            REGRADES.c.credit_code == credit_code).order_by(REGRADES.c.proposed_at))).all())
