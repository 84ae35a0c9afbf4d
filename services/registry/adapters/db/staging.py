"""The ledger's hot path without a statement per operation: the writer keeps the accounts and holds it has
seen in memory, and each operation stages its rows for the batch, which writes each table once.

The ledger has one writer (the write engine's `ledger` partition), so what it holds in memory is the truth
as long as every change of balances and holds goes through it; a change written directly (an issuance's
supply, a cash movement) clears the memory, and so does a batch that fails (nothing of it was committed).
An operation works on copies: only once all its checks have passed do its states and rows join the batch,
so a refused operation leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update

from services.registry.adapters.db.repository import RegistryRepository
from services.registry.adapters.db.tables import AccountRow, HoldRow, InstrumentRow, OperationRow, PostingRow
from services.registry.application.views import HoldView, OperationView, PostingView
from services.registry.domain.ledger import AccountState, HoldState, HoldStatus, InstrumentSpec, Posting, to_decimal


@dataclass
class HoldFacts:
    """What a hold view shows beyond its state."""

    purpose: str
    created_at: datetime
    resolved_at: datetime | None


@dataclass
class LedgerMemory:
    """The writer's accounts and holds (and hold facts), as committed plus what its batch has applied."""

    accounts: dict[str, AccountState] = field(default_factory=dict)
    holds: dict[str, HoldState] = field(default_factory=dict)
    facts: dict[str, HoldFacts] = field(default_factory=dict)

    def clear(self) -> None:
        self.accounts.clear()
        self.holds.clear()
        self.facts.clear()


@dataclass
class LedgerRows:
    """Rows of a batch, each table written once."""

    operations: list[dict] = field(default_factory=list)
    postings: list[dict] = field(default_factory=list)
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)  # account → (balance, held)
    new_holds: dict[str, dict] = field(default_factory=dict)
    hold_changes: dict[str, dict] = field(default_factory=dict)
    supply: dict[str, list[int]] = field(default_factory=dict)  # instrument → [issued, retired] to add

    def merge(self, other: LedgerRows) -> None:
        self.operations += other.operations
        self.postings += other.postings
        self.balances.update(other.balances)
        for hold_id, row in other.hold_changes.items():
            if hold_id in self.new_holds:  # made and changed in one batch: insert it as it ends
                self.new_holds[hold_id].update(row)
            else:
                self.hold_changes[hold_id] = row
        for hold_id, row in other.new_holds.items():
            self.new_holds[hold_id] = row
        for code, (issued, retired) in other.supply.items():
            total = self.supply.setdefault(code, [0, 0])
            total[0] += issued
            total[1] += retired

    async def write(self, session) -> None:
        if self.operations:
            await session.execute(insert(OperationRow.__table__), self.operations)
        if self.new_holds:
            await session.execute(insert(HoldRow.__table__), list(self.new_holds.values()))
        if self.postings:
            await session.execute(insert(PostingRow.__table__), self.postings)
        if self.balances:  # Core statements (tables, not entities): one executemany per table
            accounts = AccountRow.__table__
            await session.execute(
                update(accounts).where(accounts.c.account_id == bindparam("id"))
                .values(balance=bindparam("new_balance"), held=bindparam("new_held")),
                [{"id": a, "new_balance": b, "new_held": h} for a, (b, h) in self.balances.items()])
        holds = HoldRow.__table__
        for hold_id, values in self.hold_changes.items():
            await session.execute(update(holds).where(holds.c.hold_id == hold_id).values(**values))
        instruments = InstrumentRow.__table__
        for code, (issued, retired) in self.supply.items():
            await session.execute(update(instruments).where(instruments.c.code == code).values(
                issued=instruments.c.issued + issued, retired=instruments.c.retired + retired))


