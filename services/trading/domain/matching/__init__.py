"""Continuous matching core (price-time priority, integer ticks and units)."""
from .book import NO_FILLS, NO_OWNER, Fill, OrderBook, OrderType, RestingOrder, SelfTradePrevention

__all__ = ["NO_FILLS", "NO_OWNER", "Fill", "OrderBook", "OrderType", "RestingOrder", "SelfTradePrevention"]
