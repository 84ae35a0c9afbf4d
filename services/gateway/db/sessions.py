"""Keyword-only functions over the gateway's session state: refresh tokens, revocations, login throttle rows
and the security journal (the session is always explicit; the caller commits)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.db.tables import LoginThrottleRow, RefreshTokenRow, RevokedTokenRow, SecurityEventRow


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def add_refresh_token(*, session: AsyncSession, token_id: str, family: str, username: str,
                            expires_at: datetime) -> None:
    session.add(RefreshTokenRow(token_id=token_id, family=family, username=username, expires_at=expires_at))
    await session.flush()


async def use_refresh_token(*, session: AsyncSession, token_id: str, now: datetime) -> str:
    """Marks a refresh token used: "fresh" for its first use, "reused" when it was used before, "unknown"."""
    marked = await session.execute(update(RefreshTokenRow).where(RefreshTokenRow.token_id == token_id,
                                                                 RefreshTokenRow.used_at.is_(None))
                                   .values(used_at=now))
    if marked.rowcount == 1:
        return "fresh"
    found = await session.execute(select(RefreshTokenRow.token_id).where(RefreshTokenRow.token_id == token_id))
    return "reused" if found.first() is not None else "unknown"


async def revoke(*, session: AsyncSession, token_id: str, reason: str, username: str, expires_at: datetime,
                 now: datetime) -> bool:
    """Records a revoked token or family id; False when it was revoked already."""
    if await is_revoked(session=session, token_ids=(token_id,)):
        return False
    session.add(RevokedTokenRow(token_id=token_id, reason=reason, username=username, revoked_at=now,
                                expires_at=expires_at))
    await session.flush()
    return True


async def is_revoked(*, session: AsyncSession, token_ids: tuple[str, ...]) -> bool:
    found = await session.execute(select(RevokedTokenRow.id).where(RevokedTokenRow.token_id.in_(token_ids)))
    return found.first() is not None


async def revocations_after(*, session: AsyncSession, last_id: int, now: datetime
                            ) -> list[tuple[int, str, datetime]]:
    """(id, token id, expires at) of the revocations recorded after last_id that still matter."""
    rows = await session.execute(select(RevokedTokenRow.id, RevokedTokenRow.token_id, RevokedTokenRow.expires_at)
                                 .where(RevokedTokenRow.id > last_id, RevokedTokenRow.expires_at > now)
                                 .order_by(RevokedTokenRow.id))
    return [(row.id, row.token_id, utc(row.expires_at)) for row in rows]


async def last_revocation_id(*, session: AsyncSession) -> int:
    found = await session.execute(select(RevokedTokenRow.id).order_by(RevokedTokenRow.id.desc()).limit(1))
    return found.scalar_one_or_none() or 0


async def throttle_row(*, session: AsyncSession, key: str) -> LoginThrottleRow | None:
    """The row of an account or address, locked for this transaction (PostgreSQL; SQLite locks at BEGIN)."""
    found = await session.execute(select(LoginThrottleRow).where(LoginThrottleRow.key == key).with_for_update())
    return found.scalar_one_or_none()


async def forget_throttle(*, session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key == key))


async def record_event(*, session: AsyncSession, event: str, username: str, address: str, detail: str,
                       now: datetime) -> None:
    session.add(SecurityEventRow(at=now, event=event, username=username[:128], address=address[:64], detail=detail))
    await session.flush()


async def security_events(*, session: AsyncSession, event: str, limit: int = 100) -> list[SecurityEventRow]:
    rows = await session.execute(select(SecurityEventRow).where(SecurityEventRow.event == event)
                                 .order_by(SecurityEventRow.id.desc()).limit(limit))
    return list(rows.scalars())


async def prune(*, session: AsyncSession, now: datetime, window_started_before: datetime) -> None:
    """Drops what can no longer matter: expired refresh tokens and revocations, stale throttle rows."""
    await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.expires_at <= now))
    await session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at <= now))
    await session.execute(delete(LoginThrottleRow).where(LoginThrottleRow.window_started_at < window_started_before,
                                                         (LoginThrottleRow.locked_until.is_(None))
                                                         | (LoginThrottleRow.locked_until <= now)))
