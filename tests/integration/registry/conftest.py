from __future__ import annotations

import pytest

from tests.support.registry import registry_running


@pytest.fixture
async def registry(database_url, nats_server):
    async with registry_running(database_url, nats_server.url) as running:
        yield running
