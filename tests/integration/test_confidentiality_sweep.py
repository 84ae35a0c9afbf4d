"""Sealed means sealed: the confidentiality sweep of issue 10.

While a 招标 (tender) and a uniform-price quota auction are open with sealed bids in — and a 挂牌 whose
底价 is set — every read of the suite is made as every principal: each GET route of the gateway's OpenAPI
with the real ids, each portal page, the live streams (replayed from before the sales), every Get/List read
of trading and the registry over gRPC, every message on the NATS bus and the /metrics of each service.
Before opening nobody but the trading centre may learn who registered or bid, how many or when; nobody but
the bidder itself a sealed amount; nobody the 底价. Each read is made once before anybody registered and
again once the bids are in: for a principal entitled to none of it, nothing may have changed. Then the
trading clock is moved past the opening and what the rules now disclose must be visible to whom they
disclose it, and still to nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import product

import grpc
import httpx
import nats
import pytest
import pytest_asyncio
from google.protobuf.json_format import MessageToDict
from prometheus_client.parser import text_string_to_metric_families
from yaosu.registry.v1 import registry_pb2, registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2, trading_pb2_grpc

from services.common.events.envelope import parse
from services.gateway.portal.routes import router as portal_router
from services.trading.clock import Clock
from tests.integration.gateway.flows import (
    GRANTOR,
    agency,
    bearer,
    eventually,
    free_parcel,
    open_listing,
    read_events,
)
from tests.integration.gateway.stack import gateway_stack
from tests.support.services import (
    ADMIN_KEY,
    EVALUATION_KEY,
    READER_KEY,
    REGISTRY_KEY,
    SERVICE_KEY,
    TRADING_KEY,
    on_behalf,
)
from tests.support.services import bearer as key_metadata

pytestmark = pytest.mark.asyncio(loop_scope="module")

CENTRE = "AG-330100-GGZY"         # the trading centre (公共资源交易中心): sees who takes part before opening
ISSUER = "AG-330100-FGW"          # issues the energy-use rights it auctions
SUPERVISOR = "AG-330100-JG"       # an agency with a regulator role: still not the trading centre
INSTRUMENT = "energy_use_right:330100:2025"
# Distinctive amounts, searched for in every answer (fen, and as the portal and people write them).
TENDER_START = 500_000_00
TENDER_BIDS = (987_654_32, 1_357_913_57)                 # ent1, ent2 (ent2 wins)
QUOTA_START, QUOTA_LOT, QUOTA_SUPPLY = 10_000_00, "10", 10
QUOTA_BIDS = ((27_643_19, 2), (29_158_73, 3))            # ent1, ent2: price per tce, lots
QUOTA_GUARANTEE = 1_000_000_00
LAND_INCREMENT = 1_000_000
RESERVE = 1_234_567_89                                    # the 挂牌's 底价 (flows.open_listing: start + 5 increments)
LAND_START = RESERVE - 5 * LAND_INCREMENT
SEALED_SALES = ("tender", "quota")
# Fields that count participants; before opening they must be absent or zero but to the trading centre.
COUNT_KEYS = frozenset({"registered_bidders", "accepted_bids", "bid_count", "bidder_count", "bidders",
                        "leading_bidder_number", "winner_bidder_number", "registrations", "bids", "allocations"})
# What changes between two reads whatever happened in between: the time, and the length of a service's
# audit journal (every act of the service, any sale or order, adds to it: an aggregate like its request counters).
VOLATILE_KEYS = frozenset({"server_time", "entries_checked"})


# ---------------------------------------------------------------- who reads
@dataclass(frozen=True)
class Viewer:
    name: str
    credit_code: str = ""      # an enterprise: its own registration, bids and holds are its own
    agency_id: str = ""
    regulator: bool = False
    author: bool = False       # the trading service itself (its own facts in the registry)

    @property
    def centre(self) -> bool:
        return self.agency_id == CENTRE


@dataclass
class HttpPrincipal:
    viewer: Viewer
    headers: dict[str, str]
    login: dict[str, str] | None          # the portal's login form; None: anonymous


@dataclass
class GrpcPrincipal:
    viewer: Viewer
    metadata: list[tuple[str, str]]


def agency_on_behalf(agency_id: str, *roles: str) -> list[tuple[str, str]]:
    return on_behalf(f"agency:{agency_id}/user:sweep", *roles)


# ---------------------------------------------------------------- what must not show
@dataclass(frozen=True)
class Secret:
    label: str
    sale: str                  # tender, quota, land
    patterns: tuple[re.Pattern, ...]
    owner: str = ""            # the enterprise whose own secret it is
    participation: bool = False  # who took part (not an amount): the sale's participant viewers may see it


def money_forms(fen: int) -> tuple[re.Pattern, ...]:
    """An amount in fen and in 元 (plain, with thousands separators as the portal writes it, in 万元)."""
    yuan = fen / 100
    forms = (str(fen), f"{yuan:.2f}", f"{yuan:,.2f}", f"{yuan / 10_000:.2f}万")
    return tuple(re.compile(rf"(?<![\d.]){re.escape(form)}(?![\d])") for form in forms)


def number_forms(number: str) -> tuple[re.Pattern, ...]:
    """A bidder number as a field value (JSON, protobuf text, an HTML cell), not any six digits."""
    return (re.compile(rf"bidder\w*\W{{1,6}}{number}\b"), re.compile(rf'"{number}"'),
            re.compile(rf">\s*{number}\s*<"))


@dataclass
class Sale:
    key: str
    listing: dict
    agency_id: str
    sealed: bool
    numbers: dict[str, str] = field(default_factory=dict)       # credit code → bidder number
    bidders: list[str] = field(default_factory=list)            # credit codes that bid
    receipts: list[str] = field(default_factory=list)           # of the sealed bids (commitment digests)

    @property
    def lid(self) -> str:
        return self.listing["listing_id"]

    def mentions(self) -> tuple[str, ...]:
        return (self.lid, self.listing["trade_code"])


@dataclass
class World:
    stack: object
    clock: Clock
    tokens: dict[str, str]
    codes: list[str]
    names: dict[str, str]
    accounts: dict[str, str]
    sales: dict[str, Sale]
    bus: list[tuple[str, bytes]]
    resume_from: int
    registry_addr: str
    run: dict
    baseline: dict = field(default_factory=dict)
    metrics_before: dict = field(default_factory=dict)
    trade_ids: list[str] = field(default_factory=list)
    hold_ids: list[str] = field(default_factory=list)
    movement_ids: list[str] = field(default_factory=list)
    opened: bool = False
    bus_mark: int = 0

    def participants_see(self, viewer: Viewer, sale: Sale) -> bool:
        """Who may learn who took part in `sale`, how many and when, at this stage (the policies'
        participants.sealed / live / opened)."""
        if viewer.centre or viewer.author:
            return True
        if self.opened:
            return viewer.regulator or viewer.agency_id == sale.agency_id
        return not sale.sealed and viewer.regulator

    def secrets(self) -> list[Secret]:
        found: list[Secret] = []
        if not self.opened:  # amounts are opened with the sale; the 底价 is disclosed by the decision
            tender, quota = self.sales["tender"], self.sales["quota"]
            for code, amount in zip(tender.bidders, TENDER_BIDS, strict=True):
                found.append(Secret(f"tender bid of {code}", "tender", money_forms(amount), owner=code))
            for code, (price, _lots) in zip(quota.bidders, QUOTA_BIDS, strict=True):
                found.append(Secret(f"quota bid of {code}", "quota", money_forms(price), owner=code))
            found.append(Secret("the 挂牌's 底价", "land", money_forms(RESERVE)))
            # A bidder number tells that somebody took part (the open 挂牌 shows its bids by number; a sealed
            # sale's numbers are published when it is opened).
            for sale in (tender, quota):
                for code, number in sale.numbers.items():
                    found.append(Secret(f"{sale.key} bidder number of {code}", sale.key, number_forms(number),
                                        owner=code, participation=True))
        return found

    def identities(self) -> list[tuple[Sale, str]]:
        """(sale, enterprise) pairs whose link must not show: each registrant — after opening, but the
        tender's winner (published with the result)."""
        pairs = []
        for sale in self.sales.values():
            for code in sale.numbers:
                if self.opened and sale.key == "tender" and code == sale.bidders[-1]:
                    continue
                pairs.append((sale, code))
        return pairs

    def marks(self, code: str) -> tuple[str, ...]:
        return tuple(m for m in (code, self.names.get(code, ""), self.accounts.get(code, "")) if m)


