"""Every JetStream stream and durable consumer of the suite, declared in one place (ADR-37).

apply() is idempotent: it creates what is missing and updates what changed. Workers only bind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

# Publish dedup window (seconds): longer than the relay's worst retry horizon, so a re-publish after a
# crash between PubAck and marking the row is dropped by the stream.
DUPLICATE_WINDOW = 600.0

STREAMS: tuple[StreamConfig, ...] = (
    StreamConfig(name="REGISTRY", subjects=["registry.>"], storage=StorageType.FILE,
                 duplicate_window=DUPLICATE_WINDOW),
    StreamConfig(name="EVALUATION", subjects=["evaluation.>"], storage=StorageType.FILE,
                 duplicate_window=DUPLICATE_WINDOW),
    StreamConfig(name="TRADING", subjects=["trading.>"], storage=StorageType.FILE,
                 duplicate_window=DUPLICATE_WINDOW),
)


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    name: str
    filter_subject: str
    ack_wait: float = 30.0
    max_deliver: int = 20
    max_ack_pending: int = 1024

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.name, durable_name=self.name, filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait, max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending, deliver_policy=DeliverPolicy.ALL,
        )


# The durable consumers of the suite. Each service binds only to its own.
CONSUMERS: tuple[ConsumerSpec, ...] = (
    # trading refreshes its eligibility view when a class changes
    ConsumerSpec("EVALUATION", "trading-evaluation", "evaluation.>"),
    # evaluation follows enterprises registered or changed in the registry
    ConsumerSpec("REGISTRY", "evaluation-registry", "registry.enterprise.>"),
    # the gateway's live updates (SSE) read trading and evaluation facts
    ConsumerSpec("TRADING", "gateway-trading", "trading.>"),
    # the audit trail of the whole suite, kept for regulators' market statistics
    ConsumerSpec("REGISTRY", "gateway-registry", "registry.>"),
)


# What each service's NATS user may do (the embedded server, compose and Kubernetes configure these):
# publish only its own events (so no service, and no stranger, can forge another's facts), use the
# JetStream API, acknowledge, answer flow control; receive only on its own inboxes.
EVENT_PUBLISHERS = {"registry": "registry.>", "evaluation": "evaluation.>", "trading": "trading.>"}
NATS_USERS = ("registry", "evaluation", "trading", "gateway")
# Deployments add a user for the job that declares replicated streams (JetStream API only).
STREAMS_USER = "streams"


def nats_permissions(user: str) -> dict:
    if user == STREAMS_USER:
        return {"publish": {"allow": ["$JS.API.>"]}, "subscribe": {"allow": ["_INBOX.>"]}}
    own = [EVENT_PUBLISHERS[user]] if user in EVENT_PUBLISHERS else []
    return {"publish": {"allow": [*own, "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"]},
            "subscribe": {"allow": ["_INBOX.>"]}}


def nats_authorization_conf(users: tuple[str, ...] = (*NATS_USERS, STREAMS_USER)) -> str:
    """The nats-server `authorization` block for deployments: each password comes from the server's
    environment variable NATS_<USER>_PASSWORD (deploy/nats/users.conf is this text)."""
    lines = ["# Generated from services/common/events/topology.py (tests check it is current).",
             "authorization {", "  users: ["]
    for user in users:
        permissions = json.dumps(nats_permissions(user))
        lines.append(f'    {{user: "{user}", password: $NATS_{user.upper()}_PASSWORD, permissions: {permissions}}}')
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


async def apply(js: JetStreamContext, *, replicas: int = 1,
                extra_consumers: tuple[ConsumerSpec, ...] = ()) -> None:
    for config in STREAMS:
        config = replace(config, num_replicas=replicas)
        try:
            await js.stream_info(config.name)
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(config)
    for spec in (*CONSUMERS, *extra_consumers):
        await js.add_consumer(spec.stream, spec.config())
