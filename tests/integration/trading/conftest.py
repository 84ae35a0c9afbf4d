from __future__ import annotations

import pytest

from tests.integration.trading.support import sibling_database, trading_running
from tests.support.registry import registry_running


@pytest.fixture
async def registry_database(database_url):
    # Each service owns its database: the registry gets one of its own next to the trading one.
    async with sibling_database(database_url, "registry") as url:
        yield url


@pytest.fixture
async def registry(registry_database, nats_server):
    async with registry_running(registry_database, nats_server.url) as running:
        yield running


@pytest.fixture
async def trading(database_url, nats_server, registry):
    async with trading_running(database_url, nats_server.url, registry.address) as running:
        yield running
