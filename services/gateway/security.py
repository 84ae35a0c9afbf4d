"""Passwords (argon2id), signed tokens (JWT HS256) with revocation, and API key digests.

Every token names its own id (`jti`) and its family (`fam`: all tokens of one login). A token is refused
when either id is in the revocation list, which lives in memory (checked on every request, no database
read) and is filled from the gateway database (services/gateway/sessions.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.gateway.identity import Role, User

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of both failures alike.
_DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    return "ysk_" + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_token_id() -> str:
    return secrets.token_hex(16)


class InvalidToken(Exception):
    pass


class RevokedTokens:
    """Revoked token and family ids of this process, each kept until the tokens it covers have expired."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def add(self, token_id: str, expires_at: datetime) -> None:
        self._until[token_id] = expires_at

    def covers(self, *token_ids: str) -> bool:
        return any(token_id in self._until for token_id in token_ids)

    def forget_expired(self, now: datetime) -> None:
        self._until = {token_id: until for token_id, until in self._until.items() if until > now}

    def __len__(self) -> int:
        return len(self._until)


@dataclass(frozen=True)
class Claims:
    user: User
    kind: str           # access | refresh
    token_id: str
    family: str
    expires_at: datetime


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_id: str
    family: str
    family_expires_at: datetime


class TokenSigner:
    def __init__(self, secret: str, access_minutes: int, refresh_hours: int,
                 revoked: RevokedTokens | None = None) -> None:
        self._secret = secret
        self.access_ttl = timedelta(minutes=access_minutes)
        self.refresh_ttl = timedelta(hours=refresh_hours)
        self.revoked = revoked if revoked is not None else RevokedTokens()

    def _sign(self, user: User, kind: str, token_id: str, family: str, now: datetime, expires: datetime) -> str:
        claims = {"sub": user.username, "role": user.role.value, "subj": user.subject, "name": user.display_name,
                  "typ": kind, "iat": now, "exp": expires, "jti": token_id, "fam": family}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue(self, user: User, family: str | None = None, family_expires_at: datetime | None = None) -> Tokens:
        """A new login (no family), or the next pair of a login's family: a session ends REFRESH_TOKEN_HOURS
        after its login however often it is refreshed, and no access token outlives its family."""
        now = datetime.now(UTC)
        family = family or new_token_id()
        family_expires_at = family_expires_at or now + self.refresh_ttl
        access_expires = min(now + self.access_ttl, family_expires_at)
        refresh_id = new_token_id()
        return Tokens(self._sign(user, "access", new_token_id(), family, now, access_expires),
                      self._sign(user, "refresh", refresh_id, family, now, family_expires_at),
                      max(0, int((access_expires - now).total_seconds())), refresh_id, family, family_expires_at)

    def claims(self, token: str, kind: str = "access", *, check_expiry: bool = True) -> Claims:
        """The verified claims of a token that is neither expired (unless told) nor revoked."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub", "role", "typ", "jti", "fam"],
                                         "verify_exp": check_expiry})
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid or expired token") from exc
        if claims.get("typ") != kind or claims["role"] not in Role._value2member_map_:
            raise InvalidToken("wrong token type")
        if self.revoked.covers(str(claims["jti"]), str(claims["fam"])):
            raise InvalidToken("the session has ended")
        user = User(Role(claims["role"]), claims.get("subj", ""), claims["sub"], claims.get("name", ""))
        return Claims(user, kind, str(claims["jti"]), str(claims["fam"]),
                      datetime.fromtimestamp(claims["exp"], UTC))

    def read(self, token: str, kind: str = "access") -> User:
        return self.claims(token, kind).user
