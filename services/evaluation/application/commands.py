"""Commands the evaluation use cases take (adapters build them from requests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PublishPolicy:
    idempotency_key: str
    document: str


@dataclass(frozen=True)
class RowInput:
    """One submitted enterprise-year row: field name → text, as received."""

    row_number: int
    credit_code: str
    year: int
    values: dict[str, str]
    source_department: str = ""


@dataclass(frozen=True)
class SubmitRows:
    idempotency_key: str
    kind: str  # stream | csv | demo
    rows: tuple[RowInput, ...]
    source_department: str = ""  # default for rows that name none


@dataclass(frozen=True)
class IndicatorBatch:
    """Rows in columns, as the bulk upload carries them: every column has one cell per row ("" where a row
    supplies no value for that field)."""

    credit_codes: Sequence[str]
    years: Sequence[int]
    columns: Mapping[str, Sequence[str]]
    source_departments: Sequence[str] = ()  # one per row; none: every row is the submission's own
    row_numbers: Sequence[int] = ()  # as the client counts them (e.g. CSV lines); none: 1, 2, … on


@dataclass(frozen=True)
class SubmissionRequest:
    """What makes two submissions the same request for their idempotency key: the kind, the resolved source
    department and the digest of the rows as sent (services/evaluation/application/batches.py)."""

    idempotency_key: str
    kind: str  # batches | stream | csv | demo
    source_department: str
    content_digest: str


@dataclass(frozen=True)
class StartRun:
    idempotency_key: str
    jurisdiction: str
    year: int
    policy_ref: str = ""


@dataclass(frozen=True)
class PublishRun:
    idempotency_key: str
    run_id: str


@dataclass(frozen=True)
class ProposeRegrade:
    idempotency_key: str
    run_id: str
    credit_code: str
    to_class: str
    reason: str
    evidence_ref: str = ""


@dataclass(frozen=True)
class ApproveRegrade:
    idempotency_key: str
    regrade_id: str


@dataclass(frozen=True)
class ResultFilter:
    run_id: str
    grade: str = ""
    region_prefix: str = ""
    park: str = ""
    industry_prefix: str = ""
    size_class: str = ""
    by_total: bool = False
