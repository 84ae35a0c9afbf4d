"""Regulators: everything after opening, market statistics, settlement backlog, journal verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Query
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.authz import GuardDep
from services.gateway.api.common import PageDep, page_out, timestamp
from services.gateway.api.deps import ClientsDep
from services.gateway.api.errors import ProblemError, problem_responses
from services.gateway.api.schemas import (
    AuditVerificationPublic,
    MarketStatisticsPublic,
    PageOf,
    TradePublic,
    from_proto,
)

router = APIRouter(prefix="/regulator", tags=["regulator"])
ERRORS = problem_responses(400, 401, 403, 404, 422, 429, 503, 504)
SETTLEMENT = {"executed": tpb.SETTLEMENT_STATE_EXECUTED, "settling": tpb.SETTLEMENT_STATE_SETTLING,
              "settled": tpb.SETTLEMENT_STATE_SETTLED, "failed": tpb.SETTLEMENT_STATE_FAILED}


@router.get("/statistics", response_model=MarketStatisticsPublic, responses=ERRORS)
async def market_statistics(clients: ClientsDep, guard: GuardDep,
                            since_hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24) -> MarketStatisticsPublic:
    since = timestamp(datetime.now(UTC) - timedelta(hours=since_hours))
    reply = await clients.call(clients.trading.GetMarketStatistics,
                               tpb.GetMarketStatisticsRequest(since=since), user=guard.user)
    return from_proto(MarketStatisticsPublic, reply)


@router.get("/trades", response_model=PageOf[TradePublic], responses=ERRORS)
async def list_all_trades(clients: ClientsDep, guard: GuardDep, page: PageDep,
                          settlement_state: Literal["executed", "settling", "settled", "failed"] | None = None,
                          instrument: Annotated[str, Query(max_length=120)] = "",
                          listing_id: Annotated[str, Query(max_length=64)] = "") -> dict:
    reply = await clients.call(clients.trading.ListTrades, tpb.ListTradesRequest(
        page=page, instrument=instrument, listing_id=listing_id,
        settlement_state=SETTLEMENT.get(settlement_state or "", 0)), user=guard.user)
    return {"data": [from_proto(TradePublic, t) for t in reply.trades], **page_out(reply)}


async def verify(clients, user, service: str) -> AuditVerificationPublic:
    stub = getattr(clients, service)
    if stub is None:
        raise ProblemError(503, f"the {service} service is not available")
    request_type = {"registry": rpb.VerifyAuditJournalRequest, "trading": tpb.VerifyAuditJournalRequest}.get(service)
    if request_type is None:
        from yaosu.evaluation.v1 import evaluation_pb2 as epb  # generated once the evaluation contract exists
        request_type = epb.VerifyAuditJournalRequest
    # Walking the whole chain takes longer than an ordinary call.
    reply = await clients.call(stub.VerifyAuditJournal, request_type(), user=user, timeout=60.0)
    return from_proto(AuditVerificationPublic, reply, service=service)


@router.get("/audit/{service}", response_model=AuditVerificationPublic, responses=ERRORS)
async def verify_audit_journal(service: Literal["registry", "evaluation", "trading"], clients: ClientsDep,
                               guard: GuardDep) -> AuditVerificationPublic:
    """Walk the service's hash-chained audit journal end to end and report the first break, if any."""
    try:
        return await verify(clients, guard.user, service)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise ProblemError(503, f"the {service} service does not offer verification yet") from None
        raise
