"""Who is calling: the gateway's users, and who each is for the authorization policy (services.common.authz).

What a user may do is decided by the gateway's policy (services/gateway/authorization.yaml, enforced in
api/authz.py) and again by each service's own policy underneath, never by role names tested in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.common.authz import Kind, Subject


class Role(StrEnum):
    ENTERPRISE = "enterprise"
    AGENCY = "agency"
    REGULATOR = "regulator"
    ADMIN = "admin"


KINDS = {Role.ENTERPRISE: Kind.ENTERPRISE, Role.AGENCY: Kind.AGENCY, Role.REGULATOR: Kind.REGULATOR,
         Role.ADMIN: Kind.ADMIN}


@dataclass(frozen=True)
class User:
    role: Role
    subject: str        # credit code (enterprise), agency id (agency), username (regulator, admin)
    username: str       # for an agency: which of its API keys ("key:<digest prefix>")
    display_name: str = ""

    @property
    def on_behalf_of(self) -> str:
        """The `x-on-behalf-of` value the services authorise and record. An agency's keys are told apart
        after "/" (two keys are two principals: the dual control of a reserve price needs both)."""
        if self.role is Role.AGENCY and self.username:
            return f"agency:{self.subject}/{self.username}"
        return f"{self.role.value}:{self.subject}"

    @property
    def credit_code(self) -> str:
        return self.subject if self.role is Role.ENTERPRISE else ""

    @property
    def agency_id(self) -> str:
        return self.subject if self.role is Role.AGENCY else ""

    @property
    def reads_everything(self) -> bool:
        """For the portal's navigation only (which home page to show); access is the policy's."""
        return self.role in (Role.REGULATOR, Role.ADMIN)


ANONYMOUS = Subject(Kind.PUBLIC, actor="anonymous")


def subject_of(user: User | None, agency_roles: frozenset[str] = frozenset()) -> Subject:
    """The user as the policy sees it; an agency with its roles as the registry records them."""
    if user is None:
        return ANONYMOUS
    roles = agency_roles if user.role is Role.AGENCY else frozenset()
    return Subject(KINDS[user.role], user.subject, roles, user.on_behalf_of)
