"""tracebook-conformance campaigns (profile fifo-full-v1) against our matching core, plus the
bundled adversarial suite v2. (No campaign has found a divergence yet, so there are no stored
minimised reproducers; a failure bundle's reduced.jsonl would be added here as a regression.)"""
from pathlib import Path

import pytest
from tracebook.conformance.campaign import run_campaign
from tracebook.conformance.compare import run_conformance
from tracebook.conformance.model import ConformanceConfig
from tracebook.events import load_market_events

from .tracebook_adapter import YaosuTracebookAdapter


@pytest.mark.parametrize("seed", [42, 1337, 2025])
def test_fifo_full_v1_campaign_conforms(seed):
    result = run_campaign(YaosuTracebookAdapter, profile="fifo-full-v1", seed=seed, traces=25, events_per_trace=200)
    failure = result.failure.to_dict() if getattr(result, "failure", None) else None
    assert result.conformant, failure
    assert len(result.traces) == 25


FIFO_SUITE_CASES = [
    "fifo-lifecycle", "order-instructions", "stp-cancel-resting", "stp-cancel-resting-deep",
    "stp-cancel-incoming", "multi-symbol", "tick-grid", "deep-cancellation",
]  # pro-rata-allocation is out of scope: our markets are price-time only


@pytest.mark.parametrize("case", FIFO_SUITE_CASES)
def test_bundled_adversarial_suite_v2_case_conforms(case):
    import json

    import tracebook.conformance.fixtures.v2 as v2

    folder = Path(v2.__file__).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(c for c in manifest["cases"] if c["name"] == case)
    config = ConformanceConfig.from_dict(entry["config"])
    report = run_conformance(load_market_events(folder / entry["events"]), YaosuTracebookAdapter, config=config)
    assert report.conformant, report.divergence and report.divergence.to_dict()
