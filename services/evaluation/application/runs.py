"""Evaluation runs: compute under one policy version with the bulk engine, freeze (policy ref, input and
output digests, what was decided for every firm, pools, roll-ups, the inputs themselves), publish (the
latest for eligibility; events for classes that changed). A firm's full result is built on read
(`details`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from services.common.authz import Access, Subject
from services.common.errors import FieldViolation, InvalidArgument, NotFound, RuleViolation
from services.common.gc_pause import CollectorPause
from services.common.uow import UnitOfWork
from services.evaluation.application import documents, fields
from services.evaluation.application.commands import PublishRun, StartRun
from services.evaluation.application.details import RunDetails
from services.evaluation.application.events import classified, run_completed, run_published
from services.evaluation.application.inputs import (
    effective_values,
    enterprise_years,
    jurisdiction_prefix,
    prior_year,
)
from services.evaluation.application.policies import Policies
from services.evaluation.application.views import Page, PageOf, PublishOutcome, RunProgressView, RunView
from services.evaluation.domain import EnterpriseYear, InputError, Policy, PriorYear, RunProgress
from services.evaluation.domain.decided import DecidedRun, decide_run

# The engine a run uses (policy, rows, prior year, progress listener) -> what it decided.
Evaluate = Callable[[Policy, Sequence[EnterpriseYear], PriorYear | None, Callable[[RunProgress], None]], DecidedRun]

log = logging.getLogger(__name__)

GRADES = ("A", "B", "C", "D", "T")


def run_view(row) -> RunView:
    progress = RunProgressView(row.pools_done, row.pools_total, row.rows_done, row.rows_total)
    return RunView(row.run_id, row.jurisdiction, row.year, row.policy_ref, row.input_digest, row.output_digest,
                   row.status, row.enterprises, json.loads(row.class_counts), row.prior_run_id, row.started_at,
                   row.completed_at, row.published_at, row.started_by, row.regrades, progress)


class _ProgressSink:
    """The latest progress a run's worker thread reported; the event loop writes it to the run's row."""

    def __init__(self) -> None:
        self.latest: RunProgress | None = None

    def __call__(self, progress: RunProgress) -> None:
        self.latest = progress  # one reference assignment: safe across the thread boundary


def _frozen(run: DecidedRun, run_id: str) -> tuple[list[dict], list[dict], dict]:
    """Rows for the results and roll-ups tables (CPU work, run in a thread)."""
    results, counts = [], Counter()
    for firm in run.firms:
        if firm.final_class:
            counts[firm.final_class] += 1
        results.append(dict(
            run_id=run_id, credit_code=firm.credit_code, year=firm.year, name=firm.name or "",
            region_code=firm.region_code, park=firm.park or "", industry_code=firm.industry_code,
            size_class=firm.size_class, status=firm.status, final_class=firm.final_class or "",
            total=float(firm.total), rank_in_pool=firm.rank_in_pool or 0,
            consecutive_d_years=firm.consecutive_d_years,
            document=documents.dumps(documents.summary_document(firm))))
    rollups = [dict(run_id=run_id, dimension=r.dimension, key=r.key, year=r.year, rank=r.rank or 0,
                    document=documents.dumps(documents.to_document(r))) for r in run.rollups]
    return results, rollups, {grade: counts.get(grade, 0) for grade in GRADES}


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Runs:
    def __init__(self, uow: UnitOfWork, repositories: Callable, policies: Policies, metrics,
                 default_policy_id: str, access: Access, details: RunDetails, gc_pause: CollectorPause,
                 evaluate: Evaluate = decide_run, progress_interval: float = 0.5) -> None:
        self.evaluate = evaluate  # the engine (a port: policy, records, prior, progress -> DecidedRun)
        self.gc_pause = gc_pause
        self.details = details
        self.progress_interval = progress_interval
        self.uow = uow
        self.repositories = repositories
        self.policies = policies
        self.metrics = metrics
        self.default_policy_id = default_policy_id
        self.access = access

    async def start(self, cmd: StartRun) -> RunView:
        subject = self.access.require("StartRun")
        fields.idempotency_key(cmd.idempotency_key)
        fields.identifier(cmd.policy_ref, "policy_ref", required=False, max_length=fields.MAX_POLICY_REF)
        violations = []
        code = cmd.jurisdiction.strip()
        if not (code.isascii() and code.isdigit() and 2 <= len(code) <= 6):
            violations.append(FieldViolation("jurisdiction", "a GB/T 2260 region code or prefix (2 to 6 digits)"))
        if not 2000 <= cmd.year <= 2100:
            violations.append(FieldViolation("year", "between 2000 and 2100"))
        if violations:
            raise InvalidArgument("; ".join(f"{v.field}: {v.description}" for v in violations), violations)
        prefix = jurisdiction_prefix(code)
        cmd = replace(cmd, jurisdiction=code)
        async with self.uow.read() as tx:
            if (first := await tx.replay(cmd, "start_run", RunView)) is not None:
                return first
        started = time.perf_counter()
        try:
            view = await self._start(cmd, prefix, subject)
        except Exception:
            self.metrics.runs.labels("failed").inc()
            raise
        self.metrics.runs.labels("completed").inc()
        self.metrics.run_duration.observe(time.perf_counter() - started)
        return view

    async def _start(self, cmd: StartRun, prefix: str, subject: Subject) -> RunView:
        _, policy = await self.policies.resolve(cmd.policy_ref or self.default_policy_id)
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            enterprises = await repo.enterprises_in(prefix)
            values = effective_values(await repo.values_for_year(cmd.year, prefix))
            prior_row = await repo.latest_published(prefix, cmd.year - 1)
            prior = None
            if prior_row is not None:
                rollups = [json.loads(r.document) for r in await repo.rollups(prior_row.run_id)]
                prior = prior_year(await repo.result_classes(prior_row.run_id), json.loads(prior_row.pools),
                                   rollups)
        records = await asyncio.to_thread(self.gc_pause.run, enterprise_years, policy, cmd.year, enterprises, values)
        if not records:
            raise RuleViolation(f"no indicator data for {cmd.year} in {cmd.jurisdiction}", reason="NO_DATA")
        run_id = f"run-{cmd.year}-{uuid.uuid4().hex[:12]}"
        # The run is on record as running while it works, so that GetRun and the portal can follow it.
        async with self.uow() as tx:
            started_at = tx.now
            running = dict(
                run_id=run_id, jurisdiction=cmd.jurisdiction, region_prefix=prefix, year=cmd.year,
                policy_ref=policy.ref, input_digest="", output_digest="", status="running",
                enterprises=len(records), class_counts="{}", pools="[]", rankings="{}",
                prior_run_id=prior_row.run_id if prior_row else "", started_by=subject.actor, regrades=0,
                started_at=started_at, completed_at=None, published_at=None, rows_total=len(records))
            await self.repositories(tx.session).add_run(running)
            await tx.commit()
        sink = _ProgressSink()
        follower = asyncio.create_task(self._follow(run_id, sink))
        try:
            run = await asyncio.to_thread(self.gc_pause.run, self.evaluate, policy, records, prior, sink)
            results, rollups, counts = await asyncio.to_thread(self.gc_pause.run, _frozen, run, run_id)
        except InputError as exc:
            await self._discard(run_id, follower)
            raise InvalidArgument("the recorded data cannot be evaluated under " + policy.ref, [
                FieldViolation(f"{v.credit_code or 'run'}.{v.field}", v.message) for v in exc.violations[:100]
            ]) from None
        except BaseException:
            await self._discard(run_id, follower)
            raise
        await _stop(follower)
        pools = json.dumps(documents.to_document(run.pools), ensure_ascii=False)
        rankings = json.dumps({k: list(v) for k, v in run.rankings.items()}, ensure_ascii=False)
        done = sink.latest or RunProgress(0, 0, len(records), len(records))
        async with self.uow() as tx:
            repo = self.repositories(tx.session)
            if (first := await tx.replay(cmd, "start_run", RunView)) is not None:
                await repo.delete_run(run_id)  # a concurrent retry of the same request finished first
                await tx.commit()
                return first
            view = RunView(run_id, cmd.jurisdiction, cmd.year, run.policy_ref, run.input_digest, run.output_digest,
                           "completed", len(results), counts, running["prior_run_id"],
                           started_at, tx.now, None, subject.actor, 0,
                           RunProgressView(done.pools_done, done.pools_total, done.rows_done, done.rows_total))
            await repo.save_run(running | dict(
                input_digest=run.input_digest, output_digest=run.output_digest, status="completed",
                enterprises=len(results), class_counts=json.dumps(counts), pools=pools, rankings=rankings,
                completed_at=tx.now, pools_done=done.pools_done, pools_total=done.pools_total,
                rows_done=done.rows_done, rows_total=done.rows_total))
            await repo.add_results(results)
            await repo.add_run_inputs(run_id, run.inputs)
            await repo.add_rollups(rollups)
            await tx.audit("run.complete", run_id, {
                "run_id": run_id, "jurisdiction": cmd.jurisdiction, "year": cmd.year, "policy_ref": run.policy_ref,
                "input_digest": run.input_digest, "output_digest": run.output_digest, "enterprises": len(results),
                "class_counts": counts, "prior_run_id": view.prior_run_id})
            await tx.emit(run_completed(view))
            await tx.remember(cmd, "start_run", view, RunView)
            await tx.commit()
        self.details.keep(run_id, run.detail)
        return view

    async def _follow(self, run_id: str, sink: _ProgressSink) -> None:
        """Write the run's progress to its row while it works (until cancelled)."""
        written = None
        while True:
            await asyncio.sleep(self.progress_interval)
            latest = sink.latest
            if latest is None or latest == written:
                continue
            async with self.uow() as tx:
                await self.repositories(tx.session).update_run(
                    run_id, pools_done=latest.pools_done, pools_total=latest.pools_total,
                    rows_done=latest.rows_done, rows_total=latest.rows_total)
                await tx.commit()
            written = latest

    async def _discard(self, run_id: str, follower: asyncio.Task) -> None:
        """A run that failed leaves nothing behind: bad data changes nothing."""
        await _stop(follower)
        async with self.uow() as tx:
            await self.repositories(tx.session).delete_run(run_id)
            await tx.commit()

    async def discard_interrupted(self) -> int:
        """At start: runs left running by a stopped process will never finish; they are removed."""
        async with self.uow() as tx:
            removed = await self.repositories(tx.session).delete_running_runs()
            await tx.commit()
        if removed:
            log.warning("removed %d run(s) interrupted by a stop of the service", removed)
        return removed

    async def publish(self, cmd: PublishRun) -> PublishOutcome:
        self.access.require("PublishRun")
        fields.idempotency_key(cmd.idempotency_key)
        fields.identifier(cmd.run_id, "run_id")
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "publish_run", PublishOutcome)) is not None:
                return first
            repo = self.repositories(tx.session)
            row = await repo.run(cmd.run_id)
            if row is None:
                raise NotFound(f"run {cmd.run_id} not found")
            if row.status != "completed":
                raise RuleViolation(f"run {cmd.run_id} is {row.status}; only a completed run can be published",
                                    reason="RUN_NOT_PUBLISHABLE")
            policy = await self.policies.resolve_in(repo, row.policy_ref)
            results = await repo.result_classes(cmd.run_id)
            current = await repo.current_classes([r.credit_code for r in results])
            changes, updates = [], []
            for result in results:
                before = current.get(result.credit_code)
                if before is not None and before.year > result.year:
                    continue  # a later year's published class stays the one in force
                managed_as = policy.scope.T_treated_as if result.final_class == "T" else result.final_class
                updates.append(dict(credit_code=result.credit_code, run_id=cmd.run_id, year=result.year,
                                    policy_ref=row.policy_ref, final_class=result.final_class,
                                    managed_as=managed_as, size_class=result.size_class))
                previous = before.final_class if before is not None else ""
                if previous != result.final_class:
                    changes.append(classified(result.credit_code, {
                        "credit_code": result.credit_code, "run_id": cmd.run_id, "year": result.year,
                        "previous_class": previous, "final_class": result.final_class, "managed_as": managed_as,
                        "policy_ref": row.policy_ref, "reason": "run_published"}))
            await repo.supersede(row.region_prefix, row.year, cmd.run_id)
            await repo.update_run(cmd.run_id, status="published", published_at=tx.now)
            await repo.upsert_current(updates)
            published = run_view(await repo.run(cmd.run_id))
            await tx.emit(run_published(published, len(changes), tx.now))
            await tx.emit_many(changes)
            await tx.audit("run.publish", cmd.run_id, {"run_id": cmd.run_id, "output_digest": row.output_digest,
                                                       "classes_changed": len(changes)})
            outcome = PublishOutcome(published, len(changes))
            await tx.remember(cmd, "publish_run", outcome, PublishOutcome)
            await tx.commit()
        await self.refresh_gauge()
        return outcome

    async def refresh_gauge(self) -> None:
        async with self.uow() as tx:
            self.metrics.set_classes(await self.repositories(tx.session).current_counts())

    async def get(self, run_id: str) -> RunView:
        self.access.require("GetRun")
        fields.identifier(run_id, "run_id")
        async with self.uow.read() as tx:
            row = await self.repositories(tx.session).run(run_id)
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return run_view(row)

    async def list(self, year: int, status: str, page: Page) -> PageOf:
        self.access.require("ListRuns")
        fields.identifier(page.after, "page.page_token", required=False)
        async with self.uow.read() as tx:
            rows, total = await self.repositories(tx.session).runs(year, status, page.after, page.size)
        items = [run_view(r) for r in rows[:page.size]]
        return PageOf(items, items[-1].run_id if len(rows) > page.size else "", total)

