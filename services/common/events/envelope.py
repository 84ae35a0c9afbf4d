"""Event envelopes (yaosu.events.v1.EventEnvelope): CloudEvents attributes around a JSON document."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.events.v1 import envelope_pb2


@dataclass(frozen=True)
class Event:
    """What a use case records: the outbox turns it into an envelope in the same transaction."""

    subject: str   # NATS subject, e.g. "registry.ledger.transfer"
    type: str      # e.g. "yaosu.registry.ledger.transfer.committed"
    about: str     # CloudEvents `subject`: the entity the event is about
    data: dict


def build(event: Event, *, source: str, at: datetime, request_id: str, actor: str,
          trace_context: dict[str, str] | None = None) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    time = Timestamp()
    time.FromDatetime(at)
    envelope = envelope_pb2.EventEnvelope(
        id=event_id, source=source, type=event.type, time=time, subject=event.about, specversion="1.0",
        datacontenttype="application/json",
        data=json.dumps(event.data, ensure_ascii=False, sort_keys=True, default=str).encode(),
        request_id=request_id, actor=actor, trace_context=trace_context or {},
    )
    return event_id, envelope.SerializeToString()


def parse(raw: bytes) -> tuple[envelope_pb2.EventEnvelope, dict]:
    envelope = envelope_pb2.EventEnvelope.FromString(raw)
    return envelope, json.loads(envelope.data or b"{}")
