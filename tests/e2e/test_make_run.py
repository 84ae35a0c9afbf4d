"""`make run`'s launcher from an empty data folder: every service SERVING with demo data, metrics that
pass promtool, issue 10's reproducers refused against the running suite, and a clean stop on SIGTERM
with no process left behind."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yaosu.common.v1 import common_pb2
from yaosu.evaluation.v1 import evaluation_pb2, evaluation_pb2_grpc
from yaosu.registry.v1 import registry_pb2, registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2, trading_pb2_grpc

from tests.integration.gateway.stack import read_demo_users

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _query(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _assert_prometheus_sees_the_suite(services: dict) -> None:
    """Through Prometheus's HTTP API: every target up, and the recording rules produce series."""
    port = services["prometheus"]["http_port"]
    expected = {name for name in services if name != "prometheus"} | {"prometheus"}
    deadline = time.monotonic() + 90
    while True:
        targets = _query(port, "/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        rule_series = _query(port, "/api/v1/query?query=job:grpc_server_requests:rate5m")["data"]["result"]
        if set(health) >= expected and all(h == "up" for h in health.values()) and rule_series:
            break
        assert time.monotonic() < deadline, f"targets {health}, recording rule series {rule_series}"
        time.sleep(1)
    rules = _query(port, "/api/v1/rules")["data"]["groups"]
    assert all(rule["health"] == "ok" for group in rules for rule in group["rules"]), rules


def _assert_the_demo_city_has_a_total(services: dict, keys: dict) -> None:
    """The demo jurisdiction, evaluated under the default policy: the latest published run rolls its six
    districts up into the city total 330100 (issue 11 item 9), split by size class."""
    metadata = [("authorization", f"Bearer {keys['regulator']}")]
    with grpc.insecure_channel(f"127.0.0.1:{services['evaluation']['grpc_port']}") as channel:
        evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        runs = evaluation.ListRuns(evaluation_pb2.ListRunsRequest(status=evaluation_pb2.RUN_STATUS_PUBLISHED),
                                   metadata=metadata, timeout=10).runs
        latest = max(runs, key=lambda run: run.year)
        rollups = evaluation.GetRollups(evaluation_pb2.GetRollupsRequest(run_id=latest.run_id, dimension="region"),
                                        metadata=metadata, timeout=10).rollups
    total = rollups[0]
    assert (total.key, total.level, total.parent) == ("330100", "city", ""), total
    districts = [r for r in rollups if r.parent == "330100"]
    assert len(districts) == 6 and total.firms == sum(d.firms for d in districts)
    assert {r.key for r in rollups} >= {"330100/above_size", "330100/below_size"}


def _assert_the_demo_agency_changes_the_increment(services: dict, agency_keys: dict) -> None:
    """The demo 挂牌 is bidding: its agency changes the 增价幅度 through the REST API, and every reader of the
    sale state (bidders, the public) sees the new increment and the change notice at once (issue 12)."""
    gateway = f"http://127.0.0.1:{services['gateway']['http_port']}"
    with httpx.Client(base_url=gateway, timeout=10) as client:
        listings = client.get("/api/v1/listings", params={"mechanism": "listing", "state": "bidding"}).json()["data"]
        listing = listings[0]
        increment = listing["rules"]["increment"]["fen"] * 2
        changed = client.post(f"/api/v1/listings/{listing['listing_id']}/increment",
                              json={"increment_fen": increment, "reason": "竞价活跃，调整增价幅度"},
                              headers={"X-API-Key": agency_keys[listing["agency_id"]],
                                       "Idempotency-Key": "make-run-increment"})
        assert changed.status_code == 200, changed.text
        state = client.get(f"/api/v1/listings/{listing['listing_id']}/state").json()
        assert state["increment"]["fen"] == increment
        notices = client.get(f"/api/v1/listings/{listing['listing_id']}/notices").json()
        assert notices[-1]["changed_fields"] == ["increment"] and notices[-1]["increment"]["fen"] == increment


def _refused(call, request, key: str) -> grpc.RpcError:
    try:
        call(request, metadata=[("authorization", f"Bearer {key}")], timeout=10)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{type(request).__name__} was accepted")


def _assert_the_reproducers_are_refused(services: dict, keys: dict, data: Path, nats_url: str) -> None:
    """The attacks issue 10 found against `make run`, each refused with a clear error and changing nothing.
    The agency key is a demo agency with the roles issuer, grantor and data provider."""
    agency_key, admin, regulator = keys["agency:AG-330100-FGW"], keys["admin"], keys["regulator"]
    with grpc.insecure_channel(f"127.0.0.1:{services['registry']['grpc_port']}") as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        enterprise = registry.ListEnterprises(registry_pb2.ListEnterprisesRequest(),
                                              metadata=[("authorization", f"Bearer {admin}")], timeout=5
                                              ).enterprises[0].credit_code
        (money,) = registry.ListAccounts(registry_pb2.ListAccountsRequest(holder=enterprise, instrument="CNY"),
                                         metadata=[("authorization", f"Bearer {regulator}")], timeout=5).accounts
        # Money cannot be minted: no CNY issue, not even by an issuer; no empty idempotency key.
        minted = _refused(registry.Issue, registry_pb2.IssueRequest(
            idempotency_key="mint-1", issuer_agency_id="AG-330100-FGW", to_account_id=money.account_id,
            quantity=common_pb2.Quantity(value="1", unit="fen")), agency_key)
        assert minted.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION), minted
        keyless = _refused(registry.Issue, registry_pb2.IssueRequest(
            issuer_agency_id="AG-330100-FGW", to_account_id=money.account_id,
            quantity=common_pb2.Quantity(value="1", unit="fen")), agency_key)
        assert keyless.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED), keyless
        # Holdings are private: an agency does not read an enterprise's accounts and holds.
        listed = registry.ListAccounts(registry_pb2.ListAccountsRequest(holder=enterprise),
                                       metadata=[("authorization", f"Bearer {agency_key}")], timeout=5).accounts
        assert not [a for a in listed if a.holder == enterprise], listed  # only its own accounts
        peek = _refused(registry.GetAccountHistory, registry_pb2.GetAccountHistoryRequest(
            account_id=money.account_id), agency_key)
        assert peek.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND), peek
        after = registry.ListAccounts(registry_pb2.ListAccountsRequest(holder=enterprise, instrument="CNY"),
                                      metadata=[("authorization", f"Bearer {regulator}")], timeout=5).accounts[0]
        assert after.balance == money.balance and after.held == money.held
    with grpc.insecure_channel(f"127.0.0.1:{services['trading']['grpc_port']}") as channel:
        trading = trading_pb2_grpc.TradingServiceStub(channel)
        listing = next(li for li in trading.ListListings(
            trading_pb2.ListListingsRequest(), metadata=[("authorization", f"Bearer {regulator}")],
            timeout=5).listings if li.agency_id != "AG-330100-FGW")
        # Only an enterprise acts for itself: no bid, registration (with its deposit hold) or order by an agency.
        for call, request in (
                (trading.PlaceBid, trading_pb2.PlaceBidRequest(
                    idempotency_key="forged-bid", listing_id=listing.listing_id, credit_code=enterprise,
                    price=listing.rules.start_price)),
                (trading.RegisterBidder, trading_pb2.RegisterBidderRequest(
                    idempotency_key="forged-registration", listing_id=listing.listing_id, credit_code=enterprise)),
                (trading.PlaceOrder, trading_pb2.PlaceOrderRequest(
                    idempotency_key="forged-order", instrument="energy:330100:2025", credit_code=enterprise,
                    side=trading_pb2.SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
                    price=common_pb2.Money(fen=100), quantity=1))):
            assert _refused(call, request, agency_key).code() == grpc.StatusCode.PERMISSION_DENIED, request
        # Who takes part is not answered to an agency that is not the trading centre.
        probe = _refused(trading.GetRegistration, trading_pb2.GetRegistrationRequest(
            listing_id=listing.listing_id, credit_code=enterprise), agency_key)
        assert probe.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND), probe
        unchanged = trading.ListRegistrations(trading_pb2.ListRegistrationsRequest(listing_id=listing.listing_id),
                                              metadata=[("authorization", f"Bearer {regulator}")], timeout=5)
        assert enterprise not in {r.credit_code for r in unchanged.registrations}
    gateway = f"http://127.0.0.1:{services['gateway']['http_port']}"
    users = read_demo_users(next(data.rglob("demo_users.txt")))
    with httpx.Client(base_url=gateway, timeout=10) as client:
        # Password guessing is throttled, then the account is locked for a while.
        victim = users["enterprises"][0]
        statuses = [client.post("/api/v1/auth/token", json={"username": victim.username,
                                                             "password": f"guess-{n}"}).status_code
                    for n in range(12)]
        assert 429 in statuses, statuses
        # Pages carry the browser's protections.
        page = client.get("/listings")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
    # NATS accepts only the services' users.
    assert nats_url.startswith("nats://") and "@" not in nats_url

    async def anonymous() -> None:
        with pytest.raises(Exception) as refused:  # noqa: PT011 - nats-py raises its own error types
            await nats.connect(nats_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3)
        assert "authorization" in str(refused.value).lower() or "no servers" in str(refused.value).lower()
    asyncio.run(anonymous())


