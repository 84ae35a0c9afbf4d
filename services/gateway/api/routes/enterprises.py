"""An enterprise's own profile, holdings and their history, trades and orders (regulators: any).

The gate checks the enterprise in the path against the policy before a handler runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.authz import GuardDep
from services.gateway.api.common import PageDep, not_found, page_out
from services.gateway.api.deps import ClientsDep
from services.gateway.api.errors import problem_responses
from services.gateway.api.routes.markets import trade_view
from services.gateway.api.schemas import (
    AccountPublic,
    EnterprisePublic,
    LedgerOperationPublic,
    OrderPublic,
    PageOf,
    TradePublic,
    from_proto,
)

router = APIRouter(prefix="/enterprises", tags=["enterprises"])
ERRORS = problem_responses(400, 401, 403, 404, 422, 429, 503, 504)
CreditCode = Annotated[str, Query(min_length=1, max_length=18)]


@router.get("", response_model=PageOf[EnterprisePublic], responses=ERRORS)
async def list_enterprises(clients: ClientsDep, guard: GuardDep, page: PageDep,
                           region_code: Annotated[str, Query(max_length=6)] = "",
                           name_contains: Annotated[str, Query(max_length=100)] = "") -> dict:
    reply = await clients.call(clients.registry.ListEnterprises, rpb.ListEnterprisesRequest(
        page=page, region_code=region_code, name_contains=name_contains), user=guard.user)
    return {"data": [from_proto(EnterprisePublic, e) for e in reply.enterprises], **page_out(reply)}


@router.get("/{credit_code}", response_model=EnterprisePublic, responses=ERRORS)
async def get_enterprise(credit_code: str, clients: ClientsDep, guard: GuardDep) -> EnterprisePublic:
    reply = await clients.call(clients.registry.GetEnterprise, rpb.GetEnterpriseRequest(credit_code=credit_code),
                               user=guard.user)
    return from_proto(EnterprisePublic, reply.enterprise)


@router.get("/{credit_code}/holdings", response_model=PageOf[AccountPublic], responses=ERRORS)
async def list_holdings(credit_code: str, clients: ClientsDep, guard: GuardDep, page: PageDep) -> dict:
    reply = await clients.call(clients.registry.ListAccounts, rpb.ListAccountsRequest(
        page=page, holder=credit_code), user=guard.user)
    return {"data": [from_proto(AccountPublic, a) for a in reply.accounts], **page_out(reply)}


@router.get("/{credit_code}/holdings/{account_id}/history", response_model=PageOf[LedgerOperationPublic],
            responses=ERRORS)
async def holding_history(credit_code: str, account_id: str, clients: ClientsDep, guard: GuardDep,
                          page: PageDep) -> dict:
    account = (await clients.call(clients.registry.GetAccount, rpb.GetAccountRequest(account_id=account_id),
                                  user=guard.user)).account
    if account.holder != credit_code:  # an account id of someone else under one's own path
        raise not_found("no such account for this enterprise")
    reply = await clients.call(clients.registry.GetAccountHistory, rpb.GetAccountHistoryRequest(
        account_id=account_id, page=page), user=guard.user)
    return {"data": [from_proto(LedgerOperationPublic, o) for o in reply.operations], **page_out(reply)}


@router.get("/{credit_code}/trades", response_model=PageOf[TradePublic], responses=ERRORS)
async def list_trades(credit_code: str, clients: ClientsDep, guard: GuardDep, page: PageDep,
                      instrument: Annotated[str, Query(max_length=120)] = "") -> dict:
    reply = await clients.call(clients.trading.ListTrades, tpb.ListTradesRequest(
        page=page, credit_code=credit_code, instrument=instrument), user=guard.user)
    return {"data": [trade_view(t, guard) for t in reply.trades], **page_out(reply)}


@router.get("/{credit_code}/orders", response_model=PageOf[OrderPublic], responses=ERRORS)
async def list_orders(credit_code: str, clients: ClientsDep, guard: GuardDep, page: PageDep,
                      instrument: Annotated[str, Query(max_length=120)] = "", open_only: bool = False) -> dict:
    reply = await clients.call(clients.trading.ListOrders, tpb.ListOrdersRequest(
        page=page, credit_code=credit_code, instrument=instrument, open_only=open_only), user=guard.user)
    return {"data": [from_proto(OrderPublic, o) for o in reply.orders], **page_out(reply)}
