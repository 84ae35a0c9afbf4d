"""The portal's session cookies: HttpOnly, SameSite, and Secure whenever the page is served over https."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.gateway.api.deps import REFRESH_COOKIE, SESSION_COOKIE
from services.gateway.security import Tokens

# The refresh cookie goes only to /session/* (refresh and logout), never with ordinary page requests.
REFRESH_PATH = "/session"
_FORMER_REFRESH_PATH = "/session/refresh"


def served_over_https(request: Request) -> bool:
    """The connection's scheme, which a trusted proxy's X-Forwarded-Proto sets (app.py), or COOKIE_SECURE."""
    return request.url.scheme == "https" or request.app.state.settings.cookie_secure


def set_session(response: Response, request: Request, tokens: Tokens) -> None:
    secure = served_over_https(request)
    response.set_cookie(SESSION_COOKIE, tokens.access_token, httponly=True, samesite="lax", secure=secure,
                        max_age=tokens.expires_in, path="/")
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, httponly=True, samesite="strict", secure=secure,
                        path=REFRESH_PATH)


def clear_session(response: Response, request: Request) -> None:
    secure = served_over_https(request)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    for path in (REFRESH_PATH, _FORMER_REFRESH_PATH):
        response.delete_cookie(REFRESH_COOKIE, path=path, secure=secure, httponly=True, samesite="strict")
