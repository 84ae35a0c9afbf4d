"""Results as stored documents: the canonical JSON of a domain EnterpriseResult, and back.

The document is the domain's canonical form (Decimals as normalised text), so the stored bytes digest the
same way the run's output digest does, and a document decodes back into an equal EnterpriseResult.

A run stores a summary per firm (what it decided: the `SUMMARY` fields); the full document is built on
read (`details`) and stored only when a re-grade changes the firm's result.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from services.evaluation.domain import (
    AppliedAdjustment,
    AppliedMeasure,
    EnterpriseResult,
    IndicatorResult,
    PoolKey,
    RuleFiring,
    canonical,
)

SUMMARY = ("credit_code", "year", "status", "total", "initial_class", "final_class", "rank_in_pool", "pool_size",
           "consecutive_d_years")


def summary_document(firm: Any) -> dict[str, Any]:
    """What a run decided for a firm (a domain FirmOutcome or EnterpriseResult), as stored by the run."""
    return {"summary": True} | {name: canonical(getattr(firm, name)) for name in SUMMARY}


def is_summary(document: dict[str, Any]) -> bool:
    return document.get("summary", False) is True


def to_document(value: Any) -> dict[str, Any]:
    return canonical(value)


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text)


def _d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def result_from_document(doc: dict[str, Any]) -> EnterpriseResult:
    pool = doc["pool"]
    return EnterpriseResult(
        credit_code=doc["credit_code"], name=doc["name"], year=doc["year"], region_code=doc["region_code"],
        park=doc["park"], industry_code=doc["industry_code"], industry_division=doc["industry_division"],
        size_class=doc["size_class"], status=doc["status"],
        pool=None if pool is None else PoolKey(pool["region_code"], pool["year"], pool["size_class"],
                                               pool["industry_group"], pool.get("roster", "")),
        profile=doc["profile"], raw={name: _d(value) for name, value in doc["raw"].items()},
        indicators=tuple(IndicatorResult(
            i["indicator"], i["unit"], i["direction"], Decimal(i["weight"]), _d(i["value"]), _d(i["benchmark"]),
            _d(i["ratio"]), Decimal(i["score"]), i["capped"], i["missing_rule"], _d(i["percentile_in_pool"]))
            for i in doc["indicators"]),
        raw_total=Decimal(doc["raw_total"]), bonus=Decimal(doc["bonus"]), deductions=Decimal(doc["deductions"]),
        adjustments=tuple(AppliedAdjustment(a["item_id"], a["count"], Decimal(a["points"]))
                          for a in doc["adjustments"]),
        total=Decimal(doc["total"]), initial_class=doc["initial_class"], final_class=doc["final_class"],
        managed_as=doc["managed_as"],
        rules_fired=tuple(RuleFiring(r["rule_id"], r["kind"], r["detail"], r["from_class"], r["to_class"])
                          for r in doc["rules_fired"]),
        rank_in_pool=doc["rank_in_pool"], pool_size=doc["pool_size"],
        percentile_in_pool=_d(doc["percentile_in_pool"]), rank_in_industry=doc["rank_in_industry"],
        industry_size=doc["industry_size"], percentile_in_industry=_d(doc["percentile_in_industry"]),
        gap_to_next_class=_d(doc["gap_to_next_class"]), consecutive_d_years=doc["consecutive_d_years"],
        measures=tuple(AppliedMeasure(
            m["lever"], m["rule"], _d(m["rate"]), m["rate_unit"], _d(m["basis_quantity"]), m["basis_unit"],
            _d(m["estimated_yearly_amount"]), m["amount_unit"], m["effect"]) for m in doc["measures"]),
    )
