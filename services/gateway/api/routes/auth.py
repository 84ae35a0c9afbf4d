"""Log in (enterprise users, regulators, administrators) and refresh; agencies use API keys instead."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.gateway.api.deps import CurrentUser, SessionDep, SignerDep
from services.gateway.api.errors import ProblemError, problem_responses
from services.gateway.api.schemas import LoginCreate, RefreshCreate, TokenPublic, UserPublic
from services.gateway.db import users as crud
from services.gateway.security import InvalidToken

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic, responses=problem_responses(401, 422, 429))
async def login(body: LoginCreate, session: SessionDep, signer: SignerDep, request: Request) -> TokenPublic:
    """Exchange a username and password for a 15-minute access token and a refresh token."""
    row = await crud.authenticate(session=session, username=body.username, password=body.password)
    logins = request.app.state.metrics.logins
    if row is None:
        logins.labels("unknown", "failure").inc()
        raise ProblemError(401, "wrong username or password")
    user = crud.as_user(row)
    logins.labels(user.role.value, "success").inc()
    tokens = signer.issue(user)
    return TokenPublic(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                       expires_in=tokens.expires_in)


@router.post("/refresh", response_model=TokenPublic, responses=problem_responses(401, 422, 429))
async def refresh(body: RefreshCreate, session: SessionDep, signer: SignerDep) -> TokenPublic:
    """A new access token for a valid refresh token of an account that is still active."""
    try:
        claimed = signer.read(body.refresh_token, kind="refresh")
    except InvalidToken:
        raise ProblemError(401, "invalid or expired refresh token") from None
    row = await crud.get_user(session=session, username=claimed.username)
    if row is None or not row.active:
        raise ProblemError(401, "the account is no longer active")
    tokens = signer.issue(crud.as_user(row))
    return TokenPublic(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                       expires_in=tokens.expires_in)


@router.get("/me", response_model=UserPublic, responses=problem_responses(401, 429))
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic(username=user.username, role=user.role.value, subject=user.subject,
                      display_name=user.display_name)
