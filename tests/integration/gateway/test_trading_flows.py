"""Trading through the gateway over the real trading service: the agency listing lifecycle (draft, dual
control of the reserve by two principals, publication, change notice), ownership of listings, bidder
registration with deposit, 挂牌 bids with idempotency, who sees which bids, and the live sale stream."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from tests.integration.gateway.flows import (
    GRANTOR,
    agency,
    bearer,
    eventually,
    free_parcel,
    listing_body,
    open_listing,
    read_events,
    second_key,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
OTHER_AGENCY = "AG-330100-GGZY"
PROBLEM = "application/problem+json"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sale(stack, tokens) -> dict:
    """A 挂牌 listing in its listing period, with ent1 and ent2 registered."""
    listing = await open_listing(stack, tokens["admin"])
    lid = listing["listing_id"]
    numbers = {}
    async with stack.client() as client:
        for n, who in enumerate(("ent1", "ent2")):
            reply = await client.post(f"/api/v1/listings/{lid}/registrations",
                                      json={"credit_code": stack.enterprises[n].credit_code},
                                      headers=bearer(tokens[who]))
            assert reply.status_code == 201, reply.text
            numbers[who] = reply.json()["bidder_number"]
    return {**listing, "numbers": numbers}


async def test_agency_listing_lifecycle(stack, tokens) -> None:
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)
        created = await client.post("/api/v1/listings", json=listing_body(parcel), headers=agency(stack))
        assert created.status_code == 201, created.text
        draft = created.json()
        lid = draft["listing_id"]
        assert draft["state"] == "draft" and draft["agency_id"] == GRANTOR and draft["trade_code"]
        assert not draft["reserve_set"] and draft["reserve_price"] is None

        # A draft is the agency's own: not public, not another agency's (its existence is not confirmed).
        assert (await client.get(f"/api/v1/listings/{lid}")).status_code == 404
        assert (await client.get(f"/api/v1/listings/{lid}",
                                 headers=agency(stack, OTHER_AGENCY))).status_code == 404
        assert (await client.get(f"/api/v1/listings/{lid}", headers=bearer(tokens["regulator"]))).status_code == 200
        public = (await client.get("/api/v1/listings", params={"state": "draft"})).json()["data"]
        assert lid not in {li["listing_id"] for li in public}

        early = await client.post(f"/api/v1/listings/{lid}/publish", headers=agency(stack))
        assert early.status_code == 409 and early.json()["reason"] == "RESERVE_NOT_APPROVED", early.text

        entered = await client.post(f"/api/v1/listings/{lid}/reserve-price", json={"reserve_price_fen": 105_000_000},
                                    headers=agency(stack))
        assert entered.status_code == 200, entered.text
        assert entered.json()["reserve_price"] is None  # never echoed before opening
        assert not entered.json()["reserve_set"]  # set = entered and approved

        same = await client.post(f"/api/v1/listings/{lid}/reserve-price/approve", headers=agency(stack))
        assert same.status_code == 409 and same.headers["content-type"] == PROBLEM, same.text  # one principal
        by_admin = await client.post(f"/api/v1/listings/{lid}/reserve-price/approve",
                                     headers=bearer(tokens["admin"]))
        assert by_admin.status_code == 403, by_admin.text  # an administrator has no business acts
        approved = await client.post(f"/api/v1/listings/{lid}/reserve-price/approve",
                                     headers=agency(stack, key=await second_key(stack, tokens["admin"])))
        assert approved.status_code == 200, approved.text
        assert approved.json()["reserve_set"] and approved.json()["reserve_price"] is None

        published = await client.post(f"/api/v1/listings/{lid}/publish", headers=agency(stack))
        assert published.status_code == 200, published.text
        assert published.json()["state"] in ("announced", "bidding")
        visible = await client.get(f"/api/v1/listings/{lid}")
        assert visible.status_code == 200 and visible.json()["reserve_price"] is None

        change = await client.patch(f"/api/v1/listings/{lid}", json={"description": "补充：地块红线图已更新",
                                                                     "change_reason": "更正宗地图"},
                                    headers=agency(stack))
        assert change.status_code == 200, change.text
        assert change.json()["version"] == published.json()["version"] + 1
        no_reason = await client.patch(f"/api/v1/listings/{lid}", json={"description": "x"}, headers=agency(stack))
        assert no_reason.status_code == 400 and no_reason.json()["errors"][0]["field"].endswith("change_reason")
        fixed = await client.patch(f"/api/v1/listings/{lid}", json={
            "bidding_closes_at": "2030-01-01T00:00:00Z", "change_reason": "延期"}, headers=agency(stack))
        assert fixed.status_code == 409 and fixed.json()["reason"] == "FIXED_BY_ANNOUNCEMENT", fixed.text
        notices = (await client.get(f"/api/v1/listings/{lid}/notices")).json()
        assert [(n["reason"], n["changed_fields"]) for n in notices] == [("更正宗地图", ["description"])]

        cancelled = await client.post(f"/api/v1/listings/{lid}/cancel", json={"reason": "规划调整"},
                                      headers=agency(stack))
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled", cancelled.text


@pytest.mark.parametrize("who", ["other_agency", "ent1", "regulator"])
async def test_only_the_listing_agency_manages_it(stack, tokens, sale, who) -> None:
    lid = sale["listing_id"]
    headers = agency(stack, OTHER_AGENCY) if who == "other_agency" else bearer(tokens[who])
    calls = [("PATCH", f"/api/v1/listings/{lid}", {"title": "改名", "change_reason": "x"}),
             ("POST", f"/api/v1/listings/{lid}/publish", None),
             ("POST", f"/api/v1/listings/{lid}/cancel", {"reason": "x"}),
             ("POST", f"/api/v1/listings/{lid}/reserve-price", {"reserve_price_fen": 1}),
             ("POST", f"/api/v1/listings/{lid}/reserve-price/approve", None)]
    async with stack.client() as client:
        for method, path, body in calls:
            reply = await client.request(method, path, json=body, headers=headers)
            assert reply.status_code == 403, (method, path, reply.text)
            assert reply.headers["content-type"] == PROBLEM
        listing = (await client.get(f"/api/v1/listings/{lid}")).json()
    assert listing["state"] == "bidding" and listing["title"] == sale["title"]


async def test_an_agency_lists_only_for_itself(stack, tokens) -> None:
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)  # the grantor's parcel, listed by another agency
        reply = await client.post("/api/v1/listings", json=listing_body(parcel),
                                  headers=agency(stack, OTHER_AGENCY))
        denied = await client.post("/api/v1/listings", json=listing_body(parcel), headers=bearer(tokens["ent1"]))
    # The listing is created for the calling agency; the registry's controller check is trading's.
    assert reply.status_code in (201, 400, 403, 409), reply.text
    if reply.status_code == 201:
        assert reply.json()["agency_id"] == OTHER_AGENCY
    assert denied.status_code == 403


async def test_registration(stack, tokens, sale) -> None:
    lid = sale["listing_id"]
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        mine = await client.get(f"/api/v1/listings/{lid}/registrations/{own}", headers=bearer(tokens["ent1"]))
        twice = await client.post(f"/api/v1/listings/{lid}/registrations", json={"credit_code": own},
                                  headers=bearer(tokens["ent1"]))
        others = await client.get(f"/api/v1/listings/{lid}/registrations/{stack.enterprises[1].credit_code}",
                                  headers=bearer(tokens["ent1"]))
        by_regulator = await client.get(f"/api/v1/listings/{lid}/registrations", headers=bearer(tokens["regulator"]))
        by_agency = await client.get(f"/api/v1/listings/{lid}/registrations", headers=agency(stack))
    assert mine.status_code == 200, mine.text
    registration = mine.json()
    assert registration["state"] == "qualified" and registration["deposit_state"] == "held"
    assert registration["bidder_number"] == sale["numbers"]["ent1"]
    assert twice.status_code == 201 and twice.json()["bidder_number"] == registration["bidder_number"]  # the same one
    assert others.status_code == 403
    assert by_regulator.status_code == 200 and len(by_regulator.json()["data"]) == 2
    assert by_agency.status_code == 403  # who registered stays secret from the agency until close


async def test_deposit_is_held_in_the_ledger(stack, tokens, sale) -> None:
    own = stack.enterprises[0].credit_code
    async with stack.client() as client:
        accounts = (await client.get(f"/api/v1/enterprises/{own}/holdings", headers=bearer(tokens["ent1"]))).json()
    cny = next(a for a in accounts["data"] if a["instrument"] == "CNY")
    assert float(cny["held"]["value"]) > 0, cny


async def test_bids_live_and_idempotent(stack, tokens, sale) -> None:
    lid = sale["listing_id"]
    ent1, ent2 = stack.enterprises[0].credit_code, stack.enterprises[1].credit_code
    async with stack.client() as client:
        state = (await client.get(f"/api/v1/listings/{lid}/state")).json()
        first_price = state["next_minimum_bid"]["fen"]
        async with client.stream("GET", f"/api/v1/listings/{lid}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            key = f"bid-{uuid.uuid4()}"
            placed = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": ent1,
                                                                             "price_fen": first_price},
                                       headers=bearer(tokens["ent1"], **{"Idempotency-Key": key}))
            assert placed.status_code == 201, placed.text
            bid = placed.json()["bid"]
            assert bid["state"] == "accepted" and bid["price"]["fen"] == first_price
            assert bid["bidder_number"] == sale["numbers"]["ent1"]
            events = await read_events(stream, lambda e, d: e == "bid.accepted" and d.get("sequence") == bid["sequence"])
        fact = events[-1][1]
        assert fact["bidder_number"] == sale["numbers"]["ent1"] and fact["price"]["fen"] == first_price
        assert fact["accepted_at"]
        assert ent1 not in str(events)  # bidder numbers only, never credit codes

        again = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": ent1, "price_fen": first_price},
                                  headers=bearer(tokens["ent1"], **{"Idempotency-Key": key}))
        assert again.status_code == 201 and again.json()["bid"]["bid_id"] == bid["bid_id"]
        reused = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": ent1,
                                                                         "price_fen": first_price + 7_000_000},
                                   headers=bearer(tokens["ent1"], **{"Idempotency-Key": key}))
        assert reused.status_code == 409 and reused.headers["content-type"] == PROBLEM

        too_low = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": ent2,
                                                                          "price_fen": first_price},
                                    headers=bearer(tokens["ent2"]))
        assert too_low.status_code in (400, 409) and too_low.headers["content-type"] == PROBLEM, too_low.text
        higher = first_price + sale["rules"]["increment"]["fen"]
        outbid = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": ent2, "price_fen": higher},
                                   headers=bearer(tokens["ent2"]))
        assert outbid.status_code == 201, outbid.text

        async def leader_is_ent2():
            now = (await client.get(f"/api/v1/listings/{lid}/state")).json()
            return now if now["leading_bidder_number"] == sale["numbers"]["ent2"] else None
        now = await eventually(leader_is_ent2)
        assert now["current_price"]["fen"] == higher and now["accepted_bids"] >= 2

        own_bids = (await client.get(f"/api/v1/listings/{lid}/bids", headers=bearer(tokens["ent1"]))).json()["data"]
        assert own_bids and {b["bidder_number"] for b in own_bids} == {sale["numbers"]["ent1"]}
        peek = await client.get(f"/api/v1/listings/{lid}/bids", params={"credit_code": ent2},
                                headers=bearer(tokens["ent1"]))
        all_bids = (await client.get(f"/api/v1/listings/{lid}/bids",
                                     headers=bearer(tokens["regulator"]))).json()["data"]
        agency_view = await client.get(f"/api/v1/listings/{lid}/bids", headers=agency(stack))
    assert peek.status_code == 403
    assert {b["bidder_number"] for b in all_bids} == set(sale["numbers"].values())
    assert agency_view.status_code == 403  # the listing agency sees bids after close


async def test_the_agency_changes_the_increment_and_the_stream_shows_it(stack, tokens) -> None:
    """§5.3: the increment may be changed during the listing, logged and announced: over REST by the listing
    agency only; every viewer of the live stream gets the new increment and next minimum at once."""
    listing = await open_listing(stack, tokens["admin"])
    lid, old = listing["listing_id"], listing["rules"]["increment"]["fen"]
    async with stack.client() as client:
        denied = await client.post(f"/api/v1/listings/{lid}/increment", json={"increment_fen": 2 * old,
                                                                              "reason": "x"},
                                   headers=bearer(tokens["ent1"]))
        assert denied.status_code == 403 and denied.headers["content-type"] == PROBLEM
        other = await client.post(f"/api/v1/listings/{lid}/increment", json={"increment_fen": 2 * old,
                                                                             "reason": "x"},
                                  headers=agency(stack, OTHER_AGENCY))
        assert other.status_code in (403, 404)
        bad = await client.post(f"/api/v1/listings/{lid}/increment", json={"increment_fen": 0, "reason": ""},
                                headers=agency(stack))
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
        async with client.stream("GET", f"/api/v1/listings/{lid}/events") as stream:
            changed = await client.post(f"/api/v1/listings/{lid}/increment",
                                        json={"increment_fen": 2 * old, "reason": "竞价活跃"}, headers=agency(stack))
            assert changed.status_code == 200, changed.text
            events = await read_events(stream, lambda e, d: e == "sale.increment_changed")
        body = changed.json()
        assert body["state"]["increment"]["fen"] == 2 * old and body["notice"]["previous_increment"]["fen"] == old
        fact = events[-1][1]
        assert fact["increment"]["fen"] == 2 * old and fact["previous_increment"]["fen"] == old
        assert fact["next_minimum_bid"]["fen"] == body["state"]["next_minimum_bid"]["fen"]
        assert fact["reason"] == "竞价活跃"
        notices = (await client.get(f"/api/v1/listings/{lid}/notices")).json()
        assert [n["changed_fields"] for n in notices] == [["increment"]]
        assert (await client.get(f"/api/v1/listings/{lid}/state")).json()["increment"]["fen"] == 2 * old


async def test_an_unregistered_enterprise_cannot_bid(stack, tokens, sale) -> None:
    third = stack.enterprises[2]
    token = await stack.token(third)
    async with stack.client() as client:
        reply = await client.post(f"/api/v1/listings/{sale['listing_id']}/bids",
                                  json={"credit_code": third.credit_code, "price_fen": 10**12},
                                  headers=bearer(token))
    assert reply.status_code in (403, 409) and reply.headers["content-type"] == PROBLEM, reply.text


async def test_sale_stream_resumes_with_last_event_id(stack, tokens, sale) -> None:
    lid = sale["listing_id"]
    async with stack.client() as client:
        async with client.stream("GET", f"/api/v1/listings/{lid}/events") as stream:
            first = await read_events(stream, lambda e, d: e == "state")
        state = first[-1][1]
        hub = stack.app.state.hub
        resume_from = hub.last_seq
        price = state["next_minimum_bid"]["fen"]
        placed = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": stack.enterprises[0].credit_code,
                                                                         "price_fen": price},
                                   headers=bearer(tokens["ent1"]))
        assert placed.status_code == 201, placed.text
        await eventually(lambda: _async(hub.last_seq > resume_from))
        async with client.stream("GET", f"/api/v1/listings/{lid}/events",
                                 headers={"Last-Event-ID": str(resume_from)}) as stream:
            replayed = await read_events(stream, lambda e, d: e == "state")
    kinds = [e for e, _ in replayed]
    assert "bid.accepted" in kinds and kinds.index("bid.accepted") < kinds.index("state")
    assert any(d.get("price", {}).get("fen") == price for e, d in replayed if e == "bid.accepted")


async def _async(value):
    return value


async def test_unknown_listing_stream_is_404(stack) -> None:
    async with stack.client() as client:
        reply = await client.get("/api/v1/listings/L-NONE/events")
    assert reply.status_code == 404 and reply.headers["content-type"] == PROBLEM


async def test_regulator_dashboard_shows_market(stack, tokens, sale) -> None:
    async with stack.client() as client:
        await client.post("/login", data={"username": stack.regulator.username, "password": stack.regulator.password})
        page = await client.get("/dashboard")
    assert page.status_code == 200
    assert 'id="bids-per-minute"' in page.text and 'id="sales"' in page.text
    chart = page.text[page.text.index('id="bids-per-minute"'):].split("</svg>")[0]
    assert 'class="bar"' in chart  # the bids placed above fall in the last 30 minutes
