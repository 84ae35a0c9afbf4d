"""Per-request context carried in contextvars: request id and the authenticated principal."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # The end user a trusted caller (the gateway) acts for, e.g. "enterprise:9133…" — for the record.
    on_behalf_of: str = ""

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def actor(self) -> str:
        return f"{self.name}/{self.on_behalf_of}" if self.on_behalf_of else self.name


SYSTEM = Principal("system", frozenset({"system"}))
principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=SYSTEM)


def current_principal() -> Principal:
    return principal_var.get()
