"""Manual re-grading (手动调档) with two approvers: the proposer is the first approver, a different
authenticated principal approves; both act for an evaluating agency (the policy's role evaluator). Both are
identities the service authenticated itself (the subject's actor), never names a client typed in. The applied change is recorded in the audit journal and, on a published run, sent as
`evaluation.enterprise.classified`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal

from services.common.authz import Access
from services.common.errors import FieldViolation, InvalidArgument, NotFound, RuleViolation, require
from services.common.uow import UnitOfWork
from services.evaluation.application import documents, fields
from services.evaluation.application.commands import ApproveRegrade, ProposeRegrade
from services.evaluation.application.details import RunDetails
from services.evaluation.application.events import classified
from services.evaluation.application.policies import Policies
from services.evaluation.application.results import full_document, regrade_view
from services.evaluation.application.views import RegradeView, StoredResult
from services.evaluation.domain import ManualOverride, OverrideError, apply_override
from services.evaluation.domain.results import STATUS_GRADED, STATUS_NOT_GRADED
from services.evaluation.domain.rollups import class_shares, rollup_keys_of

PENDING = "(second approver pending)"
MAX_REASON, MAX_EVIDENCE_REF = 2000, 500


def _checked(check, *args, **kwargs) -> FieldViolation | None:
    """A field check's violation, so that every bad field of a request is reported at once."""
    try:
        check(*args, **kwargs)
    except InvalidArgument as exc:
        return exc.violations[0]
    return None


