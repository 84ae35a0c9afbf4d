"""Run real services in the test's event loop, on free ports, with their own databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from services.common.config import key_digest
from services.common.host import ServiceHost

ADMIN_KEY = "test-admin-key"
SERVICE_KEY = "test-service-key"
READER_KEY = "test-reader-key"
ISSUER_KEY = "test-issuer-key"

API_KEYS_JSON = json.dumps({
    key_digest(ADMIN_KEY): {"principal": "admin", "roles": ["admin"]},
    key_digest(SERVICE_KEY): {"principal": "svc:test", "roles": ["service", "delegate"]},
    key_digest(READER_KEY): {"principal": "reader", "roles": []},
    key_digest(ISSUER_KEY): {"principal": "issuer", "roles": ["issuer"]},
})


@contextlib.asynccontextmanager
async def running(host: ServiceHost, timeout: float = 60.0) -> AsyncIterator[ServiceHost]:
    task = asyncio.create_task(host.run(install_signal_handlers=False))
    ready = asyncio.create_task(host.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises the start-up error
    if ready not in done:
        task.cancel()
        raise TimeoutError("service did not become ready")
    try:
        yield host
    finally:
        host.request_stop()
        await task
