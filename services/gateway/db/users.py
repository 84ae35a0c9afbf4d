"""Keyword-only functions over the gateway's users and API keys (the session is always explicit)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.db.tables import ApiKeyRow, UserRow
from services.gateway.identity import Role, User
from services.gateway.security import api_key_digest, hash_password, new_api_key, verify_password


def as_user(row: UserRow) -> User:
    role = Role(row.role)
    subject = row.credit_code if role is Role.ENTERPRISE else row.username
    return User(role, subject, row.username, row.display_name)


async def count_users(*, session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(UserRow))).scalar_one()


async def create_user(*, session: AsyncSession, username: str, password: str, role: Role, credit_code: str = "",
                      display_name: str = "") -> UserRow:
    row = UserRow(username=username, password_hash=hash_password(password), role=role.value,
                  credit_code=credit_code, display_name=display_name, created_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    return row


async def authenticate(*, session: AsyncSession, username: str, password: str) -> UserRow | None:
    row = (await session.execute(select(UserRow).where(UserRow.username == username))).scalar_one_or_none()
    ok = verify_password(password, row.password_hash if row else None)
    return row if ok and row is not None and row.active else None


async def get_user(*, session: AsyncSession, username: str) -> UserRow | None:
    return (await session.execute(select(UserRow).where(UserRow.username == username))).scalar_one_or_none()


async def create_api_key(*, session: AsyncSession, agency_id: str, label: str = "") -> tuple[str, ApiKeyRow]:
    """Returns the key itself once; only its digest is stored."""
    key = new_api_key()
    row = ApiKeyRow(key_digest=api_key_digest(key), agency_id=agency_id, label=label, created_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    return key, row


async def agency_for_key(*, session: AsyncSession, key: str) -> str | None:
    row = (await session.execute(select(ApiKeyRow).where(ApiKeyRow.key_digest == api_key_digest(key))))\
        .scalar_one_or_none()
    return row.agency_id if row is not None and row.active else None
