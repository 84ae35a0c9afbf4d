"""The portal in a real headless Chromium against the real suite (registry, trading, evaluation, NATS).

Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from yaosu.trading.v1 import trading_pb2, trading_pb2_grpc

from tests.integration.gateway.flows import GRANTOR, agency, bidding_listing, free_parcel, listing_body
from tests.integration.gateway.stack import gateway_stack
from tests.support.services import on_behalf

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(nats_server, tmp_path_factory):
    async with gateway_stack(tmp_path_factory.mktemp("e2e-gateway"), nats_server.url) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make browser)")
    from playwright.async_api import async_playwright
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def login(browser, stack, user):
    context = await browser.new_context(base_url=stack.base_url, locale="zh-CN")
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#username", user.username)
    await page.fill("#password", user.password)
    await page.click("#login")
    await page.wait_for_load_state("networkidle")
    return context, page


async def agency_login(browser, stack, agency_id: str):
    context = await browser.new_context(base_url=stack.base_url, locale="zh-CN")
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#api_key", stack.agency_keys[agency_id])
    await page.click("#login")
    await page.wait_for_load_state("networkidle")
    return context, page


async def test_two_bidders_see_each_other_live(browser, stack) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    listing_id = (await bidding_listing(stack, await stack.token(stack.admin)))["listing_id"]
    first, page1 = await login(browser, stack, stack.enterprises[0])
    second, page2 = await login(browser, stack, stack.enterprises[1])
    for page in (page1, page2):
        await page.goto(f"/listings/{listing_id}")
        if await page.locator("#register").count():
            await page.click("#register")
            await page.wait_for_function("() => document.getElementById('my-number').textContent.trim() !== '—'")
    await page2.wait_for_function("() => document.getElementById('current-price').textContent.trim() !== '—'")
    before = (await page2.text_content("#current-price")).strip()
    await page1.wait_for_function("() => document.getElementById('bid-price').value !== ''")
    await page1.click("#place-bid")
    # ent1's own history shows the bid; ent2's page gets the new price and the bidder number live.
    await page1.wait_for_selector("#my-bids tr:nth-child(2)")
    await page2.wait_for_function(f"() => document.getElementById('current-price').textContent.trim() !== '{before}'",
                                  timeout=15_000)
    number = (await page1.text_content("#my-number")).strip()
    await page2.wait_for_selector(f"#live-bids td:text('{number}')", timeout=15_000)
    await page1.screenshot(path=str(ARTIFACTS / "bidder1.png"), full_page=True)
    await page2.screenshot(path=str(ARTIFACTS / "bidder2.png"), full_page=True)
    assert stack.enterprises[0].credit_code not in await page2.content()  # never names, only bidder numbers

    # The listing agency changes the 增价幅度 on the same page; the bidders' pages show it live (§5.3).
    desk, agency_page = await agency_login(browser, stack, GRANTOR)
    await agency_page.goto(f"/listings/{listing_id}")
    await agency_page.fill("#new-increment", "25000")
    await agency_page.fill("#increment-reason", "竞价活跃，调整增价幅度")
    await agency_page.click("#increment-form button")
    await agency_page.wait_for_function("() => document.getElementById('increment-message').textContent.trim() !== ''")
    assert "已调整" in await agency_page.text_content("#increment-message")
    await page2.wait_for_function("() => document.getElementById('increment').textContent.includes('25,000.00')",
                                  timeout=15_000)
    await page2.wait_for_selector("#notices li:text('竞价活跃')", timeout=15_000)
    await page2.reload()  # the notice is part of the listing's record, not only of the live stream
    assert "25,000.00" in await page2.text_content("#notices")
    await page2.screenshot(path=str(ARTIFACTS / "increment-changed.png"), full_page=True)
    await desk.close()
    await first.close()
    await second.close()


async def test_regulator_dashboard_renders_charts(browser, stack) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = await login(browser, stack, stack.regulator)
    await page.goto("/dashboard")
    assert await page.locator("svg.chart").count() >= 3
    assert await page.locator("svg.chart rect.bar").count() > 0
    # classes by region and park, 亩均 indicators over the years
    assert await page.locator("#classes-region rect.bar").count() > 0
    assert await page.locator("#classes-park rect.bar").count() > 0
    assert await page.locator("#indicator-trend polyline.line").count() > 0
    assert await page.locator("#bids-per-minute rect.bar").count() > 0  # the bids of the test before (30 min)
    box = await page.locator("svg.chart").first.bounding_box()
    assert box and box["width"] > 100
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    await context.close()


# Stored before links were checked at input (written here straight through trading, as the listing's agency).
HOSTILE_TITLE = '<img src=x onerror="window.__xss = 1">地块<script>window.__xss = 2</script>'
HOSTILE_LINKS = ["javascript:window.__xss=3", "JaVaScRiPt:window.__xss=4", "java\tscript:window.__xss=5",
                 "data:text/html,<script>parent.__xss=6</script>", "//evil.example/x.pdf", " javascript:window.__xss=7"]
GOOD_LINKS = ["https://example.org/出让文件.pdf", "/uploads/plan.pdf"]


async def hostile_draft(stack) -> str:
    """A draft of the grantor whose title carries markup and whose documents carry script links."""
    async with stack.client() as client:
        parcel = await free_parcel(stack, client)
        created = await client.post("/api/v1/listings", json=listing_body(parcel), headers=agency(stack))
        assert created.status_code == 201, created.text
    listing_id = created.json()["listing_id"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.trading.grpc_port}") as channel:
        await trading_pb2_grpc.TradingServiceStub(channel).UpdateListing(trading_pb2.UpdateListingRequest(
            idempotency_key=f"xss-{uuid.uuid4()}", listing=trading_pb2.Listing(
                listing_id=listing_id, title=HOSTILE_TITLE, documents=HOSTILE_LINKS + GOOD_LINKS)),
            metadata=on_behalf(f"agency:{GRANTOR}", "grantor"))
    return listing_id


async def test_stored_script_links_and_title_markup_are_inert(browser, stack) -> None:
    listing_id = await hostile_draft(stack)
    context, page = await agency_login(browser, stack, GRANTOR)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    response = await page.goto(f"/listings/{listing_id}")
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"

    # Only the http(s) and same-site links are links; the others are plain text, shown as stored.
    hrefs = await page.eval_on_selector_all("#documents a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs == GOOD_LINKS
    inert = await page.eval_on_selector_all("#documents .inert-link", "spans => spans.map(s => s.textContent)")
    assert inert == HOSTILE_LINKS
    assert await page.locator("a[href*='script:' i], a[href^='data:' i]").count() == 0
    for n in range(len(HOSTILE_LINKS)):
        await page.locator("#documents .inert-link").nth(n).click()
    assert page.url.endswith(f"/listings/{listing_id}")

    # The title is text: no element was made from it, nothing ran.
    assert (await page.text_content("h1")) == HOSTILE_TITLE
    assert await page.locator("h1 img, h1 script").count() == 0
    desk = await page.goto("/agency")
    assert desk is not None and desk.ok
    assert await page.locator("main img").count() == 0
    assert await page.locator(f"a[href='/listings/{listing_id}']").text_content() == HOSTILE_TITLE

    # The policy is enforced: an inline script injected into the page does not run.
    await page.goto(f"/listings/{listing_id}")
    await page.evaluate("""() => { const s = document.createElement('script');
                                   s.textContent = 'window.__xss = 8'; document.body.appendChild(s); }""")
    assert await page.evaluate("() => window.__xss") is None
    assert dialogs == []
    await context.close()


async def test_portal_scripts_run_from_the_script_file(browser, stack) -> None:
    """The pages' behaviour starts from portal.js by data attributes: the agency desk's form still creates."""
    context, page = await agency_login(browser, stack, GRANTOR)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await page.goto("/agency")
    assert await page.get_attribute("body", "data-page") == "agency"
    await page.click("#listing-form button")
    await page.wait_for_function("() => document.getElementById('message').textContent.trim() !== ''")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    await context.close()


async def _decided_result(stack, token: str, listing_id: str) -> dict:
    """Poll the public result until the auction is decided (each poll is a request; bounded, no timing asserted)."""
    async with stack.client() as client:
        for _ in range(300):
            reply = await client.get(f"/api/v1/listings/{listing_id}/result",
                                     headers={"Authorization": f"Bearer {token}"})
            if reply.status_code == 200:
                return reply.json()
            await asyncio.sleep(0.1)
    raise AssertionError(f"the auction was not decided: {reply.status_code} {reply.text}")


async def test_an_enterprise_takes_part_in_the_quota_auction_and_sees_its_result(browser, stack) -> None:
    """Last in this module: it moves trading's clock past the demo auction's window to clear it."""
    ARTIFACTS.mkdir(exist_ok=True)
    token = await stack.token(stack.enterprises[2])
    async with stack.client() as client:
        listed = await client.get("/api/v1/listings", params={"mechanism": "uniform_price"},
                                  headers={"Authorization": f"Bearer {token}"})
    [auction] = listed.json()["data"]
    context, page = await login(browser, stack, stack.enterprises[2])
    await page.goto(f"/listings/{auction['listing_id']}")
    terms = await page.text_content("#auction-terms")
    assert "10 手" in terms and "¥300.00 / tce" in terms and "全部有效报价按底价成交" in terms
    assert (await page.text_content("#holding-limit")).strip() == "5000 tce"  # the demo's holding limit
    assert await page.locator("#current-price, #leader, #live-bids").count() == 0  # no 挂牌 widgets

    # Register with a guarantee (held in the ledger), then two sealed bids, one modified, one withdrawn.
    await page.fill("#guarantee", "200000")
    await page.click("#register")
    await page.wait_for_function("() => document.getElementById('my-number').textContent.trim() !== '—'")
    for price, lots in (("320", "1"), ("310", "1")):
        rows = await page.locator("#my-bids tr").count()
        await page.fill("#bid-price", price)
        await page.fill("#bid-lots", lots)
        await page.click("#place-bid")
        await page.wait_for_function(f"() => document.querySelectorAll('#my-bids tr').length > {rows}")
    first = page.locator("#my-bids tr", has_text="¥320.00")
    await first.locator("button.modify").click()
    assert await page.input_value("#bid-lots") == "1"
    await page.fill("#bid-price", "330")
    await page.fill("#bid-lots", "2")
    await page.click("#place-bid")
    await page.wait_for_selector("#my-bids tr:has-text('¥330.00')")
    await page.locator("#my-bids tr", has_text="¥310.00").locator("button.withdraw").click()
    await page.wait_for_selector("#my-bids tr:has-text('已撤回')")  # its amount left the auction with it
    valid = page.locator("#my-bids tr", has_text="有效")
    assert await valid.count() == 1 and "¥330.00" in await valid.text_content()
    assert await page.locator("#my-bids tr", has_text="¥310.00").count() == 0
    await page.screenshot(path=str(ARTIFACTS / "quota-auction-bidding.png"), full_page=True)

    # The window closes: cleared undersubscribed (2 of 10 lots), so at the reserve, as its terms say.
    stack.trading_clock.advance(3 * 3600)
    result = await _decided_result(stack, token, auction["listing_id"])
    assert (result["outcome"], result["reason"]) == ("sold", "undersubscribed_at_reserve")
    await page.reload()
    await page.wait_for_function("() => document.getElementById('result-mine').textContent.trim() !== '—'")
    assert "成交（认购不足，全部有效报价按底价成交）" == (await page.text_content("#result-outcome")).strip()
    assert (await page.text_content("#result-price")).strip() == "¥300.00 / tce"
    assert (await page.text_content("#result-mine")).strip() == "2 手，¥60,000.00"
    assert (await page.text_content("#result-unsold")).strip() == "8 手"  # offered 10, sold 2
    assert (await page.text_content("#result-tie")).strip() == "无"  # nothing was rationed
    outcome = page.locator("#my-outcomes tr", has_text="¥330.00 / tce")  # its own bid, how it fared
    assert await outcome.count() == 1 and "2 手" in await outcome.text_content()
    assert "全部成交" in await outcome.text_content()
    assert await page.locator("button.modify, button.withdraw").count() == 0
    await page.screenshot(path=str(ARTIFACTS / "quota-auction-result.png"), full_page=True)
    await context.close()
