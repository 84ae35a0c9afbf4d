from __future__ import annotations

import pytest

from tests.integration.evaluation.support import evaluation_running
from tests.support.registry import registry_running


@pytest.fixture
async def registry(nats_server, tmp_path):
    async with registry_running(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", nats_server.url) as running:
        yield running


@pytest.fixture
async def evaluation(database_url, nats_server, registry):
    async with evaluation_running(database_url, nats_server.url, registry.address) as running:
        yield running
