from __future__ import annotations

import pytest

from tests.integration.trading.support import trading_running
from tests.support.registry import registry_running


@pytest.fixture
async def registry(database_url, nats_server):
    async with registry_running(database_url, nats_server.url) as running:
        yield running


@pytest.fixture
async def trading(tmp_path, database_url, nats_server, registry):
    # Each service owns its database: the trading service gets its own file (or the same PG server).
    url = database_url.replace("service.db", "trading.db") if database_url.startswith("sqlite") else database_url
    async with trading_running(url, nats_server.url, registry.address) as running:
        yield running
