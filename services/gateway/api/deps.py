"""Dependencies as `Annotated` aliases (overridable through app.dependency_overrides in tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.api.errors import ProblemError
from services.gateway.api.limits import TokenBuckets, retry_after
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.db import users as crud
from services.gateway.identity import Role, User
from services.gateway.security import InvalidToken, TokenSigner, api_key_digest

SESSION_COOKIE = "yaosu_session"
REFRESH_COOKIE = "yaosu_refresh"

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="agency API key")


def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_clients(request: Request) -> ServiceClients:
    return request.app.state.clients


def get_signer(request: Request) -> TokenSigner:
    return request.app.state.signer


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
SignerDep = Annotated[TokenSigner, Depends(get_signer)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def optional_user(request: Request, signer: SignerDep,
                        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                        api_key: Annotated[str | None, Depends(_api_key)]) -> User | None:
    """Bearer token, agency API key, or the portal's session cookie (mutations then need the
    Idempotency-Key header, which a cross-site form cannot send: no CSRF)."""
    if bearer is not None:
        try:
            return signer.read(bearer.credentials)
        except InvalidToken:
            raise ProblemError(401, "invalid or expired token",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if api_key:
        agency = await _agency(request, api_key)
        if agency is None:
            raise ProblemError(401, "unknown API key")
        # Each key is its own principal of the agency (dual control needs two), named by its digest.
        return User(Role.AGENCY, agency, f"key:{api_key_digest(api_key)[:12]}")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            return signer.read(cookie)
        except InvalidToken:
            return None
    return None


async def _agency(request: Request, key: str) -> str | None:
    cache: dict[str, str] = request.app.state.api_key_cache
    if key in cache:
        return cache[key]
    async with request.app.state.sessions() as session:
        agency = await crud.agency_for_key(session=session, key=key)
    if agency is not None:
        cache[key] = agency
    return agency


OptionalUser = Annotated[User | None, Depends(optional_user)]


def current_user(user: OptionalUser) -> User:
    if user is None:
        raise ProblemError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    return user


# Who is calling. What a user may do is the policy's: api/authz.py gates every /api/v1 route.
CurrentUser = Annotated[User, Depends(current_user)]


def idempotency_key(user: CurrentUser,
                    key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                               description="unique per logical operation; a retry with the "
                                                           "same key returns the first result")]) -> str:
    # Namespaced by the principal: the services treat keys as unique per service, across all callers.
    return f"gw:{user.on_behalf_of}:{key}"


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


async def rate_limit(request: Request, user: OptionalUser) -> None:
    buckets: TokenBuckets = request.app.state.buckets
    who = user.on_behalf_of if user else f"ip:{request.client.host if request.client else '?'}"
    wait = buckets.take(who)
    if wait:
        raise ProblemError(429, "rate limit exceeded", headers={"Retry-After": retry_after(wait)})
