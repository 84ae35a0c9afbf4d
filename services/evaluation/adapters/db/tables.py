"""The evaluation service's tables (its own SQLModel registry and MetaData: no other service shares them).

Large collections (indicator records, per-enterprise results) are written with executemany on the core
tables, never one ORM object per row; a result is a JSON document plus the columns lists filter on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Float, Index, Integer, LargeBinary, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.common.tables import declare_infrastructure


class EvaluationTable(SQLModel, registry=registry()):
    pass


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


class PolicyRow(EvaluationTable, table=True):
    __tablename__ = "policies"
    policy_ref: str = Field(primary_key=True, max_length=200)
    policy_id: str = Field(index=True, max_length=150)
    version: str = Field(max_length=50)
    jurisdiction_code: str = Field(max_length=20)
    evaluation_year: int
    digest: str = Field(max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))  # the text as published
    published_at: datetime = Field(sa_column=_ts(nullable=False))
    published_by: str = ""


class EnterpriseRow(EvaluationTable, table=True):
    """Local replica of the registry's enterprises, for matching rows by credit code."""

    __tablename__ = "enterprises"
    credit_code: str = Field(primary_key=True, max_length=18)
    name: str
    industry_code: str = Field(max_length=5)
    region_code: str = Field(index=True, max_length=6)
    park: str = ""
    size_class: str = Field(max_length=10)  # registry terms: above | below
    land_held_mu: str = Field(max_length=40)  # decimal text
    status: str = Field(max_length=20)
    synced_at: datetime = Field(sa_column=_ts(nullable=False))


class SubmissionRow(EvaluationTable, table=True):
    __tablename__ = "submissions"
    submission_id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=10)  # stream | csv | demo
    source_department: str = Field(max_length=64)
    actor: str = ""
    rows_accepted: int
    rows_refused: int
    values_recorded: int
    accepted_digest: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=_ts(nullable=False))


class IndicatorRecordRow(EvaluationTable, table=True):
    """The values one submission recorded for one enterprise-year from one source department: a JSON object
    field → value (decimal text, integer, "1"/"0"). A department's later submission adds a later record; per
    field and department the latest record's value is the one on record (the earlier ones stay as history).

    One row per enterprise-year and department, not per value, so a county's upload is 50,000 rows, not
    half a million; the key leads with the year, the way runs read (no rowid on SQLite: the key is the
    table)."""

    __tablename__ = "indicator_records"
    __table_args__ = {"sqlite_with_rowid": False}
    year: int = Field(primary_key=True)
    credit_code: str = Field(primary_key=True, max_length=18)
    source_department: str = Field(primary_key=True, max_length=64)
    submission_id: str = Field(primary_key=True, max_length=40)
    document: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: datetime = Field(sa_column=_ts(nullable=False))


class RunRow(EvaluationTable, table=True):
    __tablename__ = "runs"
    run_id: str = Field(primary_key=True, max_length=40)
    jurisdiction: str = Field(max_length=12)
    region_prefix: str = Field(index=True, max_length=12)
    year: int = Field(index=True)
    policy_ref: str = Field(max_length=200)
    input_digest: str = Field(max_length=64)
    output_digest: str = Field(max_length=64)
    status: str = Field(index=True, max_length=12)  # running | completed | published | superseded
    enterprises: int = Field(sa_column=Column(BigInteger, nullable=False))
    class_counts: str = Field(sa_column=Column(Text, nullable=False))  # JSON {grade: count}
    pools: str = Field(sa_column=Column(Text, nullable=False))  # JSON of the pool summaries
    rankings: str = Field(sa_column=Column(Text, nullable=False))  # JSON {"dimension:year": [keys]}
    prior_run_id: str = ""
    started_by: str = ""
    regrades: int = 0
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # None while running
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # how far a running run is (the last figures of a completed one): pools classified, rows in them
    pools_done: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    pools_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    rows_done: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    rows_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class ResultRow(EvaluationTable, table=True):
    __tablename__ = "results"
    __table_args__ = (
        Index("ix_results_run_class", "run_id", "final_class"),
        Index("ix_results_run_region", "run_id", "region_code"),
        Index("ix_results_run_park", "run_id", "park"),
        Index("ix_results_run_industry", "run_id", "industry_code"),
        Index("ix_results_run_total", "run_id", "total"),
        Index("ix_results_credit_code", "credit_code"),
    )
    run_id: str = Field(primary_key=True, max_length=40)
    credit_code: str = Field(primary_key=True, max_length=18)
    year: int
    name: str = ""
    region_code: str = Field(max_length=6)
    park: str = ""
    industry_code: str = Field(max_length=5)
    size_class: str = Field(max_length=12)  # above_size | below_size
    status: str = Field(max_length=20)
    final_class: str = Field(default="", max_length=1)  # "" when not classed (tenant list, out of scope)
    total: float = Field(sa_column=Column(Float, nullable=False))  # for ordering only; the document is exact
    rank_in_pool: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    consecutive_d_years: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    document: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON of the EnterpriseResult


class RunInputsRow(EvaluationTable, table=True):
    """The inputs a run evaluated, frozen (domain/snapshot.py): rows and prior-year context."""

    __tablename__ = "run_inputs"
    run_id: str = Field(primary_key=True, max_length=40)
    snapshot: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RollupRow(EvaluationTable, table=True):
    __tablename__ = "rollups"
    run_id: str = Field(primary_key=True, max_length=40)
    dimension: str = Field(primary_key=True, max_length=10)
    key: str = Field(primary_key=True, max_length=100)
    year: int
    rank: int = 0
    document: str = Field(sa_column=Column(Text, nullable=False))


class CurrentClassRow(EvaluationTable, table=True):
    """The class each enterprise is managed by now: its result in the latest published run (eligibility)."""

    __tablename__ = "current_classes"
    credit_code: str = Field(primary_key=True, max_length=18)
    run_id: str = Field(max_length=40)
    year: int
    policy_ref: str = Field(max_length=200)
    final_class: str = Field(max_length=1)
    managed_as: str = Field(max_length=1)
    size_class: str = Field(max_length=12)


class RegradeRow(EvaluationTable, table=True):
    __tablename__ = "regrades"
    regrade_id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(index=True, max_length=40)
    credit_code: str = Field(max_length=18)
    from_class: str = Field(max_length=1)
    to_class: str = Field(max_length=1)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    evidence_ref: str = ""
    proposed_by: str
    approved_by: str = ""
    status: str = Field(max_length=10)  # proposed | applied
    proposed_at: datetime = Field(sa_column=_ts(nullable=False))
    approved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


metadata = EvaluationTable.metadata
infrastructure = declare_infrastructure(metadata)
