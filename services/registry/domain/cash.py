"""Settlement money: how CNY enters and leaves the ledger, free of I/O.

Money is never issued. The settlement bank moves it in (deposit: the bank received the holder's
transfer) and out (withdrawal: the bank pays the holder back) by a movement that one of its principals
requests and a different principal approves (the two-person rule); only the approval posts it. A deposit
raises CNY `issued` and a withdrawal raises `retired`, so Σ balances = issued − retired still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.common.errors import FieldViolation, PermissionDenied, RuleViolation
from services.registry.domain.ledger import AccountState, InstrumentSpec, Posting

MAX_BANK_REFERENCE = 128
MAX_REASON = 500


class CashKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class CashState(StrEnum):
    PENDING = "pending"
    EXECUTED = "executed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class CashMovementState:
    movement_id: str
    kind: CashKind
    account_id: str
    amount: int
    bank_agency_id: str
    state: CashState
    requested_by: str


def request_violations(amount: int, currency: str, bank_reference: str) -> list[FieldViolation]:
    found = []
    if amount <= 0:
        found.append(FieldViolation("amount.fen", "must be greater than zero"))
    if currency not in ("", "CNY"):
        found.append(FieldViolation("amount.currency", "the ledger keeps CNY only"))
    if not bank_reference.strip():
        found.append(FieldViolation("bank_reference", "required: the bank's own reference of the transfer"))
    elif len(bank_reference) > MAX_BANK_REFERENCE:
        found.append(FieldViolation("bank_reference", f"at most {MAX_BANK_REFERENCE} characters"))
    return found


def check_money_account(spec: InstrumentSpec, account_id: str) -> None:
    if not spec.is_money:
        raise RuleViolation(f"account {account_id} holds {spec.code}: only money (CNY) accounts take deposits "
                            "and withdrawals", reason="NOT_A_MONEY_ACCOUNT")


def check_withdrawable(account: AccountState, amount: int) -> None:
    if amount > account.available:
        raise RuleViolation(f"account {account.account_id} has insufficient available balance for the "
                            "withdrawal", reason="INSUFFICIENT_FUNDS")


def check_decidable(movement: CashMovementState, decided_by: str) -> None:
    """Pending, and decided by somebody other than who requested it."""
    if movement.state is not CashState.PENDING:
        raise RuleViolation(f"cash movement {movement.movement_id} is already {movement.state.value}",
                            reason="MOVEMENT_DECIDED")
    if decided_by == movement.requested_by:
        raise PermissionDenied(f"cash movement {movement.movement_id} was requested by {decided_by}: a second, "
                               "different principal must decide it (two-person rule)", reason="TWO_PERSON_RULE")


def plan_execution(movement: CashMovementState, account: AccountState) -> Posting:
    """The posting an approved movement makes; the caller raises issued (deposit) or retired (withdrawal)."""
    if movement.kind is CashKind.DEPOSIT:
        return Posting(account.account_id, movement.amount, 0)
    check_withdrawable(account, movement.amount)
    return Posting(account.account_id, -movement.amount, 0)