@dataclass
class Seen:
    viewer: Viewer
    channel: str
    what: str
    text: str
    data: object = None
    echo: tuple[str, ...] = ()   # values the caller itself sent (paths, ids): not disclosed by the answer


def leaks(world: World, seen: Seen) -> list[str]:
    """What this answer discloses that its reader may not learn at this stage."""
    text = seen.text
    for value in sorted(seen.echo, key=len, reverse=True):
        text = text.replace(value, "\u2022")
    asked = " ".join(seen.echo)
    found = []
    for secret in world.secrets():
        sale = world.sales[secret.sale]
        if secret.owner and secret.owner == seen.viewer.credit_code:
            continue
        if secret.participation and world.participants_see(seen.viewer, sale):
            continue
        if any(p.search(text) for p in secret.patterns):
            found.append(secret.label)
    for sale, code in world.identities():
        if code == seen.viewer.credit_code or world.participants_see(seen.viewer, sale):
            continue
        names_sale = any(m in text for m in sale.mentions())
        names_firm = any(m in text for m in world.marks(code))
        if (names_sale and (names_firm or any(m in asked for m in world.marks(code)))) or \
                (names_firm and any(m in asked for m in sale.mentions())):
            found.append(f"that {code} takes part in the {sale.key}")
    if not world.opened:
        found += [f"count {key} of the {sale}" for sale, key in counts(world, seen.data)
                  if not world.participants_see(seen.viewer, world.sales[sale])]
    return [f"{seen.viewer.name} · {seen.channel} · {seen.what}: {item}" for item in found]


def counts(world: World, data) -> Iterator[tuple[str, str]]:
    """(sale, field) of every non-empty participant count about a sealed sale in a JSON-like answer."""
    sealed = {world.sales[k].lid: k for k in SEALED_SALES}
    if isinstance(data, dict):
        listing_id = data.get("listing_id") or data.get("listingId")
        sale = sealed.get(listing_id) if isinstance(listing_id, str) else None
        if sale:
            for key, value in data.items():
                if key in COUNT_KEYS and value not in (None, 0, "", [], {}, "0"):
                    yield sale, key
        for value in data.values():
            yield from counts(world, value)
    elif isinstance(data, list):
        for value in data:
            yield from counts(world, value)


# ---------------------------------------------------------------- the world
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(nats_server, tmp_path_factory):
    # Rate limits off: the sweep reads fast, as nobody else does.
    async with gateway_stack(tmp_path_factory.mktemp("sweep"), nats_server.url, rate_limit_per_second=10_000,
                             rate_limit_burst=10_000) as running:
        running.clock = running.trading_clock  # the sweep moves trading's time past the openings
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack, nats_server) -> World:
    """The three sales published and bidding, every read made once (the baseline); then ent1 and ent2
    register and bid in the tender and the auction, ent3 only registers for the tender, ent4 stays out."""
    bus: list[tuple[str, bytes]] = []
    nc = await nats.connect(nats_server.url)

    async def collect(msg) -> None:
        bus.append((msg.subject, msg.data))
    await nc.subscribe(">", cb=collect)
    try:
        users = stack.enterprises
        tokens = {f"ent{n}": await stack.token(user) for n, user in enumerate(users, start=1)}
        tokens |= {"regulator": await stack.token(stack.regulator), "admin": await stack.token(stack.admin)}
        codes = [user.credit_code for user in users]
        settings = stack.app.state.settings
        w = World(stack, stack.clock, tokens, codes, {}, {}, {}, bus, stack.app.state.hub.last_seq,
                  settings.registry_addr, {})
        await learn_subjects(w)
        async with stack.client() as client:
            w.sales["tender"] = Sale("tender", await publish_tender(stack, client), GRANTOR, True)
            w.sales["quota"] = Sale("quota", await publish_auction(stack, client), ISSUER, True)
        w.sales["land"] = Sale("land", await open_listing(stack, tokens["admin"], start_fen=LAND_START,
                                                          increment_fen=LAND_INCREMENT), GRANTOR, False)
        for sale in w.sales.values():
            await eventually(lambda s=sale: in_state(stack, s.lid, "bidding"), timeout=30.0)
        await eventually(lambda: open_sales_counted(w), timeout=30.0)
        w.metrics_before = await scrape_all(w)
        w.baseline = await differential_reads(w)
        await take_part(w)
        w.hold_ids = [h for h in hold_ids(bus) if h]
        yield w
    finally:
        await nc.close()


