"""What the trading use cases need from other services, as small ports (adapters in adapters/clients)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class RegistryUnavailable(Exception):
    """The registry did not answer (down, overloaded, deadline): retry later with the same key."""


class RegistryRefused(Exception):
    """The registry answered no (insufficient funds, wrong state …): retrying the same call won't help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LedgerLeg:
    from_account_id: str
    to_account_id: str
    quantity: str
    from_hold_id: str = ""


class RegistryPort(Protocol):
    async def account(self, holder: str, instrument: str, *, open_if_missing: bool) -> str: ...
    async def create_hold(self, key: str, account_id: str, quantity: str, deadline: datetime,
                          purpose: str) -> str: ...
    async def post_hold(self, key: str, hold_id: str, to_account_id: str) -> str: ...
    async def void_hold(self, key: str, hold_id: str, reason: str) -> None: ...
    async def transfer(self, key: str, legs: list[LedgerLeg], memo: str, reference: str) -> str: ...
    async def transition_resource(self, key: str, resource_id: str, status: str, reason: str,
                                  holder: str = "") -> None: ...
    async def resource_status(self, resource_id: str) -> str: ...
    async def resource_controller(self, resource_id: str) -> str: ...
    async def instrument_scale(self, instrument: str) -> int: ...


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
