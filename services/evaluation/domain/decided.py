"""A run as the service freezes it: what the bulk engine decided for every firm, the pools, the roll-ups.

The bulk engine (`bulk`) decides pools, totals, ranks and classes for every firm at once; this module turns
that into the run's record — one `FirmOutcome` per enterprise-year (what lists, publication, eligibility
and history need), the pool summaries, the exact Decimal roll-ups and rankings, and the digests. A firm's
full result (indicators, benchmarks, rules fired, measures …) is not built here: `RunDetail` builds it on
demand from the same inputs, exactly as the reference engine states it.

The outcome equals the reference run (`run_evaluation`) field for field on firms, pools, roll-ups and
rankings (tests/unit/evaluation/test_evaluation_decided.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .bulk import CLASS_CODES, GRADED, NOT_GRADED, OUT_OF_SCOPE, TENANT
from .detail import RunDetail
from .digest import sha256_of
from .engine import RunProgress, pool_order
from .measures import measures_for
from .policy import RAW_FIELDS, Policy
from .records import EnterpriseYear, PriorYear
from .results import (
    STATUS_GRADED,
    STATUS_NOT_GRADED,
    STATUS_OUT_OF_SCOPE,
    STATUS_TENANT,
    AppliedMeasure,
    PoolSummary,
    Rollup,
)
from .rollups import build_rollups
from .snapshot import compress, input_digest, inputs_text

DECIDED = ("credit_code", "year", "status", "total", "initial_class", "final_class", "rank_in_pool", "pool_size",
           "consecutive_d_years")
STATUS_NAMES = {GRADED: STATUS_GRADED, NOT_GRADED: STATUS_NOT_GRADED, TENANT: STATUS_TENANT,
                OUT_OF_SCOPE: STATUS_OUT_OF_SCOPE}


class RecordValues:
    """A record's raw values read by name, as the roll-ups and measures read them (no copy per firm)."""

    __slots__ = ("record",)

    def __init__(self, record: EnterpriseYear) -> None:
        self.record = record

    def __getitem__(self, name: str) -> Decimal | None:
        return getattr(self.record, name)

    def get(self, name: str, default: Decimal | None = None) -> Decimal | None:
        value = getattr(self.record, name, None)
        return default if value is None else value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(other) == {name: self[name] for name in RAW_FIELDS}

    __hash__ = None  # mutable-looking mapping semantics: not hashable


@dataclass(frozen=True, slots=True)
class FirmOutcome:
    """What the run decided for one enterprise-year; the reference result's fields of the same names."""

    credit_code: str
    name: str | None
    year: int
    region_code: str
    park: str | None
    industry_code: str
    industry_division: str
    size_class: str
    status: str
    total: Decimal
    initial_class: str | None
    final_class: str | None
    rank_in_pool: int | None
    pool_size: int | None
    consecutive_d_years: int
    raw: RecordValues  # the roll-ups sum these
    measures: tuple[AppliedMeasure, ...]  # and these amounts

    def decided(self) -> list:
        """The facts the output digest covers, in DECIDED order (raw values are in the input digest)."""
        return [self.credit_code, self.year, self.status, self.total, self.initial_class, self.final_class,
                self.rank_in_pool, self.pool_size, self.consecutive_d_years]


@dataclass(frozen=True)
class DecidedRun:
    policy_ref: str
    input_digest: str
    output_digest: str
    firms: tuple[FirmOutcome, ...]  # sorted by (credit_code, year)
    pools: tuple[PoolSummary, ...]
    rollups: tuple[Rollup, ...]
    rankings: Mapping[str, tuple[str, ...]]
    inputs: bytes  # the inputs' snapshot (snapshot.load_inputs reads it back)
    detail: RunDetail  # a firm's full result, on demand


def decide_run(policy: Policy, records: Sequence[EnterpriseYear], prior: PriorYear | None = None,
               progress: Callable[[RunProgress], None] | None = None) -> DecidedRun:
    """Evaluate every row under `policy` with the bulk engine; InputError (all problems at once) on bad rows.

    `progress` hears when the firms are decided and after each pool is summarised."""
    report = progress or (lambda _: None)
    total_rows = len(records)
    detail = RunDetail.of(policy, records, prior)
    bulk = detail.bulk
    pool_count = len(bulk.pool_keys)
    sizes = np.bincount(bulk.pool[bulk.pool >= 0], minlength=pool_count)
    outside = total_rows - int(sizes.sum())
    report(RunProgress(0, pool_count, outside, total_rows))
    summaries, rows_done = [], outside
    for pool in sorted(range(pool_count), key=lambda index: pool_order(bulk.pool_keys[index])):
        summaries.append(detail.pool_summary(pool))
        rows_done += int(sizes[pool])
        report(RunProgress(len(summaries), pool_count, rows_done, total_rows))
    firms = _firms(policy, records, bulk)
    rollups, rankings = build_rollups(policy, firms, prior)
    text = inputs_text(records, prior)
    digest_in = input_digest(policy, records, prior, text)
    pools = tuple(summaries)
    digest_out = sha256_of({"policy_ref": policy.ref, "input_digest": digest_in,
                            "firms": {"columns": DECIDED, "rows": [firm.decided() for firm in firms]}, "pools": pools, "rollups": rollups,
                            "rankings": rankings})
    return DecidedRun(policy.ref, digest_in, digest_out, firms, pools, rollups, rankings, compress(text), detail)


def _firms(policy: Policy, records: Sequence[EnterpriseYear], bulk) -> tuple[FirmOutcome, ...]:
    places = bulk.places
    ranked = np.bincount(bulk.pool[bulk.rank_in_pool > 0], minlength=len(bulk.pool_keys))
    statuses, pools = bulk.status.tolist(), bulk.pool.tolist()
    totals, ranks = bulk.total_cents.tolist(), bulk.rank_in_pool.tolist()
    initials, finals = bulk.initial_class.tolist(), bulk.final_class.tolist()
    streaks = bulk.consecutive_d_years.tolist()
    measures, treated_as = policy.differentiated_measures, policy.scope.T_treated_as
    zero = Decimal(0).scaleb(-places)
    firms = []
    for row in sorted(range(len(records)), key=lambda r: (records[r].credit_code, records[r].year)):
        record = records[row]
        raw = RecordValues(record)
        common = dict(credit_code=record.credit_code, name=record.name, year=record.year,
                      region_code=record.region_code, park=record.park, industry_code=record.industry_code,
                      industry_division=record.industry_division, size_class=record.size_class,
                      status=STATUS_NAMES[statuses[row]], raw=raw)
        if pools[row] < 0:
            firms.append(FirmOutcome(**common, total=zero, initial_class=None, final_class=None, rank_in_pool=None,
                                     pool_size=None, consecutive_d_years=0, measures=()))
            continue
        final = CLASS_CODES[finals[row]]
        managed_as = treated_as if final == "T" else final
        rank = ranks[row] or None
        firms.append(FirmOutcome(
            **common, total=Decimal(totals[row]).scaleb(-places), initial_class=CLASS_CODES[initials[row]],
            final_class=final, rank_in_pool=rank, pool_size=int(ranked[pools[row]]) if rank else None,
            consecutive_d_years=streaks[row],
            measures=measures_for(measures, managed_as, streaks[row], raw)))
    return tuple(firms)
