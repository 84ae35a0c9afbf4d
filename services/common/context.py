"""Per-request context carried in contextvars: request id, deadline and the authenticated principal."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from services.common.authz import SYSTEM_SUBJECT, Subject

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# The time.monotonic() by which the calls this request makes to other services must be answered: the
# incoming call's deadline less a margin (services.common.interceptors.DeadlineInterceptor), or the
# gateway's own deadline for one service call (services.common.grpc_client.deadline_scope). None: no
# deadline, each outgoing call has its client's default. Read by services.common.grpc_client.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the key's principal and, for the gateway's delegate key, the end user
    it names. `subject` is who acts, as the authorization policy sees it (services.common.authz)."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # The end user a trusted caller (the gateway) acts for, e.g. "enterprise:9133…" — for the record.
    on_behalf_of: str = ""
    subject: Subject = SYSTEM_SUBJECT

    @property
    def actor(self) -> str:
        return f"{self.name}/{self.on_behalf_of}" if self.on_behalf_of else self.name


SYSTEM = Principal("system", frozenset({"system"}))
principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=SYSTEM)


def current_principal() -> Principal:
    return principal_var.get()


def current_subject() -> Subject:
    return principal_var.get().subject
