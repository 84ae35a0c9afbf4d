"""亩均论英雄 evaluation: an enterprise's result and 一企一单 report, agencies' indicator uploads, regulators'
runs, results and roll-ups.

Who may call each route is the policy's (services/gateway/authorization.yaml): an enterprise reads only
its own result, report and indicator values; the evaluating agency and regulators read all; agencies
holding the registry role data_provider upload indicator data as themselves (the evaluation service
records the agency as the source department). Importing this module needs the generated evaluation
contract (yaosu.evaluation.v1); the rest of the gateway includes it only when present.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import quote

import grpc
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from yaosu.evaluation.v1 import evaluation_pb2 as epb

from services.gateway.api.authz import GuardDep
from services.gateway.api.common import PageDep, page_out
from services.gateway.api.deps import ClientsDep, IdempotencyKey
from services.gateway.api.errors import FieldError, ProblemError, forbidden, problem_responses
from services.gateway.api.schemas import (
    EvaluationResultPublic,
    EvaluationRunPublic,
    EvaluationSummary,
    IndicatorValuePublic,
    MeasurePublic,
    PageOf,
    ResultSummaryPublic,
    RollupPublic,
    RollupsPublic,
    SubmissionReportPublic,
    from_proto,
)
from services.gateway.clients import ServiceClients
from services.gateway.identity import User

router = APIRouter(tags=["evaluation"])
agency_router = APIRouter(prefix="/agency", tags=["agency"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)
UPLOAD_ERRORS = problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503, 504)
RUN_STATUS = {"completed": epb.RUN_STATUS_COMPLETED, "published": epb.RUN_STATUS_PUBLISHED,
              "superseded": epb.RUN_STATUS_SUPERSEDED, "running": epb.RUN_STATUS_RUNNING}
RunId = Annotated[str, Query(max_length=64, description="empty: the latest published run with this enterprise")]
Dimension = Literal["region", "park", "industry"]


def stub(clients: ServiceClients):
    if clients.evaluation is None:
        raise ProblemError(503, "the evaluation service is not available")
    return clients.evaluation


# ---------------------------------------------------------------- helpers the portal uses
async def latest_result(clients: ServiceClients, user: User, credit_code: str) -> EvaluationSummary | None:
    """Class, score and measures of the latest published run with this enterprise; None when none is.
    The evaluation service answers only what its policy lets the user read."""
    try:
        reply = await clients.call(stub(clients).GetEnterpriseResult,
                                   epb.GetEnterpriseResultRequest(credit_code=credit_code), user=user)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        raise
    result = reply.result
    return EvaluationSummary(run_id=result.run_id, year=result.year, class_label=result.final_grade,
                             score=result.total,
                             measures=[from_proto(MeasurePublic, m) for m in result.measures])


async def published_runs(clients: ServiceClients, user: User) -> list[epb.Run]:
    """Published runs (the current one per scope and year), oldest year first."""
    runs: list[epb.Run] = []
    token = ""
    for _ in range(20):  # bounded: 20 pages of 100 runs
        reply = await clients.call(stub(clients).ListRuns, epb.ListRunsRequest(
            page={"page_size": 100, "page_token": token}, status=epb.RUN_STATUS_PUBLISHED), user=user)
        runs.extend(reply.runs)
        token = reply.page.next_page_token
        if not token:
            break
    return sorted(runs, key=lambda r: (r.year, r.published_at.seconds))


async def _latest_rollups(clients: ServiceClients, user: User, dimension: Dimension) -> list[RollupPublic]:
    """Roll-ups of the dimension in the runs of the latest published year."""
    runs = await published_runs(clients, user)
    if not runs:
        return []
    units: list[RollupPublic] = []
    for run in [r for r in runs if r.year == runs[-1].year]:
        reply = await clients.call(stub(clients).GetRollups, epb.GetRollupsRequest(
            run_id=run.run_id, dimension=dimension), user=user)
        units += [from_proto(RollupPublic, r) for r in reply.rollups]
    return units


def charted(units: list[RollupPublic]) -> list[RollupPublic]:
    """The units a chart compares: all firms (no size-class split), and below the run's total when it has
    units under it (the districts of a city run, not the city beside them)."""
    whole = [u for u in units if not u.size_class]
    parents = {u.parent for u in whole}
    return [u for u in whole if u.parent or u.dimension != "region" or u.key not in parents]


async def class_distribution(clients: ServiceClients, user: User,
                             dimension: Dimension = "region") -> list[tuple[str, dict[str, float]]]:
    """Classes A–D (and T) per unit of the dimension in the latest published year: (key, {grade: firms})."""
    rows: dict[str, dict[str, float]] = {}
    for rollup in charted(await _latest_rollups(clients, user, dimension)):
        row = rows.setdefault(rollup.name or rollup.unit or rollup.key or "—", {})
        for count in rollup.class_counts:
            row[count.grade] = row.get(count.grade, 0) + count.count
    return sorted(rows.items())


async def indicator_trend(clients: ServiceClients, user: User, indicator: str,
                          dimension: Dimension = "region") -> dict[str, list[tuple[int, float]]]:
    """One 亩均 indicator (a roll-up ratio of sums, e.g. tax_per_mu) per unit over the published years; for
    regions the districts and the run's total (key prefixed "Σ ")."""
    series: dict[str, dict[int, float]] = {}
    for run in await published_runs(clients, user):
        reply = await clients.call(stub(clients).GetRollups, epb.GetRollupsRequest(
            run_id=run.run_id, dimension=dimension), user=user)
        for rollup in reply.rollups:
            if rollup.size_class:
                continue
            label = rollup.name or rollup.unit or rollup.key or "—"
            if rollup.dimension == "region" and rollup.level and not rollup.parent:
                label = f"Σ {label}"
            try:
                series.setdefault(label, {})[rollup.year or run.year] = float(rollup.indicators.get(indicator, ""))
            except ValueError:  # empty: not computable for this unit and year
                continue
    return {key: sorted(points.items()) for key, points in sorted(series.items())}


