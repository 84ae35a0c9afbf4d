"""Infrastructure tables every service keeps in its own database: outbox, inbox, audit, idempotency.

They are declared into the service's own MetaData so each service's alembic history owns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text


@dataclass(frozen=True)
class InfrastructureTables:
    outbox: Table
    inbox: Table
    audit: Table
    audit_head: Table
    idempotency: Table


def declare_infrastructure(metadata: MetaData) -> InfrastructureTables:
    outbox = Table(
        "outbox", metadata,
        Column("position", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )
    inbox = Table(
        "inbox", metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )
    audit = Table(
        "audit_journal", metadata,
        Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
        Column("previous_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("action", String(100), nullable=False),
        Column("subject", String(200), nullable=False, index=True),
        Column("payload_digest", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
    )
    # One row: the chain's head. Updating it in every appending transaction serialises appends
    # (a row lock on PostgreSQL, the write lock on SQLite), so the chain never forks.
    audit_head = Table(
        "audit_head", metadata,
        Column("id", Integer, primary_key=True),
        Column("sequence", BigInteger, nullable=False),
        Column("entry_hash", String(64), nullable=False),
    )
    idempotency = Table(
        "idempotency_keys", metadata,
        Column("key", String(200), primary_key=True),
        Column("operation", String(100), nullable=False),
        Column("request_digest", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    return InfrastructureTables(outbox, inbox, audit, audit_head, idempotency)
