"""Idempotency records of the non-batched use cases, in the shared per-service key table (keys are unique
across operations). The batched writer (writer.py) writes the same records for its commands."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import insert, select

from services.common.errors import IdempotencyConflict
from services.trading.adapters.db.repository import dumps


def digest(operation: str, args: dict[str, Any]) -> str:
    return hashlib.sha256(dumps({"operation": operation, **args}).encode()).hexdigest()


async def replay(tx, key: str, operation: str, request_digest: str) -> Any | None:
    if not key:
        return None
    table = tx.uow.tables.idempotency
    row = (await tx.session.execute(select(table).where(table.c.key == key))).first()
    if row is None:
        return None
    if row.operation != operation or row.request_digest != request_digest:
        raise IdempotencyConflict(key)
    return json.loads(row.response)


async def remember(tx, key: str, operation: str, request_digest: str, result: Any) -> None:
    if key:
        await tx.session.execute(insert(tx.uow.tables.idempotency).values(
            key=key, operation=operation, request_digest=request_digest, response=dumps(result).encode(),
            created_at=tx.now))
