"""The portal: server-rendered pages (Jinja2) over the same service clients and rules as the API.

Pages read through the services directly; every change goes through /api/v1 from the page's small
script (same cookie session, Idempotency-Key header), so the API's authorisation is the only one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import grpc
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from yaosu.evaluation.v1 import evaluation_pb2 as epb
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.deps import REFRESH_COOKIE, SESSION_COOKIE, ClientsDep, OptionalUser
from services.gateway.api.limits import retry_after
from services.gateway.api.routes.listings import listing_view
from services.gateway.api.schemas import (
    AccountPublic,
    ChangeNoticePublic,
    EnterprisePublic,
    ListingPublic,
    MarketStatisticsPublic,
    OrderBookPublic,
    RegistrationPublic,
    TradePublic,
    from_proto,
)
from services.gateway.identity import Role, User
from services.gateway.login import LoginRefused, WrongCredentials, client_address, log_in
from services.gateway.portal import charts, monitor
from services.gateway.portal.cookies import clear_session, set_session
from services.gateway.portal.health import read_all
from services.gateway.portal.i18n import translator
from services.gateway.portal.links import is_safe_link
from services.gateway.sessions import SessionEnded

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


BEIJING = ZoneInfo("Asia/Shanghai")
DECIDED_STATES = (tpb.LISTING_STATE_AWARDED, tpb.LISTING_STATE_SETTLED, tpb.LISTING_STATE_UNSOLD,
                  tpb.LISTING_STATE_CANCELLED)


def beijing(moment: datetime | None) -> str:
    """A moment as people here read it: Beijing time to the minute."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if moment else "—"


def yuan(fen) -> str:
    if fen is None:
        return "—"
    value = fen.fen if hasattr(fen, "fen") else fen
    return f"¥{value / 100:,.2f}"


templates.env.filters["yuan"] = yuan
templates.env.filters["beijing"] = beijing
templates.env.tests["safe_link"] = is_safe_link


def render(request: Request, user: User | None, name: str, **context) -> HTMLResponse:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "zh"
    lang = "en" if lang == "en" else "zh"
    response = templates.TemplateResponse(request, name, {"user": user, "t": translator(lang), "lang": lang,
                                                          **context})
    if request.query_params.get("lang"):
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return response


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


async def safely(call, default=None):
    """A page shows what it can when a service is down, instead of failing as a whole."""
    try:
        return await call
    except grpc.aio.AioRpcError:
        return default


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    if user is None:
        return RedirectResponse("/listings", status_code=303)
    if user.reads_everything:
        return RedirectResponse("/dashboard", status_code=303)
    if user.role is Role.AGENCY:
        return RedirectResponse("/agency", status_code=303)
    enterprise = await safely(clients.call(clients.registry.GetEnterprise,
                                           rpb.GetEnterpriseRequest(credit_code=user.credit_code), user=user))
    evaluation = None
    if clients.evaluation is not None:
        from services.gateway.api.routes.evaluation import latest_result
        evaluation = await safely(latest_result(clients, user, user.credit_code))
    accounts = await safely(clients.call(clients.registry.ListAccounts, rpb.ListAccountsRequest(
        holder=user.credit_code, page={"page_size": 50}), user=user))
    return render(request, user, "enterprise_home.html",
                  enterprise=from_proto(EnterprisePublic, enterprise.enterprise) if enterprise else None,
                  evaluation=evaluation,
                  accounts=[from_proto(AccountPublic, a) for a in accounts.accounts] if accounts else [])


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, user: OptionalUser) -> Response:
    return render(request, user, "login.html", failed=False, wait=None, next=request.query_params.get("next", "/"))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, username: Annotated[str, Form(max_length=256)] = "",
                password: Annotated[str, Form(max_length=256)] = "",
                api_key: Annotated[str, Form(max_length=256)] = "",
                next: Annotated[str, Form(max_length=2048)] = "/") -> Response:
    """Password or agency API key; throttled like the API's login (429 with Retry-After, then a lock)."""
    try:
        _, tokens = await log_in(request, username=username, password=password, api_key=api_key)
    except (LoginRefused, WrongCredentials) as error:
        wait = retry_after(error.retry_after) if isinstance(error, LoginRefused) else None
        response = render(request, None, "login.html", failed=wait is None, wait=wait, next=next)
        response.status_code = 401 if wait is None else 429
        if wait is not None:
            response.headers["Retry-After"] = wait
        return response
    target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/"
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, tokens)
    return response


