"""EvaluationService over gRPC: requests → commands → use cases → responses. No business rules here."""

from __future__ import annotations

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.evaluation.v1 import evaluation_pb2_grpc

from services.common.errors import InvalidArgument
from services.common.journal_check import JournalCheck
from services.common.proto_convert import page_after, page_size, page_token, timestamp
from services.evaluation.adapters.grpc import convert
from services.evaluation.adapters.grpc.csv_rows import parse_csv
from services.evaluation.adapters.grpc.indicator_batches import batches_after
from services.evaluation.adapters.report.renderer import HTML_TYPE, PDF_TYPE, ReportRenderer
from services.evaluation.application import commands as c
from services.evaluation.application.ingestion import MAX_ROWS, Ingestion
from services.evaluation.application.policies import Policies
from services.evaluation.application.regrades import Regrades
from services.evaluation.application.results import Results
from services.evaluation.application.runs import Runs
from services.evaluation.application.views import Page


def _page(request_page) -> Page:
    return Page(page_size(request_page), page_after(request_page))


def _page_pb(found) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=page_token(found.next_after), total_size=found.total)


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Who may do what is decided by the use cases (services/evaluation/authorization.yaml)."""

    def __init__(self, policies: Policies, ingestion: Ingestion, runs: Runs, regrades: Regrades, results: Results,
                 renderer: ReportRenderer, journal: JournalCheck) -> None:
        self.policies, self.ingestion, self.runs, self.regrades = policies, ingestion, runs, regrades
        self.results, self.renderer, self.journal = results, renderer, journal

    # ------------------------------------------------------------ policies
    async def PublishPolicy(self, request, context):
        view = await self.policies.publish(c.PublishPolicy(request.idempotency_key, request.document))
        return pb.PublishPolicyResponse(policy=convert.policy_pb(view))

    async def GetPolicy(self, request, context):
        view, document = await self.policies.get(request.policy_ref)
        return pb.GetPolicyResponse(policy=convert.policy_pb(view), document=document)

    async def ListPolicies(self, request, context):
        return pb.ListPoliciesResponse(policies=[convert.policy_pb(v)
                                                 for v in await self.policies.list(request.policy_id)])

    # ------------------------------------------------------------ indicator data
    async def SubmitIndicators(self, request_iterator, context):
        rows, key, source = [], "", ""
        async for row in request_iterator:
            if not rows:
                key, source = row.idempotency_key, row.source_department
            rows.append(c.RowInput(len(rows) + 1, row.credit_code.strip(), row.year, dict(row.values),
                                   row.source_department))
            if len(rows) > MAX_ROWS:
                break  # enough to be refused; the rest of the stream is not read
        report = await self.ingestion.submit(c.SubmitRows(key, "stream", tuple(rows), source))
        return pb.SubmitIndicatorsResponse(report=convert.report_pb(report))

    async def SubmitIndicatorBatches(self, request_iterator, context):
        stream = aiter(request_iterator)
        first = await anext(stream, None)
        if first is None:
            raise InvalidArgument.field("batches", "at least one batch is required")
        report = await self.ingestion.submit_batches(first.idempotency_key, first.source_department,
                                                     batches_after(first, stream))
        return pb.SubmitIndicatorBatchesResponse(report=convert.report_pb(report))

    async def UploadIndicatorCsv(self, request, context):
        report = await self.ingestion.submit_file(request.idempotency_key, request.source_department,
                                                  lambda: parse_csv(request.content))
        return pb.UploadIndicatorCsvResponse(report=convert.report_pb(report))

    async def GetIndicatorValues(self, request, context):
        values = await self.results.values(request.credit_code, request.year)
        return pb.GetIndicatorValuesResponse(values=[pb.IndicatorValue(
            field=v.field, value=v.value, source_department=v.source_department, submission_id=v.submission_id,
            recorded_at=timestamp(v.recorded_at), effective=v.effective) for v in values])

    # ------------------------------------------------------------ runs
    async def StartRun(self, request, context):
        view = await self.runs.start(c.StartRun(request.idempotency_key, request.jurisdiction, request.year,
                                                request.policy_ref))
        return pb.StartRunResponse(run=convert.run_pb(view))

    async def GetRun(self, request, context):
        return pb.GetRunResponse(run=convert.run_pb(await self.runs.get(request.run_id)))

    async def ListRuns(self, request, context):
        found = await self.runs.list(request.year, convert.RUN_STATUS_NAME.get(request.status, ""),
                                     _page(request.page))
        return pb.ListRunsResponse(runs=[convert.run_pb(v) for v in found.items], page=_page_pb(found))

    async def PublishRun(self, request, context):
        outcome = await self.runs.publish(c.PublishRun(request.idempotency_key, request.run_id))
        return pb.PublishRunResponse(run=convert.run_pb(outcome.run), classes_changed=outcome.classes_changed)

    async def RegradeEnterprise(self, request, context):
        view = await self.regrades.propose(c.ProposeRegrade(request.idempotency_key, request.run_id,
                                                            request.credit_code, request.to_grade, request.reason,
                                                            request.evidence_ref))
        return pb.RegradeEnterpriseResponse(regrade=convert.regrade_pb(view))

    async def ApproveRegrade(self, request, context):
        view, stored = await self.regrades.approve(c.ApproveRegrade(request.idempotency_key, request.regrade_id))
        return pb.ApproveRegradeResponse(regrade=convert.regrade_pb(view),
                                         result=convert.result_pb(stored.run_id, stored.policy_ref, stored.document))

    # ------------------------------------------------------------ results
    async def GetEnterpriseResult(self, request, context):
        stored = await self.results.result(request.credit_code, request.run_id)
        return pb.GetEnterpriseResultResponse(result=convert.result_pb(stored.run_id, stored.policy_ref,
                                                                       stored.document))

    async def ListResults(self, request, context):
        found = await self.results.list(c.ResultFilter(
            request.run_id, request.grade, request.region_code, request.park, request.industry_code,
            request.size_class, request.order == pb.RESULT_ORDER_TOTAL_DESC), _page(request.page))
        return pb.ListResultsResponse(results=[pb.ResultSummary(
            credit_code=v.credit_code, name=v.name, region_code=v.region_code, park=v.park,
            industry_code=v.industry_code, size_class=v.size_class, status=v.status, total=v.total,
            final_grade=v.final_class, rank_in_pool=v.rank_in_pool) for v in found.items], page=_page_pb(found))

    async def GetRollups(self, request, context):
        rollups, rankings = await self.results.rollups(request.run_id, request.dimension)
        return pb.GetRollupsResponse(rollups=[convert.rollup_pb(d) for d in rollups],
                                     rankings={k: pb.RankingKeys(keys=v) for k, v in rankings.items()})

    async def GetEnterpriseReport(self, request, context):
        if request.format not in (pb.REPORT_FORMAT_UNSPECIFIED, pb.REPORT_FORMAT_HTML, pb.REPORT_FORMAT_PDF):
            raise InvalidArgument.field("format", "HTML or PDF")
        data = await self.results.report_data(request.credit_code, request.run_id)
        stem = f"一企一单-{request.credit_code}-{data.result['year']}"
        if request.format == pb.REPORT_FORMAT_PDF:
            return pb.GetEnterpriseReportResponse(content=await self.renderer.pdf(data), content_type=PDF_TYPE,
                                                  file_name=f"{stem}.pdf")
        return pb.GetEnterpriseReportResponse(content=self.renderer.html(data).encode("utf-8"),
                                              content_type=HTML_TYPE, file_name=f"{stem}.html")

    # ------------------------------------------------------------ eligibility
    async def CheckEligibility(self, request, context):
        answer = await self.results.eligibility(request.credit_code, request.sale_kind)
        return pb.CheckEligibilityResponse(
            allowed=answer.allowed, condition=answer.condition, priority=answer.priority,
            price_coefficient=format(answer.price_coefficient, "f"),
            electricity_surcharge_yuan_per_kwh=format(answer.electricity_surcharge, "f"), grade=answer.grade,
            managed_as=answer.managed_as, rule=answer.rule, policy_ref=answer.policy_ref, run_id=answer.run_id,
            year=answer.year)

    # ------------------------------------------------------------ audit
    async def VerifyAuditJournal(self, request, context):
        result = await self.journal.verify()
        return pb.VerifyAuditJournalResponse(intact=result.intact, entries_checked=result.entries_checked,
                                             first_broken_sequence=result.first_broken_sequence,
                                             problem=result.problem)


def register(server: grpc.aio.Server, servicer: EvaluationServicer) -> None:
    evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(servicer, server)
