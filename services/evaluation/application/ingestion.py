"""Indicator data with provenance: rows from agencies (stream or CSV), matched by credit code against the
registry replica, each accepted or refused with its reasons. A refused row changes nothing; accepted values
are recorded per (enterprise, year, field, source department) with the submission and its time."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from services.common.authz import Access, Kind, Owner, Subject
from services.common.context import current_subject
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.uow import UnitOfWork
from services.evaluation.application import fields
from services.evaluation.application.commands import RowInput, SubmitRows
from services.evaluation.application.replica import EnterpriseReplica
from services.evaluation.application.rows import check_identity, check_values, denominators_by_numerator
from services.evaluation.application.views import RowError, RowOutcome, SubmissionReport
from services.evaluation.domain import Policy, sha256_of

MAX_ROWS = 1_000_000
# The operation of the policy each kind of submission is; demo data is the service's own work.
OPERATION = {"stream": "SubmitIndicators", "csv": "UploadIndicatorCsv", "demo": "SubmitIndicators"}


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

    def _sources(self, cmd: SubmitRows) -> tuple[Subject, str, list[str]]:
        """The source department of the submission and of each row. A data provider is the source of what
        it submits (the policy's object is the department): naming another is refused, not rewritten."""
        operation = OPERATION[cmd.kind]
        caller = current_subject()
        default = cmd.source_department or (caller.id if caller.kind is Kind.AGENCY else "")
        subject = self.access.require(operation, Owner.agency(caller.id))  # may it submit at all, as itself
        sources = [r.source_department or default for r in cmd.rows]
        for source in dict.fromkeys([default, *sources]):
            fields.identifier(source, "source_department")
            if not self.access.allows(operation, Owner.agency(source), subject=subject):
                raise PermissionDenied(f"agency {subject.id} submits only as itself, not as {source}",
                                       reason="NOT_OWNER")
        return subject, default, sources

    async def submit_file(self, idempotency_key: str, source_department: str,
                          read_rows: Callable[[], Sequence[RowInput]]) -> SubmissionReport:
        """An uploaded file (the adapter reads its format): who may submit is settled before it is read."""
        self._sources(SubmitRows(idempotency_key, "csv", (), source_department))
        return await self.submit(SubmitRows(idempotency_key, "csv", tuple(read_rows()), source_department))

    async def submit(self, cmd: SubmitRows) -> SubmissionReport:
        subject, default_source, sources = self._sources(cmd)
        fields.idempotency_key(cmd.idempotency_key)
        # The resolved department is part of the request: another department's retry with the same key is a
        # reuse, not a replay of somebody else's report.
        cmd = replace(cmd, source_department=default_source)
        if not cmd.rows:
            raise InvalidArgument.field("rows", "at least one row is required")
        if len(cmd.rows) > MAX_ROWS:
            raise InvalidArgument.field("rows", f"at most {MAX_ROWS} rows per submission")
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "submit_indicators", SubmissionReport)) is not None:
                return first
        policy: Policy = await self.reference_policy()
        enterprises = await self.replica.match([r.credit_code for r in cmd.rows], self.lookup_limit)

        checked: list[tuple[dict[str, str], list[RowError]]] = []
        seen: dict[tuple[str, int, str, str], int] = {}
        for row, source in zip(cmd.rows, sources, strict=True):
            errors = check_identity(row.credit_code, row.year)
            clean, value_errors = check_values(row.values, policy)
            errors += value_errors
            if not errors:
                enterprise = enterprises.get(row.credit_code)
                if enterprise is None:
                    errors.append(RowError("credit_code", "unknown_credit_code",
                                           f"{row.credit_code} is not registered in the registry"))
                elif enterprise.status == "deregistered":
                    errors.append(RowError("credit_code", "deregistered", f"{row.credit_code} is deregistered"))
            for field in clean:
                key = (row.credit_code, row.year, field, source)
                if key in seen:
                    errors.append(RowError(field, "duplicate_row",
                                           f"{field} for {row.credit_code} in {row.year} from {source} "
                                           f"already in row {seen[key]} of this submission"))
                else:
                    seen[key] = row.row_number
            if not clean and not errors:
                errors.append(RowError("values", "no_values", "the row supplies no value"))
            checked.append((clean, errors))
        await self._check_denominators(cmd, checked, policy, enterprises)

        submission_id = f"sub-{uuid.uuid4().hex[:16]}"
        outcomes: list[RowOutcome] = []
        values: list[dict] = []
        refused = Counter()
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "submit_indicators", SubmissionReport)) is not None:
                return first
            for row, source, (clean, errors) in zip(cmd.rows, sources, checked, strict=True):
                if errors:
                    refused[errors[0].reason] += 1
                    outcomes.append(RowOutcome(row.row_number, row.credit_code, row.year, False, tuple(errors)))
                    continue
                values.extend(dict(credit_code=row.credit_code, year=row.year, field=field, value=value,
                                   source_department=source, submission_id=submission_id, recorded_at=tx.now)
                              for field, value in clean.items())
                outcomes.append(RowOutcome(row.row_number, row.credit_code, row.year, True, (), len(clean)))
            accepted = len(outcomes) - sum(refused.values())
            accepted_digest = sha256_of([[v["credit_code"], v["year"], v["field"], v["value"],
                                          v["source_department"]] for v in values])
            report = SubmissionReport(submission_id, default_source, accepted, sum(refused.values()), len(values),
                                      tuple(outcomes), tx.now)
            repo = self.repositories(tx.session)
            await repo.upsert_values(values)
            await repo.add_submission(dict(
                submission_id=submission_id, kind=cmd.kind, source_department=default_source,
                actor=subject.actor, rows_accepted=accepted, rows_refused=report.rows_refused,
                values_recorded=len(values), accepted_digest=accepted_digest, recorded_at=tx.now))
            await tx.audit("indicators.submit", submission_id, {
                "kind": cmd.kind, "source_department": default_source, "rows_accepted": accepted,
                "rows_refused": report.rows_refused, "values_recorded": len(values),
                "accepted_digest": accepted_digest, "sources": sorted(set(sources))})
            await tx.remember(cmd, "submit_indicators", report, SubmissionReport)
            await tx.commit()
        self.metrics.rows_counted(accepted, dict(refused))
        return report

    async def _check_denominators(self, cmd: SubmitRows, checked, policy: Policy, enterprises) -> None:
        """A numerator needs a denominator: in the row, on record for the enterprise-year, or (land) in the
        registry. A row whose numerator has none of its denominators anywhere is refused."""
        needs = denominators_by_numerator(policy)
        pending = []
        for row, (clean, errors) in zip(cmd.rows, checked, strict=True):
            if errors:
                continue
            for field in clean:
                dens = needs.get(field)
                if dens and not dens & clean.keys():
                    pending.append((row, clean, errors, field, dens))
        if not pending:
            return
        async with self.uow() as tx:
            stored = await self.repositories(tx.session).stored_fields(
                [p[0].credit_code for p in pending], [p[0].year for p in pending],
                sorted({d for p in pending for d in p[4]}))
        for row, _clean, errors, field, dens in pending:
            if any(e.reason == "missing_denominator" for e in errors):
                continue
            available = {d for d in dens if (row.credit_code, row.year, d) in stored}
            if "land_mu" in dens and enterprises.get(row.credit_code) is not None:
                available.add("land_mu")  # the registry's land held stands in for an unreported area
            if not available:
                first = sorted(dens)[0]
                errors.append(RowError(first, "missing_denominator",
                                       f"{field} needs {' or '.join(sorted(dens))}: not in this row and not on "
                                       f"record for {row.credit_code} in {row.year}"))
