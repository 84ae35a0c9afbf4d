from __future__ import annotations

import pytest_asyncio

from tests.integration.gateway.stack import gateway_stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(nats_server, tmp_path_factory):
    async with gateway_stack(tmp_path_factory.mktemp("gateway"), nats_server.url) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tokens(stack) -> dict[str, str]:
    found = {"ent1": await stack.token(stack.enterprises[0]), "ent2": await stack.token(stack.enterprises[1]),
             "regulator": await stack.token(stack.regulator), "admin": await stack.token(stack.admin)}
    return found
