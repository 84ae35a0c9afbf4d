"""Crash tests under load: a service in a subprocess, clients whose every request is recorded as
acknowledged, refused or unknown, a SIGKILL fired by an event (so many acknowledgements seen) while
requests are in flight, and raw reads of the service's database to look for anything half written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.grpc_errors import reason
from tests.support.services import API_KEYS_JSON

ROOT = Path(__file__).resolve().parents[2]

# Answers after which a client retries with the same idempotency key, as the APIs ask (the service is
# busy, restarting, or the answer was lost); anything else is the request's final answer.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
             grpc.StatusCode.DEADLINE_EXCEEDED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """`python -m services.<name>` with its settings in the environment, on a fixed gRPC port (kept across
    restarts, so that clients' channels reconnect)."""

    def __init__(self, module: str, **settings: str) -> None:
        self.module = module
        self.port = free_port()
        self.settings = dict(GRPC_PORT=str(self.port), METRICS_PORT="0", API_KEYS_JSON=API_KEYS_JSON,
                             OUTBOX_POLL_SECONDS="0.05", LOG_LEVEL="WARNING", SHUTDOWN_GRACE_SECONDS="1")
        self.settings.update(settings)
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, **overrides: str) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'gen'}:{ROOT}", **{**self.settings, **overrides})
        self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT, env=env)

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, no goodbye."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    async def serving(self, probe: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> None:
        """Until `probe` (a cheap read) is answered; fails at once if the process died."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None and self.process.poll() is None, \
                f"{self.module} exited with {self.process and self.process.returncode}"
            try:
                await probe()
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `probe` until it returns something truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


ACKNOWLEDGED, REFUSED, UNKNOWN = "acknowledged", "refused", "unknown"


@dataclass
class Attempt:
    """One request as its client saw it. `outcome`: acknowledged (the service answered it), refused (the
    service answered an error that is final), unknown (no answer: the service died with it in flight)."""

    kind: str
    key: str
    call: Callable[..., Any]
    request: Any
    metadata: list[tuple[str, str]]
    info: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""
    response: Any = None
    error: grpc.StatusCode | None = None
    detail: str = ""
    reason: str = ""  # the google.rpc ErrorInfo reason of a refusal


class Load:
    """Clients' requests through `send`, each recorded as an Attempt. `enough` is set once `trigger(load)`
    holds after an acknowledgement; after `crashed()` nothing is retried and every request without an
    answer is unknown."""

    def __init__(self, trigger: Callable[[Load], bool]) -> None:
        self.trigger = trigger
        self.attempts: list[Attempt] = []
        self.acknowledged: dict[str, int] = {}
        self.enough = asyncio.Event()
        self.killed = False

    def crashed(self) -> None:
        self.killed = True

    def count(self, kind: str) -> int:
        return self.acknowledged.get(kind, 0)

    def of(self, kind: str, outcome: str | None = None) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == kind and (outcome is None or a.outcome == outcome)]

    async def send(self, kind: str, key: str, call, request, metadata, **info) -> Attempt:
        attempt = Attempt(kind, key, call, request, metadata, info)
        self.attempts.append(attempt)
        while True:
            try:
                attempt.response = await call(request, metadata=metadata, timeout=20)
            except grpc.aio.AioRpcError as error:
                if self.killed:
                    attempt.outcome, attempt.error = UNKNOWN, error.code()
                    return attempt
                if error.code() in RETRYABLE:
                    await asyncio.sleep(0.02)  # a client's back-off, no test timing
                    continue
                attempt.outcome, attempt.error, attempt.detail = REFUSED, error.code(), error.details() or ""
                attempt.reason = reason(error)
                return attempt
            attempt.outcome = ACKNOWLEDGED
            self.acknowledged[kind] = self.acknowledged.get(kind, 0) + 1
            if not self.enough.is_set() and self.trigger(self):
                self.enough.set()
            return attempt

    def summary(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for a in self.attempts:
            found.setdefault(a.kind, {}).setdefault(a.outcome or "pending", 0)
            found[a.kind][a.outcome or "pending"] += 1
        return found


async def retry(attempt: Attempt, attempts: int = 100) -> Any:
    """The client's retry after the restart: the same request with the same key, until an answer."""
    for n in range(attempts):
        try:
            return await attempt.call(attempt.request, metadata=attempt.metadata, timeout=20)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or n == attempts - 1:
                raise
            await asyncio.sleep(0.1)


async def crash_under_load(service: ServiceProcess, load: Load, clients: list[Awaitable[None]],
                           timeout: float = 40.0) -> None:
    """Run the clients until `load.enough`, SIGKILL the service with their requests in flight, and wait for
    every client to hear of it."""
    tasks = [asyncio.ensure_future(c) for c in clients]
    try:
        await asyncio.wait_for(load.enough.wait(), timeout)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        raise AssertionError(f"the load never reached its trigger: {load.summary()}") from None
    load.crashed()
    service.kill()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[AsyncEngine]:
    """A reader of a service's database (SQLite file or PostgreSQL), beside or after the service."""
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())