@router.post("/session/refresh")
async def refresh_session(request: Request) -> Response:
    """The page's script calls this before the 15-minute access cookie runs out; the refresh cookie rotates."""
    try:
        _, tokens = await request.app.state.session_service.rotate(request.cookies.get(REFRESH_COOKIE, ""),
                                                                   address=client_address(request))
    except SessionEnded:
        response = Response(status_code=401)
        clear_session(response, request)
        return response
    response = Response(status_code=204)
    set_session(response, request, tokens)
    return response


@router.post("/session/logout")
@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session on the server (its tokens are refused from now on), not only in this browser."""
    tokens = [t for t in (request.cookies.get(SESSION_COOKIE), request.cookies.get(REFRESH_COOKIE)) if t]
    if tokens:
        await request.app.state.session_service.end(*tokens)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response, request)
    return response


@router.get("/listings", response_class=HTMLResponse)
async def listings_page(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    reply = await safely(clients.call(clients.trading.ListListings, tpb.ListListingsRequest(
        page={"page_size": 100}), user=user))
    listings = [listing_view(li, user) for li in reply.listings if li.state != tpb.LISTING_STATE_DRAFT] \
        if reply else None
    resources = await safely(clients.call(clients.registry.ListResources, rpb.ListResourcesRequest(
        kind="land_use_right", page={"page_size": 20}), user=user))
    return render(request, user, "listings.html", listings=listings,
                  resources=resources.resources if resources else [])


@router.get("/listings/{listing_id}", response_class=HTMLResponse)
async def listing_page(listing_id: str, request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    listing = await clients.call(clients.trading.GetListing, tpb.GetListingRequest(listing_id=listing_id),
                                 user=user)
    registration = None
    if user is not None and user.role is Role.ENTERPRISE:
        found = await safely(clients.call(clients.trading.GetRegistration, tpb.GetRegistrationRequest(
            listing_id=listing_id, credit_code=user.credit_code), user=user))
        registration = from_proto(RegistrationPublic, found.registration) if found else None
    view: ListingPublic = listing_view(listing.listing, user)
    if listing.listing.mechanism == tpb.MECHANISM_UNIFORM_PRICE:
        return render(request, user, "auction.html", listing=view, registration=registration,
                      decided=listing.listing.state in DECIDED_STATES)
    found = await safely(clients.call(clients.trading.ListChangeNotices,
                                      tpb.ListChangeNoticesRequest(listing_id=listing_id), user=user))
    notices = [from_proto(ChangeNoticePublic, n) for n in found.notices] if found else []
    return render(request, user, "listing.html", listing=view, registration=registration, notices=notices)


@router.get("/holdings", response_class=HTMLResponse)
async def holdings_page(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    if user is None or user.role is not Role.ENTERPRISE:
        return to_login(request)
    accounts = await clients.call(clients.registry.ListAccounts, rpb.ListAccountsRequest(
        holder=user.credit_code, page={"page_size": 100}), user=user)
    return render(request, user, "holdings.html", accounts=[from_proto(AccountPublic, a) for a in accounts.accounts])


@router.get("/trades", response_class=HTMLResponse)
async def trades_page(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    if user is None or user.role is not Role.ENTERPRISE:
        return to_login(request)
    reply = await safely(clients.call(clients.trading.ListTrades, tpb.ListTradesRequest(
        credit_code=user.credit_code, page={"page_size": 100}), user=user))
    return render(request, user, "trades.html",
                  trades=[from_proto(TradePublic, t) for t in reply.trades] if reply else None)


@router.get("/market", response_class=HTMLResponse)
async def market_page(request: Request, user: OptionalUser, clients: ClientsDep,
                      instrument: str = "") -> Response:
    markets = await safely(clients.call(clients.trading.ListMarkets, tpb.ListMarketsRequest(), user=user))
    instrument = instrument or (markets.markets[0].instrument if markets and markets.markets else "")
    book = None
    if instrument:
        found = await safely(clients.call(clients.trading.GetOrderBook, tpb.GetOrderBookRequest(
            instrument=instrument, depth=10), user=user))
        book = from_proto(OrderBookPublic, found) if found else None
    return render(request, user, "market.html", markets=markets.markets if markets else [], instrument=instrument,
                  book=book)


@router.get("/agency", response_class=HTMLResponse)
async def agency_page(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    if user is None or user.role is not Role.AGENCY:
        return to_login(request)
    resources = await safely(clients.call(clients.registry.ListResources, rpb.ListResourcesRequest(
        page={"page_size": 50}, kind="land_use_right"), user=user))
    own = await safely(clients.call(clients.trading.ListListings, tpb.ListListingsRequest(
        agency_id=user.agency_id, page={"page_size": 100}), user=user))
    return render(request, user, "agency.html",
                  resources=[r for r in (resources.resources if resources else [])
                             if r.controller_agency_id == user.agency_id],
                  listings=[listing_view(li, user) for li in own.listings] if own else None,
                  evaluation=clients.evaluation is not None)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, user: OptionalUser, clients: ClientsDep) -> Response:
    if user is None or not user.reads_everything:
        return to_login(request)
    t = translator(request.query_params.get("lang") or request.cookies.get("lang") or "zh")
    settings = request.app.state.settings
    figures: dict[str, str] = {}
    totals = await safely(clients.call(clients.registry.GetCatalogueTotals, rpb.GetCatalogueTotalsRequest(),
                                       user=user))
    by_region: dict[str, dict[str, float]] = {}
    for total in totals.totals if totals else []:
        row = by_region.setdefault(total.region_code, {})
        row[total.kind] = row.get(total.kind, 0) + total.items
    kinds = sorted({k for row in by_region.values() for k in row})
    figures["catalogue"] = charts.stacked(t("catalogue_by_region"), sorted(by_region.items()), kinds,
                                          chart_id="catalogue-region")
    figures.update(await _evaluation_figures(clients, user, t))
    rollups = await _rollup_table(clients, user, t)
    running = await runs_in_progress(clients, user, t)
    alerts: list[str] = []
    stats = await safely(clients.call(clients.trading.GetMarketStatistics, tpb.GetMarketStatisticsRequest(),
                                      user=user))
    if stats is not None:
        view = from_proto(MarketStatisticsPublic, stats)
        figures["volume"] = charts.bars(t("market_activity"), [(i.instrument.split(":")[0] + ":" +
                                                                 i.instrument.split(":")[1] if ":" in i.instrument
                                                                 else i.instrument, i.volume)
                                                                for i in view.instruments], chart_id="volume")
        figures["sales"] = charts.bars(t("open_sales"), sorted(view.sales_by_state.items()), chart_id="sales")
        figures["backlog"] = charts.bars(t("backlog"), [(t("backlog"), view.settlement_backlog)], chart_id="backlog")
    market = await _market_figures(clients, user, settings, t, have_statistics=stats is not None)
    figures.update(market.figures)
    alerts += [a.text for a in market.alerts]
    health = await read_all({"registry": settings.registry_metrics_url, "evaluation": settings.evaluation_metrics_url,
                             "trading": settings.trading_metrics_url})
    high_price_bids = int(sum(h.high_price_bids for h in health))
    if high_price_bids:  # the price collar's alert (also a Prometheus alert: YaosuHighPriceBidsConfirmed)
        alerts.append(t("alert_high_price_bids").replace("{count}", str(high_price_bids)))
    figures["requests"] = charts.bars(t("requests"), [(h.name, h.requests) for h in health], chart_id="requests")
    figures["latency"] = charts.bars("ms", [(h.name, h.mean_latency_ms) for h in health], unit=" ms",
                                     chart_id="latency")
    audits = []
    for service in ("registry", "evaluation", "trading"):
        from services.gateway.api.routes.regulator import verify
        try:
            audits.append(await verify(clients, user, service))
        except Exception:  # noqa: BLE001 - shown as unavailable
            audits.append(None)
    return render(request, user, "dashboard.html", figures=figures, rollups=rollups, running=running,
                  health=health, alerts=alerts,
                  audits=list(zip(("registry", "evaluation", "trading"), audits, strict=True)),
                  gauge=charts.gauge)


TREND_INDICATORS = ("tax_per_mu", "va_per_mu")


async def runs_in_progress(clients, user: User, t) -> list[dict]:
    """Evaluation runs still working, with how far they are (pools and enterprises done)."""
    if clients.evaluation is None:
        return []
    reply = await safely(clients.call(clients.evaluation.ListRuns, epb.ListRunsRequest(
        status=epb.RUN_STATUS_RUNNING, page={"page_size": 20}), user=user))
    shown = []
    for run in reply.runs if reply else []:
        progress = run.progress
        share = 100 * progress.rows_done // progress.rows_total if progress.rows_total else 0
        text = t("run_progress")
        for name, value in (("year", run.year), ("jurisdiction", run.jurisdiction),
                            ("pools_done", progress.pools_done), ("pools_total", progress.pools_total),
                            ("rows_done", f"{progress.rows_done:,}"), ("rows_total", f"{progress.rows_total:,}")):
            text = text.replace("{" + name + "}", str(value))
        shown.append({"run_id": run.run_id, "text": text, "percent": share})
    return shown


async def _evaluation_figures(clients, user: User, t) -> dict[str, str]:
    """Class distribution by region and by park (latest published year), 亩均 indicators by region over the
    published years — all from the evaluation service's roll-ups."""
    if clients.evaluation is None:
        return {}
    from services.gateway.api.routes.evaluation import class_distribution, indicator_trend
    figures: dict[str, str] = {}
    grades = ["A", "B", "C", "D", "T"]
    with contextlib.suppress(grpc.aio.AioRpcError):
        figures["classes"] = charts.stacked(t("class_by_region"), await class_distribution(clients, user, "region"),
                                            grades, chart_id="classes-region")
        parks = await class_distribution(clients, user, "park")
        figures["classes_park"] = charts.stacked(t("class_by_park"), parks, grades, chart_id="classes-park",
                                                 label_w=130)
        for indicator in TREND_INDICATORS:
            series = await indicator_trend(clients, user, indicator, "region")
            if series:
                figures["trend"] = charts.lines(f"{t('indicator_trend')}: {t(indicator)}",
                                                {k: [(float(y), v) for y, v in pts] for k, pts in series.items()},
                                                chart_id="indicator-trend")
                figures["trend_title"] = f"{t('indicator_trend')} · {t(indicator)}"
                break
    return figures


