"""Reading results: one enterprise's result, filtered lists, roll-ups, the report's data, eligibility."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.common.authz import Access, Owner
from services.common.errors import InvalidArgument, NotFound, RuleViolation
from services.common.uow import UnitOfWork
from services.evaluation.application import documents, fields
from services.evaluation.application.commands import ResultFilter
from services.evaluation.application.details import RunDetails
from services.evaluation.application.policies import Policies
from services.evaluation.application.replica import EnterpriseReplica
from services.evaluation.application.runs import run_view
from services.evaluation.application.views import (
    Eligibility,
    IndicatorValueView,
    Page,
    PageOf,
    RegradeView,
    ReportData,
    ResultSummaryView,
    StoredResult,
)
from services.evaluation.domain import SALE_KINDS, Policy, canonical, decide_eligibility, improvement_hints
from services.evaluation.domain.numbers import canonical_text
from services.evaluation.domain.rollups import DIMENSIONS, LEVEL_ORDER

# Offset pages of results ordered by total: an offset beyond any run's size is not a token we issued.
MAX_OFFSET_DIGITS = 9


def regrade_view(row) -> RegradeView:
    return RegradeView(row.regrade_id, row.run_id, row.credit_code, row.from_class, row.to_class, row.reason,
                       row.evidence_ref, row.proposed_by, row.approved_by, row.status, row.proposed_at,
                       row.approved_at)


def _no_result(credit_code: str, run_id: str) -> str:
    # The one answer for "no such result" and "not yours": an enterprise learns nothing about another.
    return f"{credit_code} has no result in run {run_id}" if run_id else \
        f"{credit_code} has no result in a published run"


class Results:
    """Reads of results. An enterprise reads only its own (the policy's `own`); asking about another
    answers NOT_FOUND exactly as a missing one does."""

    def __init__(self, uow: UnitOfWork, repositories: Callable, policies: Policies, replica: EnterpriseReplica,
                 access: Access, details: RunDetails) -> None:
        self.details = details
        self.uow = uow
        self.repositories = repositories
        self.policies = policies
        self.replica = replica
        self.access = access

    async def _run_of(self, repo, credit_code: str, run_id: str) -> str:
        if run_id:
            return run_id
        current = await repo.current_class(credit_code)
        if current is None:
            raise NotFound(_no_result(credit_code, ""))
        return current.run_id

    def _enterprise_read(self, operation: str, credit_code: str, run_id: str = "") -> None:
        self.access.scope(operation)  # a caller who may not read these at all is told so before anything else
        fields.credit_code(credit_code)
        fields.identifier(run_id, "run_id", required=False)
        self.access.require(operation, Owner.enterprise(credit_code), conceal=_no_result(credit_code, run_id))

    async def result(self, credit_code: str, run_id: str = "") -> StoredResult:
        self._enterprise_read("GetEnterpriseResult", credit_code, run_id)
        return await self._result(credit_code, run_id)

    async def _result(self, credit_code: str, run_id: str) -> StoredResult:
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            run_id = await self._run_of(repo, credit_code, run_id)
            run = await repo.run(run_id)
            if run is None:
                raise NotFound(f"run {run_id} not found")
            row = await repo.result(run_id, credit_code)
        if row is None:
            raise NotFound(_no_result(credit_code, run_id))
        return StoredResult(run_id, run.policy_ref, await full_document(self.details, run, row))

    async def list(self, where: ResultFilter, page: Page) -> PageOf:
        self.access.require("ListResults")
        fields.identifier(where.run_id, "run_id")
        for name, value in (("grade", where.grade), ("region_code", where.region_prefix), ("park", where.park),
                            ("industry_code", where.industry_prefix), ("size_class", where.size_class)):
            fields.identifier(value, name, required=False, max_length=100)
        fields.identifier(page.after, "page.page_token", required=False)
        if where.by_total and page.after and not (page.after.isascii() and page.after.isdigit()
                                                  and len(page.after) <= MAX_OFFSET_DIGITS):
            raise InvalidArgument.field("page.page_token", "is not a token this service issued")
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            if await repo.run(where.run_id) is None:
                raise NotFound(f"run {where.run_id} not found")
            rows, total = await repo.result_page(where, page.after, page.size)
        items = [ResultSummaryView(r.credit_code, r.name, r.region_code, r.park, r.industry_code, r.size_class,
                                   r.status, json.loads(r.document)["total"], r.final_class, r.rank_in_pool)
                 for r in rows[:page.size]]
        more = len(rows) > page.size
        if where.by_total:
            next_after = str(int(page.after or 0) + page.size) if more else ""
        else:
            next_after = items[-1].credit_code if more else ""
        return PageOf(items, next_after, total)

    async def rollups(self, run_id: str, dimension: str) -> tuple[list[dict], dict[str, list[str]]]:
        self.access.require("GetRollups")
        fields.identifier(run_id, "run_id")
        if dimension and dimension not in DIMENSIONS:
            raise InvalidArgument.field("dimension", f"one of {', '.join(DIMENSIONS)} (or empty for all)")
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            run = await repo.run(run_id)
            if run is None:
                raise NotFound(f"run {run_id} not found")
            rows = await repo.rollups(run_id, dimension)
        rankings = {k: v for k, v in json.loads(run.rankings).items()
                    if not dimension or k.startswith(dimension + ":")}
        return sorted((json.loads(r.document) for r in rows), key=_rollup_order), rankings

    async def report_data(self, credit_code: str, run_id: str = "") -> ReportData:
        self._enterprise_read("GetEnterpriseReport", credit_code, run_id)
        stored = await self._result(credit_code, run_id)
        policy = (await self.policies.resolve(stored.policy_ref))[1]
        result = documents.result_from_document(stored.document)
        hints = [canonical(h) for h in improvement_hints(policy, result)] if result.indicators else []
        async with self.uow() as tx:
            repo = self.repositories(tx.session)
            run = run_view(await repo.run(stored.run_id))
            enterprise = (await repo.enterprises_by_code([credit_code])).get(credit_code)
            history = []
            for row in await repo.history(credit_code):
                doc = json.loads(row.document)
                history.append({"year": row.year, "run_id": row.run_id, "policy_ref": row.policy_ref,
                                "status": row.status, "final_class": doc["final_class"],
                                "initial_class": doc["initial_class"], "total": doc["total"],
                                "rank_in_pool": doc["rank_in_pool"], "pool_size": doc["pool_size"],
                                "consecutive_d_years": doc["consecutive_d_years"]})
            values = await repo.values_of(credit_code, result.year)
            regrades = [regrade_view(r) for r in await repo.regrades_of(credit_code) if r.run_id == stored.run_id]
        value_views = _value_views(values)
        identity = {"credit_code": credit_code, "name": result.name or "", "region_code": result.region_code,
                    "park": result.park or "", "industry_code": result.industry_code,
                    "size_class": result.size_class,
                    "land_held_mu": enterprise.land_held_mu if enterprise is not None else ""}
        return ReportData(stored.document, run, identity, history, hints, value_views, regrades,
                          policy.publicity.days, class_cut(policy, result))

    async def values(self, credit_code: str, year: int) -> list[IndicatorValueView]:
        """Every recorded value of an enterprise-year with its source; `effective` marks what runs use."""
        self.access.scope("GetIndicatorValues")
        fields.credit_code(credit_code)
        self.access.require("GetIndicatorValues", Owner.enterprise(credit_code),
                            conceal=f"no indicator values of {credit_code} in {year}")
        async with self.uow.read() as tx:
            rows = await self.repositories(tx.session).values_of(credit_code, year)
        return _value_views(rows)

    async def eligibility(self, credit_code: str, sale_kind: str) -> Eligibility:
        self.access.scope("CheckEligibility")
        fields.credit_code(credit_code)
        self.access.require("CheckEligibility", Owner.enterprise(credit_code),
                            conceal=f"no eligibility answer for {credit_code}")
        if sale_kind not in SALE_KINDS:
            raise InvalidArgument.field("sale_kind", f"one of {', '.join(SALE_KINDS)}")
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            current = await repo.current_class(credit_code)
            known = current is not None or bool(await repo.enterprises_by_code([credit_code]))
        if current is None:
            # Registered a moment ago, the registry's event may not have reached the replica yet: ask it.
            if not known and not await self.replica.learn(credit_code):
                raise RuleViolation(f"{credit_code} is not a registered enterprise known to evaluation",
                                    reason="UNKNOWN_ENTERPRISE")
            raise RuleViolation(f"{credit_code} has no class in a published evaluation run",
                                reason="NOT_EVALUATED")
        policy = (await self.policies.resolve(current.policy_ref))[1]
        decision = decide_eligibility(policy, current.final_class, sale_kind)
        async with self.uow.read() as tx:
            row = await self.repositories(tx.session).result(current.run_id, credit_code)
        consecutive_d = json.loads(row.document)["consecutive_d_years"] if row is not None else 0
        surcharge, _ = policy.differentiated_measures.electricity_surcharge_yuan_per_kwh.rate(
            decision.managed_as, consecutive_d)
        return Eligibility(decision.allowed, decision.condition or "", decision.priority or 0,
                           decision.price_coefficient, Decimal(surcharge), decision.grade, decision.managed_as,
                           decision.rule, current.policy_ref, current.run_id, current.year)


async def full_document(details: RunDetails, run, row) -> dict[str, Any]:
    """A stored result's full document: as stored after a re-grade, else built from the run's inputs."""
    document = json.loads(row.document)
    if not documents.is_summary(document):
        return document
    built = await details.document(run.run_id, run.policy_ref, row.credit_code, document["year"])
    if built is None:
        raise NotFound(_no_result(row.credit_code, run.run_id))
    return built


def _rollup_order(doc: dict) -> tuple:
    """Dimension, level from the top down (the run's total first), all firms before the splits, rank."""
    level = doc.get("level", "")
    depth = LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER)
    return doc["dimension"], depth, doc.get("size_class", ""), doc["rank"] or 0, doc["key"]


def class_cut(policy: Policy, result) -> dict[str, Any]:
    """The class-cut rule of the firm's pool as the policy states it (the report says which applies)."""
    classification = policy.classification
    rounding = classification.rounding.model_dump()
    cut: dict[str, Any] = {"method": classification.method, "rounding": rounding,
                           "min_pool_size": classification.min_pool_size_for_shares}
    if classification.method == "two_stage":
        stages = classification.two_stage
        cut |= {"top": canonical(stages.top.model_dump()), "bottom": canonical(stages.bottom.model_dump()),
                "rest": stages.rest}
    elif result.pool is not None:
        shares = policy.shares_of(result.pool.size_class, result.pool.roster)
        cut["shares"] = {label: canonical_text(getattr(shares, label) * 100) for label in ("A", "B", "C", "D")}
        cut["shares"]["A_B"] = canonical_text((shares.A + shares.B) * 100)
    return cut


def _value_views(rows) -> list[IndicatorValueView]:
    """Rows ordered by field, newest first (ties: greater source): the first of each field is effective."""
    seen: set[str] = set()
    views = []
    for v in rows:
        views.append(IndicatorValueView(v.field, v.value, v.source_department, v.submission_id, v.recorded_at,
                                        v.field not in seen))
        seen.add(v.field)
    return views
