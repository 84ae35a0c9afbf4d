"""The secret reserve price (底价) under dual control: entered by one person, approved by a
different second person (the supervision officer, 监察人员), both recorded. Shared by 挂牌 and 拍卖."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .errors import DomainError
from .money import require_fen
from .sealed import Sealed


@dataclass(frozen=True, slots=True)
class ReserveEntered:
    amount: Sealed  # never shown by repr; the adapter encrypts `for_persistence()` at rest
    entered_by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ReserveApproved:
    approved_by: str
    at: datetime


@dataclass(slots=True)
class DualControlledReserve:
    """State of one 底价. Re-entry before approval replaces the pending value (and needs a new
    approval); once approved it is locked."""

    pending: Sealed | None = field(default=None, repr=False)
    entered_by: str | None = None
    approved_by: str | None = None

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    def enter(self, amount: int, entered_by: str, now: datetime, floor_fen: int = 0) -> ReserveEntered:
        require_fen(amount, "reserve_price")
        if self.approved:
            raise DomainError("RESERVE_LOCKED", "the reserve was already approved")
        if not entered_by:
            raise DomainError("ACTOR_REQUIRED", "entered_by is required")
        if amount <= 0 or amount < floor_fen:
            # 39号令: never below the national minimum price (e.g. 工业用地出让最低价标准).
            raise DomainError("RESERVE_BELOW_FLOOR", "reserve below the minimum price")
        return ReserveEntered(Sealed(amount, "reserve price"), entered_by, now)

    def approve(self, approved_by: str, now: datetime) -> ReserveApproved:
        if self.pending is None:
            raise DomainError("RESERVE_NOT_ENTERED", "nothing to approve")
        if self.approved:
            raise DomainError("RESERVE_LOCKED", "already approved")
        if not approved_by or approved_by == self.entered_by:
            raise DomainError("DUAL_CONTROL", "the approver must be a different person")
        return ReserveApproved(approved_by, now)

    def apply(self, event: ReserveEntered | ReserveApproved) -> None:
        if isinstance(event, ReserveEntered):
            self.pending, self.entered_by, self.approved_by = event.amount, event.entered_by, None
        else:
            self.approved_by = event.approved_by

    def value(self, opened: bool) -> int:
        """The reserve, only once the owning procedure has opened it; raises SealedError before."""
        if self.pending is None:
            raise DomainError("RESERVE_NOT_ENTERED", "no reserve")
        return self.pending.reveal(opened)

    def met_by(self, amount: int) -> bool:
        """Is `amount` ≥ the reserve? Used by the state machine at close without revealing it."""
        if self.pending is None or not self.approved:
            raise DomainError("RESERVE_NOT_APPROVED", "the reserve must be entered and approved")
        return amount >= self.pending.for_persistence()
