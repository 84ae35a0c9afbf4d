"""Use cases of the holdings ledger: instruments, accounts, issue, transfer, holds, retire, history.

Every operation checks the caller against the registry's policy with the objects it loaded, loads the
accounts it touches under lock, lets the domain plan the postings, applies them, and commits postings,
balances, the outbox event, the audit entry and the idempotency record together.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import datetime
from functools import partial

from services.common.authz import Access, Kind, Owner
from services.common.context import current_principal, current_subject
from services.common.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RuleViolation,
    require,
)
from services.common.events.envelope import Event
from services.common.uow import Transaction, UnitOfWork, adapter, command_digest
from services.common.write_engine import Command, WriteEngine
from services.registry.adapters.db.repository import RegistryRepository
from services.registry.adapters.db.staging import LedgerMemory, LedgerRows, StagingRepository
from services.registry.application import commands as c
from services.registry.application.guards import holder, require_key, reveal
from services.registry.application.ports import LedgerObserver, RepositoryFactory
from services.registry.application.views import (
    AccountView,
    HoldResult,
    HoldView,
    InstrumentView,
    OperationView,
    Page,
    PageOf,
)
from services.registry.domain import ledger
from services.registry.domain.ledger import MONEY_KIND, AccountState, HoldStatus, InstrumentSpec, Posting

LEDGER = "ledger"  # the writer's partition: one order for every change of the ledger
_INSTRUMENT_CODE = re.compile(r"^[A-Za-z0-9_:\-.]{1,128}$")
CNY = InstrumentSpec("CNY", "cny", "fen", 0)


class Ledger:
    def __init__(self, uow: UnitOfWork, repositories: RepositoryFactory, observer: LedgerObserver,
                 access: Access, writes: WriteEngine) -> None:
        self.uow = uow
        self.repositories = repositories
        self.observer = observer
        self.access = access
        # Every change of the ledger (and of settlement money) goes through its one writer: the changes
        # queue there and commit in batches instead of contending for the database one by one.
        self.writes = writes
        self.memory = LedgerMemory()  # the writer's accounts and holds (see adapters/db/staging.py)
        self._specs: dict[str, InstrumentSpec] = {}

    # ------------------------------------------------------------ instruments and accounts
    async def define_instrument(self, cmd: c.DefineInstrument) -> InstrumentView:
        """Define an instrument; the defining agency is its issuer, the only one that may issue it. Money
        (kind cny) has no issuer: the settlement bank defines it, and it is never issued."""
        self.access.scope("DefineInstrument")
        subject = current_subject()
        require_key(cmd)
        money = cmd.kind == MONEY_KIND
        issuer = "" if money else cmd.issuer_agency_id
        if subject.kind is Kind.AGENCY:
            needed = "settlement" if money else "issuer"
            if needed not in subject.roles:
                raise PermissionDenied(f"agency {subject.id} may define {'money' if money else 'quota'} instruments "
                                       f"only with the {needed} role", reason="NOT_PERMITTED")
            if issuer and issuer != subject.id:
                raise PermissionDenied(f"agency {subject.id} defines only instruments it issues itself",
                                       reason="NOT_OWNER")
            issuer = "" if money else subject.id
        violations = []
        if not _INSTRUMENT_CODE.match(cmd.code):
            violations.append(FieldViolation("instrument.code", "1–128 of letters, digits and _ : - ."))
        if not 0 <= cmd.scale <= 6:
            violations.append(FieldViolation("instrument.scale", "0 to 6 decimal places"))
        if not cmd.unit.strip():
            violations.append(FieldViolation("instrument.unit", "required"))
        if money and (cmd.unit != "fen" or cmd.scale != 0):
            violations.append(FieldViolation("instrument.unit", "CNY is kept in whole fen (unit fen, scale 0)"))
        if not money and not issuer:
            violations.append(FieldViolation("instrument.issuer_agency_id", "required: the agency that issues it"))
        require(violations)
        async def authorize(tx: Transaction) -> None:
            existing = await self.repositories(tx.session).instrument_view(cmd.code)
            # Only the issuer redefines its instrument; money belongs to the settlement function as such.
            owner = subject.id if money else (existing.issuer_agency_id if existing else issuer)
            self.access.require("DefineInstrument", Owner.agency(owner))

        async def body(tx: Transaction) -> InstrumentView:
            repo = self.repositories(tx.session)
            existing = await repo.instrument_view(cmd.code)
            if not money:
                kind = await repo.kind(cmd.kind)
                if kind is None:
                    require([FieldViolation("instrument.kind", f"unknown resource kind {cmd.kind!r}")])
                if kind.unit != cmd.unit:
                    require([FieldViolation("instrument.unit", f"kind {kind.code} is measured in {kind.unit}")])
                if await repo.agency(issuer) is None:
                    require([FieldViolation("instrument.issuer_agency_id", f"unknown agency {issuer!r}")])
            if existing is not None:
                # Defining the same instrument twice is harmless; a different one is refused.
                if (existing.kind, existing.unit, existing.scale, existing.issuer_agency_id) != (
                        cmd.kind, cmd.unit, cmd.scale, issuer):
                    require([FieldViolation("instrument.code",
                                            "exists with a different kind, unit, scale or issuer")])
                return existing
            spec = InstrumentSpec(cmd.code, cmd.kind, cmd.unit, cmd.scale, cmd.pollutant, cmd.vintage,
                                  cmd.region_code, issuer)
            await repo.add_instrument(spec)
            data = {"code": spec.code, "kind": spec.kind, "unit": spec.unit, "scale": spec.scale,
                    "pollutant": spec.pollutant, "vintage": spec.vintage, "region_code": spec.region_code,
                    "issuer_agency_id": spec.issuer_agency_id}
            await tx.emit(Event("registry.ledger.instrument_defined", "yaosu.registry.ledger.instrument_defined",
                                spec.code, data))
            await tx.audit("ledger.define_instrument", spec.code, data)
            return await repo.instrument_view(cmd.code)
        return await self.write(cmd, "define_instrument", body, InstrumentView, guard=authorize)

    async def ensure_instrument(self, spec: InstrumentSpec) -> None:
        """Define a built-in instrument (CNY) at start-up when the database does not have it yet."""
        async def body(tx: Transaction) -> None:
            repo = self.repositories(tx.session)
            if await repo.instrument(spec.code) is None:
                await repo.add_instrument(spec)
                await tx.audit("ledger.define_instrument", spec.code, {"code": spec.code, "builtin": True})
        await self.writes.submit(Command(LEDGER, "ensure_instrument", body))

    async def open_account(self, cmd: c.OpenAccount) -> AccountView:
        """Open the holder's account for the instrument, or return the one it already has."""
        self.access.scope("OpenAccount")
        require_key(cmd)
        require([FieldViolation("holder", "required")] if not cmd.holder.strip() else [])
        async def body(tx: Transaction) -> AccountView:
            repo = self.repositories(tx.session)
            if await repo.enterprise(cmd.holder):
                holder_kind = Kind.ENTERPRISE
            elif await repo.agency(cmd.holder):
                holder_kind = Kind.AGENCY
            else:
                require([FieldViolation("holder", "neither a registered enterprise nor an agency")])
            self.access.require("OpenAccount", holder(cmd.holder, holder_kind))
            if await repo.instrument(cmd.instrument) is None:
                raise NotFound(f"instrument {cmd.instrument} not found")
            existing = await repo.account_by_holder(cmd.holder, cmd.instrument)
            if existing:
                return existing
            account_id = f"A-{uuid.uuid4().hex[:16].upper()}"
            await repo.add_account(account_id, cmd.holder, holder_kind.value, cmd.instrument, tx.now)
            data = {"account_id": account_id, "holder": cmd.holder, "instrument": cmd.instrument}
            await tx.emit(Event("registry.ledger.account_opened", "yaosu.registry.ledger.account_opened",
                                account_id, data))
            await tx.audit("ledger.open_account", account_id, data)
            return await repo.account(account_id)
        # Opening is "get or open": it is answered from the state, not from a stored answer.
        return await self.write(cmd, "open_account", body, AccountView, remember=False)

    async def instrument(self, code: str) -> InstrumentView:
        self.access.require("GetInstrument")
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).instrument_view(code)
        if found is None:
            raise NotFound(f"instrument {code} not found")
        return found

    async def instruments(self, kind: str) -> list[InstrumentView]:
        self.access.require("ListInstruments")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).instruments(kind)

    async def account(self, account_id: str) -> AccountView:
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).account(account_id)
        reveal(self.access, "GetAccount", holder(found.holder, found.holder_kind) if found else None,
               f"account {account_id} not found")
        return found

    async def accounts(self, holder_id: str, instrument: str, page: Page) -> PageOf[AccountView]:
        scope = self.access.scope("ListAccounts")
        holder_kind = ""
        if scope.owner is not None:  # an enterprise or agency lists only its own accounts
            if holder_id and holder_id != scope.owner.id:
                return PageOf([], "", 0)
            holder_id, holder_kind = scope.owner.id, scope.owner.kind.value
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).accounts(holder_id, instrument, page, holder_kind=holder_kind)

    async def hold(self, hold_id: str) -> HoldView:
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            found = await repo.hold(hold_id)
            owner = (await repo.holders({found.account_id})).get(found.account_id) if found else None
        reveal(self.access, "GetHold", holder(*owner) if owner else None, f"hold {hold_id} not found")
        return found

    async def holds(self, purpose_prefix: str, pending_only: bool, page: Page) -> PageOf[HoldView]:
        """Holds by purpose, in hold-id order: to regulators and to the trading service (which reconciles
        the holds of its orders after a restart)."""
        self.access.require("ListHolds")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).holds(purpose_prefix, pending_only, page)

    async def history(self, account_id: str, page: Page) -> PageOf[OperationView]:
        """Every operation that touched the account. Its holder sees only its own side of each: its own
        postings, and a counterparty account only where that is its own too."""
        scope = self.access.scope("GetAccountHistory")
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            account = await repo.account(account_id)
            reveal(self.access, "GetAccountHistory",
                   holder(account.holder, account.holder_kind) if account else None,
                   f"account {account_id} not found")
            found = await repo.history(account_id, page)
            if scope.owner is None:
                return found
            touched = {a for op in found.items for p in op.postings for a in (p.account_id,
                                                                               p.counterparty_account_id) if a}
            holders = await repo.holders(touched)
        mine = {a for a, owner in holders.items() if holder(*owner) == scope.owner}
        items = [replace(op, postings=tuple(
            replace(p, counterparty_account_id=p.counterparty_account_id if p.counterparty_account_id in mine else "")
            for p in op.postings if p.account_id in mine)) for op in found.items]
        return PageOf(items, found.next_after, found.total)

    async def supply_check(self) -> list[tuple[str, int, int]]:
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).supply_check()

    # ------------------------------------------------------------ operations
    async def issue(self, cmd: c.Issue) -> OperationView:
        """Issue units of an instrument: only by its issuer, and never money."""
        self.access.scope("Issue")
        require_key(cmd)
        if not cmd.issuer_agency_id.strip():
            require([FieldViolation("issuer_agency_id", "required: the instrument's issuing agency")])

        async def authorize(repo: RegistryRepository) -> None:
            accounts = await self.load_accounts(repo, [cmd.to_account_id])
            spec = await self.spec(repo, accounts[cmd.to_account_id].instrument)
            if not spec.is_money:
                self.access.require("Issue", Owner.agency(spec.issuer_agency_id))
            ledger.check_issuable(spec, cmd.issuer_agency_id)

        async def body(tx: Transaction, repo: RegistryRepository) -> OperationView:
            accounts = await self.load_accounts(repo, [cmd.to_account_id])
            spec = await self.spec(repo, accounts[cmd.to_account_id].instrument)
            amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value")
            ledger.check_supply(spec, await repo.issued(spec.code), amount, "quantity.value")
            postings = [Posting(cmd.to_account_id, amount, 0)]
            ledger.apply(accounts, postings)
            await repo.change_supply(spec.code, issued=amount)
            return await self.record(tx, repo, "issue", postings, accounts, cmd.memo,
                                     f"issuer:{spec.issuer_agency_id}", {"instrument": spec.code})
        return await self.operate(cmd, "issue", body, authorize=authorize)

    async def transfer(self, cmd: c.Transfer) -> OperationView:
        self.access.require("Transfer")
        require_key(cmd)
        if not cmd.legs:
            require([FieldViolation("legs", "at least one leg is required")])

        async def body(tx: Transaction, repo: RegistryRepository) -> OperationView:
            accounts = await self.load_accounts(repo, [x for leg in cmd.legs for x in (leg.from_account_id,
                                                                                       leg.to_account_id)])
            holds = await repo.hold_states([leg.from_hold_id for leg in cmd.legs if leg.from_hold_id])
            legs = []
            for i, leg in enumerate(cmd.legs):
                spec = await self.spec(repo, accounts[leg.from_account_id].instrument)
                legs.append(ledger.Leg(leg.from_account_id, leg.to_account_id,
                                       _amount(spec, leg.quantity, leg.unit, f"legs[{i}].quantity.value"),
                                       leg.from_hold_id))
            postings = ledger.plan_transfer(legs, accounts, holds, tx.now)
            ledger.apply(accounts, postings)
            used = ledger.holds_after_transfer(legs, holds)
            for hold in used:
                await repo.save_hold(hold, tx.now)
            return await self.record(tx, repo, "transfer", postings, accounts, cmd.memo, cmd.reference,
                                     {"legs": len(legs), "holds_posted": [h.hold_id for h in used]})
        return await self.operate(cmd, "transfer", body)

    async def create_hold(self, cmd: c.CreateHold) -> HoldResult:
        self.access.require("CreateHold")
        require_key(cmd)

        async def body(tx: Transaction, repo: RegistryRepository) -> HoldResult:
            if cmd.deadline <= tx.now:
                require([FieldViolation("deadline", "must be in the future")])
            accounts = await self.load_accounts(repo, [cmd.account_id])
            spec = await self.spec(repo, accounts[cmd.account_id].instrument)
            amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value")
            hold_id = f"H-{uuid.uuid4().hex[:16].upper()}"
            posting = ledger.plan_hold(accounts[cmd.account_id], amount)
            posting = Posting(posting.account_id, 0, posting.held_delta, "", hold_id)
            ledger.apply(accounts, [posting])
            await repo.add_hold(hold_id, cmd.account_id, amount, cmd.deadline, cmd.purpose, tx.now,
                                partial=cmd.partial)
            operation = await self.record(tx, repo, "hold", [posting], accounts, cmd.purpose, hold_id,
                                          {"deadline": cmd.deadline.isoformat(), "partial": cmd.partial})
            return HoldResult(await repo.hold(hold_id), operation)
        return await self.operate(cmd, "create_hold", body, HoldResult, metric="hold")

    async def post_hold(self, cmd: c.PostHold) -> HoldResult:
        self.access.require("PostHold")
        require_key(cmd)

        async def body(tx: Transaction, repo: RegistryRepository) -> HoldResult:
            hold = await self._hold(repo, cmd.hold_id)
            accounts = await self.load_accounts(repo, [hold.account_id, cmd.to_account_id])
            spec = await self.spec(repo, accounts[hold.account_id].instrument)
            amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value") if cmd.quantity else hold.pending
            postings, after = ledger.plan_post(hold, accounts[cmd.to_account_id], accounts[hold.account_id], amount,
                                               tx.now)
            ledger.apply(accounts, postings)
            await repo.save_hold(after, tx.now)
            operation = await self.record(tx, repo, "post", postings, accounts, "", hold.hold_id,
                                          {"partial": hold.partial})
            return HoldResult(await repo.hold(hold.hold_id), operation)
        return await self.operate(cmd, "post_hold", body, HoldResult, metric="post")

    async def void_hold(self, cmd: c.VoidHold) -> HoldResult:
        self.access.require("VoidHold")
        require_key(cmd)

        async def body(tx: Transaction, repo: RegistryRepository) -> HoldResult:
            hold = await self._hold(repo, cmd.hold_id)
            accounts = await self.load_accounts(repo, [hold.account_id])
            if cmd.quantity:  # one part of a partial hold
                spec = await self.spec(repo, accounts[hold.account_id].instrument)
                amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value")
                posting, after = ledger.plan_release(hold, amount, tx.now)
            else:
                posting, after = ledger.plan_void(hold, tx.now)
            ledger.apply(accounts, [posting])
            await repo.save_hold(after, tx.now)
            operation = await self.record(tx, repo, "void", [posting], accounts, cmd.reason, hold.hold_id,
                                          {"partial": hold.partial, "resolved": after.status is not HoldStatus.PENDING})
            return HoldResult(await repo.hold(hold.hold_id), operation)
        return await self.operate(cmd, "void_hold", body, HoldResult, metric="void")

    async def increase_hold(self, cmd: c.IncreaseHold) -> HoldResult:
        """Hold more under a pending partial hold (an order amended up holds the extra)."""
        self.access.require("IncreaseHold")
        require_key(cmd)

        async def body(tx: Transaction, repo: RegistryRepository) -> HoldResult:
            hold = await self._hold(repo, cmd.hold_id)
            accounts = await self.load_accounts(repo, [hold.account_id])
            spec = await self.spec(repo, accounts[hold.account_id].instrument)
            amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value")
            posting, after = ledger.plan_increase(hold, accounts[hold.account_id], amount, tx.now)
            ledger.apply(accounts, [posting])
            await repo.save_hold(after, tx.now)
            operation = await self.record(tx, repo, "hold", [posting], accounts, "increase", hold.hold_id,
                                          {"partial": True})
            return HoldResult(await repo.hold(hold.hold_id), operation)
        return await self.operate(cmd, "increase_hold", body, HoldResult, metric="hold")

    async def retire(self, cmd: c.Retire) -> OperationView:
        """A holder surrenders units of its own account (履约清缴). Money is not retired: it leaves only by
        a settlement withdrawal."""
        self.access.scope("Retire")
        require_key(cmd)

        async def authorize(repo: RegistryRepository) -> None:
            found = (await repo.account_states([cmd.account_id])).get(cmd.account_id)
            reveal(self.access, "Retire", holder(found.holder, found.holder_kind) if found else None,
                   f"account {cmd.account_id} not found")

        async def body(tx: Transaction, repo: RegistryRepository) -> OperationView:
            accounts = await self.load_accounts(repo, [cmd.account_id])
            spec = await self.spec(repo, accounts[cmd.account_id].instrument)
            if spec.is_money:
                raise RuleViolation(f"{spec.code} is not retired: money leaves only by a settlement bank's "
                                    "withdrawal", reason="MONEY_NOT_RETIRED")
            amount = _amount(spec, cmd.quantity, cmd.unit, "quantity.value")
            postings = [ledger.plan_retire(accounts[cmd.account_id], amount)]
            ledger.apply(accounts, postings)
            await repo.change_supply(spec.code, retired=amount)
            return await self.record(tx, repo, "retire", postings, accounts, cmd.reason, "",
                                     {"instrument": spec.code})
        return await self.operate(cmd, "retire", body, authorize=authorize)

    async def expire_due_holds(self, now: datetime, limit: int = 200) -> int:
        """Void (as EXPIRED) every pending hold past its deadline; returns how many."""
        async with self.uow.read() as tx:
            due = await self.repositories(tx.session).due_hold_ids(now, limit)

        async def expire(hold_id: str, tx: Transaction) -> bool:
            repo = self.staging(tx)
            hold = (await repo.hold_states([hold_id]))[hold_id]
            if not hold.is_due(tx.now):
                return False
            accounts = await self.load_accounts(repo, [hold.account_id])
            posting, after = ledger.plan_void(hold, tx.now, expiring=True)
            ledger.apply(accounts, [posting])
            await repo.save_hold(after, tx.now)
            await self.record(tx, repo, "expire", [posting], accounts, "deadline passed", hold_id, {})
            repo.finish()
            return True

        expired = 0
        for done in await asyncio.gather(*(
                self.writes.submit(Command(LEDGER, "expire_hold", partial(expire, hold_id), savepoint=False,
                                           abandon=self.memory.clear)) for hold_id in due)):
            if done:
                expired += 1
                self.observer.operation("void", "ok")
        return expired

    # ------------------------------------------------------------ plumbing (also used by settlement money)
    async def operate(self, cmd, operation: str, body, result_type=OperationView, *, metric: str = "",
                      authorize=None):
        """One ledger operation: authorize against the loaded objects, then replay a retried request or
        run the body; the writer commits it with its idempotency record."""
        metric = metric or operation

        async def guard(tx: Transaction) -> None:
            await authorize(self.staging(tx))

        async def work(tx: Transaction):
            repo = self.staging(tx)
            result = await body(tx, repo)
            repo.finish()
            return result
        try:
            result, replayed = await self._submit(cmd, operation, work, result_type, staged=True,
                                                  guard=guard if authorize is not None else None)
        except DomainError:
            self.observer.operation(metric, "refused")
            raise
        self.observer.operation(metric, "replayed" if replayed else "ok")
        return result

    async def write(self, cmd, operation: str, work, result_type, *, guard=None, remember: bool = True,
                    moves_balances: bool = False):
        """A change to the ledger written directly (in its own savepoint), answered as `result_type`. One that
        moves balances or supply outside the staged hot path makes the writer forget what it holds."""
        async def direct(tx: Transaction):
            result = await work(tx)
            if moves_balances:
                self.memory.clear()
            return result
        return (await self._submit(cmd, operation, direct, result_type, guard=guard, remember=remember))[0]

    def staging(self, tx: Transaction) -> StagingRepository:
        """The hot path's repository for one operation: accounts and holds from the writer's memory, rows
        staged for the batch (written once per table before its commit)."""
        batch = tx.stage(LEDGER, LedgerRows, lambda rows: rows.write(tx.session))
        return StagingRepository(self.repositories(tx.session), self.memory, batch, self._specs)

    async def _submit(self, cmd, operation: str, work, result_type, *, guard=None, remember: bool = True,
                      staged: bool = False):
        kind = adapter(result_type)

        async def step(tx: Transaction):
            return kind.dump_python(await work(tx), mode="json")
        command = Command(LEDGER, operation, step, guard=guard,
                          key=cmd.idempotency_key if remember else "",
                          digest=command_digest(cmd) if remember else "",
                          savepoint=not staged, abandon=self.memory.clear)
        answer = await self.writes.submit(command)
        return kind.validate_python(answer), command.replayed

    async def load_accounts(self, repo: RegistryRepository, account_ids: list[str]) -> dict[str, AccountState]:
        accounts = await repo.account_states(account_ids)
        for account_id in account_ids:
            if account_id not in accounts:
                raise NotFound(f"account {account_id} not found")
        return accounts

    async def spec(self, repo: RegistryRepository, code: str) -> InstrumentSpec:
        # An instrument's unit, scale and issuer never change once defined, so they are cached.
        spec = self._specs.get(code)
        if spec is None:
            spec = await repo.instrument(code)
            if spec is None:
                raise NotFound(f"instrument {code} not found")
            self._specs[code] = spec
        return spec

    async def _hold(self, repo: RegistryRepository, hold_id: str) -> ledger.HoldState:
        holds = await repo.hold_states([hold_id])
        if hold_id not in holds:
            raise NotFound(f"hold {hold_id} not found")
        return holds[hold_id]

    async def record(self, tx: Transaction, repo: RegistryRepository, type_: str, postings: list[Posting],
                     accounts: dict[str, AccountState], memo: str, reference: str, extra: dict) -> OperationView:
        operation_id = f"OP-{uuid.uuid4().hex.upper()}"
        actor = current_principal().actor
        specs = {code: await self.spec(repo, code) for code in {a.instrument for a in accounts.values()}}
        view = await repo.record_operation(operation_id, type_, memo, actor, reference, tx.now, postings, accounts,
                                           specs)
        data = {"operation_id": operation_id, "type": type_, "reference": reference, "memo": memo, **extra,
                "postings": [{"account_id": p.account_id, "instrument": p.instrument,
                              "balance_delta": str(p.balance_delta), "held_delta": str(p.held_delta),
                              "hold_id": p.hold_id} for p in view.postings]}
        await tx.emit(Event(f"registry.ledger.{type_}", f"yaosu.registry.ledger.{type_}", operation_id, data))
        await tx.audit(f"ledger.{type_}", operation_id, data)
        return view


def _amount(spec: InstrumentSpec, quantity: str, unit: str, field: str) -> int:
    """Minor units of a quantity; the unit, when given, must be the instrument's."""
    if unit and unit != spec.unit:
        raise InvalidArgument.field(field.replace(".value", ".unit"), f"{spec.code} is kept in {spec.unit}")
    return ledger.to_minor(quantity, spec.scale, field)
