"""`make run` demo: with DEMO_DATA and an empty database the service ingests two years of demo data for the
registry's demo jurisdiction and publishes both runs before it reports SERVING; a restart adds nothing."""

from __future__ import annotations

import time

import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import READER, evaluation_running
from tests.support.registry import registry_running

pytestmark = pytest.mark.slow


async def test_demo_data_is_evaluated_and_published_before_serving(nats_server, tmp_path):
    registry_db, evaluation_db = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("r.db", "e.db"))
    async with registry_running(registry_db, nats_server.url, demo_data=True) as registry:
        started = time.monotonic()
        async with evaluation_running(evaluation_db, nats_server.url, registry.address, demo_data=True) as evaluation:
            elapsed = time.monotonic() - started
            runs = (await evaluation.stub.ListRuns(pb.ListRunsRequest(status=pb.RUN_STATUS_PUBLISHED),
                                                   metadata=READER)).runs
            assert sorted(r.year for r in runs) == [2024, 2025]
            latest = max(runs, key=lambda r: r.year)
            assert latest.prior_run_id and latest.enterprises == 300
            counts = {c.grade: c.count for c in latest.class_counts}
            assert all(counts[grade] for grade in "ABCD")
            listed = await evaluation.stub.ListResults(pb.ListResultsRequest(run_id=latest.run_id, grade="D"),
                                                       metadata=READER)
            code = listed.results[0].credit_code
            result = (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(credit_code=code),
                                                                metadata=READER)).result
            assert result.final_grade == "D" and result.measures
            values = (await evaluation.stub.GetIndicatorValues(pb.GetIndicatorValuesRequest(
                credit_code=code, year=2025), metadata=READER)).values
            assert {"AG-330100-SW", "AG-330100-DL"} <= {v.source_department for v in values}
            # the roll-ups of the demo city: its six districts under the city total 330100, parks under them
            rollups = (await evaluation.stub.GetRollups(pb.GetRollupsRequest(run_id=latest.run_id),
                                                        metadata=READER)).rollups
            regions = {r.key: r for r in rollups if r.dimension == "region"}
            total = regions["330100"]
            assert (total.level, total.parent, total.peer_group) == ("city", "", "region:city:2025")
            districts = [r for r in regions.values() if r.parent == "330100"]
            assert len(districts) == 6 and total.firms == sum(d.firms for d in districts) > 0
            assert {"330100/above_size", "330100/below_size"} <= set(regions)
            assert total.indicators["tax_per_mu"] and total.yoy_change_pct["tax_per_mu"]  # 2024 had a total too
            parks = [r for r in rollups if r.dimension == "park" and not r.size_class]
            assert parks and all(p.parent in {d.key for d in districts} for p in parks)
        assert elapsed < 60
        async with evaluation_running(evaluation_db, nats_server.url, registry.address, demo_data=True) as again:
            runs = (await again.stub.ListRuns(pb.ListRunsRequest(), metadata=READER)).runs
            assert len(runs) == 2