def test_devstack_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}", "DEVSTACK_QUIET": "1"}
    env.pop("NATS_URL", None)
    observed = shutil.which("prometheus") is not None
    arguments = ["--data", str(data), "--free-ports"] + (["--observed"] if observed else [])
    process = subprocess.Popen([sys.executable, "-m", "tools.devstack", *arguments],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 300
        for line in process.stdout:
            output.append(line)
            if "yaosu is running" in line or time.monotonic() > deadline:
                break
        assert any("yaosu is running" in line for line in output), "".join(output)
        endpoints = json.loads((data / "endpoints.json").read_text())
        keys = json.loads((data / "credentials.json").read_text())
        services = endpoints["services"]
        for name, where in services.items():
            if where["grpc_port"]:
                with grpc.insecure_channel(f"127.0.0.1:{where['grpc_port']}") as channel:
                    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                    assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        registry = services["registry"]
        with grpc.insecure_channel(f"127.0.0.1:{registry['grpc_port']}") as channel:
            listed = registry_pb2_grpc.RegistryServiceStub(channel).ListEnterprises(
                registry_pb2.ListEnterprisesRequest(), metadata=[("authorization", f"Bearer {keys['admin']}")],
                timeout=5)
        assert listed.page.total_size == 300  # the demo jurisdiction was loaded on first start
        with urllib.request.urlopen(f"http://127.0.0.1:{registry['metrics_port']}/metrics",  # noqa: S310
                                    timeout=5) as response:
            body = response.read().decode()
        assert "registry_catalogue_items" in body
        # The gateway's metrics on their own port; its public API port has none (issue 10, sealed sales).
        gateway = services["gateway"]
        assert gateway["metrics_port"] not in (0, gateway["http_port"])
        assert "http_requests_total" in httpx.get(f"http://127.0.0.1:{gateway['metrics_port']}/metrics", timeout=5).text
        assert httpx.get(f"http://127.0.0.1:{gateway['http_port']}/metrics", timeout=5).status_code == 404
        _assert_the_reproducers_are_refused(services, keys, data, endpoints["nats_url"])
        _assert_the_demo_city_has_a_total(services, keys)
        _assert_the_demo_agency_changes_the_increment(
            services, read_demo_users(next(data.rglob("demo_users.txt")))["agency_keys"])
        if shutil.which("promtool"):
            checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        if observed:
            _assert_prometheus_sees_the_suite(services)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, _ = process.communicate()
        output.append(rest or "")
    assert process.returncode == 0, "".join(output)
    assert "yaosu stopped" in "".join(output)
    for name, where in services.items():
        assert not _alive(where["pid"]), f"{name} outlived the launcher"
    assert not _alive(endpoints["supervisor_pid"])
