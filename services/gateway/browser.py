"""What the gateway tells browsers: security headers on every response, the cross-site write guard for the
portal's cookie session, and the /docs page with the one policy that lets Swagger UI run."""

from __future__ import annotations

import base64
import hashlib
import re
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.api.errors import PROBLEM_JSON, Problem

# Pages run only the portal's own script file: no inline script, no plugins, never framed.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
HEADERS = {"content-security-policy": PAGE_POLICY, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
           "referrer-policy": "same-origin", "cross-origin-opener-policy": "same-origin"}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SWAGGER_CDN = "https://cdn.jsdelivr.net"


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set its own (the /docs page does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if https and "strict-transport-security" not in headers:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def _host(netloc: str) -> str:
    """host[:port] in lower case without the default ports, for comparing an Origin with the Host header."""
    netloc = netloc.lower()
    for default in (":80", ":443"):
        netloc = netloc.removesuffix(default)
    return netloc


class CrossSiteWriteGuard:
    """CSRF protection for writes that the portal's cookies authenticate.

    A write (POST/PUT/PATCH/DELETE) is refused with 403 when the browser says it comes from another site
    (Sec-Fetch-Site other than same-origin), or, from a browser without Fetch Metadata, when its Origin is
    neither this gateway nor a trusted origin. A write that carries the session cookies and neither header
    is refused too. Requests with an Authorization or X-API-Key header are not cookie-authenticated (the
    cookie is not read then) and pass: a page of another site cannot add those headers without a CORS grant,
    which the gateway never gives.
    """

    def __init__(self, app: ASGIApp, *, cookies: tuple[str, ...], trusted_origins: list[str]) -> None:
        self.app, self.cookies = app, cookies
        self.trusted = {origin.rstrip("/").lower() for origin in trusted_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "authorization" in headers or "x-api-key" in headers:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        body = Problem(type="https://yaosu.example/problems/403", title="Forbidden", status=403, detail=refusal,
                       instance=scope.get("path", ""), reason="CROSS_SITE_REQUEST").model_dump_json().encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, headers: Headers) -> str | None:
        site = headers.get("sec-fetch-site")
        if site is not None:
            return None if site == "same-origin" else "a write from another site is refused"
        origin = headers.get("origin")
        if origin is not None:
            if origin.rstrip("/").lower() in self.trusted:
                return None
            parts = urlsplit(origin)
            ours = parts.scheme in ("http", "https") and _host(parts.netloc) == _host(headers.get("host", ""))
            return None if ours else "a write from another origin is refused"
        if self._has_session(headers):
            return "a write with the portal's session needs the browser's Origin or Sec-Fetch-Site header"
        return None

    def _has_session(self, headers: Headers) -> bool:
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - an unreadable Cookie header carries no session we would read either
            return False
        return any(name in jar for name in self.cookies)


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    """FastAPI's Swagger UI page (assets from the jsDelivr CDN, one inline start-up script), with a policy
    that allows exactly those: the CDN, and the inline script by its hash."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title,
                               swagger_ui_parameters={"validatorUrl": None})  # no spec sent to a validator
    inline = re.findall(r"<script>(.*?)</script>", page.body.decode(), flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    page.headers["content-security-policy"] = (
        f"default-src 'none'; script-src {SWAGGER_CDN} {hashes}; style-src {SWAGGER_CDN} 'unsafe-inline'; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
    return page
