"""The portal's pages over HTTP: login by password and API key, each role's pages, language switch."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _login(client, **form) -> None:
    reply = await client.post("/login", data=form)
    assert reply.status_code == 303, reply.text


async def test_enterprise_pages(stack) -> None:
    user = stack.enterprises[0]
    async with stack.client() as client:
        await _login(client, username=user.username, password=user.password)
        home = await client.get("/")
        assert home.status_code == 200 and user.credit_code in home.text and "CNY" in home.text
        assert "持有资产" in (await client.get("/holdings")).text
        assert "Holdings" in (await client.get("/holdings?lang=en")).text
        assert (await client.get("/listings")).status_code == 200
        assert (await client.get("/dashboard")).status_code == 303  # not a regulator


async def test_wrong_password_and_agency_key(stack) -> None:
    async with stack.client() as client:
        assert (await client.post("/login", data={"username": "ent1", "password": "wrong"})).status_code == 401
        await _login(client, api_key=stack.agency_keys["AG-330100-ZRZY"])
        desk = await client.get("/agency")
        assert desk.status_code == 200 and "AG-330100-ZRZY" in desk.text


async def test_regulator_dashboard_draws_charts(stack) -> None:
    async with stack.client() as client:
        await _login(client, username=stack.regulator.username, password=stack.regulator.password)
        page = await client.get("/dashboard")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 3 and 'class="bar"' in page.text
    assert "registry: 完整" in page.text  # the registry's journal verified intact
