"""Events of the evaluation service and a batch writer for runs that classify thousands of enterprises."""

from __future__ import annotations

from services.common.context import current_principal, request_id_var
from services.common.events.envelope import Event, build
from services.common.uow import Transaction

RUN_COMPLETED = ("evaluation.run.completed", "yaosu.evaluation.run.completed")
CLASSIFIED = ("evaluation.enterprise.classified", "yaosu.evaluation.enterprise.classified")


def run_completed(run_id: str, data: dict) -> Event:
    return Event(RUN_COMPLETED[0], RUN_COMPLETED[1], run_id, data)


def classified(credit_code: str, data: dict) -> Event:
    return Event(CLASSIFIED[0], CLASSIFIED[1], credit_code, data)


async def emit_many(tx: Transaction, events: list[Event]) -> None:
    """The outbox rows of many events in one executemany, in the transaction of the change (as tx.emit
    writes one)."""
    if not events:
        return
    outbox = tx.uow.outbox
    actor, request_id = current_principal().actor, request_id_var.get()
    rows = []
    for event in events:
        event_id, envelope = build(event, source=outbox.source, at=tx.now, request_id=request_id, actor=actor)
        rows.append(dict(event_id=event_id, subject=event.subject, envelope=envelope, created_at=tx.now))
    table = outbox.tables.outbox
    for start in range(0, len(rows), 5000):
        await tx.session.execute(table.insert(), rows[start:start + 5000])
    tx.events += len(events)
