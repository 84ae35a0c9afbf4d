"""What the evaluation use cases return (and store for idempotent replay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class PolicyView:
    policy_ref: str
    policy_id: str
    version: str
    jurisdiction_code: str
    evaluation_year: int
    digest: str
    published_at: datetime
    published_by: str


@dataclass(frozen=True)
class RowError:
    field: str
    reason: str
    message: str


@dataclass(frozen=True)
class RowOutcome:
    row_number: int
    credit_code: str
    year: int
    accepted: bool
    errors: tuple[RowError, ...] = ()
    values_recorded: int = 0


@dataclass(frozen=True)
class SubmissionReport:
    submission_id: str
    source_department: str
    rows_accepted: int
    rows_refused: int
    values_recorded: int
    rows: tuple[RowOutcome, ...]  # every row, or only the refused ones when refused_only
    recorded_at: datetime
    refused_only: bool = False  # the bulk upload answers with the refused rows; the others were accepted


@dataclass(frozen=True)
class IndicatorValueView:
    field: str
    value: str
    source_department: str
    submission_id: str
    recorded_at: datetime
    effective: bool


@dataclass(frozen=True)
class RunProgressView:
    """How far a run is: pools classified and the enterprise-years in them, of the totals."""

    pools_done: int
    pools_total: int
    rows_done: int
    rows_total: int


@dataclass(frozen=True)
class RunView:
    run_id: str
    jurisdiction: str
    year: int
    policy_ref: str
    input_digest: str
    output_digest: str
    status: str
    enterprises: int
    class_counts: dict[str, int]
    prior_run_id: str
    started_at: datetime
    completed_at: datetime | None  # None while running
    published_at: datetime | None
    started_by: str
    regrades: int
    progress: RunProgressView | None = None


@dataclass(frozen=True)
class PublishOutcome:
    run: RunView
    classes_changed: int


@dataclass(frozen=True)
class RegradeView:
    regrade_id: str
    run_id: str
    credit_code: str
    from_class: str
    to_class: str
    reason: str
    evidence_ref: str
    proposed_by: str
    approved_by: str
    status: str
    proposed_at: datetime
    approved_at: datetime | None


@dataclass(frozen=True)
class StoredResult:
    """One stored result: the run it belongs to and the canonical document of the EnterpriseResult."""

    run_id: str
    policy_ref: str
    document: dict[str, Any]


@dataclass(frozen=True)
class ResultSummaryView:
    credit_code: str
    name: str
    region_code: str
    park: str
    industry_code: str
    size_class: str
    status: str
    total: str
    final_class: str
    rank_in_pool: int


@dataclass(frozen=True)
class Page:
    size: int
    after: str = ""


@dataclass(frozen=True)
class PageOf:
    items: list
    next_after: str
    total: int


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    condition: str
    priority: int
    price_coefficient: Decimal
    electricity_surcharge: Decimal
    grade: str
    managed_as: str
    rule: str
    policy_ref: str
    run_id: str
    year: int


@dataclass(frozen=True)
class ReportData:
    """Everything the 一企一单 report shows."""

    result: dict[str, Any]
    run: RunView
    enterprise: dict[str, str]
    history: list[dict[str, Any]]
    hints: list[dict[str, Any]]
    values: list[IndicatorValueView]
    regrades: list[RegradeView] = field(default_factory=list)
    publicity_days: int = 5
    class_cut: dict[str, Any] = field(default_factory=dict)  # how the firm's pool was cut into classes