class StagingRepository:
    """The repository an operation of the hot path sees: reads of accounts and holds from the writer's
    memory (loaded once), writes staged into its own rows; everything else is the database repository."""

    def __init__(self, repository: RegistryRepository, memory: LedgerMemory, batch: LedgerRows,
                 specs: dict[str, InstrumentSpec]) -> None:
        self.repository = repository
        self.memory = memory
        self.batch = batch  # what the batch has staged before this operation
        self.specs = specs
        self.rows = LedgerRows()
        self.accounts: dict[str, AccountState] = {}
        self.holds: dict[str, HoldState] = {}
        self.facts: dict[str, HoldFacts] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repository, name)

    # ------------------------------------------------------------ reads
    async def account_states(self, account_ids: list[str]) -> dict[str, AccountState]:
        wanted = set(account_ids)
        missing = [a for a in wanted if a not in self.accounts and a not in self.memory.accounts]
        if missing:
            self.memory.accounts.update(await self.repository.account_states(missing))
        for account_id in wanted:
            if account_id not in self.accounts and account_id in self.memory.accounts:
                self.accounts[account_id] = replace(self.memory.accounts[account_id])
        return {a: self.accounts[a] for a in wanted if a in self.accounts}

    async def hold_states(self, hold_ids: list[str]) -> dict[str, HoldState]:
        wanted = {h for h in hold_ids if h}
        missing = [h for h in wanted if h not in self.holds and h not in self.memory.holds]
        if missing:
            for state, purpose, created_at, resolved_at in await self.repository.hold_records(missing):
                self.memory.holds[state.hold_id] = state
                self.memory.facts[state.hold_id] = HoldFacts(purpose, created_at, resolved_at)
        for hold_id in wanted:
            if hold_id not in self.holds and hold_id in self.memory.holds:
                self.holds[hold_id] = replace(self.memory.holds[hold_id])
        return {h: self.holds[h] for h in wanted if h in self.holds}

    async def issued(self, code: str) -> int:
        staged = sum(rows.supply.get(code, [0, 0])[0] for rows in (self.batch, self.rows))
        return await self.repository.issued(code) + staged

    async def hold(self, hold_id: str) -> HoldView:
        state = self.holds.get(hold_id) or self.memory.holds[hold_id]
        facts = self.facts.get(hold_id) or self.memory.facts[hold_id]
        account = self.accounts.get(state.account_id) or self.memory.accounts[state.account_id]
        spec = self.specs[account.instrument]
        return HoldView(hold_id, state.account_id, spec.unit, to_decimal(state.amount, spec.scale),
                        to_decimal(state.posted, spec.scale), state.status.value, state.deadline, facts.purpose,
                        facts.created_at, facts.resolved_at, state.partial, to_decimal(state.released, spec.scale))

    # ------------------------------------------------------------ staged writes
    async def add_hold(self, hold_id: str, account_id: str, amount: int, deadline: datetime, purpose: str,
                       at: datetime, *, partial: bool = False) -> None:
        self.rows.new_holds[hold_id] = dict(hold_id=hold_id, account_id=account_id, amount=amount, posted=0,
                                            released=0, partial=partial, status=HoldStatus.PENDING.value,
                                            deadline=deadline, purpose=purpose, created_at=at, resolved_at=None)
        self.holds[hold_id] = HoldState(hold_id, account_id, amount, 0, HoldStatus.PENDING, deadline, partial, 0)
        self.facts[hold_id] = HoldFacts(purpose, at, None)

    async def save_hold(self, hold: HoldState, at: datetime) -> None:
        values = dict(amount=hold.amount, posted=hold.posted, released=hold.released, status=hold.status.value)
        facts = self.facts.get(hold.hold_id) or self.memory.facts[hold.hold_id]
        if hold.status is not HoldStatus.PENDING:
            values["resolved_at"] = at
            facts = HoldFacts(facts.purpose, facts.created_at, at)
        if hold.hold_id in self.rows.new_holds:
            self.rows.new_holds[hold.hold_id].update(values)
        else:
            self.rows.hold_changes.setdefault(hold.hold_id, {}).update(values)
        self.holds[hold.hold_id] = hold
        self.facts[hold.hold_id] = facts

    async def change_supply(self, code: str, *, issued: int = 0, retired: int = 0) -> None:
        total = self.rows.supply.setdefault(code, [0, 0])
        total[0] += issued
        total[1] += retired

    async def record_operation(self, operation_id: str, type_: str, memo: str, actor: str, reference: str,
                               at: datetime, postings: list[Posting], accounts: dict[str, AccountState],
                               specs: dict[str, InstrumentSpec]) -> OperationView:
        """Stage the operation, its postings and the accounts' new balances (accounts hold the applied state)."""
        self.rows.operations.append(dict(operation_id=operation_id, type=type_, memo=memo, actor=actor,
                                         reference=reference, at=at))
        running = {a: s.balance - sum(p.balance_delta for p in postings if p.account_id == a)
                   for a, s in accounts.items()}
        views = []
        for posting in postings:
            running[posting.account_id] += posting.balance_delta
            self.rows.postings.append(dict(
                operation_id=operation_id, account_id=posting.account_id, balance_delta=posting.balance_delta,
                held_delta=posting.held_delta, balance_after=running[posting.account_id],
                counterparty_account_id=posting.counterparty_account_id, hold_id=posting.hold_id))
            spec = specs[accounts[posting.account_id].instrument]
            views.append(PostingView(posting.account_id, spec.code, spec.unit,
                                     to_decimal(posting.balance_delta, spec.scale),
                                     to_decimal(posting.held_delta, spec.scale),
                                     to_decimal(running[posting.account_id], spec.scale),
                                     posting.counterparty_account_id, posting.hold_id))
        for account_id in {p.account_id for p in postings}:
            state = accounts[account_id]
            self.rows.balances[account_id] = (state.balance, state.held)
            self.accounts[account_id] = state
        return OperationView(operation_id, type_, memo, actor, at, reference, tuple(views))

    def finish(self) -> None:
        """The operation passed every check: its states become the writer's and its rows the batch's."""
        self.memory.accounts.update(self.accounts)
        self.memory.holds.update(self.holds)
        self.memory.facts.update(self.facts)
        self.batch.merge(self.rows)
