"""Property-based tests of the ledger on a real SQLite database: random sequences of issues, transfers,
holds, posts, voids, retirements, settlement deposits and withdrawals, and retries keep conservation,
non-negativity and idempotency."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.common.audit import AuditJournal
from services.common.authz import Access, Kind, Policy, Subject
from services.common.context import Principal, principal_var
from services.common.db import make_engine, make_session_factory, migrate
from services.common.errors import DomainError, IdempotencyConflict
from services.common.events.outbox import Outbox
from services.common.metrics import WriteEngineMetrics
from services.common.uow import UnitOfWork, utc_now
from services.common.write_engine import WriteEngine
from services.registry.adapters.db import tables
from services.registry.adapters.db.repository import RegistryRepository
from services.registry.app import MIGRATIONS, POLICY
from services.registry.application import commands as c
from services.registry.application.cash import CashMovements
from services.registry.application.catalogue import Catalogue
from services.registry.application.ledger import Ledger
from services.registry.application.subjects import Subjects
from services.registry.domain.catalogue import STANDARD_KINDS
from tests.integration.registry.helpers import new_credit_code

ACCOUNTS = 4
INSTRUMENT = "energy_use_right:330100:2025"


class _Quiet:
    def operation(self, operation: str, outcome: str) -> None:
        pass

    def catalogue_changed(self) -> None:
        pass


amounts = st.integers(min_value=1, max_value=5000).map(lambda n: str(Decimal(n) / 10))
operation = st.one_of(
    st.tuples(st.just("issue"), st.integers(0, ACCOUNTS - 1), amounts),
    st.tuples(st.just("transfer"), st.integers(0, ACCOUNTS - 1), st.integers(0, ACCOUNTS - 1), amounts),
    st.tuples(st.just("dvp"), st.integers(0, ACCOUNTS - 1), st.integers(0, ACCOUNTS - 1), amounts, amounts),
    st.tuples(st.just("hold"), st.integers(0, ACCOUNTS - 1), amounts, st.booleans()),
    st.tuples(st.just("post"), st.integers(0, 20), st.integers(0, ACCOUNTS - 1), st.integers(1, 100)),
    st.tuples(st.just("void"), st.integers(0, 20)),
    # Partial holds: a transfer leg paid out of one, a part released, more held under it.
    st.tuples(st.just("leg"), st.integers(0, 20), st.integers(0, ACCOUNTS - 1), st.integers(1, 100)),
    st.tuples(st.just("release"), st.integers(0, 20), st.integers(1, 100)),
    st.tuples(st.just("increase"), st.integers(0, 20), amounts),
    st.tuples(st.just("retire"), st.integers(0, ACCOUNTS - 1), amounts),
    st.tuples(st.just("deposit"), st.integers(0, ACCOUNTS - 1), st.integers(1, 500_000)),
    st.tuples(st.just("withdraw"), st.integers(0, ACCOUNTS - 1), st.integers(1, 500_000)),
    st.tuples(st.just("retry"), st.integers(0, 50)),
    st.tuples(st.just("reuse_key"), st.integers(0, 50)),
)


@contextlib.contextmanager
def _bank(actor: str):
    """A principal of the settlement bank: one requests, another approves (the two-person rule)."""
    subject = Subject(Kind.AGENCY, "BANK-P", frozenset({"settlement"}), actor)
    token = principal_var.set(Principal(actor, subject=subject))
    try:
        yield
    finally:
        principal_var.reset(token)


async def _move_cash(cash: CashMovements, key: str, kind: str, account_id: str, fen: int):
    with _bank("bank:teller"):
        movement = await cash.request(c.RequestCashMovement(key, kind, account_id, fen, f"ref-{key}"))
    with _bank("bank:approver"):
        return await cash.approve(c.ApproveCashMovement(f"{key}:approve", movement.movement_id))


async def _scenario(database: Path, steps: list[tuple]) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    await migrate(engine, MIGRATIONS)
    sessions = make_session_factory(engine)
    uow = UnitOfWork(sessions, tables.infrastructure, Outbox(tables.infrastructure, "test", utc_now),
                     AuditJournal(tables.infrastructure))

    def repositories(session):
        return RegistryRepository(session, lock_rows=False)

    access = Access(Policy.load(POLICY))
    subjects, catalogue = Subjects(uow, repositories, access), Catalogue(uow, repositories, _Quiet(), access)
    writes = WriteEngine(uow, WriteEngineMetrics(CollectorRegistry()), name="registry")
    ledger = Ledger(uow, repositories, _Quiet(), access, writes)
    cash_movements = CashMovements(ledger, access)
    await catalogue.ensure_standard_kinds(STANDARD_KINDS)
    await subjects.register_agency(c.RegisterAgency("a", "AG-I", "发改委", "330100", ("issuer",)))
    await ledger.define_instrument(c.DefineInstrument("i", INSTRUMENT, "energy_use_right", "tce", 3,
                                                      issuer_agency_id="AG-I"))
    from services.registry.application.ledger import CNY
    await ledger.ensure_instrument(CNY)
    rights, cash = [], []
    for n in range(ACCOUNTS):
        code = new_credit_code()
        await subjects.register_enterprise(c.RegisterEnterprise(f"e{n}", code, f"企业{n}", "C3484", "330106", "",
                                                                "above", "10"))
        rights.append((await ledger.open_account(c.OpenAccount(f"r{n}", code, INSTRUMENT))).account_id)
        cash.append((await ledger.open_account(c.OpenAccount(f"c{n}", code, "CNY"))).account_id)
        await _move_cash(cash_movements, f"cash{n}", "deposit", cash[-1], 100000)
    holds: list[str] = []
    done: list[tuple[object, object, object]] = []  # (command, call, first result)
    deadline = datetime.now(UTC) + timedelta(hours=1)
    for n, step in enumerate(steps):
        kind = step[0]
        command, call = None, None
        if kind == "issue":
            command, call = c.Issue(f"k{n}", "AG-I", rights[step[1]], step[2]), ledger.issue
        elif kind == "transfer":
            command, call = c.Transfer(f"k{n}", (c.TransferLegCommand(rights[step[1]], rights[step[2]], step[3]),)), \
                ledger.transfer
        elif kind == "dvp":
            command, call = c.Transfer(f"k{n}", (c.TransferLegCommand(rights[step[1]], rights[step[2]], step[3]),
                                                 c.TransferLegCommand(cash[step[2]], cash[step[1]],
                                                                      str(int(Decimal(step[4]) * 10))))), \
                ledger.transfer
        elif kind == "hold":
            command, call = c.CreateHold(f"k{n}", rights[step[1]], step[2], deadline, partial=step[3]), \
                ledger.create_hold
        elif kind == "post" and holds:
            hold = await ledger.hold(holds[step[1] % len(holds)])
            part = (hold.quantity * step[3] / 100).quantize(Decimal("0.001"))
            command, call = c.PostHold(f"k{n}", hold.hold_id, rights[step[2]], str(part) if part > 0 else ""), \
                ledger.post_hold
        elif kind == "void" and holds:
            command, call = c.VoidHold(f"k{n}", holds[step[1] % len(holds)]), ledger.void_hold
        elif kind in ("leg", "release") and holds:
            hold = await ledger.hold(holds[step[1] % len(holds)])
            part = str(((hold.quantity - hold.posted - hold.released) * step[-1] / 100).quantize(Decimal("0.001")))
            if kind == "leg":
                command, call = c.Transfer(f"k{n}", (c.TransferLegCommand(hold.account_id, rights[step[2]], part,
                                                                          hold.hold_id),)), ledger.transfer
            else:
                command, call = c.VoidHold(f"k{n}", hold.hold_id, "part", part), ledger.void_hold
        elif kind == "increase" and holds:
            command, call = c.IncreaseHold(f"k{n}", holds[step[1] % len(holds)], step[2]), ledger.increase_hold
        elif kind == "retire":
            command, call = c.Retire(f"k{n}", rights[step[1]], step[2]), ledger.retire
        elif kind in ("deposit", "withdraw"):
            try:
                await _move_cash(cash_movements, f"k{n}", "deposit" if kind == "deposit" else "withdrawal",
                                 cash[step[1]], step[2])
            except DomainError:
                pass
        elif kind == "retry" and done:
            command, call, first = done[step[1] % len(done)]
            assert await call(command) == first  # a retry returns the first result, changes nothing
            command = None
        elif kind == "reuse_key" and done:
            earlier, call, _ = done[step[1] % len(done)]
            other = c.Retire(earlier.idempotency_key, rights[0], "0.001")
            try:
                await ledger.retire(other)
            except IdempotencyConflict:
                pass
            else:
                assert earlier == other  # only the very same request may reuse a key
            command = None
        if command is not None:
            try:
                result = await call(command)
            except DomainError:
                pass
            else:
                done.append((command, call, result))
                if kind == "hold":
                    holds.append(result.hold.hold_id)
        await _check_invariants(ledger, rights + cash, holds)
    await writes.drain()
    await engine.dispose()


async def _check_invariants(ledger: Ledger, account_ids: list[str], hold_ids: list[str]) -> None:
    pending: dict[str, Decimal] = {}
    for hold_id in hold_ids:
        hold = await ledger.hold(hold_id)
        kept = hold.quantity - hold.posted - hold.released
        assert kept >= 0 and hold.posted >= 0 and hold.released >= 0  # Σ parts ≤ held
        if hold.status == "pending":
            pending[hold.account_id] = pending.get(hold.account_id, Decimal(0)) + kept
        else:
            assert kept == 0, hold  # a resolved hold keeps nothing
    for account_id in account_ids:
        account = await ledger.account(account_id)
        assert account.balance >= 0 and account.held >= 0 and account.available >= 0
        assert account.held == pending.get(account_id, 0)  # held = Σ what its pending holds keep
    for code, outstanding, balances in await ledger.supply_check():
        assert outstanding == balances, code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=5, max_size=30))
def test_random_operation_sequences_keep_the_ledger_sound(steps) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_scenario(Path(folder) / "ledger.db", steps))
