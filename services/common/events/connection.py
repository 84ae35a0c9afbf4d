"""NATS connections with reconnect forever and logged state changes."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> Client:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", type(exc).__name__)

    async def on_disconnected() -> None:
        log.warning("nats disconnected")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    return await nats.connect(
        servers=[url], name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        error_cb=on_error, disconnected_cb=on_disconnected, reconnected_cb=on_reconnected,
        drain_timeout=5, connect_timeout=5, allow_reconnect=True,
    )
