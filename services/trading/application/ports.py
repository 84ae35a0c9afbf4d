"""What the trading use cases need from other services, as small ports (adapters in adapters/clients)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class RegistryUnavailable(Exception):
    """The registry did not answer (down, overloaded, deadline): retry later with the same key."""


class RegistryRefused(Exception):
    """The registry answered no (insufficient funds, wrong state …): retrying the same call won't help.
    `code` is the status (FAILED_PRECONDITION, NOT_FOUND …), `reason` the registry's own (INSUFFICIENT_FUNDS,
    HOLD_RESOLVED, IDEMPOTENCY_KEY_REUSED …) when it gave one."""

    def __init__(self, code: str, message: str, reason: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class LedgerLeg:
    from_account_id: str
    to_account_id: str
    quantity: str
    from_hold_id: str = ""


@dataclass(frozen=True)
class PendingHold:
    hold_id: str
    purpose: str


class RegistryPort(Protocol):
    async def account(self, holder: str, instrument: str, *, open_if_missing: bool) -> str: ...
    async def create_hold(self, key: str, account_id: str, quantity: str, deadline: datetime,
                          purpose: str, *, partial: bool = False) -> str: ...
    async def post_hold(self, key: str, hold_id: str, to_account_id: str) -> str: ...
    async def void_hold(self, key: str, hold_id: str, reason: str) -> None: ...
    # A partial hold (an order's): give back one part of it, or hold more under it. Each part by its key.
    async def release_hold(self, key: str, hold_id: str, quantity: str, reason: str) -> None: ...
    async def increase_hold(self, key: str, hold_id: str, quantity: str) -> None: ...
    async def transfer(self, key: str, legs: list[LedgerLeg], memo: str, reference: str) -> str: ...
    async def transition_resource(self, key: str, resource_id: str, status: str, reason: str,
                                  holder: str = "") -> None: ...
    async def resource_status(self, resource_id: str) -> str: ...
    async def resource_controller(self, resource_id: str) -> str: ...
    async def instrument_scale(self, instrument: str) -> int: ...
    # Units of the instrument the holder holds (its accounts' balances, held units included; "0" without one):
    # what a holding limit counts.
    async def holding(self, holder: str, instrument: str) -> str: ...
    # The pending holds whose purpose starts with the prefix (this service's order holds).
    async def pending_holds(self, purpose_prefix: str) -> list[PendingHold]: ...
    # Whether the registry is reached now (a connection is up), without trying to reach it.
    def connected(self) -> bool: ...


@dataclass(frozen=True)
class EligibilityAnswer:
    allowed: bool
    condition: str = ""
    priority: int = 0
    price_coefficient: str = "1"
    rule: str = ""
    run_id: str = ""
    evaluation_class: int = 0
    score: str = ""


class EligibilityPort(Protocol):
    async def check(self, credit_code: str, sale_kind: str) -> EligibilityAnswer: ...
