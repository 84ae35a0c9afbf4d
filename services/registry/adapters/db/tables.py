"""The registry's tables (its own SQLModel registry and MetaData: no other service shares them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.common.tables import declare_infrastructure

# Decimal quantities of the catalogue are kept as integers of 10^-6 of their unit: exact SQL sums.
MICRO = 6


class RegistryTable(SQLModel, registry=registry()):
    pass


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


class EnterpriseRow(RegistryTable, table=True):
    __tablename__ = "enterprises"
    credit_code: str = Field(primary_key=True, max_length=18)
    name: str = Field(index=True)
    industry_code: str = Field(index=True, max_length=5)
    region_code: str = Field(index=True, max_length=6)
    park: str = Field(default="", index=True)
    size_class: str = Field(max_length=10)
    land_held_micro: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=20)
    registered_at: datetime = Field(sa_column=_ts(nullable=False))


class AgencyRow(RegistryTable, table=True):
    __tablename__ = "agencies"
    agency_id: str = Field(primary_key=True, max_length=64)
    name: str
    region_code: str = Field(max_length=6)
    roles: str  # comma-separated role names
    status: str = Field(max_length=20)


class ResourceKindRow(RegistryTable, table=True):
    __tablename__ = "resource_kinds"
    code: str = Field(primary_key=True, max_length=64)
    name: str
    unit: str
    fungible: bool
    attribute_names: str  # comma-separated


class ResourceRow(RegistryTable, table=True):
    __tablename__ = "resources"
    __table_args__ = (Index("ix_resources_totals", "kind", "region_code", "allocation_mode", "status"),)
    resource_id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(foreign_key="resource_kinds.code")
    name: str
    region_code: str = Field(index=True, max_length=6)
    park: str = Field(default="")
    quantity_micro: int = Field(sa_column=Column(BigInteger, nullable=False))
    allocation_mode: str = Field(max_length=20)
    status: str = Field(index=True, max_length=20)
    controller_agency_id: str
    attributes: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    standard_land: bool = False
    holder: str = Field(default="")
    registered_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class InstrumentRow(RegistryTable, table=True):
    __tablename__ = "instruments"
    code: str = Field(primary_key=True, max_length=128)
    kind: str = Field(index=True)
    pollutant: str = ""
    vintage: int = 0
    region_code: str = ""
    unit: str
    scale: int
    issued: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    retired: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    issuer_agency_id: str = Field(default="", max_length=64)  # empty for money, which is never issued


class AccountRow(RegistryTable, table=True):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("holder", "instrument", name="uq_accounts_holder_instrument"),)
    account_id: str = Field(primary_key=True, max_length=64)
    holder: str = Field(index=True, max_length=64)
    holder_kind: str = Field(default="enterprise", max_length=20)  # enterprise | agency: who owns it
    instrument: str = Field(foreign_key="instruments.code", max_length=128)
    balance: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    held: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    opened_at: datetime = Field(sa_column=_ts(nullable=False))


class HoldRow(RegistryTable, table=True):
    __tablename__ = "holds"
    hold_id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", index=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    posted: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    # Given back to available: a void, an expiry, a one-shot post's remainder, a partial hold's releases.
    released: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    partial: bool = False  # captured in parts (order holds); False = one-shot (deposits)
    status: str = Field(index=True, max_length=10)
    deadline: datetime = Field(sa_column=_ts(nullable=False, index=True))
    purpose: str = ""
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OperationRow(RegistryTable, table=True):
    __tablename__ = "ledger_operations"
    operation_id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=10)
    memo: str = ""
    actor: str = ""
    reference: str = Field(default="", index=True)
    at: datetime = Field(sa_column=_ts(nullable=False))


class PostingRow(RegistryTable, table=True):
    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_postings_account", "account_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    operation_id: str = Field(foreign_key="ledger_operations.operation_id", index=True)
    account_id: str = Field(foreign_key="accounts.account_id")
    balance_delta: int = Field(sa_column=Column(BigInteger, nullable=False))
    held_delta: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    counterparty_account_id: str = ""
    hold_id: str = ""


class CashMovementRow(RegistryTable, table=True):
    __tablename__ = "cash_movements"
    __table_args__ = (Index("ix_cash_movements_bank_reference", "bank_agency_id", "bank_reference"),)
    movement_id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=10)
    account_id: str = Field(foreign_key="accounts.account_id", index=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    bank_agency_id: str = Field(max_length=64)
    bank_reference: str = Field(max_length=128)
    state: str = Field(index=True, max_length=10)
    requested_by: str = Field(max_length=200)
    decided_by: str = Field(default="", max_length=200)
    operation_id: str = Field(default="", max_length=64)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    requested_at: datetime = Field(sa_column=_ts(nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


metadata = RegistryTable.metadata
infrastructure = declare_infrastructure(metadata)