async def learn_subjects(w: World) -> None:
    async with w.stack.client() as client:
        for n, code in enumerate(w.codes, start=1):
            headers = bearer(w.tokens[f"ent{n}"])
            w.names[code] = (await client.get(f"/api/v1/enterprises/{code}", headers=headers)).json()["name"]
            holdings = (await client.get(f"/api/v1/enterprises/{code}/holdings", headers=headers)).json()["data"]
            w.accounts[code] = next(a["account_id"] for a in holdings if a["instrument"] == "CNY")
        runs = (await client.get("/api/v1/evaluation/runs", headers=bearer(w.tokens["regulator"]))).json()["data"]
        w.run = runs[0]
    async with grpc.aio.insecure_channel(w.registry_addr) as channel:
        movements = await registry_pb2_grpc.RegistryServiceStub(channel).ListCashMovements(
            registry_pb2.ListCashMovementsRequest(page={"page_size": 2}), metadata=key_metadata(READER_KEY))
    w.movement_ids = [m.movement_id for m in movements.movements]


def tender_body(parcel: dict) -> dict:
    now = datetime.now(UTC)
    return {"mechanism": "tender", "title": f"{parcel['name']} 招标出让（保密检查）", "resource_id": parcel["resource_id"],
            "quantity": parcel["quantity"]["value"], "unit": parcel["quantity"]["unit"],
            "start_price_fen": TENDER_START, "deposit_fen": 1_000_000, "sale_kind": "new_industrial_land",
            "announce_at": now.isoformat(), "bidding_opens_at": (now + timedelta(seconds=1)).isoformat(),
            "bidding_closes_at": (now + timedelta(hours=1)).isoformat(),
            "opening_at": (now + timedelta(hours=2)).isoformat()}


def auction_body() -> dict:
    now = datetime.now(UTC)
    return {"mechanism": "uniform_price", "title": "用能权有偿发放（保密检查）", "instrument": INSTRUMENT, "unit": "tce",
            "start_price_fen": QUOTA_START, "increment_fen": 1, "deposit_fen": QUOTA_GUARANTEE,
            "supply_lots": QUOTA_SUPPLY, "lot_size": QUOTA_LOT, "bidder_cap_lots": 5,
            "announce_at": now.isoformat(), "bidding_opens_at": (now + timedelta(seconds=1)).isoformat(),
            "bidding_closes_at": (now + timedelta(hours=1)).isoformat()}


async def publish_tender(stack, client) -> dict:
    parcel = await free_parcel(stack, client)
    return await create_and_publish(stack, client, tender_body(parcel), GRANTOR)


async def publish_auction(stack, client) -> dict:
    return await create_and_publish(stack, client, auction_body(), ISSUER)


async def create_and_publish(stack, client, body: dict, agency_id: str) -> dict:
    created = await client.post("/api/v1/listings", json=body, headers=agency(stack, agency_id))
    assert created.status_code == 201, created.text
    published = await client.post(f"/api/v1/listings/{created.json()['listing_id']}/publish",
                                  headers=agency(stack, agency_id))
    assert published.status_code == 200, published.text
    return published.json()


async def in_state(stack, lid: str, state: str) -> bool:
    async with stack.client() as client:
        return (await client.get(f"/api/v1/listings/{lid}", headers=agency(stack, CENTRE))).json()["state"] == state


async def open_sales_counted(w: World) -> bool:
    """Trading's open-sales gauge (refreshed every few seconds) counts the sales just published."""
    gauges = samples((await scrape_all(w))["trading"])
    async with w.stack.client() as client:
        for mechanism in ("tender", "uniform_price"):
            listed = (await client.get("/api/v1/listings", params={"mechanism": mechanism, "page_size": 500})).json()
            expected = sum(li["state"] in ("announced", "bidding") for li in listed["data"])
            if gauges.get(("trading_open_sales", (("mechanism", mechanism), ("state", "published")))) != expected:
                return False
    return True


async def take_part(w: World) -> None:
    """Registrations and bids through the API, as the enterprises themselves. Nobody takes part in the
    挂牌: it is there for its 底价 (its bids are public by bidder number and would change what all read)."""
    tender, quota = w.sales["tender"], w.sales["quota"]
    async with w.stack.client() as client:
        for n, code in enumerate(w.codes[:3], start=1):
            for sale in (tender, quota) if n < 3 else (tender,):
                reply = await client.post(f"/api/v1/listings/{sale.lid}/registrations", json={"credit_code": code},
                                          headers=bearer(w.tokens[f"ent{n}"]))
                assert reply.status_code == 201, reply.text
                assert reply.json()["state"] == "qualified", reply.text
                sale.numbers[code] = reply.json()["bidder_number"]
        for n, code in enumerate(w.codes[:2], start=1):
            for sale, bid in ((tender, {"price_fen": TENDER_BIDS[n - 1]}),
                              (quota, {"price_fen": QUOTA_BIDS[n - 1][0], "quantity_lots": QUOTA_BIDS[n - 1][1]})):
                placed = await client.post(f"/api/v1/listings/{sale.lid}/bids", json={"credit_code": code, **bid},
                                           headers=bearer(w.tokens[f"ent{n}"]))
                assert placed.status_code == 201, placed.text
                assert placed.json()["bid"]["sealed"], placed.text
                sale.bidders.append(code)
                sale.receipts.append(placed.json()["bid"]["receipt"])

    async def holds_recorded():
        return len(hold_ids(w.bus)) >= 5  # 3 deposits and 2 guarantees, as the registry publishes them
    await eventually(holds_recorded, timeout=20.0)


