"""The continuous quota market through the gateway over the real trading service (its demo energy-use-right
book): public markets and depth, an enterprise's orders and trades, and the live book stream."""

from __future__ import annotations

import pytest

from tests.integration.gateway.flows import bearer, read_events

pytestmark = pytest.mark.asyncio(loop_scope="module")
ENERGY = "energy_use_right:330100:2025"
PROBLEM = "application/problem+json"


async def demo_book(client) -> dict:
    markets = (await client.get("/api/v1/markets")).json()
    assert ENERGY in {m["instrument"] for m in markets}, markets  # trading's demo energy-use market
    return (await client.get(f"/api/v1/markets/{ENERGY}/book")).json()


async def test_markets_and_book_are_public_and_anonymous(stack) -> None:
    async with stack.client() as client:
        book = await demo_book(client)
        deep = await client.get(f"/api/v1/markets/{ENERGY}/book", params={"depth": 1})
        unknown = await client.get("/api/v1/markets/nothing:here/book")
    assert book["asks"] and book["bids"]
    assert book["asks"][0]["price"]["fen"] > book["bids"][0]["price"]["fen"]  # a book that does not cross
    assert "credit_code" not in str(book)
    assert len(deep.json()["asks"]) == 1
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


async def test_an_order_that_crosses_trades_and_shows_live(stack, tokens) -> None:
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        book = await demo_book(client)
        best_ask = book["asks"][0]["price"]["fen"]
        async with client.stream("GET", f"/api/v1/markets/{ENERGY}/events") as stream:
            placed = await client.post("/api/v1/orders", json={
                "credit_code": own, "instrument": ENERGY, "side": "buy", "price_fen": best_ask, "quantity": 2},
                headers=bearer(tokens["ent1"]))
            assert placed.status_code == 201, placed.text
            events = await read_events(stream, lambda e, d: e == "market.trade")
        trades = (await client.get(f"/api/v1/enterprises/{own}/trades", params={"instrument": ENERGY},
                                   headers=bearer(tokens["ent1"]))).json()["data"]
    result = placed.json()
    assert result["order"]["state"] == "filled" and result["order"]["filled"] == 2
    assert result["trades"] and result["trades"][0]["price"]["fen"] == best_ask
    assert result["trades"][0]["seller"] == ""  # the counterparty stays anonymous to a buyer
    fact = events[-1][1]
    assert fact["instrument"] == ENERGY and fact["price"]["fen"] == best_ask and fact["quantity"] == 2
    assert own not in str(events)
    assert any(t["trade_id"] == result["trades"][0]["trade_id"] for t in trades)


async def test_resting_order_cancel_and_ownership(stack, tokens) -> None:
    own, other = stack.enterprises[0].credit_code, stack.enterprises[1].credit_code
    async with stack.client() as client:
        book = await demo_book(client)
        low = book["bids"][-1]["price"]["fen"]  # below the best bid: rests on the book
        placed = await client.post("/api/v1/orders", json={
            "credit_code": own, "instrument": ENERGY, "side": "buy", "price_fen": low, "quantity": 1},
            headers=bearer(tokens["ent1"]))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["order_id"]
        mine = (await client.get(f"/api/v1/enterprises/{own}/orders", params={"open_only": True},
                                 headers=bearer(tokens["ent1"]))).json()["data"]
        by_other = await client.post(f"/api/v1/orders/{order_id}/cancel", json={"credit_code": other},
                                     headers=bearer(tokens["ent2"]))
        naming_me = await client.post(f"/api/v1/orders/{order_id}/cancel", json={"credit_code": own},
                                      headers=bearer(tokens["ent2"]))
        cancelled = await client.post(f"/api/v1/orders/{order_id}/cancel", json={"credit_code": own},
                                      headers=bearer(tokens["ent1"]))
    assert order_id in {o["order_id"] for o in mine}
    assert by_other.status_code in (403, 404, 409) and by_other.headers["content-type"] == PROBLEM, by_other.text
    assert naming_me.status_code == 403
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled", cancelled.text


async def test_an_order_outside_the_band_is_refused(stack, tokens) -> None:
    async with stack.client() as client:
        await demo_book(client)
        reply = await client.post("/api/v1/orders", json={
            "credit_code": stack.enterprises[0].credit_code, "instrument": ENERGY, "side": "buy",
            "price_fen": 10**9, "quantity": 1}, headers=bearer(tokens["ent1"]))
    assert reply.status_code in (400, 409) and reply.headers["content-type"] == PROBLEM, reply.text


async def test_a_level_order_takes_a_numbered_level_of_the_book(stack, tokens) -> None:
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        book = await demo_book(client)
        assert book["taker_levels"] == 5
        assert [x["level"] for x in book["asks"]] == list(range(1, len(book["asks"]) + 1))
        second = book["asks"][1]  # the second-best ask level

        def order(level: int, price: int) -> dict:
            return {"credit_code": own, "instrument": ENERGY, "side": "buy", "type": "level", "level": level,
                    "price_fen": price, "quantity": 1}

        # The book shows level 1 at another price: choosing level 1 at level 2's price is stale.
        stale = await client.post("/api/v1/orders", json=order(1, second["price"]["fen"]),
                                  headers=bearer(tokens["ent1"]))
        taken = await client.post("/api/v1/orders", json=order(2, second["price"]["fen"]),
                                  headers=bearer(tokens["ent1"]))
        missing = await client.post("/api/v1/orders", json={**order(2, second["price"]["fen"]), "level": 0},
                                    headers=bearer(tokens["ent1"]))
    assert stale.status_code == 409 and stale.json()["reason"] == "LEVEL_PRICE_CHANGED", stale.text
    assert taken.status_code == 201, taken.text
    result = taken.json()
    assert result["order"]["type"] == "level" and result["order"]["filled"] == 1
    assert [t["price"]["fen"] for t in result["trades"]] == [second["price"]["fen"]]
    assert missing.status_code == 400 and missing.headers["content-type"] == PROBLEM
    assert "level" in {e["field"] for e in missing.json()["errors"]}, missing.text
