"""A run stores what it decided for each firm; a firm's full result (一企一单 detail) is built when read, from the
run's frozen inputs. Read after a restart (nothing in memory), it is the same result, and it is exactly what
the reference engine gives for those inputs."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.evaluation.adapters.grpc import convert
from services.evaluation.application import documents
from services.evaluation.domain import run_evaluation
from services.evaluation.domain.snapshot import load_inputs
from services.evaluation.policies import load_bundled_policy
from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    evaluation_running,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)


async def _stored(database_url: str, run_id: str) -> tuple[list[dict], bytes]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT document FROM results WHERE run_id = :run_id"),
                                               {"run_id": run_id})).scalars().all()
            inputs = (await connection.execute(text("SELECT snapshot FROM run_inputs WHERE run_id = :run_id"),
                                               {"run_id": run_id})).scalar_one()
    finally:
        await engine.dispose()
    return [json.loads(document) for document in stored], inputs


async def _results(evaluation, run_id: str, codes: list[str]) -> dict[str, pb.EnterpriseResult]:
    return {code: (await evaluation.stub.GetEnterpriseResult(pb.GetEnterpriseResultRequest(
        credit_code=code, run_id=run_id), metadata=READER)).result for code in codes}


async def test_a_firms_detail_is_built_from_the_frozen_inputs_and_is_the_reference_result(
        database_url, nats_server, registry):
    async with evaluation_running(database_url, nats_server.url, registry.address) as evaluation:
        codes = await register_enterprises(registry.stub, 12)
        values = [row(code, 2024, **firm_values(i, above=i % 3 != 0)) for i, code in enumerate(codes)]
        await submit(evaluation.stub, values)
        run = (await evaluation.stub.StartRun(pb.StartRunRequest(
            idempotency_key=key(), jurisdiction="330106", year=2024), metadata=EVALUATOR)).run
        warm = await _results(evaluation, run.run_id, codes)
    stored, inputs = await _stored(database_url, run.run_id)
    assert len(stored) == 12 and all(documents.is_summary(document) for document in stored)
    async with evaluation_running(database_url, nats_server.url, registry.address) as evaluation:
        cold = await _results(evaluation, run.run_id, codes)  # a new process: rebuilt from the inputs
    assert cold == warm
    records, prior = load_inputs(inputs)
    reference = run_evaluation(load_bundled_policy(), records, prior)
    for code in codes:
        expected = convert.result_pb(run.run_id, run.policy_ref, documents.to_document(reference.result(code)))
        assert cold[code] == expected, code
        assert cold[code].indicators and cold[code].final_grade  # the full detail, not the stored summary