def hold_ids(bus) -> list[str]:
    found = []
    for subject, raw in bus:
        if subject.startswith("registry.ledger.hold"):
            data = parse(raw)[1]
            found += [p.get("hold_id", "") for p in data.get("postings", [])]
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- principals
def http_principals(w: World) -> list[HttpPrincipal]:
    stack, users = w.stack, w.stack.enterprises
    found = [HttpPrincipal(Viewer("anonymous"), {}, None)]
    for n in (1, 3, 4):  # a bidder, a registrant that did not bid, an enterprise that stayed out
        user = users[n - 1]
        found.append(HttpPrincipal(Viewer(f"ent{n}", credit_code=user.credit_code), bearer(w.tokens[f"ent{n}"]),
                                   {"username": user.username, "password": user.password}))
    found.append(HttpPrincipal(Viewer("regulator", regulator=True), bearer(w.tokens["regulator"]),
                               {"username": stack.regulator.username, "password": stack.regulator.password}))
    found.append(HttpPrincipal(Viewer("admin"), bearer(w.tokens["admin"]),
                               {"username": stack.admin.username, "password": stack.admin.password}))
    for agency_id in (GRANTOR, ISSUER, CENTRE, SUPERVISOR):
        found.append(HttpPrincipal(Viewer(agency_id, agency_id=agency_id), agency(stack, agency_id),
                                   {"api_key": stack.agency_keys[agency_id]}))
    return found


def grpc_principals(w: World) -> list[GrpcPrincipal]:
    ent1, ent4 = w.codes[0], w.codes[3]
    return [
        GrpcPrincipal(Viewer("gRPC regulator", regulator=True), key_metadata(READER_KEY)),
        GrpcPrincipal(Viewer("gRPC admin"), key_metadata(ADMIN_KEY)),
        GrpcPrincipal(Viewer("gRPC public (gateway key alone)"), key_metadata(SERVICE_KEY)),
        GrpcPrincipal(Viewer("gRPC bidder ent1", credit_code=ent1), on_behalf(f"enterprise:{ent1}")),
        GrpcPrincipal(Viewer("gRPC outsider ent4", credit_code=ent4), on_behalf(f"enterprise:{ent4}")),
        GrpcPrincipal(Viewer(f"gRPC {GRANTOR}", agency_id=GRANTOR), agency_on_behalf(GRANTOR, "grantor")),
        GrpcPrincipal(Viewer(f"gRPC {ISSUER}", agency_id=ISSUER),
                      agency_on_behalf(ISSUER, "issuer", "grantor", "data_provider")),
        GrpcPrincipal(Viewer(f"gRPC {CENTRE}", agency_id=CENTRE), agency_on_behalf(CENTRE, "trading_centre")),
        GrpcPrincipal(Viewer(f"gRPC {SUPERVISOR}", agency_id=SUPERVISOR), agency_on_behalf(SUPERVISOR, "regulator")),
        GrpcPrincipal(Viewer("gRPC registry service"), key_metadata(REGISTRY_KEY)),
        GrpcPrincipal(Viewer("gRPC evaluation service"), key_metadata(EVALUATION_KEY)),
        GrpcPrincipal(Viewer("gRPC trading service", author=True), key_metadata(TRADING_KEY)),
    ]


# ---------------------------------------------------------------- REST
async def rest_requests(w: World) -> list[tuple[str, dict[str, str]]]:
    """Every GET route of the OpenAPI with the real ids (and filters that name them); the streams apart."""
    async with w.stack.client() as client:
        spec = (await client.get("/openapi.json")).json()
    tender, quota, land = (w.sales[k] for k in ("tender", "quota", "land"))
    probes = [w.codes[0], w.codes[2], w.codes[3]]   # a bidder, a registrant, an outsider
    values = {"listing_id": [s.lid for s in w.sales.values()], "credit_code": probes,
              "resource_id": [tender.listing["resource_id"], land.listing["resource_id"]],
              "instrument": [INSTRUMENT], "trade_id": w.trade_ids or ["T-NONE"],
              "service": ["registry", "evaluation", "trading"], "run_id": [w.run["run_id"]]}
    extra_queries = {
        "/api/v1/listings": [{}, {"mechanism": "tender"}, {"mechanism": "uniform_price"}, {"agency_id": GRANTOR}],
        "/api/v1/listings/{listing_id}/bids": [{}, *({"credit_code": c} for c in probes[:1] + [w.codes[1]])],
        "/api/v1/regulator/trades": [{}, *({"listing_id": s.lid} for s in (tender, quota))],
        "/api/v1/enterprises/{credit_code}/indicators": [{"year": str(w.run["year"])}],
    }
    found = []
    for template, operations in spec["paths"].items():
        if "get" not in operations or template.endswith("/events"):
            continue
        params = [p for p in operations["get"].get("parameters", []) if p["in"] == "path"]
        required = [p["name"] for p in operations["get"].get("parameters", [])
                    if p["in"] == "query" and p.get("required")]
        queries = extra_queries.get(template, [{}])
        assert all(name in q for q in queries for name in required), f"no value for {required} of {template}"
        names = [p["name"] for p in params if p["name"] != "account_id"]
        missing = [n for n in names if n not in values]
        assert not missing, f"no ids to read {template} with: {missing}"
        for combo in product(*(values[n] for n in names)):
            path = template
            for name, value in zip(names, combo, strict=True):
                path = path.replace("{" + name + "}", value)
            if "{account_id}" in path:
                path = path.replace("{account_id}", w.accounts[dict(zip(names, combo, strict=True))["credit_code"]])
            found += [(path, query) for query in queries]
    return found + [(path, {}) for path in unlisted_routes(w)]


