"""The one way a password (or, on the portal, an agency API key) becomes a user: throttled per account and
client address, counted in gateway_logins_total, and a session started for it."""

from __future__ import annotations

from starlette.requests import Request

from services.gateway.db import users as crud
from services.gateway.identity import Role, User
from services.gateway.security import Tokens, api_key_digest
from services.gateway.sessions import SessionService
from services.gateway.throttle import LoginRefused, LoginThrottle

__all__ = ["LoginRefused", "WrongCredentials", "client_address", "log_in"]


class WrongCredentials(Exception):
    pass


def client_address(request: Request) -> str:
    """The peer, or the client a trusted proxy names (uvicorn's ProxyHeadersMiddleware, see app.py)."""
    return request.client.host if request.client else "unknown"


async def log_in(request: Request, *, username: str = "", password: str = "", api_key: str = "") -> tuple[User, Tokens]:
    """Raises LoginRefused (429: delayed or locked) or WrongCredentials (401)."""
    state = request.app.state
    throttle: LoginThrottle = state.login_throttle
    service: SessionService = state.session_service
    try:
        attempt = await throttle.admit(username=None if api_key else username, address=client_address(request))
    except LoginRefused:
        state.metrics.logins.labels("unknown", "refused").inc()
        raise
    user: User | None = None
    async with state.sessions() as session:
        if api_key:
            agency = await crud.agency_for_key(session=session, key=api_key)
            # The same principal as the key gives on the API (services/gateway/api/deps.py): one per key.
            user = User(Role.AGENCY, agency, f"key:{api_key_digest(api_key)[:12]}") if agency else None
        else:
            row = await crud.authenticate(session=session, username=username, password=password)
            user = crud.as_user(row) if row else None
    state.metrics.logins.labels(user.role.value if user else "unknown", "success" if user else "failure").inc()
    if user is None:
        raise WrongCredentials()
    await throttle.succeeded(attempt)
    return user, await service.start(user)
