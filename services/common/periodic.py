"""A background task that runs a coroutine every interval until stopped (timers, sweepers, gauges)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, work: Callable[[], Awaitable[None]], interval: float) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.work()
            except Exception:  # noqa: BLE001 - a failed round is logged; the next one may succeed
                log.exception("periodic task %s failed", self.name)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except TimeoutError:
                pass
