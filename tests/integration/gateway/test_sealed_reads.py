"""Sealed means sealed, over HTTP (issue 10, findings 4 and 8): while a 招标 is open with bids in, nobody but
the trading centre learns through the gateway who registered or bid, how many or when — not from the sale
state, the registrations and bids, the live stream or its replay, nor the gateway's metrics (on their own
internal port; the public API port has none); and a draft is not readable by anyone but its agency and the
regulators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from tests.integration.gateway.flows import GRANTOR, agency, bearer, eventually, free_parcel, read_events

pytestmark = pytest.mark.asyncio(loop_scope="module")
CENTRE = "AG-330100-GGZY"        # the trading centre (公共资源交易中心)
OTHER_AGENCY = "AG-330100-FGW"
PROBLEM = "application/problem+json"


def tender_body(parcel: dict, **extra) -> dict:
    now = datetime.now(UTC)
    return {"mechanism": "tender", "title": f"{parcel['name']} 招标出让（测试）", "resource_id": parcel["resource_id"],
            "quantity": parcel["quantity"]["value"], "unit": parcel["quantity"]["unit"],
            "start_price_fen": 100_000_000, "deposit_fen": 1_000_000, "sale_kind": "new_industrial_land",
            "announce_at": now.isoformat(), "bidding_opens_at": (now + timedelta(seconds=1)).isoformat(),
            "bidding_closes_at": (now + timedelta(hours=1)).isoformat(),
            "opening_at": (now + timedelta(hours=2)).isoformat(), **extra}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tender(stack, tokens) -> dict:
    """A 招标 in its submission window: ent1 and ent2 registered and bid (sealed), ent3 registered. The
    hub's sequence before the first registration is kept to replay the stream from there."""
    hub = stack.app.state.hub
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)
        created = await client.post("/api/v1/listings", json=tender_body(parcel), headers=agency(stack))
        assert created.status_code == 201, created.text
        lid = created.json()["listing_id"]
        published = await client.post(f"/api/v1/listings/{lid}/publish", headers=agency(stack))
        assert published.status_code == 200, published.text

        async def bidding():
            return (await client.get(f"/api/v1/listings/{lid}")).json()["state"] == "bidding"
        await eventually(bidding, timeout=30.0)
        resume_from = hub.last_seq
        numbers = {}
        for n, who in enumerate(("ent1", "ent2", "ent3")):
            token = tokens[who] if who in tokens else await stack.token(stack.enterprises[n])
            reply = await client.post(f"/api/v1/listings/{lid}/registrations",
                                      json={"credit_code": stack.enterprises[n].credit_code}, headers=bearer(token))
            assert reply.status_code == 201, reply.text
            numbers[who] = reply.json()["bidder_number"]
            if who != "ent3":
                bid = await client.post(f"/api/v1/listings/{lid}/bids", json={
                    "credit_code": stack.enterprises[n].credit_code, "price_fen": 120_000_000 + n * 7_000_000},
                    headers=bearer(token))
                assert bid.status_code == 201, bid.text
                assert bid.json()["bid"]["sealed"], bid.text
                state = bid.json()["state"]
                assert state is None or (state["accepted_bids"] is None and state["registered_bidders"] is None)

        # A change notice after the bids: trading's outbox is ordered, so once the hub has the notice it has
        # every fact trading published about the registrations and bids before it (of a sealed sale: none).
        notice = await client.patch(f"/api/v1/listings/{lid}", json={"description": "补充说明",
                                                                     "change_reason": "补充公告"},
                                    headers=agency(stack))
        assert notice.status_code == 200, notice.text

        async def notice_seen():
            facts = [f for f in await hub.replay(resume_from) if f.concerns_listing(lid)]
            return facts if any(f.type.endswith("listing.changed") for f in facts) else None
        facts = await eventually(notice_seen)
    return {"listing_id": lid, "numbers": numbers, "resume_from": resume_from, "facts": facts}


def caller(stack, tokens, who: str) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who.startswith("AG-"):
        return agency(stack, who)
    return bearer(tokens[who])


@pytest.mark.parametrize("who", ["anonymous", "ent1", "regulator", "admin", GRANTOR])
async def test_the_state_shows_no_counts_before_opening(stack, tokens, tender, who) -> None:
    async with stack.client() as client:
        reply = await client.get(f"/api/v1/listings/{tender['listing_id']}/state", headers=caller(stack, tokens, who))
    assert reply.status_code == 200, reply.text
    state = reply.json()
    assert state["registered_bidders"] is None and state["accepted_bids"] is None
    assert state["leading_bidder_number"] == ""


async def test_the_trading_centre_sees_the_counts(stack, tender) -> None:
    async with stack.client() as client:
        reply = await client.get(f"/api/v1/listings/{tender['listing_id']}/state", headers=agency(stack, CENTRE))
    assert reply.status_code == 200, reply.text
    assert reply.json()["registered_bidders"] == 3 and reply.json()["accepted_bids"] == 2