def unlisted_routes(w: World) -> list[str]:
    """GET routes outside the OpenAPI and the portal (health, the docs); the metrics have their own port."""
    portal = {route.path for route in portal_router.routes}
    return [route.path for route in w.stack.app.routes
            if "GET" in (getattr(route, "methods", None) or ()) and not getattr(route, "include_in_schema", True)
            and route.path not in portal]


async def concurrently(calls: list, limit: int = 4) -> list:
    """Reads a few at a time: the suite answers one while the test sends the next."""
    gate = asyncio.Semaphore(limit)

    async def one(call):
        async with gate:
            return await call()
    return list(await asyncio.gather(*(one(call) for call in calls)))


async def rest_sweep(w: World, principals: list[HttpPrincipal]) -> list[Seen]:
    requests = await rest_requests(w)
    async with w.stack.client() as client:
        async def get(principal: HttpPrincipal, path: str, query: dict) -> Seen:
            reply = await client.get(path, params=query, headers=principal.headers)
            assert reply.status_code < 500, (principal.viewer.name, path, reply.text)
            return Seen(principal.viewer, "REST", f"GET {path} {query or ''} → {reply.status_code}", reply.text,
                        json_or_none(reply), (path, *query.values()))
        return await concurrently([partial(get, principal, path, query) for principal in principals
                                   for path, query in requests])


def json_or_none(reply: httpx.Response):
    with contextlib.suppress(ValueError):
        return reply.json()
    return None


# ---------------------------------------------------------------- portal
def portal_pages(w: World) -> list[str]:
    """Every GET page of the portal (listing pages for each sale)."""
    pages = []
    for route in portal_router.routes:
        if "GET" not in getattr(route, "methods", ()):
            continue
        if "{listing_id}" in route.path:
            pages += [route.path.replace("{listing_id}", s.lid) for s in w.sales.values()]
        else:
            assert "{" not in route.path, f"no ids to read the page {route.path} with"
            pages.append(route.path)
    return pages


async def portal_sweep(w: World, principals: list[HttpPrincipal]) -> list[Seen]:
    seen = []
    pages = portal_pages(w)
    for principal in principals:
        async with w.stack.client(follow_redirects=True) as client:
            if principal.login is not None:
                login = await client.post("/login", data=principal.login, follow_redirects=False)
                assert login.status_code == 303, (principal.viewer.name, login.text)
            for page in pages:
                reply = await client.get(page)
                assert reply.status_code < 500, (principal.viewer.name, page, reply.text)
                seen.append(Seen(principal.viewer, "portal", f"{page} → {reply.url.path}", reply.text, None, (page,)))
    return seen


# ---------------------------------------------------------------- live streams
async def stream_sweep(w: World, principals: list[HttpPrincipal]) -> list[Seen]:
    """Each sale's stream replayed from before the sales were published, up to its state; the quota
    market's book stream."""
    seen = []
    async with w.stack.client() as client:
        markets = (await client.get("/api/v1/markets")).json()
        streams = [(f"/api/v1/listings/{s.lid}/events", "state") for s in w.sales.values()]
        streams += [(f"/api/v1/markets/{m['instrument']}/events", "book") for m in markets[:1]]
        for principal, (path, last) in product(principals, streams):
            headers = {**principal.headers, "Last-Event-ID": str(w.resume_from)}
            async with client.stream("GET", path, headers=headers) as stream:
                assert stream.status_code == 200, (principal.viewer.name, path)
                events = await read_events(stream, lambda event, _data, last=last: event == last)
            for event, data in events:
                seen.append(Seen(principal.viewer, "SSE", f"{path} {event}", json.dumps(data, ensure_ascii=False),
                                 data, (path,)))
    return seen


# ---------------------------------------------------------------- gRPC
SERVICES = {"registry": (registry_pb2, registry_pb2_grpc.RegistryServiceStub, "RegistryService"),
            "trading": (trading_pb2, trading_pb2_grpc.TradingServiceStub, "TradingService")}
READS = ("Get", "List", "Verify")


def read_methods(service: str):
    module, _, name = SERVICES[service]
    return [m for m in module.DESCRIPTOR.services_by_name[name].methods if m.name.startswith(READS)]


def field_values(w: World) -> dict[str, list[str]]:
    probes = [w.codes[0], w.codes[2], w.codes[3]]
    return {"listing_id": [s.lid for s in w.sales.values()], "credit_code": probes, "holder": probes,
            "account_id": [w.accounts[c] for c in probes], "hold_id": w.hold_ids, "movement_id": w.movement_ids,
            "resource_id": [w.sales["tender"].listing["resource_id"]], "agency_id": [GRANTOR, CENTRE],
            "code": [INSTRUMENT], "instrument": [INSTRUMENT], "trade_id": w.trade_ids or ["T-NONE"]}


def read_requests(w: World, method) -> list:
    """Requests of a read RPC with the real ids: a Get with each (every pair for two), a List unfiltered
    and filtered by each id it takes."""
    values = field_values(w)
    request_type = getattr(SERVICES["trading" if method.full_name.startswith("yaosu.trading")
                                    else "registry"][0], method.input_type.name)
    keys = [f.name for f in method.input_type.fields if f.name in values]
    extras = {"page": {"page_size": 500}} if "page" in [f.name for f in method.input_type.fields] else {}
    if method.name.startswith("Get"):
        combos = [dict(zip(keys, combo, strict=True)) for combo in product(*(values[k] for k in keys))]
    elif method.name == "ListBids":
        combos = [{"listing_id": lid, "credit_code": code}
                  for lid, code in product(values["listing_id"], ["", *values["credit_code"], w.codes[1]])]
    else:
        combos = [{}] + [{key: value} for key in keys for value in values[key]]
    return [request_type(**combo, **extras) for combo in combos]


