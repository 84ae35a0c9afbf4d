"""The service's run and the benchmarks call one engine: the figures `make bench` prints are the product's."""

from __future__ import annotations

import inspect

from services.evaluation import app
from services.evaluation.application.runs import Runs
from services.evaluation.domain.decided import decide_run
from tests.bench import bench_evaluation_grpc, bench_evaluation_service


def test_the_service_and_the_benchmarks_run_one_engine():
    assert app.ENGINE is decide_run
    for factory in (app.build, app.definition):
        assert inspect.signature(factory).parameters["evaluate"].default is app.ENGINE
    assert inspect.signature(Runs).parameters["evaluate"].default is app.ENGINE
    assert bench_evaluation_grpc.ENGINE is app.ENGINE
    # the 1M bench times the engine by the same function as the 50k bench
    assert bench_evaluation_service.engine_seconds is bench_evaluation_grpc.engine_seconds
