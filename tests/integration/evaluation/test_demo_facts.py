"""The demo data (make run) records the rental fact as `adjustment.RENT`, the number of tenants, for firms of
both size classes (the policy's one RENT item has a schedule per size class), and the service's own
ingestion refuses none of its rows."""

from __future__ import annotations

import json
import random

from sqlalchemy import select
from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.db import make_engine
from services.evaluation.adapters.db.tables import EnterpriseRow, IndicatorRecordRow, SubmissionRow
from services.evaluation.demo import DEPARTMENTS, _firm_year
from tests.integration.evaluation.support import evaluation_running, register_enterprises


def _base(above: bool) -> dict:
    return dict(above=above, land=12.0, va_per_mu=100.0, tax_rate=0.15, va_per_tce=2.5, va_per_t=4000.0,
                kwh_per_va=900.0, rd=0.01, va_per_head=16.0, since=5, growth=1.05)


def test_the_generator_counts_tenants_for_both_size_classes():
    rng = random.Random(7)
    for above in (True, False):
        rents = [values["adjustment.RENT"] for values in (_firm_year(rng, _base(above), 1) for _ in range(2000))
                 if "adjustment.RENT" in values]
        assert rents and all(text.isdigit() and int(text) >= 1 for text in rents)
    reported = {field for fields in DEPARTMENTS.values() for field in fields}
    assert "adjustment.RENT" in reported and not {"adjustment.RENT1", "adjustment.RENT2"} & reported


async def test_the_demo_records_rent_for_both_size_classes_and_nothing_is_refused(registry, database_url,
                                                                                  nats_server):
    await register_enterprises(registry.stub, 100, division="330106")
    await register_enterprises(registry.stub, 100, division="330106", size=rpb.SIZE_CLASS_BELOW)
    async with evaluation_running(database_url, nats_server.url, registry.address, demo_data=True,
                                  demo_jurisdiction="330100") as evaluation:
        engine = make_engine(evaluation.database_url)
        records, enterprises, submissions = (t.__table__ for t in (IndicatorRecordRow, EnterpriseRow, SubmissionRow))
        try:
            async with engine.begin() as connection:
                refused = (await connection.execute(select(submissions.c.kind, submissions.c.rows_refused))).all()
                rented = (await connection.execute(
                    select(enterprises.c.size_class, records.c.document)
                    .join(enterprises, enterprises.c.credit_code == records.c.credit_code)
                    .where(records.c.document.contains('"adjustment.RENT"')))).all()
        finally:
            await engine.dispose()
    assert refused and {kind for kind, _ in refused} == {"demo"} and sum(count for _, count in refused) == 0
    assert {size_class for size_class, _ in rented} == {"above", "below"}
    assert all(int(json.loads(document)["adjustment.RENT"]) >= 1 for _, document in rented)
