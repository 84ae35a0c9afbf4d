"""Indicator data with provenance: rows from agencies (the bulk upload's column batches, a stream of rows,
a CSV file), matched by credit code against the registry replica, each accepted or refused with its
reasons. A refused row changes nothing; the accepted values of a submission are recorded in one
transaction, one record per (enterprise, year, source department) with the submission and its time, and
the answer is sent only after that commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

from services.common.authz import Access, Kind, Owner, Subject
from services.common.context import current_subject
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.uow import UnitOfWork
from services.evaluation.application import fields
from services.evaluation.application.batches import ContentDigest, SubmissionCheck, batch_of_rows, check_shape
from services.evaluation.application.commands import IndicatorBatch, RowInput, SubmissionRequest, SubmitRows
from services.evaluation.application.replica import EnterpriseReplica, Lookups
from services.evaluation.application.rows import ValueChecks, denominators_by_numerator
from services.evaluation.application.views import SubmissionReport

MAX_ROWS = 1_000_000
# The operation of the policy each kind of submission is; demo data is the service's own work.
OPERATION = {"batches": "SubmitIndicatorBatches", "stream": "SubmitIndicators", "csv": "UploadIndicatorCsv",
             "demo": "SubmitIndicators"}


class Ingestion:
    def __init__(self, uow: UnitOfWork, repositories: Callable, replica: EnterpriseReplica,
                 reference_policy: Callable, metrics, access: Access, lookup_limit: int = 200) -> None:
        self.uow = uow
        self.repositories = repositories
        self.replica = replica
        self.reference_policy = reference_policy  # async () -> Policy: validates rule ids and denominators
        self.metrics = metrics
        self.access = access
        self.lookup_limit = lookup_limit

    def _submitter(self, kind: str, source_department: str) -> tuple[Subject, str]:
        """Who submits and the submission's source department. A data provider is the source of what it
        submits (the policy's object is the department): naming another is refused, not rewritten."""
        caller = current_subject()
        default = source_department or (caller.id if caller.kind is Kind.AGENCY else "")
        subject = self.access.require(OPERATION[kind], Owner.agency(caller.id))  # may it submit at all, as itself
        self._may_submit_as(kind, subject, default)
        return subject, default

    def _may_submit_as(self, kind: str, subject: Subject, source: str) -> None:
        fields.identifier(source, "source_department")
        if not self.access.allows(OPERATION[kind], Owner.agency(source), subject=subject):
            raise PermissionDenied(f"agency {subject.id} submits only as itself, not as {source}", reason="NOT_OWNER")

    async def submit(self, cmd: SubmitRows) -> SubmissionReport:
        """Rows one by one (a stream, the demo): the answer lists every row."""
        self._submitter(cmd.kind, cmd.source_department)
        if len(cmd.rows) > MAX_ROWS:
            raise InvalidArgument.field("rows", f"at most {MAX_ROWS} rows per submission")
        return await self.submit_batches(cmd.idempotency_key, cmd.source_department,
                                         _one(batch_of_rows(cmd.rows)), kind=cmd.kind)

    async def submit_file(self, idempotency_key: str, source_department: str,
                          read_rows: Callable[[], Sequence[RowInput]]) -> SubmissionReport:
        """An uploaded file (the adapter reads its format): who may submit is settled before it is read."""
        self._submitter("csv", source_department)
        return await self.submit(SubmitRows(idempotency_key, "csv", tuple(read_rows()), source_department))

    async def submit_batches(self, idempotency_key: str, source_department: str,
                             batches: AsyncIterable[IndicatorBatch], *, kind: str = "batches") -> SubmissionReport:
        """A submission in column batches, checked as they arrive. The bulk upload ("batches") is answered
        with its refused rows only; the other kinds list every row, as they always have."""
        subject, default_source = self._submitter(kind, source_department)
        fields.idempotency_key(idempotency_key)
        policy = await self.reference_policy()
        check = SubmissionCheck(ValueChecks(policy), denominators_by_numerator(policy))
        digest = ContentDigest()
        lookups = Lookups(self.lookup_limit)
        permitted, used = {default_source}, set()
        index = 0
        async for batch in batches:
            rows = check_shape(batch, index)
            if check.rows + rows > MAX_ROWS:
                raise InvalidArgument.field("rows", f"at most {MAX_ROWS} rows per submission")
            sources = [source or default_source for source in batch.source_departments] or [default_source] * rows
            for source in set(sources) - used:
                if source not in permitted:
                    self._may_submit_as(kind, subject, source)
                    permitted.add(source)
                used.add(source)
            numbers = batch.row_numbers or range(check.rows + 1, check.rows + rows + 1)
            digest.add(batch, sources, numbers)
            enterprises = await self.replica.match(batch.credit_codes, lookups)
            check.add(batch, sources, numbers, enterprises)
            index += 1
        if not check.rows:
            raise InvalidArgument.field("rows", "at least one row is required")
        # The resolved department is part of the request: another department's retry with the same key is a
        # reuse, not a replay of somebody else's report.
        request = SubmissionRequest(idempotency_key, kind, default_source, digest.hexdigest())
        async with self.uow.read() as tx:
            if (first := await tx.replay(request, "submit_indicators", SubmissionReport)) is not None:
                return first
        if pending := check.pending_denominators():
            async with self.uow.read() as tx:
                stored = await self.repositories(tx.session).stored_fields(
                    [check.codes[p[0]] for p in pending], [check.years[p[0]] for p in pending],
                    sorted({den for p in pending for den in p[2]}))
            check.refuse_missing_denominators(pending, stored)
        return await self._record(request, check, subject, sorted(used))

    async def _record(self, request: SubmissionRequest, check: SubmissionCheck, subject: Subject,
                      sources: list[str]) -> SubmissionReport:
        submission_id = f"sub-{uuid.uuid4().hex[:16]}"
        refused = check.refused_reasons()
        rows_refused = sum(refused.values())
        async with self.uow() as tx:
            if (first := await tx.replay(request, "submit_indicators", SubmissionReport)) is not None:
                return first
            records, values_recorded, accepted_digest = check.accepted()
            accepted = check.rows - rows_refused
            refused_only = request.kind == "batches"
            report = SubmissionReport(submission_id, request.source_department, accepted, rows_refused,
                                      values_recorded, check.outcomes(refused_only=refused_only), tx.now,
                                      refused_only)
            repo = self.repositories(tx.session)
            await repo.add_records(submission_id, tx.now, records)
            await repo.add_submission(dict(
                submission_id=submission_id, kind=request.kind, source_department=request.source_department,
                actor=subject.actor, rows_accepted=accepted, rows_refused=rows_refused,
                values_recorded=values_recorded, accepted_digest=accepted_digest, recorded_at=tx.now))
            await tx.audit("indicators.submit", submission_id, {
                "kind": request.kind, "source_department": request.source_department, "rows_accepted": accepted,
                "rows_refused": rows_refused, "values_recorded": values_recorded,
                "accepted_digest": accepted_digest, "content_digest": request.content_digest, "sources": sources})
            await tx.remember(request, "submit_indicators", report, SubmissionReport)
            await tx.commit()
        self.metrics.rows_counted(accepted, dict(refused))
        return report


async def _one(batch: IndicatorBatch) -> AsyncIterator[IndicatorBatch]:
    yield batch