@dataclass(frozen=True)
class UnitRow:
    """One row of the roll-up tree: a unit, its depth below the run's total and its 规上/规下 split."""

    depth: int
    unit: RollupPublic
    above_size: RollupPublic | None
    below_size: RollupPublic | None


def tree_rows(units: list[RollupPublic]) -> list[UnitRow]:
    """Units top down: the run's total, each district, the parks under it (depth first, keys in order)."""
    whole = [u for u in units if not u.size_class]
    splits = {(u.dimension, u.unit, u.year, u.size_class): u for u in units if u.size_class}
    children: dict[tuple[int, str], list[RollupPublic]] = {}
    for unit in whole:
        children.setdefault((unit.year, unit.parent), []).append(unit)
    rows: list[UnitRow] = []

    def walk(unit: RollupPublic, depth: int) -> None:
        rows.append(UnitRow(depth, unit, splits.get((unit.dimension, unit.unit, unit.year, "above_size")),
                            splits.get((unit.dimension, unit.unit, unit.year, "below_size"))))
        if unit.dimension == "region":
            for child in sorted(children.get((unit.year, unit.key), []), key=lambda c: (c.dimension, c.key)):
                walk(child, depth + 1)

    for year, parent in sorted(children):
        if not parent:
            for top in sorted(children[(year, parent)], key=lambda c: (c.dimension, c.key)):
                walk(top, 0)
    return rows


async def rollup_tree(clients: ServiceClients, user: User) -> list[UnitRow]:
    """The latest published year's roll-ups as a tree: the run's total (the city total of a city run), its
    districts and the parks in each, every unit with its 规上/规下 split."""
    units = await _latest_rollups(clients, user, "region") + await _latest_rollups(clients, user, "park")
    return tree_rows(units)