def _figure(text: str, places: int = 2) -> str:
    """Decimal text for a table cell: fixed places and thousands separators; "—" when not computable."""
    try:
        return f"{Decimal(text):,.{places}f}" if text else "—"
    except InvalidOperation:
        return "—"


async def _rollup_table(clients, user: User, t) -> list[dict[str, str | int]]:
    """The roll-up tree of the latest published year as table rows: the run's total (全市合计 for a city
    run), each district and the parks in it, with the 规上/规下 split of the firms."""
    if clients.evaluation is None:
        return []
    from services.gateway.api.routes.evaluation import rollup_tree
    try:
        tree = await rollup_tree(clients, user)
    except grpc.aio.AioRpcError:
        return []
    rows = []
    for row in tree:
        unit = row.unit
        shown = unit.name or unit.unit or unit.key
        label = f"{t('total_' + unit.level)} {shown}" if row.depth == 0 and unit.dimension == "region" \
            else f"{t('level_' + unit.level)} {shown}"
        counts = {c.grade: c.count for c in unit.class_counts}
        rows.append({
            "depth": min(row.depth, 3), "label": label, "firms": unit.firms,
            "above_size": row.above_size.firms if row.above_size else 0,
            "below_size": row.below_size.firms if row.below_size else 0,
            "tax_per_mu": _figure(unit.indicators.get("tax_per_mu", "")),
            "tax_per_mu_yoy": _figure(unit.yoy_change_pct.get("tax_per_mu", "")),
            "va_per_mu": _figure(unit.indicators.get("va_per_mu", "")),
            "classes": " / ".join(str(counts.get(grade, 0)) for grade in "ABCDT"),
            "land_c_d": _figure(unit.land_in_c_d_mu), "surcharge": _figure(unit.electricity_surcharge_yuan),
            "composite": _figure(unit.composite_score), "rank": f"{unit.rank}/{unit.peers}" if unit.peers else "—"})
    return rows


