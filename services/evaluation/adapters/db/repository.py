"""SQL of the evaluation service: core statements on its own tables, bulk where collections are large."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.adapters.db.tables import (
    CurrentClassRow,
    EnterpriseRow,
    IndicatorValueRow,
    PolicyRow,
    RegradeRow,
    ResultRow,
    RollupRow,
    RunRow,
    SubmissionRow,
)

POLICIES: Table = PolicyRow.__table__  # type: ignore[assignment]
ENTERPRISES: Table = EnterpriseRow.__table__  # type: ignore[assignment]
SUBMISSIONS: Table = SubmissionRow.__table__  # type: ignore[assignment]
VALUES: Table = IndicatorValueRow.__table__  # type: ignore[assignment]
RUNS: Table = RunRow.__table__  # type: ignore[assignment]
RESULTS: Table = ResultRow.__table__  # type: ignore[assignment]
ROLLUPS: Table = RollupRow.__table__  # type: ignore[assignment]
CURRENT: Table = CurrentClassRow.__table__  # type: ignore[assignment]
REGRADES: Table = RegradeRow.__table__  # type: ignore[assignment]

# Rows per executemany / IN list: below SQLite's and asyncpg's parameter limits, large enough to be fast.
CHUNK = 5000


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

    async def upsert_values(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._upsert(VALUES, rows, ("credit_code", "year", "field", "source_department"))

    async def stored_fields(self, codes: Sequence[str], years: Sequence[int], fields: Sequence[str]) -> set:
        """(credit_code, year, field) triples on record with a non-empty value."""
        found: set[tuple[str, int, str]] = set()
        for part in chunks(sorted(set(codes))):
            rows = await self.session.execute(select(VALUES.c.credit_code, VALUES.c.year, VALUES.c.field).where(
                VALUES.c.credit_code.in_(part), VALUES.c.year.in_(sorted(set(years))),
                VALUES.c.field.in_(sorted(set(fields)))))
            found.update((r.credit_code, r.year, r.field) for r in rows)
        return found

    async def values_for_year(self, year: int, region_prefix: str) -> list:
        statement = (select(VALUES.c.credit_code, VALUES.c.field, VALUES.c.value, VALUES.c.source_department,
                            VALUES.c.recorded_at)
                     .join(ENTERPRISES, ENTERPRISES.c.credit_code == VALUES.c.credit_code)
                     .where(VALUES.c.year == year, ENTERPRISES.c.region_code.startswith(region_prefix)))
        return list((await self.session.execute(statement)).all())

    async def values_of(self, credit_code: str, year: int) -> list:
        return list((await self.session.execute(
            select(VALUES).where(VALUES.c.credit_code == credit_code, VALUES.c.year == year)
            .order_by(VALUES.c.field, VALUES.c.recorded_at.desc(), VALUES.c.source_department.desc()))).all())

    async def has_indicator_data(self) -> bool:
        return (await self.session.execute(select(VALUES.c.credit_code).limit(1))).first() is not None

    # ------------------------------------------------------------ runs
    async def add_run(self, row: dict[str, Any]) -> None:
        await self.session.execute(RUNS.insert().values(**row))

    async def run(self, run_id: str):
        return (await self.session.execute(select(RUNS).where(RUNS.c.run_id == run_id))).first()

    async def update_run(self, run_id: str, **values) -> None:
        await self.session.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**values))

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
