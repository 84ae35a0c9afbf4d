"""Browser security over the real wire: the security headers on pages (and every other answer), no inline
script in any page, the /docs page's own policy, and the refusal of cross-site writes that the portal's
cookies would authenticate (CSRF), while bearer-token and API-key clients are not affected."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import uuid

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVIL = "https://evil.example"


def directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


def assert_browser_headers(reply) -> None:
    policy = directives(reply.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"], policy
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin")


@contextlib.asynccontextmanager
async def portal_client(stack, user):
    """An HTTP client holding the portal's session cookies of the user."""
    async with stack.client() as client:
        reply = await client.post("/login", data={"username": user.username, "password": user.password})
        assert reply.status_code == 303, reply.text
        yield client


async def test_every_page_and_answer_carries_the_security_headers(stack) -> None:
    async with stack.client() as client:
        for path in ("/login", "/listings", "/market", "/static/portal.js", "/api/v1/listings", "/healthz",
                     "/no-such-page", "/openapi.json"):
            reply = await client.get(path)
            assert reply.status_code in (200, 404), (path, reply.status_code)
            assert_browser_headers(reply)
    async with portal_client(stack, stack.enterprises[0]) as client:
        for path in ("/", "/holdings", "/trades", "/listings"):
            reply = await client.get(path)
            assert reply.status_code == 200, path
            assert_browser_headers(reply)


async def test_pages_carry_no_inline_script(stack) -> None:
    pages = ["/login", "/listings", "/market"]
    async with stack.client() as client:
        listings = await client.get("/api/v1/listings")
        assert listings.status_code == 200, listings.text  # the sale pages, which start the most script
        pages += [f"/listings/{li['listing_id']}" for li in listings.json()["data"][:3]]
        for path in pages:
            html = (await client.get(path)).text
            scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.DOTALL)
            assert scripts, path
            for attributes, body in scripts:
                assert 'src="/static/' in attributes and not body.strip(), (path, attributes, body)
            assert not re.search(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", html), path  # no inline event handlers either


async def test_docs_allow_exactly_swagger_ui(stack) -> None:
    async with stack.client() as client:
        reply = await client.get("/docs")
    assert reply.status_code == 200 and "SwaggerUIBundle" in reply.text
    policy = directives(reply.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", reply.text, flags=re.DOTALL)
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline}
    assert hashes and set(policy["script-src"]) == {"https://cdn.jsdelivr.net", *hashes}
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert reply.headers["x-frame-options"] == "DENY"


async def test_cross_site_writes_with_the_portal_cookie_are_refused(stack) -> None:
    own = stack.enterprises[0].credit_code
    async with portal_client(stack, stack.enterprises[0]) as client:
        async def register(**headers):
            return await client.post("/api/v1/listings/L-NONE/registrations", json={"credit_code": own},
                                     headers={"Idempotency-Key": f"csrf-{uuid.uuid4()}", **headers})

        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.127.0.0.1.example"}, {}):
            refused = await register(**headers)
            assert refused.status_code == 403, (headers, refused.text)
            assert refused.json()["reason"] == "CROSS_SITE_REQUEST"
            assert refused.headers["content-type"] == "application/problem+json"
        for headers in ({"Origin": stack.base_url}, {"Sec-Fetch-Site": "same-origin", "Origin": stack.base_url}):
            passed = await register(**headers)  # past the guard: the API answers about the made-up listing
            assert passed.status_code != 403 or passed.json().get("reason") != "CROSS_SITE_REQUEST", passed.text

        # A cross-site logout is refused too, and the session goes on.
        assert (await client.post("/session/logout", headers={"Origin": EVIL})).status_code == 403
        me = await client.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["username"] == stack.enterprises[0].username


async def test_cross_site_login_form_is_refused(stack) -> None:
    user = stack.enterprises[1]
    async with stack.client() as client:
        forged = await client.post("/login", data={"username": user.username, "password": user.password},
                                   headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403 and "set-cookie" not in forged.headers


async def test_bearer_and_api_key_clients_are_not_affected(stack, tokens) -> None:
    async with stack.client() as client:
        me = await client.post("/api/v1/listings/L-NONE/registrations",
                               json={"credit_code": stack.enterprises[0].credit_code},
                               headers={"Authorization": f"Bearer {tokens['ent1']}", "Origin": EVIL,
                                        "Sec-Fetch-Site": "cross-site", "Idempotency-Key": f"b-{uuid.uuid4()}"})
        assert me.status_code != 403 or me.json().get("reason") != "CROSS_SITE_REQUEST", me.text
        keyed = await client.post("/api/v1/listings/L-NONE/publish", headers={
            "X-API-Key": stack.agency_keys["AG-330100-ZRZY"], "Origin": EVIL, "Idempotency-Key": f"k-{uuid.uuid4()}"})
        assert keyed.status_code != 403 or keyed.json().get("reason") != "CROSS_SITE_REQUEST", keyed.text