@pytest.mark.parametrize("who", ["regulator", GRANTOR, OTHER_AGENCY])
async def test_who_registered_or_bid_is_not_disclosed(stack, tokens, tender, who) -> None:
    lid = tender["listing_id"]
    headers = caller(stack, tokens, who)
    async with stack.client() as client:
        listed = await client.get(f"/api/v1/listings/{lid}/registrations", headers=headers)
        registered = await client.get(f"/api/v1/listings/{lid}/registrations/{stack.enterprises[0].credit_code}",
                                      headers=headers)
        unregistered = await client.get(f"/api/v1/listings/{lid}/registrations/{stack.enterprises[3].credit_code}",
                                        headers=headers)
        bids = await client.get(f"/api/v1/listings/{lid}/bids", headers=headers)
    for reply in (listed, registered, bids):
        assert reply.status_code == 403 and reply.headers["content-type"] == PROBLEM, reply.text
    # A registered and an unregistered enterprise answer alike: no oracle.
    assert (registered.status_code, registered.json()["detail"]) == (unregistered.status_code,
                                                                    unregistered.json()["detail"])


async def test_a_bidder_sees_its_own_only(stack, tokens, tender) -> None:
    lid, own = tender["listing_id"], stack.enterprises[0].credit_code
    async with stack.client() as client:
        mine = await client.get(f"/api/v1/listings/{lid}/bids", headers=bearer(tokens["ent1"]))
        registration = await client.get(f"/api/v1/listings/{lid}/registrations/{own}", headers=bearer(tokens["ent1"]))
        listed = await client.get(f"/api/v1/listings/{lid}/registrations", headers=bearer(tokens["ent1"]))
    assert [b["bidder_number"] for b in mine.json()["data"]] == [tender["numbers"]["ent1"]]
    assert mine.json()["data"][0]["price"]["fen"] == 120_000_000
    assert registration.json()["bidder_number"] == tender["numbers"]["ent1"]
    assert listed.status_code == 403


async def test_the_trading_centre_lists_who_registered(stack, tender) -> None:
    async with stack.client() as client:
        reply = await client.get(f"/api/v1/listings/{tender['listing_id']}/registrations",
                                 headers=agency(stack, CENTRE))
    assert reply.status_code == 200, reply.text
    assert {r["bidder_number"] for r in reply.json()["data"]} == set(tender["numbers"].values())


async def test_the_hub_keeps_no_sealed_bid_or_registration(tender) -> None:
    kinds = {f.type.removeprefix("yaosu.trading.") for f in tender["facts"]}
    assert "listing.changed" in kinds, kinds
    assert not any(k.startswith(("bid.", "registration.")) for k in kinds), kinds


@pytest.mark.parametrize("who", ["anonymous", "ent1", "regulator"])
async def test_the_stream_shows_no_participant(stack, tokens, tender, who) -> None:
    """The stream resumed from before the first registration replays what it may show, then the state."""
    lid = tender["listing_id"]
    headers = {**caller(stack, tokens, who), "Last-Event-ID": str(tender["resume_from"])}
    async with stack.client() as client, client.stream("GET", f"/api/v1/listings/{lid}/events",
                                                        headers=headers) as stream:
        assert stream.status_code == 200
        events = await read_events(stream, lambda event, data: event == "state")
    names = [event for event, _ in events]
    assert not [n for n in names if n.startswith(("bid.", "registration."))], names
    state = events[-1][1]
    assert state["registered_bidders"] is None and state["accepted_bids"] is None
    for number in tender["numbers"].values():
        assert f'"{number}"' not in str(events).replace("'", '"'), events


async def test_metrics_count_no_sealed_bids_per_listing(stack, tender) -> None:
    # Read on the gateway's metrics port (internal; the public API port has no /metrics): even Prometheus and
    # its dashboards learn nothing per sealed listing.
    async with stack.client() as client:
        public = await client.get("/metrics")
    metrics = await stack.metrics()
    assert public.status_code == 404 and "http_requests_total" not in public.text
    assert tender["listing_id"] not in metrics
    assert "mechanism" not in metrics and "sealed" not in metrics


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def draft(stack) -> str:
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)
        created = await client.post("/api/v1/listings", json=tender_body(parcel), headers=agency(stack))
    assert created.status_code == 201, created.text
    return created.json()["listing_id"]


@pytest.mark.parametrize("who", ["anonymous", "ent1", OTHER_AGENCY, CENTRE])
async def test_a_draft_is_not_readable_but_by_its_agency_and_regulators(stack, tokens, draft, who) -> None:
    headers = caller(stack, tokens, who)
    async with stack.client() as client:
        replies = [await client.get(f"/api/v1/listings/{draft}{tail}", headers=headers)
                   for tail in ("", "/state", "/events", "/result", "/notices")]
        missing = await client.get("/api/v1/listings/L-NOT-THERE/state", headers=headers)
        own = await client.get(f"/api/v1/listings/{draft}/state", headers=agency(stack))
    for reply in replies:
        assert reply.status_code == 404 and reply.headers["content-type"] == PROBLEM, reply.text
    assert missing.status_code == 404  # a draft answers like a listing that does not exist
    assert own.status_code == 200, own.text
    async with stack.client() as client:
        supervised = await client.get(f"/api/v1/listings/{draft}", headers=bearer(tokens["regulator"]))
    assert supervised.status_code == 200, supervised.text
