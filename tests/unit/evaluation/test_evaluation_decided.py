"""The run the service freezes (bulk engine) is the reference run: firms, pools, roll-ups and rankings; and
every firm's detail built from it is the reference result, to the reference run's output digest (the
reference engine is the oracle of the bulk path)."""

from __future__ import annotations

from dataclasses import replace

from evaluation_support import simple_firm
from hypothesis import given
from hypothesis import strategies as st
from test_evaluation_properties import SETTINGS, _variant, firms

from services.evaluation.domain import prior_year_from_run, run_evaluation
from services.evaluation.domain.decided import FirmOutcome, decide_run
from services.evaluation.policies import load_bundled_policy

POLICY = load_bundled_policy()
OUTCOME_FIELDS = [name for name in FirmOutcome.__slots__]


def assert_decided_as_reference(policy, rows, prior=None) -> None:
    reference = run_evaluation(policy, rows, prior)
    decided = decide_run(policy, rows, prior)
    assert len(decided.firms) == len(reference.results)
    for firm, expected in zip(decided.firms, reference.results, strict=True):
        assert {name: getattr(firm, name) for name in OUTCOME_FIELDS} == \
            {name: getattr(expected, name) for name in OUTCOME_FIELDS}, expected.credit_code
    assert decided.pools == reference.pools
    assert (decided.rollups, decided.rankings) == (reference.rollups, reference.rankings)
    assert decided.input_digest == reference.input_digest
    for row, record in enumerate(rows):
        assert decided.detail.result(row) == reference.result(record.credit_code, record.year)
    rebuilt = decided.detail.run()
    assert (rebuilt.results, rebuilt.pools, rebuilt.rollups) == (reference.results, reference.pools, reference.rollups)
    assert (rebuilt.input_digest, rebuilt.output_digest) == (reference.input_digest, reference.output_digest)


@SETTINGS
@given(firms(max_size=50))
def test_the_decided_run_is_the_reference_run(rows):
    assert_decided_as_reference(POLICY, rows)


@SETTINGS
@given(firms(max_size=40), st.sampled_from(["min_max", "two_stage", "t_reach_all", "percent_items", "no_tenant_list",
                                            "winsorized"]), st.randoms(use_true_random=False))
def test_the_decided_run_agrees_under_every_plug_in(rows, variant, rng):
    if variant == "percent_items":
        rows = [replace(row, adjustment_facts={**row.adjustment_facts, "PCT": rng.randint(0, 2)}) for row in rows]
    assert_decided_as_reference(_variant(variant), rows)


@SETTINGS
@given(firms(min_size=5, max_size=30))
def test_the_decided_run_agrees_with_a_prior_year(rows):
    prior = prior_year_from_run(run_evaluation(POLICY, [replace(row, year=2023) for row in rows]))
    assert_decided_as_reference(POLICY, rows, prior)


@SETTINGS
@given(firms(min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_the_output_digest_does_not_depend_on_row_order(rows, rng):
    shuffled = list(rows)
    rng.shuffle(shuffled)
    first, second = decide_run(POLICY, rows), decide_run(POLICY, shuffled)
    assert (first.input_digest, first.output_digest) == (second.input_digest, second.output_digest)


def test_progress_is_heard_for_every_pool_and_ends_complete():
    rows = [simple_firm(i, 10 * i, region_code="331003" if i % 2 else "331004") for i in range(40)]
    heard = []
    decided = decide_run(POLICY, rows, progress=heard.append)
    assert heard[-1].pools_done == heard[-1].pools_total == len(decided.pools)
    assert heard[-1].rows_done == heard[-1].rows_total == len(rows)
    assert [p.pools_done for p in heard] == list(range(len(decided.pools) + 1))
