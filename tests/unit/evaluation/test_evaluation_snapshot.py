"""A run's frozen inputs load back to the same rows and prior year: the same input digest, the same run."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from test_evaluation_properties import SETTINGS, firms

from services.evaluation.domain import input_digest, prior_year_from_run, run_evaluation
from services.evaluation.domain.snapshot import dump_inputs, load_inputs
from services.evaluation.policies import load_bundled_policy

POLICY = load_bundled_policy()


@SETTINGS
@given(firms(max_size=30))
def test_frozen_inputs_load_back_to_the_same_rows_and_prior_year(rows):
    rows = [replace(row, name=f"企业{index}", park=row.park, adjustment_facts={"RENT": 2} if index % 3 else {},
                    downgrade_amounts={"G_ENV_PENALTY": Decimal("12.50")} if index % 4 == 0 else {})
            for index, row in enumerate(rows)]
    prior = prior_year_from_run(run_evaluation(POLICY, [replace(row, year=2023) for row in rows]))
    loaded, loaded_prior = load_inputs(dump_inputs(rows, prior))
    in_order = sorted(rows, key=lambda row: (row.credit_code, row.year))  # the snapshot keeps the digest's order
    assert loaded == in_order and loaded_prior == prior
    assert input_digest(POLICY, loaded, loaded_prior) == input_digest(POLICY, rows, prior)
    assert run_evaluation(POLICY, loaded, loaded_prior).output_digest == run_evaluation(POLICY, rows, prior).output_digest
    assert load_inputs(dump_inputs(rows, None)) == (in_order, None)
    assert dump_inputs(list(reversed(rows)), prior) == dump_inputs(rows, prior)  # one text for the same inputs


def test_an_unknown_snapshot_format_is_refused():
    import json
    import zlib

    with pytest.raises(ValueError, match="unknown input snapshot format 9"):
        load_inputs(zlib.compress(json.dumps({"format": 9, "records": [], "prior": None}).encode()))
