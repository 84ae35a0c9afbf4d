"""Domain events ⇄ JSON rows of `sale_events`. The domain stays free of persistence; this codec knows
each event type by name and restores datetimes, tuples and sealed values on the way back."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from services.trading.adapters.db.sealing import Sealer
from services.trading.domain import listing as L
from services.trading.domain.reserve import ReserveApproved, ReserveEntered
from services.trading.domain.sealed import Sealed

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    ReserveEntered, ReserveApproved, L.QuoteAccepted, L.IncrementChanged, L.ListingClosed,
    L.ContinuationConfirmed, L.LiveRoundStarted, L.ListingSold, L.ListingUnsold, L.QuotesInvalidated)}
_DATETIMES = {"at", "deadline", "confirmation_deadline"}
_TUPLES = {"bidders_with_quotes", "participants"}


class EventCodec:
    """Sealed values are encrypted with the service's sealing key on the way into a row."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def encode(self, event: Any) -> tuple[str, str]:
        return encode(event, self.sealer)

    def decode(self, type_name: str, payload: str) -> Any:
        return decode(type_name, payload, self.sealer)


def encode(event: Any, sealer: Sealer | None = None) -> tuple[str, str]:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, Sealed):
            # The one door out of the domain (grep for_persistence): the row is never served before opening.
            if sealer is None:
                raise ValueError("a sealed value needs the sealer")
            value = sealer.seal(value.for_persistence())
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return type(event).__name__, json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode(type_name: str, payload: str, sealer: Sealer | None = None) -> Any:
    cls = EVENT_TYPES[type_name]
    data = json.loads(payload)
    for name in list(data):
        value = data[name]
        if name in _DATETIMES and value is not None:
            data[name] = datetime.fromisoformat(value)
        elif name in _TUPLES:
            data[name] = tuple(value)
    if cls is ReserveEntered:
        if sealer is None:
            raise ValueError("a sealed value needs the sealer")
        data["amount"] = Sealed(sealer.open(data["amount"]), "reserve price")
    return cls(**data)
