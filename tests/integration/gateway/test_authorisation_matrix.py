"""The REST authorization matrix, generated from the declared policy (services/gateway/authorization.yaml).

For every /api/v1 route × every kind of caller (enterprise, agency, regulator, admin, anonymous) one request
over HTTP against the real services: a caller the policy admits gets past authorisation (whatever the
service then answers: 2xx, 404 for made-up ids, 409 for the sale's state, 422 for an incomplete body), a
kind it does not name gets 401 (anonymous) or 403. For own-only grants also the wrong principal of an
admitted kind — another enterprise naming the first one's objects, an agency that does not own the listing
or lacks the role — is refused with 403 or 404. A route that is not in the policy fails here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from services.common.authz import Grant, Kind, Policy
from services.gateway.api.authz import POLICY, api_operations
from services.registry.demo import AGENCIES
from tests.integration.gateway.flows import GRANTOR, open_listing

pytestmark = pytest.mark.asyncio(loop_scope="module")

POLICY_DOC = Policy.load(Path(POLICY))
ROUTES = sorted(op for op in POLICY_DOC.operations if " " in op)  # the rest are disclosure rules
KINDS = (Kind.PUBLIC, Kind.ENTERPRISE, Kind.AGENCY, Kind.REGULATOR, Kind.ADMIN)
ROLES = {agency_id: frozenset(roles) for agency_id, _, roles in AGENCIES}
OTHER_GRANTOR = "AG-330100-FGW"   # grantor, issuer and data provider, but owns nothing of the matrix's
OWN = "{cc}"                      # the acting enterprise's credit code, in bodies and queries

BODIES: dict[str, dict] = {
    "PATCH /api/v1/listings/{listing_id}": {"description": "矩阵", "change_reason": "matrix"},
    "POST /api/v1/listings": {"mechanism": "listing", "title": "矩阵测试地块", "start_price_fen": 100_000_000,
                              "increment_fen": 1_000_000, "deposit_fen": 20_000_000},
    "POST /api/v1/listings/{listing_id}/cancel": {"reason": "matrix"},
    "POST /api/v1/listings/{listing_id}/award/default": {"reason": "matrix"},
    "POST /api/v1/listings/{listing_id}/increment": {"increment_fen": 2_000_000, "reason": "matrix"},
    "POST /api/v1/listings/{listing_id}/reserve-price": {"reserve_price_fen": 100},
    "POST /api/v1/listings/{listing_id}/registrations": {"credit_code": OWN},
    "POST /api/v1/listings/{listing_id}/bids": {"credit_code": OWN, "price_fen": 100},
    "POST /api/v1/listings/{listing_id}/award/confirm": {"credit_code": OWN},
    "POST /api/v1/bids/{bid_id}/withdraw": {"credit_code": OWN},
    "POST /api/v1/bids/{bid_id}/modify": {"credit_code": OWN, "price_fen": 100},
    "POST /api/v1/orders": {"credit_code": OWN, "instrument": "X", "side": "buy", "price_fen": 1, "quantity": 1},
    "POST /api/v1/orders/{order_id}/cancel": {"credit_code": OWN},
    "POST /api/v1/orders/{order_id}/amend": {"credit_code": OWN, "price_fen": 1, "quantity": 1},
    "POST /api/v1/admin/users": {"username": "matrix-{n}", "password": "a-long-password", "role": "regulator"},
    "POST /api/v1/admin/api-keys": {"agency_id": "AG-330100-TJ", "label": "matrix"},
}
QUERIES: dict[str, dict] = {
    "GET /api/v1/enterprises/{credit_code}/indicators": {"year": 2025},
    "GET /api/v1/listings/{listing_id}/bids": {"credit_code": OWN},
}


@dataclass(frozen=True)
class Case:
    operation: str
    caller: str        # anonymous | ent1 | ent2 | regulator | admin | agency:<id>
    expect: str        # pass | denied | other (refused as not the owner: 403 or 404)

    def __str__(self) -> str:
        return f"{self.operation} as {self.caller}: {self.expect}"


def admitted(grants: tuple[Grant, ...], agency_id: str, *, owner: bool) -> bool:
    """Whether this agency passes the grant: by a role grant, or by an own grant on objects it owns."""
    roles = ROLES[agency_id]
    return any((not g.roles or g.roles & roles) and (owner or not g.own) for g in grants)


def agency_for(grants: tuple[Grant, ...]) -> str:
    """An agency the grant admits: a role grant's holder first (it sees what an owner may not yet), else
    the listing agency that owns the matrix's objects."""
    for grant in sorted(grants, key=lambda g: g.own):
        if grant.roles and not grant.own:
            return next(a for a, roles in ROLES.items() if roles & grant.roles)
    return GRANTOR


