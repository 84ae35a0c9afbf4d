"""Pull-consumer loop bound to a durable declared in the topology: ack after commit, nak with backoff,
term for poison messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from yaosu.events.v1 import envelope_pb2

from services.common.events.envelope import parse
from services.common.metrics import EventMetrics
from services.common.tracing import consuming

log = logging.getLogger(__name__)

# Returns "ack" when handled now, "duplicate" when the inbox had seen it already.
Handler = Callable[[envelope_pb2.EventEnvelope, dict], Awaitable[str]]


class PermanentError(Exception):
    """The message can never be handled (malformed): terminate instead of redelivering."""


class ConsumerRunner:
    def __init__(self, nc: Client, *, stream: str, durable: str, handler: Handler, metrics: EventMetrics,
                 batch: int = 64, fetch_timeout: float = 1.0) -> None:
        self.nc = nc
        self.stream = stream
        self.durable = durable
        self.handler = handler
        self.metrics = metrics
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        js = self.nc.jetstream()
        subscription = None
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    subscription = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
                try:
                    messages = await subscription.fetch(batch=self.batch, timeout=self.fetch_timeout)
                except (NatsTimeoutError, TimeoutError):
                    # An idle fetch, or one delayed past its timeout by a busy event loop: nothing to do.
                    messages = []
                for message in messages:
                    await self._handle(message)
                if not messages:
                    info = await subscription.consumer_info()
                    self.metrics.consumer_pending.labels(self.durable).set(info.num_pending)
            except Exception:  # noqa: BLE001 - keep consuming through NATS restarts
                log.exception("consumer %s loop error", self.durable)
                await asyncio.sleep(0.5)  # back off before re-binding after a connection problem
        if subscription is not None:
            try:
                await subscription.unsubscribe()  # before drain, or drain stalls (anchors §3.2)
            except Exception:  # noqa: BLE001
                log.debug("unsubscribe failed", exc_info=True)

    async def _handle(self, message: Msg) -> None:
        try:
            envelope, data = parse(message.data)
        except Exception:  # noqa: BLE001
            self.metrics.consumed.labels(self.durable, "term").inc()
            await message.term()
            return
        try:
            with consuming(f"consume {message.subject}", envelope.trace_context):
                outcome = await self.handler(envelope, data)
        except PermanentError:
            log.error("poison event %s on %s", envelope.id, self.durable)
            self.metrics.consumed.labels(self.durable, "term").inc()
            await message.term()
        except Exception:  # noqa: BLE001
            delivered = message.metadata.num_delivered
            log.exception("event %s failed (delivery %s)", envelope.id, delivered)
            self.metrics.consumed.labels(self.durable, "nak").inc()
            await message.nak(delay=min(2 ** delivered, 30))
        else:
            await message.ack_sync(timeout=2)
            self.metrics.consumed.labels(self.durable, outcome).inc()
