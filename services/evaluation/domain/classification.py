"""Rank-share classes within a pool (domain §1.5, §7.2 `classification`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .numbers import ceil_int, floor_int, round_half_up_int
from .policy import CLASS_ORDER, ClassShares


@dataclass(frozen=True, slots=True)
class ClassCounts:
    A: int
    B: int
    C: int
    D: int

    def label_for_rank(self, rank: int) -> str:
        """Class of the firm at 1-based `rank` in its pool."""
        if rank <= self.A:
            return "A"
        if rank <= self.A + self.B:
            return "B"
        if rank <= self.A + self.B + self.C:
            return "C"
        return "D"

    def as_dict(self) -> dict[str, int]:
        return {"A": self.A, "B": self.B, "C": self.C, "D": self.D}


def class_counts(pool_size: int, shares: ClassShares, min_pool_size_for_shares: int) -> ClassCounts:
    """How many firms of a pool get each class ("floor_for_A_ceil_for_D").

    A = ⌊n·a⌋ (never over-award the top class); D = ⌈n·d⌉ so a pool at the minimum size has at least one
    D; below the minimum pool size nobody is D by share (only by veto or floor); B ends where A+B rounds
    half up; C takes the rest. n = 100 at 20/40/35/5 gives exactly 20/40/35/5.
    """
    n = Decimal(pool_size)
    count_a = floor_int(n * shares.A)
    count_d = ceil_int(n * shares.D) if pool_size >= min_pool_size_for_shares else 0
    count_ab = min(round_half_up_int(n * (shares.A + shares.B)), pool_size - count_d)
    count_b = max(0, count_ab - count_a)
    count_c = pool_size - count_a - count_b - count_d
    return ClassCounts(count_a, count_b, count_c, count_d)


def one_class_down(label: str, steps: int = 1) -> str:
    index = min(CLASS_ORDER.index(label) + steps, len(CLASS_ORDER) - 1)
    return CLASS_ORDER[index]
