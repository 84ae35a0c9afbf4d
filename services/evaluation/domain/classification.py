"""Rank-share classes within a pool (domain §1.5, §7.2 `classification`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .numbers import ceil_int, floor_int, round_half_up_int
from .policy import CLASS_ORDER, ClassShares, ShareRounding, TwoStage

ROUNDERS = {"floor": floor_int, "ceil": ceil_int, "half_up": round_half_up_int}


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


def class_counts(pool_size: int, shares: ClassShares, min_pool_size_for_shares: int,
                 rounding: ShareRounding | None = None) -> ClassCounts:
    """How many firms of a pool get each class: A = round_A(n·a), D = round_D(n·d) (0 below the minimum pool
    size: then nobody is D by share, only by veto or floor), A+B = round_AB(n·(a+b)) but never into the D
    places, C the rest. The rounding of each boundary is the policy's (`classification.rounding`)."""
    rounding = rounding or ShareRounding()
    n = Decimal(pool_size)
    count_a = min(ROUNDERS[rounding.A](n * shares.A), pool_size)
    count_d = min(ROUNDERS[rounding.D](n * shares.D), pool_size) if pool_size >= min_pool_size_for_shares else 0
    count_a = min(count_a, pool_size - count_d)
    count_ab = max(count_a, min(ROUNDERS[rounding.A_B](n * (shares.A + shares.B)), pool_size - count_d))
    count_b = count_ab - count_a
    count_c = pool_size - count_ab - count_d
    return ClassCounts(count_a, count_b, count_c, count_d)


def two_stage_labels(top_sums: Sequence, bottom_sums: Sequence, stages: TwoStage, rounding: ShareRounding | None,
                     min_pool_size_for_shares: int) -> list[str]:
    """Labels of a pool's graded firms under two-stage ranking (§1.3f), given in total-score rank order
    (best first) with each firm's sum of scores on the top and on the bottom re-ranking indicators.

    Ties in a re-ranking keep the total-score order. A firm taken by the top cut is not a bottom candidate."""
    rounding = rounding or ShareRounding()
    n = len(top_sums)
    labels = [stages.rest] * n
    size = Decimal(n)
    top_candidates = min(round_half_up_int(size * stages.top.candidates), n)
    top_count = min(ROUNDERS[rounding.A](size * stages.top.share), top_candidates)
    taken = set(sorted(range(top_candidates), key=lambda r: (-top_sums[r], r))[:top_count])
    for rank in taken:
        labels[rank] = stages.top.label
    bottom_candidates = [r for r in range(n - min(round_half_up_int(size * stages.bottom.candidates), n), n)
                         if r not in taken]
    bottom_count = ROUNDERS[rounding.D](size * stages.bottom.share) if n >= min_pool_size_for_shares else 0
    for rank in sorted(bottom_candidates, key=lambda r: (bottom_sums[r], -r))[:bottom_count]:
        labels[rank] = stages.bottom.label
    return labels


def one_class_down(label: str, steps: int = 1) -> str:
    index = min(CLASS_ORDER.index(label) + steps, len(CLASS_ORDER) - 1)
    return CLASS_ORDER[index]
