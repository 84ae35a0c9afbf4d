"""The events of the evaluation service. Each is written through the common outbox (`tx.emit` /
`tx.emit_many`) in the transaction of its change, so it carries the envelope every service's events carry:
source, request id, the acting principal as the bus may name it (`event_actor()`) and the W3C trace context.

What an event says is chosen here, field by field: every subscriber reads the bus, so an event carries no
enterprise's figures and a run that is not yet published names no classes.

- `evaluation.run.completed`: a run finished and is frozen (StartRun): what it evaluated and its digests.
- `evaluation.run.published`: the run is in force (PublishRun): its class counts and how many classes changed.
- `evaluation.enterprise.classified`: an enterprise's class in force changed (publication or a re-grade).
"""

from __future__ import annotations

from datetime import datetime

from services.common.events.envelope import Event
from services.evaluation.application.views import RunView

RUN_COMPLETED = ("evaluation.run.completed", "yaosu.evaluation.run.completed")
RUN_PUBLISHED = ("evaluation.run.published", "yaosu.evaluation.run.published")
CLASSIFIED = ("evaluation.enterprise.classified", "yaosu.evaluation.enterprise.classified")


def _run_facts(run: RunView) -> dict:
    return {"run_id": run.run_id, "jurisdiction": run.jurisdiction, "year": run.year, "policy_ref": run.policy_ref,
            "input_digest": run.input_digest, "output_digest": run.output_digest, "enterprises": run.enterprises,
            "prior_run_id": run.prior_run_id}


def run_completed(run: RunView) -> Event:
    """A completed run is a draft under review until it is published: no class counts yet."""
    return Event(*RUN_COMPLETED, run.run_id, {**_run_facts(run), "completed_at": run.completed_at.isoformat()})


def run_published(run: RunView, classes_changed: int, published_at: datetime) -> Event:
    return Event(*RUN_PUBLISHED, run.run_id, {
        **_run_facts(run), "class_counts": run.class_counts, "classes_changed": classes_changed,
        "published_at": published_at.isoformat()})


# The class an enterprise is managed by now: published facts (公示), nothing of its figures.
CLASSIFIED_FIELDS = ("credit_code", "run_id", "year", "previous_class", "final_class", "managed_as", "policy_ref",
                     "reason")


def classified(credit_code: str, data: dict) -> Event:
    """Only the listed fields go out, whatever else a caller passes; a missing one is a programming error."""
    return Event(*CLASSIFIED, credit_code, {name: data[name] for name in CLASSIFIED_FIELDS})
