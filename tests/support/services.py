"""Run real services in the test's event loop, on free ports, with their own databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from services.common.config import key_digest
from services.common.host import ServiceHost

# One key per kind of principal (services.common.authz). The gateway's delegate key (SERVICE_KEY) names
# enterprise and agency users in `x-on-behalf-of`: see `on_behalf`.
ADMIN_KEY = "test-admin-key"
SERVICE_KEY = "test-service-key"            # the gateway: a delegate
READER_KEY = "test-reader-key"              # a regulator: reads what it is entitled to, acts on nothing
REGULATOR_KEY = READER_KEY
ISSUER_KEY = "test-issuer-key"              # agency AG-T-ISSUER with the issuer role
REGISTRY_KEY = "test-registry-service-key"
EVALUATION_KEY = "test-evaluation-service-key"
TRADING_KEY = "test-trading-service-key"
# Two principals of the settlement bank (two-person rule for deposits and withdrawals).
BANK = "BANK-T"
BANK_TELLER_KEY = "test-bank-teller-key"
BANK_APPROVER_KEY = "test-bank-approver-key"

API_KEYS_JSON = json.dumps({
    key_digest(ADMIN_KEY): {"principal": "admin", "kind": "admin"},
    key_digest(SERVICE_KEY): {"principal": "gateway", "kind": "service", "delegate": True},
    key_digest(READER_KEY): {"principal": "regulator", "kind": "regulator"},
    key_digest(ISSUER_KEY): {"principal": "agency:AG-T-ISSUER", "kind": "agency", "agency_id": "AG-T-ISSUER",
                             "roles": ["issuer"]},
    key_digest(REGISTRY_KEY): {"principal": "registry", "kind": "service"},
    key_digest(EVALUATION_KEY): {"principal": "evaluation", "kind": "service"},
    key_digest(TRADING_KEY): {"principal": "trading", "kind": "service"},
    key_digest(BANK_TELLER_KEY): {"principal": "bank:teller", "kind": "agency", "agency_id": BANK,
                                  "roles": ["settlement"]},
    key_digest(BANK_APPROVER_KEY): {"principal": "bank:approver", "kind": "agency", "agency_id": BANK,
                                    "roles": ["settlement"]},
})


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def on_behalf(who: str, *roles: str) -> list[tuple[str, str]]:
    """The gateway's delegate key acting for a user: "enterprise:<credit code>", "agency:<id>" (with the
    agency's roles), "regulator:<name>", "admin:<name>"."""
    metadata = [("authorization", f"Bearer {SERVICE_KEY}"), ("x-on-behalf-of", who)]
    if roles:
        metadata.append(("x-on-behalf-of-roles", ",".join(roles)))
    return metadata


@contextlib.asynccontextmanager
async def running(host: ServiceHost, timeout: float = 60.0) -> AsyncIterator[ServiceHost]:
    task = asyncio.create_task(host.run(install_signal_handlers=False))
    ready = asyncio.create_task(host.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises the start-up error
    if ready not in done:
        task.cancel()
        raise TimeoutError("service did not become ready")
    try:
        yield host
    finally:
        host.request_stop()
        await task
