"""Login sessions: start, rotate on every refresh (a reused refresh token ends its whole family), end on
logout. Revocations go to the gateway database (the truth) and to this process's in-memory list at once;
other replicas read them every REVOCATION_SYNC_SECONDS."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.gateway.db import sessions as store
from services.gateway.db import users as crud
from services.gateway.identity import Role, User
from services.gateway.security import InvalidToken, RevokedTokens, Tokens, TokenSigner

log = logging.getLogger(__name__)


class SessionEnded(Exception):
    """The refresh token no longer opens a session (expired, revoked, reused, or the account is inactive)."""


class SessionService:
    def __init__(self, sessions, signer: TokenSigner, *, on_reuse: Callable[[], None] = lambda: None) -> None:
        self._sessions, self.signer = sessions, signer
        self.revoked: RevokedTokens = signer.revoked
        self._seen = 0  # the last revocation id read from the database
        self._on_reuse = on_reuse

    async def start(self, user: User) -> Tokens:
        tokens = self.signer.issue(user)
        async with self._sessions() as session:
            await store.add_refresh_token(session=session, token_id=tokens.refresh_id, family=tokens.family,
                                          username=user.username, expires_at=tokens.family_expires_at)
            await session.commit()
        return tokens

    async def rotate(self, refresh_token: str, *, address: str) -> tuple[User, Tokens]:
        """The next token pair of the refresh token's family; the presented token is spent."""
        try:
            claims = self.signer.claims(refresh_token, "refresh")
        except InvalidToken:
            raise SessionEnded("invalid or expired refresh token") from None
        now = datetime.now(UTC)
        async with self._sessions() as session:
            if await store.is_revoked(session=session, token_ids=(claims.token_id, claims.family)):
                raise SessionEnded("the session has ended")
            use = await store.use_refresh_token(session=session, token_id=claims.token_id, now=now)
            if use == "reused":
                # Either the holder or a thief used it before: neither may go on with this login.
                await self._revoke(session, claims.family, "refresh_reused", claims.user.username,
                                   claims.expires_at, now)
                await store.record_event(session=session, event="refresh_reused", username=claims.user.username,
                                         address=address, detail=f"family {claims.family} revoked", now=now)
                await session.commit()
                self._on_reuse()
                log.warning("refresh token reused: session revoked",
                            extra={"username": claims.user.username, "client_address": address})
                raise SessionEnded("the refresh token was already used; the session has been ended")
            if use == "unknown":
                raise SessionEnded("unknown refresh token")
            user = claims.user if claims.user.role is Role.AGENCY else await self._active(session, claims.user)
            if user is None:
                await session.commit()
                raise SessionEnded("the account is no longer active")
            tokens = self.signer.issue(user, claims.family, claims.expires_at)
            await store.add_refresh_token(session=session, token_id=tokens.refresh_id, family=tokens.family,
                                          username=user.username, expires_at=tokens.family_expires_at)
            await session.commit()
        return user, tokens

    @staticmethod
    async def _active(session, user: User) -> User | None:
        """The account as it is now (role, enterprise, name), if it is still active."""
        row = await crud.get_user(session=session, username=user.username)
        return crud.as_user(row) if row is not None and row.active else None

    async def end(self, *tokens: str) -> int:
        """Logout: the families of the given access or refresh tokens end now. Returns how many ended."""
        families: dict[str, tuple[str, datetime]] = {}
        for token in tokens:
            for kind in ("access", "refresh"):
                try:
                    claims = self.signer.claims(token, kind, check_expiry=False)
                except InvalidToken:
                    continue
                # An access token never outlives its family; a refresh token expires with it.
                until = claims.expires_at if kind == "refresh" else claims.expires_at + self.signer.refresh_ttl
                username, known = families.get(claims.family, (claims.user.username, until))
                families[claims.family] = (username, max(known, until))
        if not families:
            return 0
        now = datetime.now(UTC)
        async with self._sessions() as session:
            for family, (username, until) in families.items():
                await self._revoke(session, family, "logout", username, until, now)
            await session.commit()
        return len(families)

    async def _revoke(self, session, token_id: str, reason: str, username: str, until: datetime,
                      now: datetime) -> None:
        await store.revoke(session=session, token_id=token_id, reason=reason, username=username,
                           expires_at=until, now=now)
        self.revoked.add(token_id, until)

    async def sync(self) -> None:
        """Reads the revocations other replicas wrote since the last read, and forgets expired ones."""
        now = datetime.now(UTC)
        async with self._sessions() as session:
            found = await store.revocations_after(session=session, last_id=self._seen, now=now)
        for revocation_id, token_id, until in found:
            self.revoked.add(token_id, until)
            self._seen = max(self._seen, revocation_id)
        self.revoked.forget_expired(now)

    async def prune(self, throttle_window: timedelta) -> None:
        now = datetime.now(UTC)
        async with self._sessions() as session:
            await store.prune(session=session, now=now, window_started_before=now - throttle_window)
            await session.commit()
