"""The gateway's own tables: user accounts and agency API keys (its own registry and MetaData)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class GatewayTable(SQLModel, registry=registry()):
    pass


metadata = GatewayTable.metadata


class UserRow(GatewayTable, table=True):
    """A person who logs in with a password: an enterprise user, a regulator or an administrator."""

    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    password_hash: str
    role: str = Field(max_length=20)              # enterprise | regulator | admin
    credit_code: str = Field(default="", max_length=18)  # the enterprise an enterprise user acts for
    display_name: str = ""
    active: bool = True
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiKeyRow(GatewayTable, table=True):
    """An agency's API key, kept only as its SHA-256 digest (keys are 256-bit random, so no slow hash)."""

    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    key_digest: str = Field(unique=True, index=True, max_length=64)
    agency_id: str = Field(index=True, max_length=64)
    label: str = ""
    active: bool = True
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
