"""The uniform-price quota auction through the gateway over the real trading service and registry: a holding
limit in the terms (units of the instrument), a bid beyond it refused (409 HOLDING_LIMIT), a tie at the
clearing price drawn in the order the revealed seed gives, each bidder told how its own bids fared (the
result's `own_bids`, the `outcome` of its own bids) and nobody else, and the unsold lots of a cancelled
auction carried into a later one once (trading-anchors.md §3.2, §3.3)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.integration.gateway.flows import agency, bearer, eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")
ISSUER = "AG-330100-FGW"
CENTRE = "AG-330100-GGZY"
INSTRUMENT = "energy_use_right:330100:2025"


def quota_body(supply: int, **rules) -> dict:
    now = datetime.now(UTC)
    return {"mechanism": "uniform_price", "title": "用能权有偿发放（网关测试）", "instrument": INSTRUMENT, "unit": "tce",
            "start_price_fen": 100_00, "increment_fen": 1, "deposit_fen": 2_000_000_00, "supply_lots": supply,
            "lot_size": "100", "announce_at": now.isoformat(), "bidding_opens_at": now.isoformat(),
            "bidding_closes_at": (now + timedelta(hours=1)).isoformat(), **rules}


async def published(stack, client, body: dict) -> dict:
    created = await client.post("/api/v1/listings", json=body, headers=agency(stack, ISSUER))
    assert created.status_code == 201, created.text
    reply = await client.post(f"/api/v1/listings/{created.json()['listing_id']}/publish",
                              headers=agency(stack, ISSUER))
    assert reply.status_code == 200, reply.text
    return reply.json()


async def holding(client, token: str, code: str) -> Decimal:
    reply = await client.get(f"/api/v1/enterprises/{code}/holdings", headers=bearer(token))
    assert reply.status_code == 200, reply.text
    return sum((Decimal(a["balance"]["value"]) for a in reply.json()["data"] if a["instrument"] == INSTRUMENT),
               Decimal(0))


async def decided(client, lid: str, token: str):
    reply = await client.get(f"/api/v1/listings/{lid}/result", headers=bearer(token))
    return reply.json() if reply.status_code == 200 else None


async def test_holding_limit_tie_draw_disclosure_and_rollover(stack, tokens) -> None:
    codes = {who: stack.enterprises[n].credit_code for n, who in enumerate(("ent1", "ent2"))}
    async with stack.client() as client:
        held = {who: await holding(client, tokens[who], code) for who, code in codes.items()}
        # The one holding more gets room for exactly 3 lots of 100 tce; the other for at least 3.
        big = max(held, key=held.get)
        small = "ent2" if big == "ent1" else "ent1"
        limit = format((held[big] + 300).normalize(), "f")  # e.g. 3111 (the registry writes 2811.000)
        quota = await published(stack, client, quota_body(4, holding_limit=limit))
        empty = await published(stack, client, quota_body(6))  # nobody bids: cancelled, all 6 lots unsold
        lid = quota["listing_id"]
        assert quota["rules"]["holding_limit"] == {"value": limit, "unit": "tce"}
        for who in ("ent1", "ent2"):
            reply = await client.post(f"/api/v1/listings/{lid}/registrations", json={"credit_code": codes[who]},
                                      headers=bearer(tokens[who]))
            assert reply.status_code == 201 and reply.json()["state"] == "qualified", reply.text

        async def place(who: str, lots: int):
            return await client.post(f"/api/v1/listings/{lid}/bids", headers=bearer(tokens[who]),
                                     json={"credit_code": codes[who], "price_fen": 200_00, "quantity_lots": lots})
        over = await place(big, 4)
        assert over.status_code == 409 and over.json()["reason"] == "HOLDING_LIMIT", over.text
        assert f"holding limit {limit} tce" in over.json()["detail"]
        bids = {big: (await place(big, 3)).json()["bid"], small: (await place(small, 3)).json()["bid"]}
        assert all(b["state"] == "accepted" for b in bids.values())

        # The window closes: 6 lots tie at 200.00 for 4, drawn in the order of the revealed seed.
        stack.trading_clock.advance(2 * 3600)
        public = await eventually(lambda: decided(client, lid, tokens["regulator"]), timeout=30.0)
        seed = bytes.fromhex((await client.get(f"/api/v1/listings/{lid}")).json()["rules"]["seed"])
        rank = {who: hashlib.sha256(seed + b"\x00" + b["bid_id"].encode()).digest()[:8].hex()
                for who, b in bids.items()}
        first, second = sorted(bids, key=rank.get)
        assert public["tie_draw"] == {"price": {"fen": 200_00, "currency": "CNY"}, "lots": 4,
                                      "ranks": [rank[first], rank[second]]}
        assert (public["supply_lots"], public["volume_lots"], public["unsold_lots"]) == (4, 4, 0)
        assert public["own_bids"] == []  # the regulator bid nothing

        for who, won, position in ((first, 3, 1), (second, 1, 2)):
            mine = (await client.get(f"/api/v1/listings/{lid}/result", headers=bearer(tokens[who]))).json()
            [told] = mine["own_bids"]  # its own bid only
            assert told["bid_id"] == bids[who]["bid_id"]
            assert (told["lots_won"], told["fill"], told["tied"], told["draw_position"], told["tied_bids"],
                    told["tie_rank"]) == (won, "full" if won == 3 else "partial", True, position, 2, rank[who])
            assert told["reason"] == ("" if won == 3 else "tie_draw")
            own = (await client.get(f"/api/v1/listings/{lid}/bids", params={"credit_code": codes[who]},
                                    headers=bearer(tokens[who]))).json()["data"]
            assert [b["outcome"]["lots_won"] for b in own] == [won]
        # Anyone else: the opened bids, never how each fared.
        for headers in (agency(stack, CENTRE), bearer(tokens["regulator"])):
            everyone = (await client.get(f"/api/v1/listings/{lid}/bids", headers=headers)).json()["data"]
            assert len(everyone) == 2 and all(b["outcome"] is None for b in everyone)

        # The empty auction's 6 lots are carried into a later one, once.
        cancelled = await eventually(lambda: decided(client, empty["listing_id"], tokens["regulator"]))
        assert (cancelled["outcome"], cancelled["unsold_lots"]) == ("cancelled", 6)
        later = await client.post("/api/v1/listings", headers=agency(stack, ISSUER),
                                  json=quota_body(2, rollover_from=[empty["listing_id"]]))
        assert later.status_code == 201, later.text
        rules = later.json()["rules"]
        assert (rules["supply_lots"], rules["rollover_lots"], rules["rolled_over"]) == (
            8, 6, [{"listing_id": empty["listing_id"], "lots": 6}])
        again = await client.post("/api/v1/listings", headers=agency(stack, ISSUER),
                                  json=quota_body(2, rollover_from=[empty["listing_id"], lid]))
        assert again.status_code == 400, again.text
        fields = {v["field"]: v["message"] for v in again.json()["errors"]}
        assert "already carried into" in fields["listing.rules.rollover_from[0]"]
        assert "sold all its lots" in fields["listing.rules.rollover_from[1]"]
        source = (await client.get(f"/api/v1/listings/{empty['listing_id']}")).json()["rules"]
        assert (source["unsold_lots"], source["rolled_into"]) == (6, later.json()["listing_id"])
