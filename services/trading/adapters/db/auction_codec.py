"""Domain events of the English auction, the tender and the uniform-price auction ⇄ JSON rows of
`sale_events`. Sealed values are encrypted at rest with the service's sealing key: the tender amount
(a `Sealed`), the reserve (a `Sealed`) and the price and lots of a uniform-price bid (plain ints in the
domain, sealed here because they are confidential until the window closes)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

from services.trading.adapters.db.sealing import Sealer
from services.trading.domain import english_auction as E
from services.trading.domain import tender as T
from services.trading.domain import uniform_auction as U
from services.trading.domain.clearing import ClearingStatus
from services.trading.domain.reserve import ReserveApproved, ReserveEntered
from services.trading.domain.sealed import Sealed

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    ReserveEntered, ReserveApproved, E.BidderRegistered, E.AuctionStarted, E.BidAccepted, E.IncrementChanged,
    E.AuctionSold, E.AuctionUnsold, E.AuctionCancelled, T.TenderBidSealed, T.TenderOpened, U.QuotaBidPlaced, U.QuotaBidWithdrawn,
    U.AuctionCleared, U.AuctionStatistics)}
_SEALED_INTS = {"QuotaBidPlaced": ("price", "lots")}
_SEALED_LABELS = {"ReserveEntered": "reserve price", "TenderBidSealed": "tender bid"}


def _plain(value: Any, sealer: Sealer) -> Any:
    if isinstance(value, Sealed):
        return sealer.seal(value.for_persistence())  # the one door out of the domain, encrypted at once
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name), sealer) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v, sealer) for v in value]
    return value


class AuctionCodec:
    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def encode(self, event: Any) -> tuple[str, str]:
        name = type(event).__name__
        data = {f.name: _plain(getattr(event, f.name), self.sealer) for f in dataclasses.fields(event)}
        for field in _SEALED_INTS.get(name, ()):
            data[field] = self.sealer.seal(data[field])
        return name, json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def decode(self, type_name: str, payload: str) -> Any:
        cls = EVENT_TYPES[type_name]
        data = json.loads(payload)
        for field in _SEALED_INTS.get(type_name, ()):
            data[field] = self.sealer.open(data[field])
        if type_name in _SEALED_LABELS:
            data["amount"] = Sealed(self.sealer.open(data["amount"]), _SEALED_LABELS[type_name])
        for name in ("at", "deadline"):
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        if cls is U.AuctionCleared:
            data["status"] = ClearingStatus(data["status"])
            for name in ("allocations", "cuts", "holdings"):  # cuts and holdings: absent from older rows
                if name in data:
                    data[name] = tuple(tuple(a) for a in data[name])
        elif cls is U.AuctionStatistics:
            for name in ("allocation_per_bidder", "amount_due_per_bidder"):
                data[name] = tuple(tuple(a) for a in data[name])
        elif cls is T.TenderOpened:
            data["ranking"] = tuple(T.RankedBid(**r) for r in data["ranking"])
        return cls(**data)
