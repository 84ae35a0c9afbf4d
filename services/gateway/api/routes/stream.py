"""Server-sent events: a sale's state and an order book, live and resumable (Last-Event-ID)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from yaosu.trading.v1 import trading_pb2 as tpb

from services.gateway.api.authz import GuardDep
from services.gateway.api.common import SEALED_MECHANISMS, visible_listing
from services.gateway.api.deps import ClientsDep
from services.gateway.api.errors import problem_responses
from services.gateway.api.routes.listings import sees_counts
from services.gateway.api.schemas import OrderBookPublic, SaleStatePublic, from_proto
from services.gateway.live.hub import Fact, LiveHub
from services.gateway.live.public import kind_of, listing_fact, market_fact

router = APIRouter(tags=["live"])
KEEPALIVE_SECONDS = 15.0
SSE = {200: {"content": {"text/event-stream": {}}, "description": "a stream of server-sent events"}}
SEALED_COUNTS = {"accepted_bids": None, "registered_bidders": None, "leading_bidder_number": ""}

# What one viewer sees of a fact: its event data, or None when the fact is not for this stream or viewer.
Show = Callable[[Fact], dict[str, Any] | None]


def frame(event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _last_id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def _stream(request: Request, hub: LiveHub, stream: str, last_event_id: int | None, show: Show,
                  snapshot: Callable[[int], Awaitable[tuple[str, dict]]]) -> AsyncIterator[str]:
    gauge = request.app.state.metrics.sse_clients.labels(stream)
    queue = hub.listen()  # before the snapshot, so nothing falls between the two
    gauge.inc()
    try:
        yield "retry: 2000\n\n"
        if last_event_id is not None:
            for fact in await hub.replay(last_event_id):
                if (data := show(fact)) is not None:
                    yield frame(kind_of(fact.type), data, fact.seq)
        name, data = await snapshot(hub.last_seq)
        yield frame(name, data, hub.last_seq)
        while not await request.is_disconnected():
            try:
                fact = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if (data := show(fact)) is None:
                continue
            yield frame(kind_of(fact.type), data, fact.seq)
            while not queue.empty():  # coalesce a burst into one snapshot
                more = queue.get_nowait()
                if (data := show(more)) is not None:
                    fact = more
                    yield frame(kind_of(fact.type), data, fact.seq)
            name, data = await snapshot(fact.seq)
            yield frame(name, data, fact.seq)
    finally:
        gauge.dec()
        hub.forget(queue)


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/listings/{listing_id}/events", response_class=StreamingResponse,
            responses={**SSE, **problem_responses(404, 429, 503, 504)})
async def sale_events(listing_id: str, request: Request, clients: ClientsDep, guard: GuardDep,
                      last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None
                      ) -> StreamingResponse:
    """Events `state` (the public sale state: current price, leading bidder number, closes_at for the
    countdown), and facts such as `bid.accepted`, `sale.extended`, `sale.closed`. The id is the JetStream
    sequence; reconnecting with Last-Event-ID replays what was missed. Of a sealed sale no bid or
    registration is shown, and before opening no count."""
    listing = await visible_listing(clients, guard, listing_id)  # 404 before the stream starts
    sealed = listing.mechanism in SEALED_MECHANISMS
    hub: LiveHub = request.app.state.hub

    def show(fact: Fact) -> dict[str, Any] | None:
        if not fact.concerns_listing(listing_id):
            return None
        return listing_fact(kind_of(fact.type), fact.data, sealed_mechanism=sealed, counts=sees_counts(listing, guard))

    async def snapshot(seq: int) -> tuple[str, dict]:
        async def fetch():  # the public state, one call per fact however many watch (hub.snapshot)
            reply = await clients.call(clients.trading.GetSaleState, tpb.GetSaleStateRequest(listing_id=listing_id))
            return from_proto(SaleStatePublic, reply.state).model_dump(mode="json")
        state = await hub.snapshot(f"sale:{listing_id}", seq, fetch)
        return "state", state if sees_counts(listing, guard) else {**state, **SEALED_COUNTS}

    return _response(_stream(request, hub, "sale", _last_id(last_event_id), show, snapshot))


@router.get("/markets/{instrument}/events", response_class=StreamingResponse,
            responses={**SSE, **problem_responses(404, 429, 503, 504)})
async def book_events(instrument: str, request: Request, clients: ClientsDep,
                      last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None
                      ) -> StreamingResponse:
    """Events `book` (depth by price level, last price) and facts such as `trade.executed`."""
    hub: LiveHub = request.app.state.hub

    async def snapshot(seq: int) -> tuple[str, dict]:
        async def fetch():
            reply = await clients.call(clients.trading.GetOrderBook,
                                       tpb.GetOrderBookRequest(instrument=instrument, depth=10))
            return from_proto(OrderBookPublic, reply).model_dump(mode="json")
        return "book", await hub.snapshot(f"book:{instrument}", seq, fetch)

    await snapshot(hub.last_seq)  # an unknown instrument answers 404 here, before the stream starts
    return _response(_stream(request, hub, "book", _last_id(last_event_id),
                             lambda f: market_fact(f.data) if f.concerns_instrument(instrument) else None, snapshot))
