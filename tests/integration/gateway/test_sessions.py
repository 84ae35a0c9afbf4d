"""Sessions over the real wire: login throttling per account and per client address (429 with growing
Retry-After, then a lock that refuses the right password too, journaled and counted), logout revocation,
refresh-token rotation with reuse detection, and the portal's cookies.

The gateway here trusts 127.0.0.1 as its reverse proxy, so each test names its own client address in
X-Forwarded-For (and its scheme in X-Forwarded-Proto) without disturbing the others.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
import pytest_asyncio

from services.gateway.db import sessions as store
from tests.integration.gateway.flows import bearer
from tests.integration.gateway.stack import gateway_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

ACCOUNT_FREE, ACCOUNT_LOCK = 3, 10          # the defaults
ADDRESS_FREE, ADDRESS_LOCK = 4, 8           # lowered here so that a test reaches them quickly
LOCK_SECONDS = 15 * 60
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(nats_server, tmp_path_factory):
    async with gateway_stack(tmp_path_factory.mktemp("sessions"), nats_server.url, trusted_proxies=["127.0.0.1"],
                             login_address_free_failures=ADDRESS_FREE,
                             login_address_lock_failures=ADDRESS_LOCK) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_token(stack) -> str:
    return await stack.token(stack.admin)


def from_address(address: str, **extra: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **extra}


async def new_user(stack, admin_token: str) -> tuple[str, str]:
    """A regulator account of its own, so that a lock or a logout touches no other test."""
    username, password = f"u{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    async with stack.client() as client:
        created = await client.post("/api/v1/admin/users", headers=bearer(admin_token),
                                    json={"username": username, "password": password, "role": "regulator"})
    assert created.status_code == 201, created.text
    return username, password


async def login(client, username: str, password: str, address: str | None = None):
    """From the given client address, or from a new one (then only the account's count applies)."""
    return await client.post("/api/v1/auth/token", json={"username": username, "password": password},
                             headers=from_address(address or next(_addresses)))


async def metric(stack, line_start: str) -> float:
    text = await stack.metrics()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


async def test_wrong_passwords_are_delayed_then_lock_the_account(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        locks_before = await metric(stack, 'gateway_login_lockouts_total{scope="account"}')
        replies = []
        for _ in range(ACCOUNT_LOCK + 1):  # every attempt counts, refused or not: the lock comes by then
            address = next(_addresses)  # a new address each time: only the account's count grows
            reply = await login(client, username, "wrong-password", address)
            replies.append(reply)
            if reply.status_code == 429 and reply.json()["reason"] == "LOGIN_LOCKED":
                break
        assert [r.status_code for r in replies[:ACCOUNT_FREE + 1]] == [401] * (ACCOUNT_FREE + 1)
        delayed = [r for r in replies if r.status_code == 429 and r.json()["reason"] == "LOGIN_DELAYED"]
        assert delayed, [r.status_code for r in replies]  # no server-side sleep: refused with Retry-After
        waits = [int(r.headers["Retry-After"]) for r in delayed]
        assert waits == sorted(waits) and waits[-1] > waits[0]  # the delays grow
        locked = replies[-1]
        assert locked.status_code == 429 and locked.json()["reason"] == "LOGIN_LOCKED", locked.text
        assert LOCK_SECONDS - 60 <= int(locked.headers["Retry-After"]) <= LOCK_SECONDS
        assert locked.headers["content-type"] == "application/problem+json"

        # While locked the right password is refused as well, on the API and on the portal's form.
        right = await login(client, username, password)
        assert right.status_code == 429 and right.json()["reason"] == "LOGIN_LOCKED"
        assert "access_token" not in right.text
        form = await client.post("/login", data={"username": username, "password": password},
                                 headers=from_address(next(_addresses)))
        assert form.status_code == 429 and int(form.headers["Retry-After"]) > 60
        assert 'id="login-throttled"' in form.text and "yaosu_session" not in form.headers.get("set-cookie", "")

        assert await metric(stack, 'gateway_login_lockouts_total{scope="account"}') == locks_before + 1
    async with stack.app.state.sessions() as session:
        journal = await store.security_events(session=session, event="login_locked")
    assert any(e.username == username and e.address == address and e.detail.startswith("account locked")
               for e in journal)


async def test_a_client_address_guessing_many_accounts_is_locked(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    address = next(_addresses)
    async with stack.client() as client:
        locks_before = await metric(stack, 'gateway_login_lockouts_total{scope="address"}')
        statuses = []
        for n in range(ADDRESS_LOCK + 1):  # one wrong password for each of many accounts
            reply = await login(client, f"nobody-{uuid.uuid4().hex[:8]}-{n}", "guess", address)
            statuses.append((reply.status_code, reply.json().get("reason", "")))
            if statuses[-1] == (429, "LOGIN_LOCKED"):
                break
        assert statuses[:ADDRESS_FREE + 1] == [(401, "")] * (ADDRESS_FREE + 1)
        assert statuses[-1] == (429, "LOGIN_LOCKED"), statuses
        # The address is locked for every account; the same account from elsewhere still logs in.
        assert (await login(client, username, password, address)).status_code == 429
        elsewhere = await login(client, username, password, next(_addresses))
        assert elsewhere.status_code == 200, elsewhere.text
        assert await metric(stack, 'gateway_login_lockouts_total{scope="address"}') == locks_before + 1
    async with stack.app.state.sessions() as session:
        journal = await store.security_events(session=session, event="login_locked")
    assert any(e.address == address and e.detail.startswith("address locked") for e in journal)


async def test_a_success_resets_the_account_count(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        for _ in range(3):  # without the reset the second round would already be delayed
            for _ in range(ACCOUNT_FREE):
                assert (await login(client, username, "wrong")).status_code == 401
            assert (await login(client, username, password)).status_code == 200


async def test_logout_revokes_the_access_and_the_refresh_token(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        first = (await login(client, username, password)).json()
        second = (await login(client, username, password)).json()  # another session of the same user
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {first['access_token']}"})
        assert me.status_code == 200 and me.json()["username"] == username

        out = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {first['access_token']}"})
        assert out.status_code == 204, out.text
        after = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {first['access_token']}"})
        assert after.status_code == 401 and after.headers["content-type"] == "application/problem+json"
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert refreshed.status_code == 401
        again = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {first['access_token']}"})
        assert again.status_code == 401

        # Only that session ended.
        other = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
        assert other.status_code == 200
        assert (await client.post("/api/v1/auth/refresh",
                                  json={"refresh_token": second["refresh_token"]})).status_code == 200


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        reuses_before = await metric(stack, "gateway_refresh_token_reuse_total")
        tokens = (await login(client, username, password)).json()
        rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["refresh_token"] != tokens["refresh_token"] and new["access_token"] != tokens["access_token"]
        assert (await client.get("/api/v1/auth/me",
                                 headers={"Authorization": f"Bearer {new['access_token']}"})).status_code == 200

        # The spent token comes back (a thief, or the holder after a thief): the whole session ends.
        reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                                   headers=from_address("203.0.113.9"))
        assert reused.status_code == 401 and "already used" in reused.json()["detail"]
        assert (await client.post("/api/v1/auth/refresh",
                                  json={"refresh_token": new["refresh_token"]})).status_code == 401
        for access in (new["access_token"], tokens["access_token"]):
            me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {access}"})
            assert me.status_code == 401
        assert await metric(stack, "gateway_refresh_token_reuse_total") == reuses_before + 1
    async with stack.app.state.sessions() as session:
        journal = await store.security_events(session=session, event="refresh_reused")
    assert any(e.username == username and e.address == "203.0.113.9" for e in journal)


async def test_an_access_token_is_no_refresh_token(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        tokens = (await login(client, username, password)).json()
        wrong = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
        assert wrong.status_code == 401
        assert (await client.post("/api/v1/auth/refresh",
                                  json={"refresh_token": tokens["refresh_token"]})).status_code == 200


def cookie_attributes(reply, name: str) -> dict[str, str]:
    for header in reply.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            parts = [p.strip() for p in header.split(";")]
            attributes = {"value": parts[0].split("=", 1)[1]}
            for part in parts[1:]:
                key, _, value = part.partition("=")
                attributes[key.lower()] = value or "true"
            return attributes
    raise AssertionError(f"no Set-Cookie for {name}: {reply.headers.get_list('set-cookie')}")


@pytest.mark.parametrize(("forwarded", "secure"), [({}, False), ({"X-Forwarded-Proto": "https"}, True)],
                         ids=["http", "https-behind-proxy"])
async def test_session_cookies_are_httponly_samesite_and_secure_over_https(stack, admin_token, forwarded,
                                                                           secure) -> None:
    username, password = await new_user(stack, admin_token)
    async with stack.client() as client:
        reply = await client.post("/login", data={"username": username, "password": password},
                                  headers=from_address(next(_addresses), **forwarded))
    assert reply.status_code == 303, reply.text
    session, refresh = cookie_attributes(reply, "yaosu_session"), cookie_attributes(reply, "yaosu_refresh")
    assert session["httponly"] == "true" and session["samesite"].lower() == "lax" and session["path"] == "/"
    assert refresh["httponly"] == "true" and refresh["samesite"].lower() == "strict"
    assert refresh["path"] == "/session"  # sent only to the refresh and logout endpoints
    assert ("secure" in session) is secure and ("secure" in refresh) is secure


async def test_portal_refresh_rotates_its_cookie_and_logout_ends_the_session(stack, admin_token) -> None:
    username, password = await new_user(stack, admin_token)
    address = next(_addresses)
    same_origin = {"Origin": stack.base_url, **from_address(address)}
    async with stack.client() as client:
        logged_in = await client.post("/login", data={"username": username, "password": password},
                                      headers=from_address(address))
        access, refresh = (cookie_attributes(logged_in, name)["value"] for name in ("yaosu_session", "yaosu_refresh"))
        refreshed = await client.post("/session/refresh", headers=same_origin)
        assert refreshed.status_code == 204
        new_access = cookie_attributes(refreshed, "yaosu_session")["value"]
        new_refresh = cookie_attributes(refreshed, "yaosu_refresh")["value"]
        assert new_refresh != refresh and new_access != access
        assert (await client.get("/api/v1/auth/me")).json()["username"] == username

        out = await client.post("/session/logout", headers=same_origin)
        assert out.status_code == 303 and out.headers["location"] == "/login"
    async with stack.client() as replay:  # the old cookies, presented again after logout
        for cookie in (f"yaosu_session={access}", f"yaosu_session={new_access}"):
            assert (await replay.get("/api/v1/auth/me", headers={"Cookie": cookie})).status_code == 401
        for cookie in (f"yaosu_refresh={refresh}", f"yaosu_refresh={new_refresh}"):
            again = await replay.post("/session/refresh", headers={"Cookie": cookie, **same_origin})
            assert again.status_code == 401