async def grpc_sweep(w: World, principals: list[GrpcPrincipal]) -> list[Seen]:
    seen = []
    addresses = {"registry": w.registry_addr, "trading": f"127.0.0.1:{w.stack.trading.grpc_port}"}
    for service, address in addresses.items():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = SERVICES[service][1](channel)
            calls = [partial(grpc_read, stub, service, method.name, principal, request)
                     for method in read_methods(service) for request in read_requests(w, method)
                     for principal in principals]
            seen += await concurrently(calls)
    return seen


async def grpc_read(stub, service: str, method: str, principal: GrpcPrincipal, request) -> Seen:
    asked = MessageToDict(request, preserving_proto_field_name=True)
    echo = tuple(v for v in asked.values() if isinstance(v, str))
    what = f"{method}({asked})"
    try:
        reply = await getattr(stub, method)(request, metadata=principal.metadata, timeout=30)
    except grpc.aio.AioRpcError as error:
        assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (what, error)
        text = f"{error.code().name} {error.details()} {error.trailing_metadata()}"
        return Seen(principal.viewer, f"gRPC {service}", what, text, None, echo)
    return Seen(principal.viewer, f"gRPC {service}", what, str(reply),
                MessageToDict(reply, preserving_proto_field_name=True), echo)


# ---------------------------------------------------------------- the bus and the metrics
BUS = Viewer("NATS subscriber")


def bus_seen(w: World, since: int = 0) -> list[Seen]:
    seen = []
    for subject, raw in w.bus[since:]:
        text = raw.decode("utf-8", errors="replace")
        data = None
        with contextlib.suppress(Exception):
            data = parse(raw)[1]
        seen.append(Seen(BUS, "NATS", subject, f"{subject} {text}", data))
    return seen


def sealed_facts(w: World, since: int = 0) -> list[str]:
    """Trading's facts about a sealed sale other than its publication (none may be published before
    opening: each would tell that somebody registered or bid, and when)."""
    found = []
    for subject, raw in w.bus[since:]:
        if not subject.startswith("trading.") or subject == "trading.listing.published":
            continue
        text = raw.decode("utf-8", errors="replace")
        for key in SEALED_SALES:
            if any(m in text for m in w.sales[key].mentions()):
                found.append(f"{subject} about the {key}")
    return found


def metrics_urls(w: World) -> dict[str, str]:
    settings = w.stack.app.state.settings
    return {"gateway": w.stack.metrics_url, "registry": settings.registry_metrics_url,
            "evaluation": settings.evaluation_metrics_url, "trading": settings.trading_metrics_url}


