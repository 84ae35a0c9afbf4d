"""The gateway's own tables: user accounts, agency API keys and session state (its own registry and MetaData)."""

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


class RefreshTokenRow(GatewayTable, table=True):
    """Every refresh token issued, by its token id: used once (rotation); a second use is a theft signal."""

    __tablename__ = "refresh_tokens"
    token_id: str = Field(primary_key=True, max_length=32)
    family: str = Field(index=True, max_length=32)  # all tokens of one login
    username: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class RevokedTokenRow(GatewayTable, table=True):
    """A revoked token id or token family (logout, refresh-token reuse), kept until the tokens expire.
    The ascending id lets each gateway replica read only the revocations it has not seen yet."""

    __tablename__ = "revoked_tokens"
    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True, max_length=32)
    reason: str = Field(max_length=32)
    username: str = Field(default="", max_length=64)
    revoked_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class LoginThrottleRow(GatewayTable, table=True):
    """Failed logins of one account or one client address within the current window."""

    __tablename__ = "login_throttle"
    key: str = Field(primary_key=True, max_length=160)   # "account:<username>" | "address:<ip>"
    failures: int = 0
    window_started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class SecurityEventRow(GatewayTable, table=True):
    """The gateway's own security journal: login locks, refresh-token reuse, with who and from where."""

    __tablename__ = "security_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    event: str = Field(max_length=32)        # login_locked | refresh_reused
    username: str = Field(default="", max_length=128)
    address: str = Field(default="", max_length=64)
    detail: str = ""
