"""Matching-engine benchmark: the §4.3 workloads of trading-anchors.md, in-process, against peers.

Run: `PYTHONPATH=gen:. .venv/bin/python -m tests.bench.bench_matching`

What is measured: the matching core alone (`services.trading.domain.matching.OrderBook`), one
instrument, one thread; no journal, no network, no band/session checks. Mix: ~70 % limit orders
(which trade when they cross), ~30 % cancels (some target filled orders: no-ops). Throughput =
operations / wall time of the loop only. The peers run the same operations in the same process;
the resting and traded totals of every engine must be equal.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal

from services.trading.domain.matching import OrderBook

Op = tuple


def workload(n: int, cancel_ratio: float = 0.3, spread: int = 50, seed: int = 42) -> list[Op]:
    """Deep book: buyers centred below, sellers above -> partial crossing, book grows."""
    rng = random.Random(seed)
    ops: list[Op] = []
    oid = 0
    for _ in range(n):
        if oid and rng.random() < cancel_ratio:
            ops.append(("C", rng.randint(1, oid)))  # may target a filled order -> no-op
        else:
            oid += 1
            buy = rng.random() < 0.5
            px = 10000 + (rng.randint(-spread, spread // 5) if buy else rng.randint(-spread // 5, spread))
            ops.append(("L", oid, buy, rng.randint(1, 100), px))
    return ops


def shallow_workload(n: int, cancel_ratio: float = 0.3, spread: int = 50, seed: int = 7) -> list[Op]:
    """Shallow book: both sides draw from the same range, so most orders cross."""
    rng = random.Random(seed)
    ops: list[Op] = []
    oid = 0
    for _ in range(n):
        if oid and rng.random() < cancel_ratio:
            ops.append(("C", rng.randint(1, oid)))
        else:
            oid += 1
            buy = rng.random() < 0.5
            ops.append(("L", oid, buy, rng.randint(1, 100), 10000 + rng.randint(-spread, spread)))
    return ops


# Each runner returns (seconds of the timed loop, resting_buy, resting_sell, traded).


def run_yaosu(ops: list[Op]) -> tuple[float, int, int, int]:
    book = OrderBook()
    limit, cancel = book.limit, book.cancel
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "L":
            limit(op[1], op[2], op[3], op[4])
        else:
            cancel(op[1])
    elapsed = time.perf_counter() - t0
    buy, sell = book.resting_quantity()
    return elapsed, buy, sell, book.traded_quantity


def run_pyorderbook(ops: list[Op]) -> tuple[float, int, int, int]:
    import logging

    from pyorderbook import Book, ask, bid

    logging.getLogger("pyorderbook").setLevel(logging.WARNING)
    book = Book()
    live = book.order_map
    by_oid: dict[int, object] = {}
    traded = 0
    prices = {px: Decimal(px) for px in {op[4] for op in ops if op[0] == "L"}}
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "L":
            order = (bid if op[2] else ask)("X", prices[op[4]], op[3])
            blotter = book.match(order)
            for trade in blotter.trades:
                traded += trade.fill_quantity
            if order.id in live:
                by_oid[op[1]] = order
        else:
            order = by_oid.pop(op[1], None)
            if order is not None and order.id in live:
                book.cancel(order)
    elapsed = time.perf_counter() - t0
    buy = sell = 0
    for order in live.values():
        if order.side.name == "BID":
            buy += order.quantity
        else:
            sell += order.quantity
    return elapsed, buy, sell, traded


def run_limit_order_book(ops: list[Op]) -> tuple[float, int, int, int]:
    from limit_order_book import LimitOrderBook

    book = LimitOrderBook()
    limit, has, cancel = book.limit, book.has, book.cancel
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "L":
            limit(op[2], op[1], op[3], op[4])
        elif has(op[1]):
            cancel(op[1])
    elapsed = time.perf_counter() - t0
    buy, sell = book.volume_buy(), book.volume_sell()
    # Its API reports no fills; count them in a second, untimed pass by volume differences.
    check = LimitOrderBook()
    traded = 0
    for op in ops:
        if op[0] == "L":
            opposite = check.volume_sell() if op[2] else check.volume_buy()
            check.limit(op[2], op[1], op[3], op[4])
            traded += opposite - (check.volume_sell() if op[2] else check.volume_buy())
        elif check.has(op[1]):
            check.cancel(op[1])
    return elapsed, buy, sell, traded


ENGINES: dict[str, Callable[[list[Op]], tuple[float, int, int, int]]] = {
    "yaosu": run_yaosu,
    "pyorderbook": run_pyorderbook,
    "limit-order-book": run_limit_order_book,
}


def best_of(runner: Callable, ops: list[Op], repeats: int) -> tuple[float, int, int, int]:
    results = [runner(ops) for _ in range(repeats)]
    fastest = min(results, key=lambda r: r[0])
    return fastest


def main() -> None:
    cases = [("deep", workload(300_000)), ("shallow", shallow_workload(200_000))]
    for name, ops in cases:
        figures: dict[str, float] = {}
        totals: dict[str, tuple[int, int, int]] = {}
        for engine, runner in ENGINES.items():
            elapsed, buy, sell, traded = best_of(runner, ops, 3 if engine != "pyorderbook" else 1)
            figures[engine] = len(ops) / elapsed
            totals[engine] = (buy, sell, traded)
        equal = len(set(totals.values())) == 1
        print(
            f"trading.matching.{name:<8} yaosu {figures['yaosu']:,.0f} ops/s  "
            f"pyorderbook {figures['pyorderbook']:,.0f}  "
            f"limit-order-book {figures['limit-order-book']:,.0f}  "
            f"{'totals equal' if equal else 'TOTALS DIFFER ' + repr(totals)}  "
            f"(resting buy/sell, traded = {totals['yaosu']}, {len(ops):,} ops)"
        )


if __name__ == "__main__":
    main()
