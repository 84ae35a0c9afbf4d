"""The holdings ledger's rules (double entry, TigerBeetle-style two-phase holds), free of I/O.

Amounts are integers in the instrument's minor unit (fen for CNY; 10^-scale of the unit for rights), so
sums are exact. For every instrument Σ balances = issued − retired; balances never go negative and
available = balance − Σ pending holds never goes negative either.

A one-shot hold (deposits) resolves at its first post or void: a post pays part or all of it and
releases the remainder. A partial hold (order holds) is captured in parts: every post, transfer leg and
release takes a part of what it still keeps (`pending` = amount − posted − released) and leaves the rest
held; it may be increased while pending, and it resolves when nothing is left, at a full void or expiry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from services.common.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied, RuleViolation
from services.registry.domain.numbers import INT64_MAX, parse_decimal, to_scaled

MONEY_KIND = "cny"


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True)
class InstrumentSpec:
    code: str
    kind: str
    unit: str
    scale: int
    pollutant: str = ""
    vintage: int = 0
    region_code: str = ""
    issuer_agency_id: str = ""  # who alone issues it; empty for money, which is never issued

    @property
    def is_money(self) -> bool:
        return self.kind == MONEY_KIND


@dataclass
class AccountState:
    account_id: str
    holder: str
    instrument: str
    balance: int
    held: int
    holder_kind: str = "enterprise"  # enterprise | agency

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class HoldState:
    hold_id: str
    account_id: str
    amount: int
    posted: int
    status: HoldStatus
    deadline: datetime
    partial: bool = False
    released: int = 0

    @property
    def pending(self) -> int:
        """What the hold still keeps on its account (the account's `held` includes exactly this)."""
        return self.amount - self.posted - self.released if self.status is HoldStatus.PENDING else 0

    def is_due(self, now: datetime) -> bool:
        return self.status is HoldStatus.PENDING and now >= self.deadline

    def after_part(self, posted: int = 0, released: int = 0, added: int = 0) -> HoldState:
        """The hold once a part is posted, released or added: still pending while anything is left,
        else resolved — POSTED when any of it was paid out, VOIDED when all went back."""
        amount, total_posted, total_released = self.amount + added, self.posted + posted, self.released + released
        status = HoldStatus.PENDING
        if total_posted + total_released >= amount:
            status = HoldStatus.POSTED if total_posted else HoldStatus.VOIDED
        return HoldState(self.hold_id, self.account_id, amount, total_posted, status, self.deadline, self.partial,
                         total_released)


@dataclass(frozen=True)
class Posting:
    account_id: str
    balance_delta: int
    held_delta: int
    counterparty_account_id: str = ""
    hold_id: str = ""


@dataclass(frozen=True)
class Leg:
    from_account_id: str
    to_account_id: str
    amount: int
    from_hold_id: str = ""


def to_minor(value: str, scale: int, field: str) -> int:
    """A positive decimal text to minor units; refuses more decimals than the instrument keeps and
    anything a signed 64-bit amount cannot hold."""
    return to_scaled(parse_decimal(value, field), scale, field)


def to_decimal(amount: int, scale: int) -> Decimal:
    return Decimal(amount).scaleb(-scale)


def format_amount(amount: int, scale: int) -> str:
    return f"{to_decimal(amount, scale):.{scale}f}" if scale else str(amount)


def check_issuable(spec: InstrumentSpec, issuer_agency_id: str) -> None:
    """Only the instrument's issuer issues it, and money is never issued: CNY enters the ledger only by a
    settlement deposit."""
    if spec.is_money:
        raise RuleViolation(f"{spec.code} is never issued: money enters only by a settlement bank's deposit "
                            "(RequestCashMovement, approved by a second principal)", reason="MONEY_NOT_ISSUED")
    if not spec.issuer_agency_id or issuer_agency_id != spec.issuer_agency_id:
        raise PermissionDenied(f"{spec.code} is issued only by its issuer "
                               f"{spec.issuer_agency_id or '(none recorded)'}", reason="NOT_ISSUER")


def check_supply(spec: InstrumentSpec, issued: int, amount: int, field: str) -> None:
    """The issued total (and so every balance, Σ balances = issued − retired) stays within what a signed
    64-bit column holds."""
    if issued + amount > INT64_MAX:
        raise InvalidArgument.field(field, f"would raise {spec.code} beyond the largest amount the ledger keeps")


def plan_transfer(legs: list[Leg], accounts: dict[str, AccountState], holds: dict[str, HoldState],
                  now: datetime) -> list[Posting]:
    """All postings of an atomic multi-leg transfer, or an error naming the first leg that fails."""
    if not legs:
        raise InvalidArgument.field("legs", "at least one leg is required")
    violations: list[FieldViolation] = []
    for i, leg in enumerate(legs):
        if leg.from_account_id == leg.to_account_id:
            violations.append(FieldViolation(f"legs[{i}].to_account_id", "must differ from from_account_id"))
    if violations:
        raise InvalidArgument(violations[0].description, violations)
    postings: list[Posting] = []
    outflow: dict[str, int] = defaultdict(int)  # from available balance
    hold_use: dict[str, int] = defaultdict(int)
    for i, leg in enumerate(legs):
        source, target = _account(accounts, leg.from_account_id), _account(accounts, leg.to_account_id)
        if source.instrument != target.instrument:
            raise InvalidArgument.field(f"legs[{i}].to_account_id",
                                        f"holds {target.instrument}, the source holds {source.instrument}")
        if leg.from_hold_id:
            hold = _pending_hold(holds, leg.from_hold_id, now)
            if hold.account_id != source.account_id:
                raise InvalidArgument.field(f"legs[{i}].from_hold_id", "is not a hold on the leg's source account")
            hold_use[hold.hold_id] += leg.amount
            if hold_use[hold.hold_id] > hold.pending:
                raise RuleViolation(f"legs[{i}] takes more than the hold {hold.hold_id} keeps",
                                    reason="HOLD_EXCEEDED")
            postings.append(Posting(source.account_id, -leg.amount, -leg.amount, target.account_id, hold.hold_id))
        else:
            outflow[source.account_id] += leg.amount
            if outflow[source.account_id] > source.available:
                raise RuleViolation(f"legs[{i}]: account {source.account_id} has insufficient available balance",
                                    reason="INSUFFICIENT_FUNDS")
            postings.append(Posting(source.account_id, -leg.amount, 0, target.account_id))
        postings.append(Posting(target.account_id, leg.amount, 0, source.account_id, leg.from_hold_id))
    # A one-shot hold that paid a leg is posted for what it paid; the remainder goes back to available. A
    # partial hold keeps the rest for its next parts.
    for hold_id, used in hold_use.items():
        hold = holds[hold_id]
        remainder = hold.pending - used
        if remainder and not hold.partial:
            postings.append(Posting(hold.account_id, 0, -remainder, "", hold_id))
    return postings


def holds_after_transfer(legs: list[Leg], holds: dict[str, HoldState]) -> list[HoldState]:
    """The holds that paid legs of a planned transfer, as they are once it is applied."""
    used: dict[str, int] = defaultdict(int)
    for leg in legs:
        if leg.from_hold_id:
            used[leg.from_hold_id] += leg.amount
    out = []
    for hold_id, amount in sorted(used.items()):
        hold = holds[hold_id]
        out.append(hold.after_part(posted=amount) if hold.partial
                   else hold.after_part(posted=amount, released=hold.pending - amount))
    return out


def plan_hold(account: AccountState, amount: int) -> Posting:
    if amount > account.available:
        raise RuleViolation(f"account {account.account_id} has insufficient available balance for the hold",
                            reason="INSUFFICIENT_FUNDS")
    return Posting(account.account_id, 0, amount)


def plan_post(hold: HoldState, target: AccountState, source: AccountState, amount: int,
              now: datetime) -> tuple[list[Posting], HoldState]:
    """Pay `amount` out of the hold to `target`: a one-shot hold releases its remainder and resolves, a
    partial hold keeps the rest pending."""
    _check_pending(hold, now)
    if amount > hold.pending:
        raise RuleViolation("cannot post more than the hold keeps", reason="HOLD_EXCEEDED")
    if target.instrument != source.instrument:
        raise InvalidArgument.field("to_account_id", f"holds {target.instrument}, the hold is on {source.instrument}")
    if target.account_id == source.account_id:
        raise InvalidArgument.field("to_account_id", "must differ from the held account")
    postings = [Posting(source.account_id, -amount, -amount, target.account_id, hold.hold_id),
                Posting(target.account_id, amount, 0, source.account_id, hold.hold_id)]
    if hold.partial:
        return postings, hold.after_part(posted=amount)
    remainder = hold.pending - amount
    if remainder:
        postings.append(Posting(source.account_id, 0, -remainder, "", hold.hold_id))
    return postings, hold.after_part(posted=amount, released=remainder)


def plan_void(hold: HoldState, now: datetime, *, expiring: bool = False) -> tuple[Posting, HoldState]:
    """Release everything the hold still keeps and resolve it (VOIDED, or EXPIRED past its deadline)."""
    if expiring:
        if not hold.is_due(now):
            raise RuleViolation("the hold is not due", reason="HOLD_NOT_DUE")
    else:
        _check_pending(hold, now)
    left = hold.pending
    resolved = hold.after_part(released=left)
    resolved.status = HoldStatus.EXPIRED if expiring else HoldStatus.VOIDED
    return Posting(hold.account_id, 0, -left, "", hold.hold_id), resolved


def plan_release(hold: HoldState, amount: int, now: datetime) -> tuple[Posting, HoldState]:
    """Release one part of a partial hold back to available; the rest stays held."""
    _check_partial(hold, now, "quantity")
    if amount > hold.pending:
        raise RuleViolation(f"cannot release more than the hold {hold.hold_id} keeps", reason="HOLD_EXCEEDED")
    return Posting(hold.account_id, 0, -amount, "", hold.hold_id), hold.after_part(released=amount)


def plan_increase(hold: HoldState, account: AccountState, amount: int, now: datetime) -> tuple[Posting, HoldState]:
    """Hold more of the account's available balance under a pending partial hold."""
    _check_partial(hold, now, "hold_id")
    if amount > account.available:
        raise RuleViolation(f"account {account.account_id} has insufficient available balance for the hold",
                            reason="INSUFFICIENT_FUNDS")
    return Posting(account.account_id, 0, amount, "", hold.hold_id), hold.after_part(added=amount)


def plan_retire(account: AccountState, amount: int) -> Posting:
    if amount > account.available:
        raise RuleViolation(f"account {account.account_id} has insufficient available balance to retire",
                            reason="INSUFFICIENT_FUNDS")
    return Posting(account.account_id, -amount, 0)


def apply(accounts: dict[str, AccountState], postings: list[Posting]) -> None:
    """Apply postings in memory, refusing any that would break non-negativity (a last line of defence)."""
    for posting in postings:
        account = accounts[posting.account_id]
        account.balance += posting.balance_delta
        account.held += posting.held_delta
        if account.balance < 0 or account.held < 0 or account.available < 0:
            raise RuleViolation(f"account {account.account_id} would go negative", reason="INSUFFICIENT_FUNDS")


def _account(accounts: dict[str, AccountState], account_id: str) -> AccountState:
    try:
        return accounts[account_id]
    except KeyError:
        raise NotFound(f"account {account_id} not found") from None


def _pending_hold(holds: dict[str, HoldState], hold_id: str, now: datetime) -> HoldState:
    try:
        hold = holds[hold_id]
    except KeyError:
        raise NotFound(f"hold {hold_id} not found") from None
    _check_pending(hold, now)
    return hold


def _check_partial(hold: HoldState, now: datetime, field: str) -> None:
    _check_pending(hold, now)
    if not hold.partial:
        raise InvalidArgument.field(field, f"hold {hold.hold_id} is one-shot: only a partial hold is released or "
                                           "increased in parts")


def _check_pending(hold: HoldState, now: datetime) -> None:
    if hold.status is not HoldStatus.PENDING:
        raise RuleViolation(f"hold {hold.hold_id} is already {hold.status.value}", reason="HOLD_RESOLVED")
    if now >= hold.deadline:
        raise RuleViolation(f"hold {hold.hold_id} passed its deadline", reason="HOLD_EXPIRED")