def cases() -> list[Case]:
    found = []
    for operation in ROUTES:
        grants_by_kind = POLICY_DOC.operations[operation]
        for kind in KINDS:
            grants = grants_by_kind.get(kind, ())
            if kind is Kind.PUBLIC:
                found.append(Case(operation, "anonymous", "pass" if grants else "denied"))
            elif kind is Kind.ENTERPRISE:
                found.append(Case(operation, "ent1", "pass" if grants else "denied"))
                if any(g.own for g in grants):
                    found.append(Case(operation, "ent2", "other"))
            elif kind is Kind.AGENCY:
                if not grants:
                    found.append(Case(operation, f"agency:{OTHER_GRANTOR}", "denied"))
                    continue
                found.append(Case(operation, f"agency:{agency_for(grants)}", "pass"))
                mentioned = frozenset().union(*(g.roles for g in grants))
                if mentioned:  # an agency with none of the roles
                    lacking = next(a for a, roles in ROLES.items() if a != GRANTOR and not roles & mentioned
                                   and a != "BANK-330100-JS")
                    found.append(Case(operation, f"agency:{lacking}", "other"))
                if "{listing_id}" in operation and any(g.own for g in grants) \
                        and not admitted(grants, OTHER_GRANTOR, owner=False):
                    found.append(Case(operation, f"agency:{OTHER_GRANTOR}", "other"))
            else:
                found.append(Case(operation, kind.value, "pass" if grants else "denied"))
    return found


CASES = cases()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def objects(stack, tokens) -> dict[str, str]:
    """Real objects for the paths: ent1's credit code and CNY account, and a 挂牌 listing of the grantor in
    its listing period (which the matrix may change or cancel: it is its own)."""
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        holdings = (await client.get(f"/api/v1/enterprises/{own}/holdings",
                                     headers={"Authorization": f"Bearer {tokens['regulator']}"})).json()["data"]
    listing_id = (await open_listing(stack, tokens["admin"]))["listing_id"]
    return {"credit_code": own, "account_id": next(a["account_id"] for a in holdings if a["instrument"] == "CNY"),
            "listing_id": listing_id, "bid_id": "B-NONE", "order_id": "O-NONE", "trade_id": "T-NONE",
            "resource_id": "R-NONE", "instrument": "none:here", "run_id": "RUN-NONE", "service": "registry"}


async def login(stack, user) -> dict:
    async with stack.client() as client:
        reply = await client.post("/api/v1/auth/token", json={"username": user.username, "password": user.password})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def headers_for(stack, tokens, caller: str, operation: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller.startswith("agency:"):
        return {"X-API-Key": stack.agency_keys[caller.removeprefix("agency:")]}
    if operation == "POST /api/v1/auth/logout":  # a session of its own: logging out ends it
        user = {"ent1": stack.enterprises[0], "ent2": stack.enterprises[1], "regulator": stack.regulator,
                "admin": stack.admin}[caller]
        return {"Authorization": f"Bearer {(await login(stack, user))['access_token']}"}
    return {"Authorization": f"Bearer {tokens[caller]}"}


def fill(value, values: dict[str, str]):
    if isinstance(value, str):
        return value.replace(OWN, values["credit_code"]).replace("{n}", uuid.uuid4().hex[:8])
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


async def body_for(stack, operation: str, values: dict[str, str]) -> dict | None:
    if operation == "POST /api/v1/auth/token":
        user = stack.enterprises[0]
        return {"username": user.username, "password": user.password}
    if operation == "POST /api/v1/auth/refresh":  # a refresh token is spent once: a fresh one each time
        return {"refresh_token": (await login(stack, stack.enterprises[0]))["refresh_token"]}
    return fill(BODIES.get(operation), values)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_route_authorisation(stack, tokens, objects, case: Case) -> None:
    method, template = case.operation.split(" ", 1)
    path = template.format(**objects)
    body = await body_for(stack, case.operation, objects)
    headers = {**await headers_for(stack, tokens, case.caller, case.operation),
               "Idempotency-Key": f"matrix-{uuid.uuid4()}"}
    async with stack.client() as client, client.stream(method, path, json=body, headers=headers,
                                                        params=fill(QUERIES.get(case.operation), objects)) as reply:
        status = reply.status_code
        text = (await reply.aread()).decode() if status >= 400 else ""
    if case.expect == "pass":
        assert status not in (401, 403), f"{case}: {status} {text}"
    elif case.expect == "denied":
        assert status == (401 if case.caller == "anonymous" else 403), f"{case}: {status} {text}"
        assert reply.headers["content-type"] == "application/problem+json"
    else:
        assert status in (403, 404), f"{case}: {status} {text}"


async def test_every_route_is_in_the_policy(stack) -> None:
    routes = api_operations(stack.app)
    assert routes - set(ROUTES) == set(), "routes the policy does not name (refused to everybody)"
    assert set(ROUTES) - routes == set(), "policy entries naming no route"


async def test_another_enterprises_account_under_the_own_path_is_not_found(stack, tokens, objects) -> None:
    other = stack.enterprises[1].credit_code
    async with stack.client() as client:
        accounts = (await client.get(f"/api/v1/enterprises/{other}/holdings",
                                     headers={"Authorization": f"Bearer {tokens['regulator']}"})).json()["data"]
        reply = await client.get(f"/api/v1/enterprises/{objects['credit_code']}/holdings/"
                                 f"{accounts[0]['account_id']}/history",
                                 headers={"Authorization": f"Bearer {tokens['ent1']}"})
    assert reply.status_code == 404, reply.text
