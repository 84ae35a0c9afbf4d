"""Columnar form of the input rows for the numpy bulk path: one array per field, codes factorised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .policy import RAW_FIELDS, SIZE_CLASSES, Policy
from .records import EnterpriseYear, PriorYear, fired_downgrades, validate_records


@dataclass(frozen=True)
class EnterpriseColumns:
    """Equal-length arrays, one entry per enterprise-year; NaN marks a missing raw value."""

    credit_order: np.ndarray  # int64: position of (credit_code, year) in ascending order; the last tie-break
    region: np.ndarray  # int32 index into region_names (sorted, so index order = code order)
    region_names: tuple[str, ...]
    park: np.ndarray  # int32 index into park_names, -1 = no park
    park_names: tuple[str, ...]
    industry_code4: np.ndarray  # int32: first four GB/T 4754 digits, right-padded with zeros
    industry_digits: np.ndarray  # int8: how many digits the code really has (2-4)
    size_class: np.ndarray  # int8: index into SIZE_CLASSES
    year: np.ndarray  # int16
    values: Mapping[str, np.ndarray]  # raw field -> float64
    years_since_production: np.ndarray  # int16, -1 = unknown
    flags: Mapping[str, np.ndarray]  # flag -> bool
    adjustment_counts: Mapping[str, np.ndarray]  # adjustment item id -> int32
    veto: np.ndarray  # bool: some vetoes_to_D rule applies
    downgrade_count: np.ndarray  # int8: number of downgrade rules that apply
    prior_consecutive_d: np.ndarray  # int16: years in D up to last year

    def __len__(self) -> int:
        return len(self.credit_order)


def industry_columns(codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    digits = [code.lstrip("ABCDEFGHIJKLMNOPQRST")[:4] for code in codes]
    code4 = np.array([int(d.ljust(4, "0")) for d in digits], dtype=np.int32)
    return code4, np.array([len(d) for d in digits], dtype=np.int8)


def columns_from_records(
    policy: Policy, records: Sequence[EnterpriseYear], prior: PriorYear | None = None
) -> EnterpriseColumns:
    """Validate the rows (same errors as the reference path) and lay them out as arrays."""
    validate_records(policy, records)
    order = sorted(range(len(records)), key=lambda i: (records[i].credit_code, records[i].year))
    credit_order = np.empty(len(records), dtype=np.int64)
    credit_order[order] = np.arange(len(records))
    region_names = tuple(sorted({r.region_code for r in records}))
    park_names = tuple(sorted({r.park for r in records if r.park}))
    region_index = {name: i for i, name in enumerate(region_names)}
    park_index = {name: i for i, name in enumerate(park_names)}
    code4, digits = industry_columns([r.industry_code for r in records])
    flags = sorted({flag for r in records for flag in r.flags})
    items = [item.id for item in policy.adjustments.items]
    veto_ids = {rule.id for rule in policy.adjustments.vetoes_to_D}
    prior_d = prior.consecutive_d_years if prior is not None else {}
    return EnterpriseColumns(
        credit_order=credit_order,
        region=np.array([region_index[r.region_code] for r in records], dtype=np.int32),
        region_names=region_names,
        park=np.array([park_index[r.park] if r.park else -1 for r in records], dtype=np.int32),
        park_names=park_names,
        industry_code4=code4,
        industry_digits=digits,
        size_class=np.array([SIZE_CLASSES.index(r.size_class) for r in records], dtype=np.int8),
        year=np.array([r.year for r in records], dtype=np.int16),
        values={
            name: np.array([np.nan if (v := r.raw(name)) is None else float(v) for r in records], dtype=np.float64)
            for name in RAW_FIELDS
        },
        years_since_production=np.array(
            [-1 if r.years_since_production is None else r.years_since_production for r in records], dtype=np.int16
        ),
        flags={flag: np.array([flag in r.flags for r in records], dtype=bool) for flag in flags},
        adjustment_counts={
            item: np.array([r.adjustment_facts.get(item, 0) for r in records], dtype=np.int32) for item in items
        },
        veto=np.array([bool(r.vetoes & veto_ids) for r in records], dtype=bool),
        downgrade_count=np.array([len(fired_downgrades(policy, r)) for r in records], dtype=np.int8),
        prior_consecutive_d=np.array([prior_d.get(r.credit_code, 0) for r in records], dtype=np.int16),
    )
