"""Every protected route × every kind of caller, with other enterprises' ids in paths and bodies.

Denied callers get 401 (anonymous) or 403; allowed callers get past authorisation (whatever the service
then answers: 2xx, 404 for the made-up ids, or 503 while a service is not running).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")

READERS = {"ent1", "regulator", "admin"}
SELF = {"ent1"}
REGULATORS = {"regulator", "admin"}
CALLERS = ("anonymous", "ent1", "ent2", "agency", "regulator", "admin")
OWN = "{cc}"

LISTING_BODY = {"mechanism": "listing", "title": "测试地块", "start_price_fen": 100_000_000,
                "increment_fen": 1_000_000, "deposit_fen": 20_000_000}
ROUTES: list[tuple[str, str, dict | None, set[str]]] = [
    ("GET", "/api/v1/auth/me", None, {"ent1", "ent2", "agency", "regulator", "admin"}),
    ("GET", "/api/v1/enterprises", None, REGULATORS),
    ("GET", f"/api/v1/enterprises/{OWN}", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/holdings", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/holdings/ACC-1/history", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/trades", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/orders", None, READERS),
    ("GET", "/api/v1/regulator/statistics", None, REGULATORS),
    ("GET", "/api/v1/regulator/trades", None, REGULATORS),
    ("GET", "/api/v1/regulator/audit/registry", None, REGULATORS),
    ("GET", f"/api/v1/listings/L-NONE/registrations/{OWN}", None, READERS),
    ("POST", "/api/v1/listings/L-NONE/registrations", {"credit_code": OWN}, SELF),
    ("POST", f"/api/v1/listings/L-NONE/registrations/{OWN}/continue", None, SELF),
    ("POST", "/api/v1/listings/L-NONE/bids", {"credit_code": OWN, "price_fen": 100}, SELF),
    ("POST", "/api/v1/listings/L-NONE/award/confirm", {"credit_code": OWN}, SELF),
    ("POST", "/api/v1/bids/B-NONE/withdraw", {"credit_code": OWN}, SELF),
    ("POST", "/api/v1/bids/B-NONE/modify", {"credit_code": OWN, "price_fen": 100}, SELF),
    ("POST", "/api/v1/orders", {"credit_code": OWN, "instrument": "X", "side": "buy", "price_fen": 1,
                                "quantity": 1}, SELF),
    ("POST", "/api/v1/orders/O-NONE/cancel", {"credit_code": OWN}, SELF),
    ("POST", "/api/v1/orders/O-NONE/amend", {"credit_code": OWN, "price_fen": 1, "quantity": 1}, SELF),
    ("POST", "/api/v1/listings", LISTING_BODY, {"agency"}),
    ("POST", "/api/v1/admin/users", {"username": "newuser", "password": "a-long-password", "role": "regulator"},
     {"admin"}),
    ("POST", "/api/v1/admin/api-keys", {"agency_id": "AG-330100-TJ"}, {"admin"}),
    ("GET", f"/api/v1/enterprises/{OWN}/evaluation", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/report", None, READERS),
    ("GET", f"/api/v1/enterprises/{OWN}/indicators?year=2025", None, READERS),
    ("GET", "/api/v1/evaluation/runs", None, REGULATORS),
    ("GET", "/api/v1/evaluation/runs/RUN-NONE", None, REGULATORS),
    ("GET", "/api/v1/evaluation/runs/RUN-NONE/results", None, REGULATORS),
    ("GET", "/api/v1/evaluation/runs/RUN-NONE/rollups", None, REGULATORS),
    # The matrix's agency is a grantor without the data_provider role (data providers: test_evaluation).
    ("POST", "/api/v1/agency/indicators", None, {"admin"}),
]
# Public reads need no credentials; everything else must be in ROUTES (checked below).
PUBLIC = {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/refresh"), ("GET", "/api/v1/catalogue/kinds"),
          ("GET", "/api/v1/catalogue/resources"), ("GET", "/api/v1/catalogue/resources/{resource_id}"),
          ("GET", "/api/v1/listings"), ("GET", "/api/v1/listings/{listing_id}"),
          ("GET", "/api/v1/listings/{listing_id}/state"), ("GET", "/api/v1/listings/{listing_id}/result"),
          ("GET", "/api/v1/listings/{listing_id}/notices"), ("GET", "/api/v1/markets"),
          ("GET", "/api/v1/markets/{instrument}/book"), ("GET", "/api/v1/listings/{listing_id}/events"),
          ("GET", "/api/v1/markets/{instrument}/events")}
# Routes whose check needs the listing from trading (agency ownership): tested in test_trading_flows.
NEEDS_LISTING = {("PATCH", "/api/v1/listings/{listing_id}"), ("POST", "/api/v1/listings/{listing_id}/publish"),
                 ("POST", "/api/v1/listings/{listing_id}/cancel"),
                 ("POST", "/api/v1/listings/{listing_id}/reserve-price"),
                 ("POST", "/api/v1/listings/{listing_id}/reserve-price/approve"),
                 ("GET", "/api/v1/listings/{listing_id}/registrations"),
                 ("GET", "/api/v1/listings/{listing_id}/bids"), ("GET", "/api/v1/trades/{trade_id}")}


def headers_for(caller: str, stack, tokens) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "agency":
        return {"X-API-Key": stack.agency_keys["AG-330100-ZRZY"]}
    return {"Authorization": f"Bearer {tokens[caller]}"}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_route_authorisation(stack, tokens, caller, method, path, body, allowed) -> None:
    own = stack.enterprises[0].credit_code
    path = path.replace(OWN, own)
    if body is not None:
        body = {k: (own if v == OWN else v) for k, v in body.items()}
    headers = {**headers_for(caller, stack, tokens), "Idempotency-Key": f"matrix-{caller}-{method}-{path}"}
    async with stack.client() as client:
        reply = await client.request(method, path, json=body, headers=headers)
    if caller in allowed:
        assert reply.status_code not in (401, 403), reply.text
    else:
        assert reply.status_code == (401 if caller == "anonymous" else 403), reply.text
        assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/enterprises/{other}", None),
    ("GET", "/api/v1/enterprises/{other}/holdings", None),
    ("GET", "/api/v1/enterprises/{other}/trades", None),
    ("GET", "/api/v1/enterprises/{other}/orders", None),
    ("GET", "/api/v1/enterprises/{other}/evaluation", None),
    ("GET", "/api/v1/enterprises/{other}/report?format=pdf", None),
    ("GET", "/api/v1/enterprises/{other}/indicators?year=2025", None),
    ("GET", "/api/v1/listings/L-NONE/registrations/{other}", None),
    ("GET", "/api/v1/listings/L-NONE/bids?credit_code={other}", None),
    ("POST", "/api/v1/listings/L-NONE/registrations", {"credit_code": "{other}"}),
    ("POST", "/api/v1/listings/L-NONE/registrations/{other}/continue", None),
    ("POST", "/api/v1/listings/L-NONE/bids", {"credit_code": "{other}", "price_fen": 100}),
    ("POST", "/api/v1/listings/L-NONE/award/confirm", {"credit_code": "{other}"}),
    ("POST", "/api/v1/bids/B-NONE/withdraw", {"credit_code": "{other}"}),
    ("POST", "/api/v1/orders", {"credit_code": "{other}", "instrument": "X", "side": "sell", "price_fen": 1,
                                "quantity": 1}),
    ("POST", "/api/v1/orders/O-NONE/cancel", {"credit_code": "{other}"}),
])
async def test_an_enterprise_cannot_name_another(stack, tokens, method, path, body) -> None:
    other = stack.enterprises[1].credit_code
    path = path.replace("{other}", other)
    if body is not None:
        body = {k: (other if v == "{other}" else v) for k, v in body.items()}
    async with stack.client() as client:
        reply = await client.request(method, path, json=body, headers={
            "Authorization": f"Bearer {tokens['ent1']}", "Idempotency-Key": "other-enterprise"})
    assert reply.status_code == 403, reply.text


async def test_other_enterprises_account_under_own_path_is_not_found(stack, tokens) -> None:
    other = stack.enterprises[1].credit_code
    async with stack.client() as client:
        regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
        accounts = (await client.get(f"/api/v1/enterprises/{other}/holdings", headers=regulator)).json()["data"]
        own = stack.enterprises[0].credit_code
        reply = await client.get(f"/api/v1/enterprises/{own}/holdings/{accounts[0]['account_id']}/history",
                                 headers={"Authorization": f"Bearer {tokens['ent1']}"})
    assert reply.status_code == 404


async def test_every_route_is_in_the_matrix(stack) -> None:
    async with stack.client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    templates = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    covered = {(m, p.split("?")[0].replace(OWN, "{credit_code}").replace("L-NONE", "{listing_id}").replace("B-NONE", "{bid_id}")
                .replace("O-NONE", "{order_id}").replace("ACC-1", "{account_id}")
                .replace("/audit/registry", "/audit/{service}").replace("RUN-NONE", "{run_id}"))
               for m, p, _, _ in ROUTES}
    assert templates - covered - PUBLIC - NEEDS_LISTING == set()
