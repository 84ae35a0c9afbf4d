"""Edge validation over HTTP (issue 10, findings 3 and 7): every number within its field and proto type,
booleans are not numbers, decimal quantities finite and positive, document links only http(s) or the
gateway's own files, text length-bounded — each refused with problem+json 422 naming the field, and
nothing changed; a bid above the price collar only with an explicit confirmation."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.integration.gateway.flows import GRANTOR, agency, bearer, free_parcel, listing_body, open_listing

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROBLEM = "application/problem+json"
INT64_MAX = 2**63 - 1


def refused(reply, field: str) -> None:
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in reply.json()["errors"]}, reply.json()["errors"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def parcel(stack) -> dict:
    async with stack.client() as client:
        return await free_parcel(stack, client)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sale(stack, tokens) -> dict:
    """A 挂牌 in its listing period with ent1 registered."""
    listing = await open_listing(stack, tokens["admin"])
    async with stack.client() as client:
        reply = await client.post(f"/api/v1/listings/{listing['listing_id']}/registrations",
                                  json={"credit_code": stack.enterprises[0].credit_code},
                                  headers=bearer(tokens["ent1"]))
    assert reply.status_code == 201, reply.text
    return listing


async def drafts(stack) -> set[str]:
    async with stack.client() as client:
        reply = await client.get("/api/v1/listings", params={"agency_id": GRANTOR, "state": "draft",
                                                             "page_size": 500}, headers=agency(stack))
    return {li["listing_id"] for li in reply.json()["data"]}


@pytest.mark.parametrize(("change", "field"), [
    ({"start_price_fen": 2**63}, "start_price_fen"),
    ({"start_price_fen": 0}, "start_price_fen"),
    ({"start_price_fen": True}, "start_price_fen"),
    ({"start_price_fen": "100"}, "start_price_fen"),
    ({"deposit_fen": 2**64}, "deposit_fen"),
    ({"increment_fen": -1}, "increment_fen"),
    ({"allowed_classes": [10**30]}, "allowed_classes.0"),
    ({"allowed_classes": [False]}, "allowed_classes.0"),
    ({"countdown_seconds": 2**31}, "countdown_seconds"),
    ({"supply_lots": 2**63}, "supply_lots"),
    ({"min_cover_bp": 10_001}, "min_cover_bp"),
    ({"min_price_to_reference_bp": -1}, "min_price_to_reference_bp"),
    ({"reference_price_fen": 2**63}, "reference_price_fen"),
    ({"quantity": "NaN"}, "quantity"),
    ({"quantity": "abc"}, "quantity"),
    ({"quantity": "-5"}, "quantity"),
    ({"quantity": "Infinity"}, "quantity"),
    ({"quantity": "1e400"}, "quantity"),
    ({"lot_size": "0"}, "lot_size"),
    ({"documents": ["javascript:alert(document.cookie)"]}, "documents.0"),
    ({"documents": ["JavaScript:alert(1)"]}, "documents.0"),
    ({"documents": ["data:text/html,<script>alert(1)</script>"]}, "documents.0"),
    ({"documents": ["https://example.cn/\"onmouseover=alert(1)"]}, "documents.0"),
    ({"documents": ["//evil.example/x.pdf"]}, "documents.0"),
    ({"title": "地" * 201}, "title"),
    ({"title": ""}, "title"),
    ({"description": "x" * 5001}, "description"),
    ({"standard_land_conditions": {f"k{i}": "v" for i in range(31)}}, "standard_land_conditions"),
])
async def test_a_bad_listing_is_refused_and_changes_nothing(stack, parcel, change, field) -> None:
    before = await drafts(stack)
    async with stack.client() as client:
        reply = await client.post("/api/v1/listings", json={**listing_body(parcel), **change}, headers=agency(stack))
    refused(reply, field)
    assert await drafts(stack) == before


async def test_document_links_http_and_own_files_pass(stack, parcel) -> None:
    documents = ["https://ggzy.example.cn/notice/2026-001.pdf", "http://zrzy.example.cn/map.png", "/files/parcel-7.pdf"]
    async with stack.client() as client:
        created = await client.post("/api/v1/listings", json={**listing_body(parcel), "documents": documents},
                                    headers=agency(stack))
        assert created.status_code == 201, created.text
        lid = created.json()["listing_id"]
        patched = await client.patch(f"/api/v1/listings/{lid}", json={"documents": ["javascript:alert(1)"],
                                                                      "change_reason": "x"}, headers=agency(stack))
        listing = (await client.get(f"/api/v1/listings/{lid}", headers=agency(stack))).json()
        await client.post(f"/api/v1/listings/{lid}/cancel", json={"reason": "test"}, headers=agency(stack))
    assert created.json()["documents"] == documents
    refused(patched, "documents.0")
    assert listing["documents"] == documents


@pytest.mark.parametrize(("body", "field"), [
    ({"price_fen": True}, "price_fen"),
    ({"price_fen": 2**63}, "price_fen"),
    ({"price_fen": 0}, "price_fen"),
    ({"price_fen": 1.5}, "price_fen"),
    ({"price_fen": 100, "quantity_lots": -1}, "quantity_lots"),
    ({"price_fen": 100, "quantity_lots": 2**63}, "quantity_lots"),
    ({"price_fen": 100, "confirm_high_price": "yes"}, "confirm_high_price"),
    ({"price_fen": 100, "tender_document": "javascript:alert(1)"}, "tender_document"),
])
async def test_a_bad_bid_is_refused(stack, tokens, sale, body, field) -> None:
    path = f"/api/v1/listings/{sale['listing_id']}/bids"
    async with stack.client() as client:
        before = (await client.get(path, headers=bearer(tokens["ent1"]))).json()["data"]
        reply = await client.post(path, json={"credit_code": stack.enterprises[0].credit_code, **body},
                                  headers=bearer(tokens["ent1"]))
        after = (await client.get(path, headers=bearer(tokens["ent1"]))).json()["data"]
    refused(reply, field)
    assert after == before


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/orders", {"instrument": "X", "side": "buy", "price_fen": 2**64, "quantity": 1}, "price_fen"),
    ("/api/v1/orders", {"instrument": "X", "side": "buy", "price_fen": 1, "quantity": True}, "quantity"),
    ("/api/v1/orders", {"instrument": "X", "side": "buy", "price_fen": 1, "quantity": 0}, "quantity"),
    ("/api/v1/orders/O-1/amend", {"price_fen": 1, "quantity": 2**63}, "quantity"),
    ("/api/v1/bids/B-1/modify", {"price_fen": True}, "price_fen"),
])
async def test_bad_numbers_of_orders_and_bid_changes(stack, tokens, path, body, field) -> None:
    async with stack.client() as client:
        reply = await client.post(path, json={"credit_code": stack.enterprises[0].credit_code, **body},
                                  headers=bearer(tokens["ent1"]))
    refused(reply, field)


async def test_a_reserve_price_out_of_range(stack, sale) -> None:
    async with stack.client() as client:
        reply = await client.post(f"/api/v1/listings/{sale['listing_id']}/reserve-price",
                                  json={"reserve_price_fen": 2**63}, headers=agency(stack))
    refused(reply, "reserve_price_fen")


async def test_a_bid_above_the_price_collar_needs_a_confirmation(stack, tokens, sale) -> None:
    """¥10万亿 on a ¥100万 sale: refused unless confirmed (trading's price collar, 3× the current price)."""
    lid, own = sale["listing_id"], stack.enterprises[0].credit_code
    huge = {"credit_code": own, "price_fen": 10**15}
    async with stack.client() as client:
        unconfirmed = await client.post(f"/api/v1/listings/{lid}/bids", json=huge, headers=bearer(tokens["ent1"]))
        state = (await client.get(f"/api/v1/listings/{lid}/state")).json()
        confirmed = await client.post(f"/api/v1/listings/{lid}/bids", json={**huge, "confirm_high_price": True},
                                      headers=bearer(tokens["ent1"]))
        largest = await client.post(f"/api/v1/listings/{lid}/bids", json={**huge, "price_fen": INT64_MAX},
                                    headers=bearer(tokens["ent1"]))
        dashboard = await client.get("/dashboard", headers={"Authorization": f"Bearer {tokens['regulator']}"})
    assert unconfirmed.status_code == 409 and unconfirmed.headers["content-type"] == PROBLEM, unconfirmed.text
    assert unconfirmed.json()["reason"] == "PRICE_COLLAR"
    assert state["accepted_bids"] == 0
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["bid"]["price"]["fen"] == 10**15
    assert largest.status_code in (400, 409) and largest.headers["content-type"] == PROBLEM, largest.text
    # The confirmed one raises the regulator dashboard's alert (and YaosuHighPriceBidsConfirmed).
    assert dashboard.status_code == 200 and "高价确认" in dashboard.text, dashboard.text[:500]
