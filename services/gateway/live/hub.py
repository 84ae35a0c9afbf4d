"""Live facts for server-sent events: one ordered push subscription on `trading.>` per gateway process.

Why not the durable `gateway-trading` consumer: a durable consumer shares its messages among the
gateway's replicas, but every replica must see every fact to fan it out to its own SSE clients. An
ephemeral ordered consumer per process (deliver new) gives each replica the whole stream, with no
acknowledgement state on the server. The JetStream stream sequence is the SSE event id; a reconnecting
client names it in Last-Event-ID and the hub replays the gap from memory, or from the stream
(`get_msg` by sequence) when the gap is older than the in-memory ring.

Facts about sealed bids (live/public.py NEVER_PUBLIC) are dropped on arrival: no stream can show them, and
no replay either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js.api import DeliverPolicy

from services.common.events.connection import connect
from services.common.events.envelope import parse
from services.gateway.live.public import never_public

log = logging.getLogger(__name__)

STREAM = "TRADING"
RING = 20_000
MAX_REPLAY = 5_000


@dataclass(frozen=True)
class Fact:
    seq: int
    subject: str      # the NATS subject, e.g. trading.bid.accepted
    type: str         # the envelope type
    about: str        # the envelope subject: a listing id, an instrument …
    data: dict[str, Any]

    def concerns_listing(self, listing_id: str) -> bool:
        return listing_id in (self.about, self.data.get("listing_id"))

    def concerns_instrument(self, instrument: str) -> bool:
        return self.data.get("listing_id") in (None, "") and instrument in (self.about, self.data.get("instrument"))


class LiveHub:
    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.last_seq = 0
        self._ring: deque[Fact] = deque(maxlen=RING)
        self._listeners: set[asyncio.Queue[Fact]] = set()
        self._nc = None
        self._js = None
        self._task: asyncio.Task | None = None
        self._snapshots: dict[str, tuple[int, asyncio.Future]] = {}
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-hub")

    async def _run(self) -> None:
        while True:
            try:
                self._nc = await connect(self.nats_url, "gateway-live")
                self._js = self._nc.jetstream()
                info = await self._js.stream_info(STREAM)
                self.last_seq = info.state.last_seq
                await self._js.subscribe("trading.>", stream=STREAM, ordered_consumer=True,
                                         deliver_policy=DeliverPolicy.NEW, cb=self._on_message)
                self.subscribed.set()
                log.info("live updates subscribed", extra={"from_seq": self.last_seq})
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the stream appears when trading first starts
                log.warning("live updates not subscribed yet: %s", type(exc).__name__)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                await asyncio.sleep(2.0)

    async def _on_message(self, msg) -> None:
        fact = self._fact(msg.metadata.sequence.stream, msg.subject, msg.data)
        if fact is None:
            return
        self.last_seq = max(self.last_seq, fact.seq)
        self._ring.append(fact)
        for queue in list(self._listeners):
            if queue.full():  # a slow client loses the oldest; it re-syncs from the state snapshot
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(fact)

    @staticmethod
    def _fact(seq: int, subject: str, raw: bytes) -> Fact | None:
        try:
            envelope, data = parse(raw)
        except Exception:  # noqa: BLE001 - a malformed event must not stop the feed
            log.warning("unreadable event", extra={"seq": seq})
            return None
        if never_public(envelope.type):
            return None
        return Fact(seq, subject, envelope.type, envelope.subject, data if isinstance(data, dict) else {})

    def listen(self) -> asyncio.Queue[Fact]:
        queue: asyncio.Queue[Fact] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[Fact]) -> None:
        self._listeners.discard(queue)

    async def replay(self, after: int) -> list[Fact]:
        """The facts after sequence `after` up to now (bounded), for a client resuming with Last-Event-ID."""
        upto = self.last_seq
        if after >= upto:
            return []
        after = max(after, upto - MAX_REPLAY)
        if self._ring and self._ring[0].seq <= after + 1:
            return [f for f in self._ring if after < f.seq <= upto]
        facts = []
        for seq in range(after + 1, upto + 1):
            try:
                raw = await self._js.get_msg(STREAM, seq)
            except Exception:  # noqa: BLE001 - deleted or never stored (dedup gaps)
                continue
            fact = self._fact(seq, raw.subject or "", raw.data or b"")
            if fact is not None:
                facts.append(fact)
        return facts

    async def snapshot(self, key: str, seq: int, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """One service call per (stream, fact) however many clients watch it (single flight)."""
        current = self._snapshots.get(key)
        if current is not None and current[0] >= seq:
            return await asyncio.shield(current[1])
        future = asyncio.ensure_future(fetch())
        self._snapshots[key] = (seq, future)
        if len(self._snapshots) > 10_000:
            self._snapshots.clear()
        try:
            return await asyncio.shield(future)
        except Exception:
            self._snapshots.pop(key, None)
            raise

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
