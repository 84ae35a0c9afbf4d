"""The bulk engine's firm-level detail is the reference engine's result, to the digest (the oracle test)."""

from __future__ import annotations

from dataclasses import replace

from evaluation_support import simple_firm
from hypothesis import given
from hypothesis import strategies as st
from test_evaluation_properties import SETTINGS, _variant, firms

from services.evaluation.domain import columns_from_records, evaluate_bulk, prior_year_from_run, run_evaluation
from services.evaluation.domain.detail import RunDetail
from services.evaluation.policies import load_bundled_policy

POLICY = load_bundled_policy()


def detail_of(policy, rows, prior=None) -> RunDetail:
    return RunDetail(policy, rows, evaluate_bulk(policy, columns_from_records(policy, rows, prior), prior), prior)


def assert_same_run(policy, rows, prior=None) -> None:
    reference = run_evaluation(policy, rows, prior)
    built = detail_of(policy, rows, prior).run()
    for expected, got in zip(reference.results, built.results, strict=True):
        assert got == expected, expected.credit_code
    assert built.pools == reference.pools
    assert (built.rollups, built.rankings) == (reference.rollups, reference.rankings)
    assert (built.input_digest, built.output_digest) == (reference.input_digest, reference.output_digest)


@SETTINGS
@given(firms(max_size=50))
def test_a_bulk_run_in_detail_is_the_reference_run(rows):
    assert_same_run(POLICY, rows)


@SETTINGS
@given(firms(max_size=40), st.sampled_from(["min_max", "two_stage", "t_reach_all", "percent_items", "no_tenant_list",
                                            "winsorized"]), st.randoms(use_true_random=False))
def test_the_detail_agrees_under_every_plug_in(rows, variant, rng):
    if variant == "percent_items":
        rows = [replace(row, adjustment_facts={**row.adjustment_facts, "PCT": rng.randint(0, 2)}) for row in rows]
    assert_same_run(_variant(variant), rows)


@SETTINGS
@given(firms(min_size=5, max_size=30))
def test_the_detail_agrees_with_a_prior_year(rows):
    last_year = [replace(row, year=2023) for row in rows]
    prior = prior_year_from_run(run_evaluation(POLICY, last_year))
    assert_same_run(POLICY, rows, prior)


def test_reading_one_firm_builds_only_its_pool():
    rows = [simple_firm(i, 10 * i, region_code="331003" if i % 2 else "331004") for i in range(40)]
    detail = detail_of(POLICY, rows)
    reference = run_evaluation(POLICY, rows)
    row = next(index for index, record in enumerate(rows) if reference.result(record.credit_code).pool is not None)
    assert detail.result(row) == reference.result(rows[row].credit_code)
    assert len(detail._pools) == 1 < len(detail.bulk.pool_keys)
