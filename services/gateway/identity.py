"""Who is calling: the gateway's principals and what each role may do in general (per-object checks live
in api/authz.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ENTERPRISE = "enterprise"
    AGENCY = "agency"
    REGULATOR = "regulator"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    role: Role
    subject: str        # credit code (enterprise), agency id (agency), username (regulator, admin)
    username: str
    display_name: str = ""

    @property
    def on_behalf_of(self) -> str:
        """The `x-on-behalf-of` value the services record in their audit journal."""
        return f"{self.role.value}:{self.subject}"

    @property
    def credit_code(self) -> str:
        return self.subject if self.role is Role.ENTERPRISE else ""

    @property
    def agency_id(self) -> str:
        return self.subject if self.role is Role.AGENCY else ""

    @property
    def reads_everything(self) -> bool:
        return self.role in (Role.REGULATOR, Role.ADMIN)
