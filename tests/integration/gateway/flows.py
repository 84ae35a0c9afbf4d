"""Sales set up through the gateway's own API (as an agency and an administrator would), for the trading
flow tests, the browser test and the benchmark."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

GRANTOR = "AG-330100-ZRZY"


def agency(stack, agency_id: str = GRANTOR, *, key: str | None = None, **extra) -> dict[str, str]:
    return {"X-API-Key": key or stack.agency_keys[agency_id], "Idempotency-Key": f"t-{uuid.uuid4()}", **extra}


async def second_key(stack, admin_token: str, agency_id: str = GRANTOR) -> str:
    """Another API key of the agency, issued by an administrator: a second principal of the same agency
    (the dual control of a reserve price needs one to enter it and another to approve it)."""
    keys: dict[str, str] = stack.__dict__.setdefault("second_keys", {})
    if agency_id not in keys:
        async with stack.client() as client:
            reply = await client.post("/api/v1/admin/api-keys", json={"agency_id": agency_id, "label": "second"},
                                      headers=bearer(admin_token))
        assert reply.status_code == 201, reply.text
        keys[agency_id] = reply.json()["api_key"]
    return keys[agency_id]


def bearer(token: str, **extra) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": f"t-{uuid.uuid4()}", **extra}


async def free_parcel(stack, client) -> dict:
    """An available land parcel of the grantor that no listing of this run took yet."""
    taken: set[str] = stack.__dict__.setdefault("parcels_taken", set())
    reply = await client.get("/api/v1/catalogue/resources", params={"kind": "land_use_right", "page_size": 500})
    for resource in reply.json()["data"]:
        if resource["status"] == "available" and resource["controller_agency_id"] == GRANTOR \
                and resource["resource_id"] not in taken:
            taken.add(resource["resource_id"])
            return resource
    raise AssertionError("no available demo parcel left")


def listing_body(parcel: dict, *, closes_in: timedelta = timedelta(hours=2), start_fen: int = 100_000_000,
                 increment_fen: int = 1_000_000, deposit_fen: int = 1_000_000) -> dict:
    now = datetime.now(UTC)
    # Bidding opens as soon as it is published: the stack's trading runs a sale policy without 39号令
    # periods (stack.SALE_POLICY); the periods themselves are trading's tests.
    opens = now + timedelta(seconds=1)
    return {"mechanism": "listing", "title": f"{parcel['name']} 挂牌出让（测试）", "resource_id": parcel["resource_id"],
            "quantity": parcel["quantity"]["value"], "unit": parcel["quantity"]["unit"], "start_price_fen": start_fen,
            "increment_fen": increment_fen, "deposit_fen": deposit_fen, "countdown_seconds": 300,
            "sale_kind": "new_industrial_land", "announce_at": now.isoformat(),
            "bidding_opens_at": opens.isoformat(), "bidding_closes_at": (now + closes_in).isoformat()}


async def open_listing(stack, admin_token: str, **rules) -> dict:
    """Create → reserve entered by the agency → approved by another key of the agency → published; in
    bidding. (`admin_token` issues that second key: administrators manage keys, not listings.)"""
    approver = await second_key(stack, admin_token)
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)
        created = await client.post("/api/v1/listings", json=listing_body(parcel, **rules), headers=agency(stack))
        assert created.status_code == 201, created.text
        lid = created.json()["listing_id"]
        reserve = rules.get("start_fen", 100_000_000) + 5 * rules.get("increment_fen", 1_000_000)
        entered = await client.post(f"/api/v1/listings/{lid}/reserve-price", json={"reserve_price_fen": reserve},
                                    headers=agency(stack))
        assert entered.status_code == 200, entered.text
        approved = await client.post(f"/api/v1/listings/{lid}/reserve-price/approve",
                                     headers=agency(stack, key=approver))
        assert approved.status_code == 200, approved.text
        published = await client.post(f"/api/v1/listings/{lid}/publish", headers=agency(stack))
        assert published.status_code == 200, published.text
        return await eventually(lambda: _in_bidding(client, lid), timeout=30.0)


async def _in_bidding(client, lid: str) -> dict | None:
    listing = (await client.get(f"/api/v1/listings/{lid}")).json()
    return listing if listing["state"] == "bidding" else None


async def bidding_listing(stack, admin_token: str) -> dict:
    """The demo 挂牌 listing in its listing period, or a new one when trading loaded no demo data."""
    async with stack.client() as client:
        found = (await client.get("/api/v1/listings", params={"mechanism": "listing", "state": "bidding"})).json()
    demo = [li for li in found["data"] if li["agency_id"] == GRANTOR]
    return demo[0] if demo else await open_listing(stack, admin_token)


async def eventually(probe, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def read_events(response, until, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """Server-sent events of a streaming httpx response until `until(event, data)` holds (or the deadline)."""
    seen: list[tuple[str, dict]] = []

    async def consume() -> None:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                seen.append((event, data))
                if until(event, data):
                    return

    await asyncio.wait_for(consume(), timeout)
    return seen