class Regrades:
    def __init__(self, uow: UnitOfWork, repositories: Callable, policies: Policies, access: Access,
                 details: RunDetails) -> None:
        self.details = details
        self.uow = uow
        self.repositories = repositories
        self.policies = policies
        self.access = access

    async def propose(self, cmd: ProposeRegrade) -> RegradeView:
        proposer = self.access.require("RegradeEnterprise").actor
        violations = [v for v in (
            _checked(fields.idempotency_key, cmd.idempotency_key),
            _checked(fields.identifier, cmd.run_id, "run_id"),
            _checked(fields.credit_code, cmd.credit_code),
            _checked(fields.text, cmd.reason, "reason", max_length=MAX_REASON),
            _checked(fields.text, cmd.evidence_ref, "evidence_ref", max_length=MAX_EVIDENCE_REF)) if v]
        if cmd.to_class not in ("A", "B", "C", "D"):
            violations.append(FieldViolation("to_grade", "one of A, B, C, D"))
        if not cmd.reason.strip():
            violations.append(FieldViolation("reason", "required: why the class is changed"))
        require(violations)
        built = await self._built(cmd.run_id, cmd.credit_code)
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "propose_regrade", RegradeView)) is not None:
                return first
            repo = self.repositories(tx.session)
            run, row = await self._target(repo, cmd.run_id, cmd.credit_code)
            policy = await self.policies.resolve_in(repo, run.policy_ref)
            result = documents.result_from_document(_document(row, built))
            try:  # the domain's rules for an override, with the second approver still to come
                apply_override(policy, result, ManualOverride(cmd.credit_code, result.year, cmd.to_class, cmd.reason,
                                                              proposer, PENDING, cmd.evidence_ref or None))
            except OverrideError as exc:
                raise RuleViolation(str(exc), reason="OVERRIDE_NOT_ALLOWED") from None
            view = RegradeView(f"rg-{uuid.uuid4().hex[:16]}", cmd.run_id, cmd.credit_code, result.final_class,
                               cmd.to_class, cmd.reason.strip(), cmd.evidence_ref, proposer, "", "proposed", tx.now,
                               None)
            await repo.add_regrade(dict(
                regrade_id=view.regrade_id, run_id=view.run_id, credit_code=view.credit_code,
                from_class=view.from_class, to_class=view.to_class, reason=view.reason,
                evidence_ref=view.evidence_ref, proposed_by=proposer, approved_by="", status="proposed",
                proposed_at=tx.now, approved_at=None))
            await tx.audit("regrade.propose", cmd.credit_code, _payload(view))
            await tx.remember(cmd, "propose_regrade", view, RegradeView)
            await tx.commit()
            return view

    async def approve(self, cmd: ApproveRegrade) -> tuple[RegradeView, StoredResult]:
        approver = self.access.require("ApproveRegrade").actor
        fields.idempotency_key(cmd.idempotency_key)
        fields.identifier(cmd.regrade_id, "regrade_id")
        async with self.uow.read() as tx:
            proposed = await self.repositories(tx.session).regrade(cmd.regrade_id)
        built = await self._built(proposed.run_id, proposed.credit_code) if proposed is not None else None
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "approve_regrade", RegradeView)) is not None:
                return first, await self._stored(first)
            repo = self.repositories(tx.session)
            proposal = await repo.regrade(cmd.regrade_id)
            if proposal is None:
                raise NotFound(f"regrade {cmd.regrade_id} not found")
            if proposal.status != "proposed":
                raise RuleViolation(f"regrade {cmd.regrade_id} is already {proposal.status}",
                                    reason="REGRADE_NOT_PENDING")
            if approver.casefold() == proposal.proposed_by.casefold():
                raise RuleViolation("the second approver must be a different principal than the proposer",
                                    reason="SECOND_APPROVER_REQUIRED")
            run, row = await self._target(repo, proposal.run_id, proposal.credit_code)
            if row.final_class != proposal.from_class:
                raise RuleViolation(f"the class changed to {row.final_class} since the proposal; propose again",
                                    reason="REGRADE_STALE")
            policy = await self.policies.resolve_in(repo, run.policy_ref)
            before = documents.result_from_document(_document(row, built))
            try:
                after = apply_override(policy, before, ManualOverride(
                    proposal.credit_code, before.year, proposal.to_class, proposal.reason, proposal.proposed_by,
                    approver, proposal.evidence_ref or None))
            except OverrideError as exc:
                raise RuleViolation(str(exc), reason="OVERRIDE_NOT_ALLOWED") from None
            document = documents.to_document(after)
            await repo.update_result(run.run_id, proposal.credit_code, final_class=after.final_class,
                                     consecutive_d_years=after.consecutive_d_years,
                                     document=documents.dumps(document))
            await self._adjust_rollups(repo, run.run_id, before, after)
            counts = json.loads(run.class_counts)
            counts[before.final_class] -= 1
            counts[after.final_class] = counts.get(after.final_class, 0) + 1
            await repo.update_run(run.run_id, regrades=run.regrades + 1, class_counts=json.dumps(counts))
            await repo.update_regrade(cmd.regrade_id, status="applied", approved_by=approver, approved_at=tx.now)
            view = regrade_view(await repo.regrade(cmd.regrade_id))
            current = await repo.current_class(proposal.credit_code)
            if run.status == "published" and current is not None and current.run_id == run.run_id:
                await repo.upsert_current([dict(
                    credit_code=current.credit_code, run_id=current.run_id, year=current.year,
                    policy_ref=current.policy_ref, final_class=after.final_class, managed_as=after.managed_as,
                    size_class=current.size_class)])
                await tx.emit(classified(proposal.credit_code, {
                    "credit_code": proposal.credit_code, "run_id": run.run_id, "year": after.year,
                    "previous_class": before.final_class, "final_class": after.final_class,
                    "managed_as": after.managed_as, "policy_ref": run.policy_ref, "reason": "manual_override"}))
            await tx.audit("regrade.apply", proposal.credit_code, _payload(view))
            await tx.remember(cmd, "approve_regrade", view, RegradeView)
            await tx.commit()
        return view, StoredResult(run.run_id, run.policy_ref, document)

    async def _stored(self, view: RegradeView) -> StoredResult:
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            run, row = await self._target(repo, view.run_id, view.credit_code)
        return StoredResult(run.run_id, run.policy_ref, await full_document(self.details, run, row))

    async def _built(self, run_id: str, credit_code: str) -> dict | None:
        """The firm's full document built before the write transaction (a rebuild must not hold the writer);
        None when the run or firm does not exist, which the transaction then reports."""
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            run, row = await repo.run(run_id), await repo.result(run_id, credit_code)
        if run is None or row is None:
            return None
        return await full_document(self.details, run, row)

    async def _target(self, repo, run_id: str, credit_code: str):
        run = await repo.run(run_id)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        if run.status == "superseded":
            raise RuleViolation(f"run {run_id} is superseded; re-grade in the run in force", reason="RUN_SUPERSEDED")
        row = await repo.result(run_id, credit_code)
        if row is None:
            raise NotFound(f"{credit_code} has no result in run {run_id}")
        if not row.final_class:
            raise RuleViolation(f"{credit_code} has no class to re-grade (status {row.status})",
                                reason="NOT_GRADED")
        return run, row

    async def _adjust_rollups(self, repo, run_id: str, before, after) -> None:
        """Move the firm between classes in every unit it counts in: its region and the units above up to the
        run's total, its park, its industry, and their size-class splits (indicators unchanged)."""
        if before.status not in (STATUS_GRADED, STATUS_NOT_GRADED):
            return
        land = before.raw.get("land_mu") or Decimal(0)
        for dimension, key in rollup_keys_of(before):
            stored = await repo.rollup(run_id, dimension, key)
            if stored is None:  # above the run's total, or a unit of a run stored before it existed
                continue
            doc = json.loads(stored.document)
            counts = doc["class_counts"]
            counts[before.final_class] -= 1
            counts[after.final_class] += 1
            doc["class_shares"] = documents.to_document(class_shares(counts, doc["firms"]))
            land_c_d = Decimal(doc["land_in_c_d_mu"])
            land_c_d += land * ((after.final_class in "CD") - (before.final_class in "CD"))
            doc["land_in_c_d_mu"] = documents.to_document(land_c_d)
            for lever, name in (("electricity_surcharge", "electricity_surcharge_yuan"),
                                ("land_use_tax_relief", "land_use_tax_relief_yuan")):
                delta = _amount(after, lever) - _amount(before, lever)
                doc[name] = documents.to_document(Decimal(doc[name]) + delta)
            await repo.update_rollup(run_id, dimension, key, documents.dumps(doc))


def _document(row, built: dict | None) -> dict:
    """The stored document when it is full (a regrade stored it); else the one built for this request —
    the row still being a summary means nothing changed the firm's result since."""
    stored = json.loads(row.document)
    if not documents.is_summary(stored):
        return stored
    if built is None:  # the run appeared between the two reads: cannot happen for a run that existed before
        raise NotFound(f"{row.credit_code} has no result in run {row.run_id}")
    return built


def _amount(result, lever: str) -> Decimal:
    return sum((m.estimated_yearly_amount for m in result.measures
                if m.lever == lever and m.estimated_yearly_amount is not None), Decimal(0))


def _payload(view: RegradeView) -> dict:
    return {"regrade_id": view.regrade_id, "run_id": view.run_id, "credit_code": view.credit_code,
            "from_class": view.from_class, "to_class": view.to_class, "reason": view.reason,
            "evidence_ref": view.evidence_ref, "first_approver": view.proposed_by,
            "second_approver": view.approved_by, "status": view.status}
