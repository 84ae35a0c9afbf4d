from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_health_and_login(stack, tokens) -> None:
    async with stack.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['ent1']}"})
        assert me.status_code == 200, me.text
        assert me.json()["subject"] == stack.enterprises[0].credit_code