@dataclass
class MarketPicture:
    figures: dict[str, str]
    alerts: list[monitor.Alert]


async def _market_figures(clients, user: User, settings, t, *, have_statistics: bool) -> MarketPicture:
    """Bids per minute, open sales by state and the alerts, from the sales and trades trading lists to a
    regulator (all bids, and each decided sale's result with its disclosed reserve)."""
    picture = MarketPicture({}, [])
    listings = await safely(clients.call(clients.trading.ListListings, tpb.ListListingsRequest(
        page={"page_size": 200}), user=user))
    if listings is None:
        return picture
    now = datetime.now(UTC)
    published = [li for li in listings.listings if li.state not in (tpb.LISTING_STATE_DRAFT,
                                                                     tpb.LISTING_STATE_CANCELLED)]
    if not have_statistics:
        by_state: dict[str, float] = {}
        for li in published:
            name = tpb.ListingState.Name(li.state).removeprefix("LISTING_STATE_").lower()
            by_state[name] = by_state.get(name, 0) + 1
        picture.figures["sales"] = charts.bars(t("open_sales"), sorted(by_state.items()), chart_id="sales")
    recent = sorted(published, key=lambda li: li.bidding_closes_at.seconds, reverse=True)[:settings.dashboard_sales]
    sales, all_bids, results = [], [], []
    for li in recent:
        if li.state >= tpb.LISTING_STATE_BIDDING:
            reply = await safely(clients.call(clients.trading.ListBids, tpb.ListBidsRequest(
                listing_id=li.listing_id, page={"page_size": 500}), user=user))
            bids = tuple(monitor.BidSeen(li.listing_id, b.bidder_number, b.accepted_at.ToDatetime(tzinfo=UTC))
                         for b in (reply.bids if reply else []) if b.HasField("accepted_at"))
            state = await safely(clients.call(clients.trading.GetSaleState, tpb.GetSaleStateRequest(
                listing_id=li.listing_id), user=user))
            closes = state.state.closes_at if state is not None and state.state.HasField("closes_at") \
                else li.bidding_closes_at if li.HasField("bidding_closes_at") else None
            sales.append(monitor.SaleSeen(li.listing_id, li.title, closes.ToDatetime(tzinfo=UTC) if closes else None,
                                          bids))
            all_bids += bids
        if li.state in (tpb.LISTING_STATE_AWARDED, tpb.LISTING_STATE_UNSOLD, tpb.LISTING_STATE_SETTLED):
            found = await safely(clients.call(clients.trading.GetSaleResult, tpb.GetSaleResultRequest(
                listing_id=li.listing_id), user=user))
            if found is not None:
                r = found.result
                results.append(monitor.ResultSeen(li.listing_id, li.title, r.outcome, r.bidder_count,
                                                  r.clearing_price.fen, r.reserve_price.fen))
    picture.figures["bids_per_minute"] = charts.columns(t("bids_per_minute"), monitor.bids_per_minute(all_bids, now),
                                                        chart_id="bids-per-minute")
    trades = await safely(clients.call(clients.trading.ListTrades, tpb.ListTradesRequest(
        page={"page_size": 200}), user=user))
    seen = [monitor.TradeSeen(tr.trade_id, tr.instrument, tr.price.fen, tr.quantity.value,
                              tr.executed_at.ToDatetime(tzinfo=UTC) if tr.HasField("executed_at") else None)
            for tr in (trades.trades if trades else [])]
    picture.alerts = (monitor.result_alerts(results, settings.alert_reserve_deviation)
                      + monitor.trade_alerts(seen, settings.alert_trade_deviation)
                      + monitor.late_bid_alerts(sales, settings.alert_late_bid_minutes, settings.alert_late_bid_count))
    return picture


def mount_portal(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
