"""What the registry's use cases return (and store for idempotent replay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EnterpriseView:
    credit_code: str
    name: str
    industry_code: str
    region_code: str
    park: str
    size_class: str
    land_held_mu: Decimal
    status: str
    registered_at: datetime


@dataclass(frozen=True)
class AgencyView:
    agency_id: str
    name: str
    region_code: str
    roles: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class KindView:
    code: str
    name: str
    unit: str
    fungible: bool
    attribute_names: tuple[str, ...]


@dataclass(frozen=True)
class ResourceView:
    resource_id: str
    kind: str
    name: str
    region_code: str
    park: str
    quantity: Decimal
    unit: str
    allocation_mode: str
    status: str
    controller_agency_id: str
    attributes: dict[str, str]
    standard_land: bool
    holder: str
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CatalogueTotalView:
    kind: str
    region_code: str
    allocation_mode: str
    status: str
    items: int
    quantity: Decimal
    unit: str


@dataclass(frozen=True)
class InstrumentView:
    code: str
    kind: str
    pollutant: str
    vintage: int
    region_code: str
    unit: str
    scale: int
    issued: Decimal
    retired: Decimal
    issuer_agency_id: str = ""

    @property
    def outstanding(self) -> Decimal:
        return self.issued - self.retired


@dataclass(frozen=True)
class AccountView:
    account_id: str
    holder: str
    instrument: str
    unit: str
    balance: Decimal
    held: Decimal
    opened_at: datetime
    holder_kind: str = "enterprise"  # enterprise | agency

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


@dataclass(frozen=True)
class PostingView:
    account_id: str
    instrument: str
    unit: str
    balance_delta: Decimal
    held_delta: Decimal
    balance_after: Decimal
    counterparty_account_id: str
    hold_id: str


@dataclass(frozen=True)
class OperationView:
    operation_id: str
    type: str
    memo: str
    actor: str
    at: datetime
    reference: str
    postings: tuple[PostingView, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class HoldView:
    hold_id: str
    account_id: str
    unit: str
    quantity: Decimal
    posted: Decimal
    status: str
    deadline: datetime
    purpose: str
    created_at: datetime
    resolved_at: datetime | None
    partial: bool = False  # captured in parts
    released: Decimal = Decimal(0)  # given back to available


@dataclass(frozen=True)
class HoldResult:
    hold: HoldView
    operation: OperationView


@dataclass(frozen=True)
class CashMovementView:
    movement_id: str
    kind: str              # deposit | withdrawal
    account_id: str
    amount_fen: int
    bank_agency_id: str
    bank_reference: str
    state: str             # pending | executed | rejected
    requested_by: str
    requested_at: datetime
    decided_by: str = ""
    decided_at: datetime | None = None
    operation_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Page:
    """Keyset pagination over a sort key; the token is the last key of the page."""

    size: int
    after: str = ""


@dataclass(frozen=True)
class PageOf(Generic[T]):
    items: list[T]
    next_after: str
    total: int
