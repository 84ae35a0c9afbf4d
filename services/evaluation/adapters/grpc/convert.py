"""Views and stored documents → protobuf messages (no rules, only shapes)."""

from __future__ import annotations

from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.common.proto_convert import timestamp
from services.evaluation.application.views import (
    PolicyView,
    RegradeView,
    RunView,
    SubmissionReport,
)

RUN_STATUS = {"completed": pb.RUN_STATUS_COMPLETED, "published": pb.RUN_STATUS_PUBLISHED,
              "superseded": pb.RUN_STATUS_SUPERSEDED, "running": pb.RUN_STATUS_RUNNING}
RUN_STATUS_NAME = {v: k for k, v in RUN_STATUS.items()}
REGRADE_STATUS = {"proposed": pb.REGRADE_STATUS_PROPOSED, "applied": pb.REGRADE_STATUS_APPLIED}


def _s(value) -> str:
    return "" if value is None else str(value)


def policy_pb(v: PolicyView) -> pb.PolicySummary:
    return pb.PolicySummary(policy_ref=v.policy_ref, policy_id=v.policy_id, version=v.version,
                            jurisdiction_code=v.jurisdiction_code, evaluation_year=v.evaluation_year, digest=v.digest,
                            published_at=timestamp(v.published_at), published_by=v.published_by)


def report_pb(v: SubmissionReport) -> pb.SubmissionReport:
    return pb.SubmissionReport(
        submission_id=v.submission_id, source_department=v.source_department, rows_accepted=v.rows_accepted,
        rows_refused=v.rows_refused, values_recorded=v.values_recorded, recorded_at=timestamp(v.recorded_at),
        rows=[pb.RowResult(row_number=r.row_number, credit_code=r.credit_code, year=r.year,
                           outcome=pb.ROW_OUTCOME_ACCEPTED if r.accepted else pb.ROW_OUTCOME_REFUSED,
                           errors=[pb.RowError(field=e.field, reason=e.reason, message=e.message) for e in r.errors],
                           values_recorded=r.values_recorded) for r in v.rows],
        refused_only=v.refused_only)


def class_counts_pb(counts: dict[str, int]) -> list[pb.ClassCount]:
    return [pb.ClassCount(grade=grade, count=count) for grade, count in sorted(counts.items())]


def run_pb(v: RunView) -> pb.Run:
    return pb.Run(run_id=v.run_id, jurisdiction=v.jurisdiction, year=v.year, policy_ref=v.policy_ref,
                  input_digest=v.input_digest, output_digest=v.output_digest, status=RUN_STATUS[v.status],
                  enterprises=v.enterprises, class_counts=class_counts_pb(v.class_counts),
                  prior_run_id=v.prior_run_id, started_at=timestamp(v.started_at),
                  completed_at=timestamp(v.completed_at), published_at=timestamp(v.published_at),
                  started_by=v.started_by, regrades=v.regrades,
                  progress=None if v.progress is None else pb.RunProgress(
                      pools_done=v.progress.pools_done, pools_total=v.progress.pools_total,
                      rows_done=v.progress.rows_done, rows_total=v.progress.rows_total))


def regrade_pb(v: RegradeView) -> pb.Regrade:
    return pb.Regrade(regrade_id=v.regrade_id, run_id=v.run_id, credit_code=v.credit_code, from_grade=v.from_class,
                      to_grade=v.to_class, reason=v.reason, evidence_ref=v.evidence_ref, proposed_by=v.proposed_by,
                      approved_by=v.approved_by, status=REGRADE_STATUS[v.status],
                      proposed_at=timestamp(v.proposed_at), approved_at=timestamp(v.approved_at))


def result_pb(run_id: str, policy_ref: str, d: dict) -> pb.EnterpriseResult:
    pool = d["pool"]
    pool_label = ""
    if pool:
        group = f"/{pool['industry_group']}" if pool["industry_group"] else ""
        pool_label = f"{pool['region_code']}/{pool['year']}/{pool['size_class']}{group}"
    return pb.EnterpriseResult(
        run_id=run_id, policy_ref=policy_ref, credit_code=d["credit_code"], name=_s(d["name"]), year=d["year"],
        region_code=d["region_code"], park=_s(d["park"]), industry_code=d["industry_code"],
        size_class=d["size_class"], status=d["status"], pool=pool_label,
        raw={k: v for k, v in d["raw"].items() if v is not None},
        indicators=[pb.IndicatorScore(
            indicator=i["indicator"], unit=i["unit"], direction=i["direction"], weight=i["weight"],
            value=_s(i["value"]), benchmark=_s(i["benchmark"]), ratio=_s(i["ratio"]), score=i["score"],
            capped=i["capped"], missing_rule=_s(i["missing_rule"]), percentile_in_pool=_s(i["percentile_in_pool"]))
            for i in d["indicators"]],
        raw_total=d["raw_total"], bonus=d["bonus"], deductions=d["deductions"],
        adjustments=[pb.Adjustment(item_id=a["item_id"], count=a["count"], points=a["points"])
                     for a in d["adjustments"]],
        total=d["total"], initial_grade=_s(d["initial_class"]), final_grade=_s(d["final_class"]),
        managed_as=_s(d["managed_as"]),
        rules_fired=[pb.RuleFired(rule_id=f["rule_id"], kind=f["kind"], detail=f["detail"],
                                  from_grade=_s(f["from_class"]), to_grade=_s(f["to_class"]))
                     for f in d["rules_fired"]],
        rank_in_pool=d["rank_in_pool"] or 0, pool_size=d["pool_size"] or 0,
        percentile_in_pool=_s(d["percentile_in_pool"]), rank_in_industry=d["rank_in_industry"] or 0,
        industry_size=d["industry_size"] or 0, percentile_in_industry=_s(d["percentile_in_industry"]),
        gap_to_next_class=_s(d["gap_to_next_class"]), consecutive_d_years=d["consecutive_d_years"],
        measures=[pb.Measure(lever=m["lever"], rule=m["rule"], rate=_s(m["rate"]), rate_unit=m["rate_unit"],
                             basis_quantity=_s(m["basis_quantity"]), basis_unit=_s(m["basis_unit"]),
                             estimated_yearly_amount=_s(m["estimated_yearly_amount"]),
                             amount_unit=_s(m["amount_unit"]), effect=m["effect"]) for m in d["measures"]],
    )


def rollup_pb(d: dict) -> pb.Rollup:
    # Documents stored before the hierarchy (no level, parent, …) read as a unit of their own.
    return pb.Rollup(
        dimension=d["dimension"], key=d["key"], year=d["year"], firms=d["firms"],
        indicators={k: _s(v) for k, v in d["indicators"].items()},
        yoy_change_pct={k: _s(v) for k, v in d["yoy_change_pct"].items()},
        class_counts=class_counts_pb(d["class_counts"]), class_shares=d["class_shares"],
        land_in_c_d_mu=d["land_in_c_d_mu"], electricity_surcharge_yuan=d["electricity_surcharge_yuan"],
        land_use_tax_relief_yuan=d["land_use_tax_relief_yuan"], composite_score=_s(d["composite_score"]),
        rank=d["rank"] or 0, level=d.get("level", ""), unit=d.get("unit", d["key"]),
        size_class=d.get("size_class", ""), parent=d.get("parent", ""), name=d.get("name", ""),
        sums={k: _s(v) for k, v in d.get("sums", {}).items()}, peer_group=d.get("peer_group", ""),
        peers=d.get("peers", 0))