# ---------------------------------------------------------------- an enterprise's own
@router.get("/enterprises/{credit_code}/evaluation", response_model=EvaluationResultPublic, responses=ERRORS)
async def get_evaluation_result(credit_code: str, clients: ClientsDep, guard: GuardDep,
                                run_id: RunId = "") -> EvaluationResultPublic:
    """Scores per indicator, total, class, rank in its pool and the differentiated measures."""
    reply = await clients.call(stub(clients).GetEnterpriseResult, epb.GetEnterpriseResultRequest(
        credit_code=credit_code, run_id=run_id), user=guard.user)
    return from_proto(EvaluationResultPublic, reply.result)


REPORT_PDF_SECONDS = 30.0


@router.get("/enterprises/{credit_code}/report", response_class=Response, responses={
    200: {"content": {"text/html": {}, "application/pdf": {}}, "description": "the 一企一单 report"}, **ERRORS})
async def get_enterprise_report(credit_code: str, clients: ClientsDep, guard: GuardDep, run_id: RunId = "",
                                report_format: Annotated[Literal["html", "pdf"], Query(alias="format")] = "html"
                                ) -> Response:
    """The 一企一单 report as rendered by the evaluation service (HTML, or PDF with `format=pdf`)."""
    reply = await clients.call(stub(clients).GetEnterpriseReport, epb.GetEnterpriseReportRequest(
        credit_code=credit_code, run_id=run_id,
        format=epb.REPORT_FORMAT_PDF if report_format == "pdf" else epb.REPORT_FORMAT_HTML), user=guard.user,
        # Typesetting a PDF takes seconds (fonts, layout): it gets its own deadline, not the API's 5 s.
        timeout=REPORT_PDF_SECONDS if report_format == "pdf" else None)
    media_type = reply.content_type or ("application/pdf" if report_format == "pdf" else "text/html; charset=utf-8")
    name = reply.file_name or f"{credit_code}.{report_format}"
    disposition = "attachment" if report_format == "pdf" else "inline"
    return Response(reply.content, media_type=media_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{name.encode('ascii', 'replace').decode()}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        # The report is the service's rendering: no scripts, no third-party fetches from the portal's origin.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"})


@router.get("/enterprises/{credit_code}/indicators", response_model=list[IndicatorValuePublic], responses=ERRORS)
async def get_indicator_values(credit_code: str, clients: ClientsDep, guard: GuardDep,
                               year: Annotated[int, Query(ge=1990, le=2100)]) -> list[IndicatorValuePublic]:
    """The indicator values recorded for the enterprise-year, with their source department (provenance)."""
    reply = await clients.call(stub(clients).GetIndicatorValues, epb.GetIndicatorValuesRequest(
        credit_code=credit_code, year=year), user=guard.user)
    return [from_proto(IndicatorValuePublic, v) for v in reply.values]


# ---------------------------------------------------------------- regulators
@router.get("/evaluation/runs", response_model=PageOf[EvaluationRunPublic], responses=ERRORS)
async def list_runs(clients: ClientsDep, guard: GuardDep, page: PageDep,
                    year: Annotated[int, Query(ge=0, le=2100)] = 0,
                    status: Literal["running", "completed", "published", "superseded"] | None = None) -> dict:
    reply = await clients.call(stub(clients).ListRuns, epb.ListRunsRequest(
        page=page, year=year, status=RUN_STATUS.get(status or "", 0)), user=guard.user)
    return {"data": [from_proto(EvaluationRunPublic, r) for r in reply.runs], **page_out(reply)}


@router.get("/evaluation/runs/{run_id}", response_model=EvaluationRunPublic, responses=ERRORS)
async def get_run(run_id: str, clients: ClientsDep, guard: GuardDep) -> EvaluationRunPublic:
    reply = await clients.call(stub(clients).GetRun, epb.GetRunRequest(run_id=run_id), user=guard.user)
    return from_proto(EvaluationRunPublic, reply.run)


@router.get("/evaluation/runs/{run_id}/results", response_model=PageOf[ResultSummaryPublic], responses=ERRORS)
async def list_results(run_id: str, clients: ClientsDep, guard: GuardDep, page: PageDep,
                       grade: Annotated[str, Query(pattern="^[ABCDT]?$")] = "",
                       region_code: Annotated[str, Query(max_length=6)] = "",
                       park: Annotated[str, Query(max_length=100)] = "",
                       industry_code: Annotated[str, Query(max_length=10)] = "",
                       size_class: Literal["above_size", "below_size", ""] = "",
                       order: Literal["credit_code", "total_desc"] = "credit_code") -> dict:
    reply = await clients.call(stub(clients).ListResults, epb.ListResultsRequest(
        page=page, run_id=run_id, grade=grade, region_code=region_code, park=park, industry_code=industry_code,
        size_class=size_class,
        order=epb.RESULT_ORDER_TOTAL_DESC if order == "total_desc" else epb.RESULT_ORDER_UNSPECIFIED), user=guard.user)
    return {"data": [from_proto(ResultSummaryPublic, r) for r in reply.results], **page_out(reply)}


@router.get("/evaluation/runs/{run_id}/rollups", response_model=RollupsPublic, responses=ERRORS)
async def get_rollups(run_id: str, clients: ClientsDep, guard: GuardDep,
                      dimension: Dimension | None = None) -> RollupsPublic:
    """Per region, park or industry: firms, sums, 亩均 indicators (ratio of sums), year-on-year change, class
    counts and shares, land in classes C/D, surcharges and reliefs, composite score and rank among its peers.
    Units form the tree parks → districts/counties → city (→ province): each names its `parent`, and the region
    unit without one is the run's total. Every unit also comes split by size class (`size_class` above_size
    for 规上, below_size for 规下; `key` "<unit>/<size_class>")."""
    reply = await clients.call(stub(clients).GetRollups, epb.GetRollupsRequest(
        run_id=run_id, dimension=dimension or ""), user=guard.user)
    return RollupsPublic(rollups=[from_proto(RollupPublic, r) for r in reply.rollups],
                         rankings={k: list(v.keys) for k, v in reply.rankings.items()})


# ---------------------------------------------------------------- agencies: indicator data
@agency_router.post("/indicators", response_model=SubmissionReportPublic, responses=UPLOAD_ERRORS)
async def upload_indicators(clients: ClientsDep, guard: GuardDep, key: IdempotencyKey,
                            file: Annotated[UploadFile, File(description="UTF-8 CSV (BOM allowed) with a header: "
                                                                         "credit_code, year, then field names "
                                                                         "such as tax_paid, land_mu, energy_tce")],
                            source_department: Annotated[str, Form(max_length=64, description=(
                                "the agency the data comes from: only the calling agency itself"))] = ""
                            ) -> SubmissionReportPublic:
    """Indicator data of the calling agency (registry role data_provider), one enterprise-year per row.

    Rows are matched by credit code against the registry and validated one by one: the answer is 200 with
    the row-level report (accepted rows recorded, refused rows with their field errors); nothing of a
    refused row is recorded. A retry with the same Idempotency-Key returns the first report."""
    if source_department and source_department != guard.subject.id:
        raise forbidden("an agency uploads only as itself")
    source_department = guard.subject.id
    if file.content_type not in (None, "", "text/csv", "application/csv", "application/vnd.ms-excel",
                                 "text/plain", "application/octet-stream"):
        raise ProblemError(415, "upload a CSV file (text/csv)")
    content = await file.read()
    if not content.strip():
        raise ProblemError(400, "the file is empty", errors=[FieldError(field="file", message="no rows")])
    reply = await clients.call(stub(clients).UploadIndicatorCsv, epb.UploadIndicatorCsvRequest(
        idempotency_key=key, content=content, source_department=source_department), user=guard.user, timeout=60.0)
    return from_proto(SubmissionReportPublic, reply.report)
