"""Start a real evaluation service (and a real registry) for a test, on free ports with their own databases."""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.evaluation.v1 import evaluation_pb2_grpc
from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.config import key_digest
from services.evaluation.app import build
from services.evaluation.config import EvaluationSettings
from services.registry.domain.credit_code import compose
from tests.support.services import (
    ADMIN_KEY,
    API_KEYS_JSON,
    EVALUATION_KEY,
    REGULATOR_KEY,
    SERVICE_KEY,
    TRADING_KEY,
    bearer,
    on_behalf,
    running,
)

# The agencies of the evaluation (services/evaluation/authorization.yaml): two data providers, each with its
# own key, and the evaluating agency (经信局, role evaluator) with two principals, so that a re-grade can be
# proposed by one and approved by the other.
TAX, STATS, EVALUATOR_AGENCY = "AG-TEST-SW", "AG-TEST-TJ", "AG-TEST-JXJ"
TAX_KEY = "test-agency-tax-key"            # 税务 (data provider)
STATS_KEY = "test-agency-stats-key"        # 统计 (data provider)
EVALUATOR_KEY = "test-evaluator-key"       # 经信局, first principal
SECOND_EVALUATOR_KEY = "test-evaluator-2-key"  # 经信局, second principal

EVALUATION_KEYS_JSON = json.dumps({
    **json.loads(API_KEYS_JSON),
    key_digest(TAX_KEY): {"principal": f"agency:{TAX}", "kind": "agency", "agency_id": TAX,
                          "roles": ["data_provider"]},
    key_digest(STATS_KEY): {"principal": f"agency:{STATS}", "kind": "agency", "agency_id": STATS,
                            "roles": ["data_provider"]},
    key_digest(EVALUATOR_KEY): {"principal": "jxj:evaluator-1", "kind": "agency", "agency_id": EVALUATOR_AGENCY,
                                "roles": ["evaluator"]},
    key_digest(SECOND_EVALUATOR_KEY): {"principal": "jxj:evaluator-2", "kind": "agency",
                                       "agency_id": EVALUATOR_AGENCY, "roles": ["evaluator"]},
})


def auth(key: str = ADMIN_KEY) -> list[tuple[str, str]]:
    return bearer(key)


ADMIN, READER, SERVICE = bearer(ADMIN_KEY), bearer(REGULATOR_KEY), bearer(SERVICE_KEY)
REGULATOR = READER
EVALUATOR, SECOND_EVALUATOR = bearer(EVALUATOR_KEY), bearer(SECOND_EVALUATOR_KEY)
TAX_AGENCY, STATS_AGENCY = bearer(TAX_KEY), bearer(STATS_KEY)
TRADING = bearer(TRADING_KEY)


def enterprise(code: str) -> list[tuple[str, str]]:
    """An enterprise user through the gateway's delegate key."""
    return on_behalf(f"enterprise:{code}")


@dataclass
class RunningEvaluation:
    host: object
    address: str
    channel: grpc.aio.Channel
    stub: evaluation_pb2_grpc.EvaluationServiceStub
    metrics_port: int
    database_url: str


def evaluation_settings(database_url: str, nats_url: str, registry_addr: str, **overrides) -> EvaluationSettings:
    values = dict(database_url=database_url, nats_url=nats_url, grpc_port=0, metrics_port=0,
                  api_keys_json=EVALUATION_KEYS_JSON, service_api_key=EVALUATION_KEY, registry_addr=registry_addr,
                  outbox_poll_seconds=0.05, shutdown_grace_seconds=1.0)
    values.update(overrides)
    return EvaluationSettings(**values)


@contextlib.asynccontextmanager
async def evaluation_running(database_url: str, nats_url: str, registry_addr: str, evaluate=None,
                             **overrides) -> AsyncIterator[RunningEvaluation]:
    settings = evaluation_settings(database_url, nats_url, registry_addr, **overrides)
    host = build(settings, evaluate) if evaluate is not None else build(settings)
    async with running(host, timeout=120):
        address = f"127.0.0.1:{host.grpc_port}"
        channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        try:
            yield RunningEvaluation(host, address, channel, evaluation_pb2_grpc.EvaluationServiceStub(channel),
                                    host.metrics_port, database_url)
        finally:
            await channel.close()


_serial = itertools.count(1)


def key() -> str:
    return uuid.uuid4().hex


def new_credit_code(division: str = "330106") -> str:
    n = next(_serial) + int(uuid.uuid4().int % 10_000_000)
    return compose("9", "1", division, f"{n:08d}")


async def register_enterprises(registry_stub, count: int, *, division: str = "330106", size=rpb.SIZE_CLASS_ABOVE,
                               land: str = "20", industry: str = "C3484", park: str = "紫金港科技园") -> list[str]:
    codes = []
    for index in range(count):
        code = new_credit_code(division)
        await registry_stub.RegisterEnterprise(rpb.RegisterEnterpriseRequest(idempotency_key=key(), enterprise=rpb.Enterprise(
            credit_code=code, name=f"测试精密机械{index:03d}有限公司", industry_code=industry, region_code=division,
            park=park, size_class=size, land_held=common_pb2.Quantity(value=land, unit="亩"))), metadata=ADMIN)
        codes.append(code)
    return codes


def row(code: str, year: int, key_: str = "", source: str = "", **values: str) -> pb.IndicatorRow:
    return pb.IndicatorRow(credit_code=code, year=year, values=values, source_department=source,
                           idempotency_key=key_)


def firm_values(index: int, *, above: bool = True) -> dict[str, str]:
    """Plausible, distinct values: firm `index` grows with its index (a higher index scores higher)."""
    scale = 100 + index * 7
    values = {"tax_paid": f"{scale * 0.9:.2f}", "kwh": str(scale * 1500)}
    if above:
        values |= {"value_added": f"{scale * 4:.2f}", "energy_tce": f"{scale * 1.3:.2f}",
                   "pollutant_t": f"{scale * 0.001 + 0.05:.4f}", "avg_employees": str(20 + index),
                   "rd_expense": f"{scale * 0.1 + index:.2f}", "main_revenue": f"{scale * 15:.2f}",
                   "sales": f"{scale * 16:.2f}", "years_since_production": "6"}
    return values


async def submit(stub, rows: Iterable[pb.IndicatorRow], metadata=STATS_AGENCY) -> pb.SubmissionReport:
    """Rows submitted by a data provider (统计局 unless another is given), as itself."""
    async def stream():
        for item in rows:
            yield item

    return (await stub.SubmitIndicators(stream(), metadata=metadata, timeout=120)).report
