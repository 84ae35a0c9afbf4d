"""The trading service's business metrics; names and labels are fixed in docs/metrics.md.

Labels never carry an amount, a bidder or a listing id: a metric must not leak a sealed value. Nor does a
metric move with a sealed sale's bids while it is open (one open tender would show who bid when): the
bids of a tender or a uniform-price auction are counted when the sale is opened, refusals not at all."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MECHANISMS = ("listing", "english", "tender", "uniform_price")
SEALED = ("tender", "uniform_price")


def bidders_label(count: int) -> str:
    return "none" if count == 0 else "single" if count == 1 else "multiple"


class TradingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.bids = Counter("trading_bids_total", "Bids by mechanism, result and refusal reason.",
                            ("mechanism", "result", "reason"), registry=registry)
        self.orders = Counter("trading_orders_total", "Orders by side, result and reason.",
                              ("side", "result", "reason"), registry=registry)
        self.trades = Counter("trading_trades_total", "Trades executed.", ("instrument_kind",), registry=registry)
        self.traded_quantity = Counter("trading_traded_quantity_total", "Quantity traded.", ("instrument_kind",),
                                       registry=registry)
        self.traded_value = Counter("trading_traded_value_fen_total", "Value traded in fen.", ("instrument_kind",),
                                    registry=registry)
        self.last_price = Gauge("trading_last_price_fen", "Last trade price in fen.", ("instrument_kind",),
                                registry=registry)
        self.open_sales = Gauge("trading_open_sales", "Published, undecided sales.", ("mechanism", "state"),
                                registry=registry)
        self.sales_closed = Counter("trading_sales_closed_total", "Sales decided.",
                                    ("mechanism", "outcome", "bidders"), registry=registry)
        self.settlement_seconds = Histogram("trading_settlement_seconds", "Executed → settled.",
                                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                            registry=registry)
        self.settlement_backlog = Gauge("trading_settlement_backlog", "Trades executed, not yet settled.",
                                        registry=registry)
        self.settlement_failures = Counter("trading_settlement_failures_total", "Failed settlement attempts.",
                                           ("reason",), registry=registry)
        self.book_depth = Gauge("trading_book_depth", "Resting quantity.", ("instrument_kind", "side"),
                                registry=registry)
        self.collar_confirmations = Counter(
            "trading_price_collar_confirmations_total",
            "Bids above the price collar placed with the bidder's explicit confirmation.", ("mechanism",),
            registry=registry)
        for mechanism in MECHANISMS:
            self.bids.labels(mechanism, "accepted", "")
            self.collar_confirmations.labels(mechanism)

    def bid(self, mechanism: str, accepted: bool, reason: str = "") -> None:
        """A bid of an open mechanism, as it happens (sealed ones: `opened`)."""
        if mechanism not in SEALED:
            self.bids.labels(mechanism, "accepted" if accepted else "refused", reason).inc()

    def collar_confirmed(self, mechanism: str, count: int = 1) -> None:
        if count:
            self.collar_confirmations.labels(mechanism).inc(count)

    def opened(self, mechanism: str, bids: int, collar_confirmed: int) -> None:
        """A sealed sale's bids, counted at its opening."""
        if bids:
            self.bids.labels(mechanism, "accepted", "").inc(bids)
        self.collar_confirmed(mechanism, collar_confirmed)

    def trade(self, kind: str, quantity: float, value_fen: int, price_fen: int) -> None:
        self.trades.labels(kind).inc()
        self.traded_quantity.labels(kind).inc(quantity)
        self.traded_value.labels(kind).inc(value_fen)
        self.last_price.labels(kind).set(price_fen)

    def set_open_sales(self, counts: dict[tuple[str, str], int]) -> None:
        self.open_sales.clear()
        for (mechanism, state), n in counts.items():
            self.open_sales.labels(mechanism, state).set(n)