async def scrape_all(w: World) -> dict[str, str]:
    found = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for name, url in metrics_urls(w).items():
            found[name] = (await client.get(url)).text
    return found


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sealed_metric_moves(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Samples of a sealed mechanism, or of bids but of an open one, that moved while the bids were sealed:
    counting them as they come would tell how many and when."""
    moved = []
    for service, text in after.items():
        old = samples(before[service])
        for (name, labels), value in samples(text).items():
            mechanism = dict(labels).get("mechanism", "")
            sealed = mechanism in ("tender", "uniform_price")
            bids = "bid" in name and mechanism not in ("listing", "english")
            if (sealed or bids) and old.get((name, labels), 0.0) != value:
                moved.append(f"{service}: {name}{dict(labels)} {old.get((name, labels), 0.0)} → {value}")
    return moved


# ---------------------------------------------------------------- differential
OWN_LISTS = ("ListAccounts(", "ListRegistrations(", "ListBids(")
MONEY_READS = ("/holdings", "ListAccounts(", "GetAccount(", "GetAccountHistory(", "ListHolds(", "GetHold(")


@dataclass(frozen=True)
class Answer:
    seen: Seen
    value: object


async def differential_reads(w: World) -> dict[tuple[str, str], Answer]:
    """Every answer of the REST routes and of the gRPC reads, by reader and request (but the trading centre's
    and trading's own: taking part may change any of theirs)."""
    http = [p for p in http_principals(w) if not (p.viewer.centre or p.viewer.author)]
    rpc = [p for p in grpc_principals(w) if not (p.viewer.centre or p.viewer.author)]
    return answers_of([*await rest_sweep(w, http), *await grpc_sweep(w, rpc)])


def answers_of(seen: list[Seen]) -> dict[tuple[str, str], Answer]:
    return {(s.viewer.name, s.what): Answer(s, normalised(s.data if s.data is not None else s.text)) for s in seen}


def normalised(data):
    if isinstance(data, dict):
        return {k: normalised(v) for k, v in data.items() if k not in VOLATILE_KEYS}
    if isinstance(data, list):
        return [normalised(v) for v in data]
    return data


def may_change(w: World, seen: Seen) -> bool:
    """Whether taking part may change this answer: for the trading centre and the trading service any; for
    an enterprise its own records — asked by its own code or account, or a list that shows an enterprise
    only its own (its accounts, its registration and bids in a sale; what else such an answer shows is
    searched like any other)."""
    viewer = seen.viewer
    if viewer.centre or viewer.author:
        return True
    if viewer.regulator and any(read in seen.what for read in MONEY_READS):
        # Regulators supervise holdings: a deposit hold shows as money held, never with the sale it is for
        # (what such an answer names is searched like any other).
        return True
    if not viewer.credit_code:
        return False
    if any(mark in value for mark in w.marks(viewer.credit_code) for value in seen.echo):
        return True
    unfiltered = "credit_code" not in seen.what and "holder" not in seen.what
    return unfiltered and (seen.what.startswith(OWN_LISTS) or "/bids " in seen.what)


# ---------------------------------------------------------------- before opening
def report(found: list[str]) -> str:
    return f"{len(found)} disclosures:\n" + "\n".join(sorted(set(found))[:200])


def detected(world: World, seen: list[Seen], reader: str) -> bool:
    """The search itself: what `reader` may see of its own (a bidder its bid, the centre who takes part) is
    found when read as anybody else — an empty list of disclosures means none, not a blind search."""
    control = Viewer("control")
    return any(leaks(world, replace(s, viewer=control)) for s in seen if s.viewer.name == reader)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sealed_reads(world) -> dict[str, list[Seen]]:
    """The REST and gRPC reads with the bids in, once (searched, and compared with the baseline)."""
    return {"rest": await rest_sweep(world, http_principals(world)),
            "grpc": await grpc_sweep(world, grpc_principals(world))}


async def test_no_rest_route_discloses_a_sealed_sale(world, sealed_reads) -> None:
    seen = sealed_reads["rest"]
    assert len({s.what.split(" ")[1] for s in seen}) > 60  # every route with every id was read
    assert detected(world, seen, "ent1") and detected(world, seen, CENTRE)
    found = [leak for s in seen for leak in leaks(world, s)]
    assert found == [], report(found)


async def test_no_portal_page_discloses_a_sealed_sale(world) -> None:
    seen = await portal_sweep(world, http_principals(world))
    assert detected(world, seen, "ent1")  # its own registration, on the sale's page
    found = [leak for s in seen for leak in leaks(world, s)]
    assert found == [], report(found)


async def test_no_stream_discloses_a_sealed_sale(world) -> None:
    seen = await stream_sweep(world, http_principals(world))
    found = [leak for s in seen for leak in leaks(world, s)]
    # Of a sealed sale no fact about a registration or a bid is streamed at all.
    found += [f"{s.viewer.name} · {s.what}" for s in seen if s.channel == "SSE"
              and any(w in s.what for w in (world.sales["tender"].lid, world.sales["quota"].lid))
              and s.what.split(" ")[-1].startswith(("bid.", "registration."))]
    assert found == [], report(found)


async def test_no_grpc_read_discloses_a_sealed_sale(world, sealed_reads) -> None:
    seen = sealed_reads["grpc"]
    covered = {s.what.split("(")[0] for s in seen}
    assert covered == {m.name for service in SERVICES for m in read_methods(service)}
    assert detected(world, seen, "gRPC bidder ent1") and detected(world, seen, f"gRPC {CENTRE}")
    found = [leak for s in seen for leak in leaks(world, s)]
    assert found == [], report(found)


async def test_no_read_changed_for_whom_sealed_bids_are_sealed(world, sealed_reads) -> None:
    """The same reads as before anybody registered: to a reader entitled to none of it, identical."""
    after = answers_of([*sealed_reads["rest"], *sealed_reads["grpc"]])
    compared = [key for key in after if key in world.baseline]
    assert len(compared) > 1000
    changed = [key for key in compared if world.baseline[key].value != after[key].value
               and not may_change(world, after[key].seen)]
    assert changed == [], report([" · ".join(key) for key in changed]) + "\n" + "\n".join(
        f"{' · '.join(key)}\n  before: {str(world.baseline[key].value)[:500]}\n  after:  {str(after[key].value)[:500]}"
        for key in changed[:5])


async def test_the_bus_carries_nothing_sealed(world) -> None:
    found = [leak for s in bus_seen(world) for leak in leaks(world, s)] + sealed_facts(world)
    assert found == [], report(found)


async def test_no_metric_moves_with_sealed_bids_or_shows_them(world) -> None:
    after = await scrape_all(world)
    found = sealed_metric_moves(world.metrics_before, after)
    for service, text in after.items():
        found += leaks(world, Seen(Viewer(f"/metrics of {service}"), "metrics", service, text))
    assert found == [], report(found)


async def test_an_open_sale_shows_its_bids_on_the_bus_but_not_its_bidders(world) -> None:
    """A 挂牌's bids are public by bidder number, but who placed them only the trading centre and regulators
    learn while it runs (participants.live): not every subscriber of trading's facts."""
    mark, code = len(world.bus), world.codes[3]   # ent4, which has taken part in nothing so far
    lid = (await open_listing(world.stack, world.tokens["admin"]))["listing_id"]
    async with world.stack.client() as client:
        registered = await client.post(f"/api/v1/listings/{lid}/registrations", json={"credit_code": code},
                                       headers=bearer(world.tokens["ent4"]))
        assert registered.status_code == 201, registered.text
        price = (await client.get(f"/api/v1/listings/{lid}/state")).json()["next_minimum_bid"]["fen"]
        placed = await client.post(f"/api/v1/listings/{lid}/bids", json={"credit_code": code, "price_fen": price},
                                   headers=bearer(world.tokens["ent4"]))
        assert placed.status_code == 201, placed.text

    async def bid_published():
        facts = [(subject, *parse(raw)) for subject, raw in world.bus[mark:]
                 if subject.startswith("trading.") and lid.encode() in raw]
        return facts if any(subject == "trading.bid.accepted" for subject, _, _ in facts) else None
    facts = await eventually(bid_published, timeout=20.0)
    named = sorted({f"{subject}: actor {envelope.actor!r}, data {data}" for subject, envelope, data in facts
                    if any(mark in f"{envelope.actor} {envelope.subject} {data}" for mark in world.marks(code))})
    assert named == [], "\n".join(named)


# ---------------------------------------------------------------- after opening
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def opened(world) -> World:
    """Trading's clock past the tender's opening, the auction's close and the 挂牌's end: all decided."""
    world.bus_mark = len(world.bus)
    world.clock.advance(3 * 3600)
    for sale, state in (("tender", "awarded"), ("quota", "awarded"), ("land", "unsold")):
        await eventually(lambda s=sale, st=state: in_state(world.stack, world.sales[s].lid, st), timeout=30.0)
    world.opened = True
    async with world.stack.client() as client:
        trades = (await client.get("/api/v1/regulator/trades", params={"page_size": 500},
                                   headers=bearer(world.tokens["regulator"]))).json()["data"]
    world.trade_ids = [t["trade_id"] for t in trades if t["listing_id"] in {s.lid for s in world.sales.values()}]
    return world


async def headers_of(world: World, who: str) -> dict[str, str]:
    if who == "anonymous":
        return {}
    return bearer(world.tokens[who]) if who in world.tokens else agency(world.stack, who)


async def read(world: World, who: str, path: str, **params) -> httpx.Response:
    async with world.stack.client() as client:
        return await client.get(path, params=params, headers=await headers_of(world, who))


async def test_after_opening_the_results_and_counts_are_public(opened) -> None:
    tender, quota = opened.sales["tender"], opened.sales["quota"]
    winner = tender.bidders[1]
    for who in ("anonymous", "ent4", SUPERVISOR):
        result = (await read(opened, who, f"/api/v1/listings/{tender.lid}/result")).json()
        assert result["outcome"] == "sold" and result["clearing_price"]["fen"] == TENDER_BIDS[1], result
        assert result["winner_bidder_number"] == tender.numbers[winner] and result["bid_count"] == 2, result
        state = (await read(opened, who, f"/api/v1/listings/{tender.lid}/state")).json()
        assert state["registered_bidders"] == 3, state
        async with opened.stack.client() as client, client.stream(
                "GET", f"/api/v1/listings/{tender.lid}/events", headers=(await headers_of(opened, who))) as stream:
            events = await read_events(stream, lambda event, _data: event == "state")
        assert events[-1][1]["registered_bidders"] == 3, events
        cleared = (await read(opened, who, f"/api/v1/listings/{quota.lid}/result")).json()
        # 5 of 10 lots demanded: undersubscribed, so every valid bid is filled at the public reserve (§3.1).
        assert (cleared["outcome"], cleared["reason"]) == ("sold", "undersubscribed_at_reserve"), cleared
        assert cleared["clearing_price"]["fen"] == QUOTA_START, cleared
        assert cleared["volume_lots"] == QUOTA_BIDS[0][1] + QUOTA_BIDS[1][1], cleared
        assert {a["credit_code"] for a in cleared["allocations"]} == {""}, cleared  # who won: not to them
    counted = samples((await scrape_all(opened))["trading"])  # the sealed bids are counted at their opening
    for mechanism in ("tender", "uniform_price"):
        key = ("trading_bids_total", (("mechanism", mechanism), ("reason", ""), ("result", "accepted")))
        before = samples(opened.metrics_before["trading"])[key]
        assert counted[key] == before + 2, (mechanism, before, counted[key])


@pytest.mark.parametrize("who", ["regulator", GRANTOR, CENTRE])
async def test_after_opening_who_took_part_goes_to_whom_the_rules_name(opened, who) -> None:
    tender = opened.sales["tender"]
    registrations = await read(opened, who, f"/api/v1/listings/{tender.lid}/registrations")
    assert registrations.status_code == 200, registrations.text
    assert {r["credit_code"]: r["bidder_number"] for r in registrations.json()["data"]} == tender.numbers
    bids = (await read(opened, who, f"/api/v1/listings/{tender.lid}/bids")).json()["data"]
    assert sorted(b["price"]["fen"] for b in bids) == sorted(TENDER_BIDS)


@pytest.mark.parametrize("who", ["anonymous", "ent4", "admin", ISSUER, SUPERVISOR])
async def test_after_opening_who_took_part_stays_with_them(opened, who) -> None:
    tender = opened.sales["tender"]
    registrations = await read(opened, who, f"/api/v1/listings/{tender.lid}/registrations")
    assert registrations.status_code in (401, 403), registrations.text


@pytest.mark.parametrize(("who", "sees"), [("regulator", True), (GRANTOR, True), ("anonymous", False),
                                           ("ent4", False), (CENTRE, False), (ISSUER, False)])
async def test_after_the_decision_the_reserve_goes_to_whom_the_rules_name(opened, who, sees) -> None:
    land = opened.sales["land"]
    listing = (await read(opened, who, f"/api/v1/listings/{land.lid}")).json()
    result = (await read(opened, who, f"/api/v1/listings/{land.lid}/result")).json()
    assert result["outcome"] == "unsold", result
    expected = {"fen": RESERVE, "currency": "CNY"} if sees else None
    assert (listing["reserve_price"], result["reserve_price"]) == (expected, expected), (listing, result)


async def test_the_opening_is_published_with_its_receipts(opened) -> None:
    async def published():
        kinds = {subject for subject, _ in opened.bus[opened.bus_mark:]}
        return {"trading.tender.opened", "trading.auction.cleared"} <= kinds
    await eventually(published, timeout=20.0)
    facts = {s: parse(raw)[1] for s, raw in opened.bus[opened.bus_mark:] if s.startswith("trading.")}
    tender, auction = facts["trading.tender.opened"], facts["trading.auction.cleared"]
    assert tender["registered_bidders"] == 3 and sorted(tender["receipts"]) == sorted(opened.sales["tender"].receipts)
    assert auction["registered_bidders"] == 2 and sorted(auction["receipts"]) == sorted(opened.sales["quota"].receipts)


def told_everything(world: World, viewer: Viewer) -> bool:
    return all(world.participants_see(viewer, sale) for sale in world.sales.values())


async def test_after_opening_no_read_names_whom_the_rules_do_not(opened) -> None:
    """The sweep again: losing bidders and mere registrants stay unnamed to whom the rules do not name them
    (the tender's winner is published with the result). Of the bus, trading's facts: the settlement the
    opening starts names its parties in the ledger's, as a settlement must."""
    http = [p for p in http_principals(opened) if not told_everything(opened, p.viewer)]
    rpc = [p for p in grpc_principals(opened) if not told_everything(opened, p.viewer)]
    assert len(http) == 8 and len(rpc) == 9  # the regulators, the centre and trading itself are told all of it
    seen = [*await rest_sweep(opened, http), *await portal_sweep(opened, http), *await stream_sweep(opened, http),
            *await grpc_sweep(opened, rpc),
            *[s for s in bus_seen(opened, opened.bus_mark) if s.what.startswith("trading.")]]
    assert detected(opened, seen, GRANTOR)  # the tender's agency is now told who took part in it
    found = [leak for s in seen for leak in leaks(opened, s)]
    assert found == [], report(found)

