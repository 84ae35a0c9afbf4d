"""Commands the registry's use cases take (adapters build them from requests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RegisterEnterprise:
    idempotency_key: str
    credit_code: str
    name: str
    industry_code: str
    region_code: str
    park: str
    size_class: str  # "above" | "below"
    land_held_mu: str


@dataclass(frozen=True)
class SetEnterpriseStatus:
    idempotency_key: str
    credit_code: str
    status: str
    reason: str


@dataclass(frozen=True)
class RegisterAgency:
    idempotency_key: str
    agency_id: str
    name: str
    region_code: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DefineResourceKind:
    idempotency_key: str
    code: str
    name: str
    unit: str
    fungible: bool
    attribute_names: tuple[str, ...]


@dataclass(frozen=True)
class RegisterResource:
    idempotency_key: str
    resource_id: str
    kind: str
    name: str
    region_code: str
    park: str
    quantity: str
    unit: str
    allocation_mode: str
    controller_agency_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    standard_land: bool = False


@dataclass(frozen=True)
class TransitionResource:
    idempotency_key: str
    resource_id: str
    to_status: str
    reason: str
    holder: str = ""


@dataclass(frozen=True)
class DefineInstrument:
    idempotency_key: str
    code: str
    kind: str
    unit: str
    scale: int
    pollutant: str = ""
    vintage: int = 0
    region_code: str = ""
    issuer_agency_id: str = ""  # an agency defines for itself; in-process loaders name the issuer


@dataclass(frozen=True)
class OpenAccount:
    idempotency_key: str
    holder: str
    instrument: str


@dataclass(frozen=True)
class Issue:
    idempotency_key: str
    issuer_agency_id: str
    to_account_id: str
    quantity: str
    memo: str = ""
    unit: str = ""


@dataclass(frozen=True)
class TransferLegCommand:
    from_account_id: str
    to_account_id: str
    quantity: str
    from_hold_id: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Transfer:
    idempotency_key: str
    legs: tuple[TransferLegCommand, ...]
    memo: str = ""
    reference: str = ""


@dataclass(frozen=True)
class CreateHold:
    idempotency_key: str
    account_id: str
    quantity: str
    deadline: datetime
    purpose: str = ""
    unit: str = ""
    partial: bool = False  # captured in parts; False = one-shot (deposits)


@dataclass(frozen=True)
class PostHold:
    idempotency_key: str
    hold_id: str
    to_account_id: str
    quantity: str = ""  # empty: all of it
    unit: str = ""


@dataclass(frozen=True)
class VoidHold:
    idempotency_key: str
    hold_id: str
    reason: str = ""
    quantity: str = ""  # a partial hold: release this part only; empty: everything it still keeps
    unit: str = ""


@dataclass(frozen=True)
class IncreaseHold:
    idempotency_key: str
    hold_id: str
    quantity: str
    unit: str = ""


@dataclass(frozen=True)
class Retire:
    idempotency_key: str
    account_id: str
    quantity: str
    reason: str = ""
    unit: str = ""


@dataclass(frozen=True)
class RequestCashMovement:
    idempotency_key: str
    kind: str  # deposit | withdrawal
    account_id: str
    amount_fen: int
    bank_reference: str
    currency: str = "CNY"


@dataclass(frozen=True)
class ApproveCashMovement:
    idempotency_key: str
    movement_id: str


@dataclass(frozen=True)
class RejectCashMovement:
    idempotency_key: str
    movement_id: str
    reason: str = ""


@dataclass(frozen=True)
class EnterpriseFilter:
    region_prefix: str = ""
    industry_prefix: str = ""
    park: str = ""
    size_class: str = ""
    status: str = ""
    name_contains: str = ""


@dataclass(frozen=True)
class ResourceFilter:
    kind: str = ""
    region_prefix: str = ""
    allocation_mode: str = ""
    status: str = ""
    standard_land_only: bool = False
    park: str = ""


