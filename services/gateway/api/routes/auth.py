"""Log in (enterprise users, regulators, administrators), refresh and log out; agencies use API keys instead.

Logins are throttled per account and per client address (429 with Retry-After, then a temporary lock);
every refresh rotates the refresh token, and a refresh token presented twice ends its whole session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.api.deps import REFRESH_COOKIE, SESSION_COOKIE, CurrentUser
from services.gateway.api.errors import ProblemError, problem_responses
from services.gateway.api.limits import retry_after
from services.gateway.api.schemas import LoginCreate, RefreshCreate, TokenPublic, UserPublic
from services.gateway.login import LoginRefused, WrongCredentials, client_address, log_in
from services.gateway.security import Tokens
from services.gateway.sessions import SessionEnded, SessionService

router = APIRouter(prefix="/auth", tags=["auth"])
_bearer = HTTPBearer(auto_error=False)


def refused(error: LoginRefused) -> ProblemError:
    detail = "too many failed logins: locked for a while" if error.locked else "too many failed logins: wait"
    return ProblemError(429, f"{detail}, retry after {retry_after(error.retry_after)} s",
                        reason="LOGIN_LOCKED" if error.locked else "LOGIN_DELAYED",
                        headers={"Retry-After": retry_after(error.retry_after)})


def _public(tokens: Tokens) -> TokenPublic:
    return TokenPublic(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                       expires_in=tokens.expires_in)


@router.post("/token", response_model=TokenPublic, responses=problem_responses(401, 422, 429))
async def login(body: LoginCreate, request: Request) -> TokenPublic:
    """Exchange a username and password for a 15-minute access token and a refresh token. Repeated failures
    for one account or from one address answer 429 with Retry-After, and then lock it for a while."""
    try:
        _, tokens = await log_in(request, username=body.username, password=body.password)
    except LoginRefused as error:
        raise refused(error) from None
    except WrongCredentials:
        raise ProblemError(401, "wrong username or password") from None
    return _public(tokens)


@router.post("/refresh", response_model=TokenPublic, responses=problem_responses(401, 422, 429))
async def refresh(body: RefreshCreate, request: Request) -> TokenPublic:
    """A new token pair for a refresh token of an active account. The refresh token is spent: presenting it
    again ends the session it belongs to (all its tokens)."""
    service: SessionService = request.app.state.session_service
    try:
        _, tokens = await service.rotate(body.refresh_token, address=client_address(request))
    except SessionEnded as ended:
        raise ProblemError(401, str(ended)) from None
    return _public(tokens)


@router.post("/logout", status_code=204, responses=problem_responses(400, 401, 429))
async def logout(request: Request, user: CurrentUser,
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Response:
    """Ends the session of the presented access token (or the portal's cookies) at once: its access and
    refresh tokens are refused from now on."""
    service: SessionService = request.app.state.session_service
    tokens = [bearer.credentials] if bearer is not None else \
        [t for t in (request.cookies.get(SESSION_COOKIE), request.cookies.get(REFRESH_COOKIE)) if t]
    if not tokens or not await service.end(*tokens):
        raise ProblemError(400, "an API key has no session to end; an administrator deactivates keys")
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic, responses=problem_responses(401, 429))
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic(username=user.username, role=user.role.value, subject=user.subject,
                      display_name=user.display_name)
