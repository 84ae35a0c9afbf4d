"""Use cases of settlement money: the bank's deposits and withdrawals under the two-person rule.

A principal of the settlement bank requests a movement; a different principal (compared by the acting key
or user, not by agency) approves it, which posts it to the ledger in the same transaction, or rejects it.
Each step is idempotent by its key, emits its event and writes its audit entry.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from services.common.authz import Access, Owner
from services.common.context import current_principal
from services.common.errors import AlreadyExists, DomainError, FieldViolation, require
from services.common.events.envelope import Event
from services.common.uow import Transaction
from services.registry.adapters.db.repository import RegistryRepository
from services.registry.application import commands as c
from services.registry.application.guards import require_key, reveal
from services.registry.application.ledger import Ledger
from services.registry.application.views import CashMovementView, Page, PageOf
from services.registry.domain import cash, ledger
from services.registry.domain.cash import CashKind, CashState


class CashMovements:
    def __init__(self, ledger: Ledger, access: Access) -> None:
        self.ledger = ledger
        self.access = access

    async def request(self, cmd: c.RequestCashMovement) -> CashMovementView:
        bank = self.access.require("RequestCashMovement").id
        require_key(cmd)
        violations = cash.request_violations(cmd.amount_fen, cmd.currency, cmd.bank_reference)
        if cmd.kind not in tuple(CashKind):
            violations.insert(0, FieldViolation("kind", "deposit or withdrawal"))
        if not cmd.account_id.strip():
            violations.append(FieldViolation("account_id", "required: the CNY account to credit or debit"))
        require(violations)
        kind, reference = CashKind(cmd.kind), cmd.bank_reference.strip()
        async def body(tx: Transaction) -> CashMovementView:
            repo = self.ledger.repositories(tx.session)
            account = (await self.ledger.load_accounts(repo, [cmd.account_id]))[cmd.account_id]
            spec = await self.ledger.spec(repo, account.instrument)
            cash.check_money_account(spec, account.account_id)
            if kind is CashKind.WITHDRAWAL:
                cash.check_withdrawable(account, cmd.amount_fen)
            else:
                ledger.check_supply(spec, await repo.issued(spec.code), cmd.amount_fen, "amount.fen")
            # One bank transfer is credited once, whatever idempotency keys its requests carry.
            if earlier := await repo.live_cash_movement(bank, reference):
                raise AlreadyExists(f"bank reference {reference} is already recorded in cash movement {earlier}")
            view = CashMovementView(f"CM-{tx.now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:10].upper()}", kind.value,
                                    account.account_id, cmd.amount_fen, bank, reference, CashState.PENDING.value,
                                    current_principal().actor, tx.now)
            await repo.add_cash_movement(view)
            await self._publish(tx, "requested", "cash.request", view)
            return view
        return await self.ledger.write(cmd, "request_cash_movement", body, CashMovementView)

    async def approve(self, cmd: c.ApproveCashMovement) -> CashMovementView:
        """The second principal's approval: posts the movement to the ledger."""
        async def decide(tx: Transaction, repo: RegistryRepository, movement: CashMovementView,
                         actor: str) -> CashMovementView:
            state = _state(movement)
            cash.check_decidable(state, actor)
            accounts = await self.ledger.load_accounts(repo, [movement.account_id])
            spec = await self.ledger.spec(repo, accounts[movement.account_id].instrument)
            posting = cash.plan_execution(state, accounts[movement.account_id])
            if state.kind is CashKind.DEPOSIT:
                ledger.check_supply(spec, await repo.issued(spec.code), movement.amount_fen, "amount.fen")
                await repo.change_supply(spec.code, issued=movement.amount_fen)
            else:
                await repo.change_supply(spec.code, retired=movement.amount_fen)
            ledger.apply(accounts, [posting])
            operation = await self.ledger.record(
                tx, repo, state.kind.value, [posting], accounts, f"{state.kind.value} {movement.bank_reference}",
                movement.movement_id, {"instrument": spec.code, "bank_agency_id": movement.bank_agency_id})
            await repo.decide_cash_movement(movement.movement_id, CashState.EXECUTED.value, actor, tx.now,
                                            operation.operation_id)
            view = replace(movement, state=CashState.EXECUTED.value, decided_by=actor, decided_at=tx.now,
                           operation_id=operation.operation_id)
            await self._publish(tx, "executed", "cash.execute", view)
            return view
        return await self._decide(cmd, "ApproveCashMovement", "approve_cash_movement", decide)

    async def reject(self, cmd: c.RejectCashMovement) -> CashMovementView:
        if len(cmd.reason) > cash.MAX_REASON:
            require([FieldViolation("reason", f"at most {cash.MAX_REASON} characters")])

        async def decide(tx: Transaction, repo: RegistryRepository, movement: CashMovementView,
                         actor: str) -> CashMovementView:
            cash.check_decidable(_state(movement), actor)
            await repo.decide_cash_movement(movement.movement_id, CashState.REJECTED.value, actor, tx.now,
                                            reason=cmd.reason.strip())
            view = replace(movement, state=CashState.REJECTED.value, decided_by=actor, decided_at=tx.now,
                           reason=cmd.reason.strip())
            await self._publish(tx, "rejected", "cash.reject", view)
            return view
        return await self._decide(cmd, "RejectCashMovement", "reject_cash_movement", decide)

    async def movement(self, movement_id: str) -> CashMovementView:
        async with self.ledger.uow.read() as tx:
            found = await self.ledger.repositories(tx.session).cash_movement(movement_id)
        reveal(self.access, "GetCashMovement", Owner.agency(found.bank_agency_id) if found else None,
               f"cash movement {movement_id} not found")
        return found

    async def movements(self, state: str, account_id: str, page: Page) -> PageOf[CashMovementView]:
        scope = self.access.scope("ListCashMovements")
        bank = scope.owner.id if scope.owner is not None else ""  # a bank sees its own movements
        async with self.ledger.uow.read() as tx:
            return await self.ledger.repositories(tx.session).cash_movements(state, account_id, bank, page)

    # ------------------------------------------------------------ plumbing
    async def _decide(self, cmd, operation: str, idempotency_operation: str, decide) -> CashMovementView:
        self.access.scope(operation)
        require_key(cmd)
        actor = current_principal().actor
        kind = ""

        async def guard(tx: Transaction) -> None:
            nonlocal kind
            movement = await self.ledger.repositories(tx.session).cash_movement(cmd.movement_id)
            reveal(self.access, operation, Owner.agency(movement.bank_agency_id) if movement else None,
                   f"cash movement {cmd.movement_id} not found")
            kind = movement.kind

        async def body(tx: Transaction) -> CashMovementView:
            repo = self.ledger.repositories(tx.session)
            return await decide(tx, repo, await repo.cash_movement(cmd.movement_id, for_update=True), actor)
        try:
            view = await self.ledger.write(cmd, idempotency_operation, body, CashMovementView, guard=guard,
                                           moves_balances=True)
        except DomainError:
            if kind:
                self.ledger.observer.operation(kind, "refused")
            raise
        if view.state == CashState.EXECUTED.value:
            self.ledger.observer.operation(kind, "ok")
        return view

    async def _publish(self, tx: Transaction, verb: str, action: str, view: CashMovementView) -> None:
        data = {"movement_id": view.movement_id, "kind": view.kind, "account_id": view.account_id,
                "amount_fen": view.amount_fen, "bank_agency_id": view.bank_agency_id,
                "bank_reference": view.bank_reference, "state": view.state, "requested_by": view.requested_by,
                "decided_by": view.decided_by, "operation_id": view.operation_id, "reason": view.reason}
        await tx.emit(Event(f"registry.cash.{verb}", f"yaosu.registry.cash.{verb}", view.movement_id, data))
        await tx.audit(action, view.movement_id, data)


def _state(view: CashMovementView) -> cash.CashMovementState:
    return cash.CashMovementState(view.movement_id, CashKind(view.kind), view.account_id, view.amount_fen,
                                  view.bank_agency_id, CashState(view.state), view.requested_by)
