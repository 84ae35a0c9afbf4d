"""The audit journal's hash chain, the metrics endpoint, and the error boundary."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request

import grpc
import pytest
from sqlalchemy import text, update
from yaosu.registry.v1 import registry_pb2 as pb

from services.common.db import make_engine
from services.registry.adapters.db.tables import infrastructure
from tests.integration.registry.helpers import enterprise, key, setup_agency


async def test_journal_verifies_and_reports_the_first_broken_link(registry, database_url) -> None:
    auth = registry.auth()
    for _ in range(3):
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                            enterprise=enterprise()), metadata=auth)
    await setup_agency(registry.stub, auth)
    verified = await registry.stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=auth)
    assert verified.intact and verified.entries_checked >= 4
    entries = (await registry.stub.ListAuditEntries(pb.ListAuditEntriesRequest(), metadata=auth)).entries
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.previous_hash == p.entry_hash for p, e in zip(entries, entries[1:], strict=False))
    target = entries[-2].sequence  # someone edits one recorded payload behind the service's back
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(update(infrastructure.audit).where(infrastructure.audit.c.sequence == target)
                                 .values(payload='{"credit_code":"forged"}'))
    await engine.dispose()
    broken = await registry.stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=auth)
    assert (broken.intact, broken.first_broken_sequence) == (False, target)
    assert "digest" in broken.problem


async def test_deleting_the_last_entries_is_detected(registry, database_url) -> None:
    auth = registry.auth()
    for _ in range(3):
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                            enterprise=enterprise()), metadata=auth)
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM audit_journal WHERE sequence = (SELECT max(sequence) "
                                      "FROM audit_journal)"))
    await engine.dispose()
    broken = await registry.stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=auth)
    assert not broken.intact and "missing" in broken.problem


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        return response.read().decode()


async def test_metrics_carry_red_and_business_figures_and_pass_promtool(registry) -> None:
    auth = registry.auth()
    await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                        enterprise=enterprise()), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError):
        await registry.stub.GetEnterprise(pb.GetEnterpriseRequest(credit_code="nope"), metadata=auth)
    body = _scrape(registry.metrics_port)
    assert ('grpc_server_handled_total{grpc_code="OK",grpc_method="RegisterEnterprise",'
            'grpc_service="yaosu.registry.v1.RegistryService",grpc_type="unary"} 1.0') in body
    assert 'grpc_code="NotFound",grpc_method="GetEnterprise"' in body
    assert "grpc_server_handling_seconds_bucket" in body
    assert 'registry_ledger_operations_total{operation="transfer",outcome="ok"}' in body
    assert "yaosu_outbox_pending" in body
    # 4 standard kinds and CNY are recorded at first start, then the registration.
    assert "yaosu_audit_entries_total 6.0" in body
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed; make test installs it")
    checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
