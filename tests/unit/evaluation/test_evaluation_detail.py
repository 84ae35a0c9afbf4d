"""Reading one firm's detail builds its pool's context only (the whole-run equality with the reference
engine is in test_evaluation_decided.py)."""

from __future__ import annotations

from evaluation_support import simple_firm

from services.evaluation.domain import run_evaluation
from services.evaluation.domain.detail import RunDetail
from services.evaluation.policies import load_bundled_policy

POLICY = load_bundled_policy()


def test_reading_one_firm_builds_only_its_pool():
    rows = [simple_firm(i, 10 * i, region_code="331003" if i % 2 else "331004") for i in range(40)]
    detail = RunDetail.of(POLICY, rows)
    reference = run_evaluation(POLICY, rows)
    row = next(index for index, record in enumerate(rows) if reference.result(record.credit_code).pool is not None)
    assert detail.result(row) == reference.result(rows[row].credit_code)
    assert len(detail._pools) == 1 < len(detail.bulk.pool_keys)
