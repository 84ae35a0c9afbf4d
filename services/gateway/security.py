"""Passwords (argon2id), signed tokens (JWT HS256) and API key digests."""

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


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


class TokenSigner:
    def __init__(self, secret: str, access_minutes: int, refresh_hours: int) -> None:
        self._secret = secret
        self.access_ttl = timedelta(minutes=access_minutes)
        self.refresh_ttl = timedelta(hours=refresh_hours)

    def _sign(self, user: User, kind: str, ttl: timedelta) -> str:
        now = datetime.now(UTC)
        claims = {"sub": user.username, "role": user.role.value, "subj": user.subject, "name": user.display_name,
                  "typ": kind, "iat": now, "exp": now + ttl, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue(self, user: User) -> Tokens:
        return Tokens(self._sign(user, "access", self.access_ttl), self._sign(user, "refresh", self.refresh_ttl),
                      int(self.access_ttl.total_seconds()))

    def read(self, token: str, kind: str = "access") -> User:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub", "role", "typ"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid or expired token") from exc
        if claims.get("typ") != kind or claims["role"] not in Role._value2member_map_:
            raise InvalidToken("wrong token type")
        return User(Role(claims["role"]), claims.get("subj", ""), claims["sub"], claims.get("name", ""))
