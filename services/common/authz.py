"""One authorization model for every service.

Three parts, each with one job:

- **Subject**: who acts. Derived once per call from the credential (an API key's spec) and, for the
  gateway's delegate key, from the end user it names in `x-on-behalf-of`.
- **Policy**: what each kind of subject may do, declared as data (`services/<service>/authorization.yaml`):
  operation × subject kind → a grant (`allow`, `own`, an agency role, a list of services), absent = denied.
- **Access**: the check a use case makes in the application layer, with the objects it has loaded
  ("this bid belongs to enterprise X", "this listing to agency Y"), so that own-only grants hold per
  object. There is no other switch: no role makes a key privileged for business acts.

The grammar of a grant, per subject kind:

    allow              any subject of this kind, any object
    own                only on objects the subject owns (the use case names the owners)
    role:R1|R2         an agency holding one of these roles, any object
    own:R1|R2          an agency holding one of these roles, only on its own objects
    [name, ...]        (services) only these services
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from services.common.errors import NotFound, PermissionDenied


class Kind(StrEnum):
    ENTERPRISE = "enterprise"   # an enterprise user, always through the gateway's delegate
    AGENCY = "agency"           # a government agency: its own key, or its users through the gateway
    REGULATOR = "regulator"     # reads what it is entitled to, acts on nothing
    SERVICE = "service"         # another service of the suite, by name
    ADMIN = "admin"             # users, keys and reference data; no business acts
    PUBLIC = "public"           # an anonymous visitor of the portal, through the gateway
    SYSTEM = "system"           # the service's own background work (timers, consumers); never from the wire


WIRE_KINDS = tuple(k for k in Kind if k is not Kind.SYSTEM)


@dataclass(frozen=True)
class Subject:
    kind: Kind
    id: str = ""                                      # credit code, agency id, username or service name
    roles: frozenset[str] = field(default_factory=frozenset)  # an agency's roles
    actor: str = ""                                   # for the record: key principal / on-behalf-of

    def owns(self, owner: Owner) -> bool:
        return self.kind is owner.kind and bool(self.id) and self.id == owner.id

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}" if self.id else self.kind.value


SYSTEM_SUBJECT = Subject(Kind.SYSTEM, "system", actor="system")


@dataclass(frozen=True)
class Owner:
    """Who an object belongs to: an enterprise (by credit code) or an agency (by id)."""

    kind: Kind
    id: str

    @classmethod
    def enterprise(cls, credit_code: str) -> Owner:
        return cls(Kind.ENTERPRISE, credit_code)

    @classmethod
    def agency(cls, agency_id: str) -> Owner:
        return cls(Kind.AGENCY, agency_id)


@dataclass(frozen=True)
class Grant:
    own: bool = False
    roles: frozenset[str] = frozenset()        # any one of them is needed (agencies)
    services: frozenset[str] | None = None     # the services allowed (kind service)

    def admits(self, subject: Subject) -> bool:
        if self.services is not None and subject.id not in self.services:
            return False
        return not self.roles or bool(self.roles & subject.roles)

    @classmethod
    def parse(cls, kind: Kind, value: object, where: str) -> tuple[Grant, ...]:
        """One grant, or for a list its alternatives (any one admits); for services a list of names."""
        if isinstance(value, list):
            if kind is Kind.SERVICE:
                return (cls(services=frozenset(str(v) for v in value)),)
            return tuple(g for item in value for g in cls.parse(kind, item, where))
        if not isinstance(value, str):
            raise ValueError(f"{where}: a grant is allow, own, role:R, own:R or a list of them")
        head, _, roles = value.partition(":")
        if head not in ("allow", "own", "role") or (head == "role" and not roles) or (head == "allow" and roles):
            raise ValueError(f"{where}: unknown grant {value!r}")
        if kind is Kind.SERVICE:
            raise ValueError(f"{where}: services are granted by name (a list)")
        if roles and kind is not Kind.AGENCY:
            raise ValueError(f"{where}: only agencies hold roles")
        if head == "own" and kind not in (Kind.ENTERPRISE, Kind.AGENCY):
            raise ValueError(f"{where}: only enterprises and agencies own objects")
        return (cls(own=head == "own", roles=frozenset(r for r in roles.split("|") if r)),)

    def describe(self) -> str:
        if self.services is not None:
            return ", ".join(sorted(self.services))
        if self.roles:
            return ("own" if self.own else "role") + ":" + "|".join(sorted(self.roles))
        return "own" if self.own else "allow"


@dataclass(frozen=True)
class Policy:
    """operation → subject kind → grant, for one service (or the gateway's REST routes)."""

    name: str
    operations: Mapping[str, Mapping[Kind, tuple[Grant, ...]]]

    @classmethod
    def load(cls, path: Path) -> Policy:
        return cls.from_data(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))

    @classmethod
    def from_data(cls, data: Mapping, where: str = "policy") -> Policy:
        operations: dict[str, dict[Kind, tuple[Grant, ...]]] = {}
        for operation, grants in (data.get("operations") or {}).items():
            grants = grants or {}
            if not isinstance(grants, Mapping):
                raise ValueError(f"{where}: {operation}: grants are a mapping kind → grant")
            parsed: dict[Kind, tuple[Grant, ...]] = {}
            for kind_name, value in grants.items():
                try:
                    kind = Kind(kind_name)
                except ValueError:
                    raise ValueError(f"{where}: {operation}: unknown subject kind {kind_name!r}") from None
                if kind is Kind.SYSTEM:
                    raise ValueError(f"{where}: {operation}: 'system' is not granted by policy")
                parsed[kind] = Grant.parse(kind, value, f"{where}: {operation}.{kind_name}")
            operations[str(operation)] = parsed
        return cls(str(data.get("name", where)), operations)

    def grant(self, subject: Subject, operation: str) -> Grant | None:
        """The grant that lets this subject do the operation at all, or None. An operation missing from
        the policy is refused to everybody."""
        grants = self.operations.get(operation)
        if grants is None:
            return None
        admitting = [g for g in grants.get(subject.kind, ()) if g.admits(subject)]
        # An unrestricted alternative wins over an own-only one.
        return min(admitting, key=lambda g: g.own, default=None)

    def table(self) -> list[tuple[str, dict[str, str]]]:
        """For docs and tests: every operation with its grants by kind name."""
        return [(op, {k.value: " or ".join(g.describe() for g in alternatives) for k, alternatives in grants.items()})
                for op, grants in self.operations.items()]


class Access:
    """The application layer's check, against one policy. `subject` defaults to the caller of the
    current request (services.common.context)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def require(self, operation: str, *owners: Owner, subject: Subject | None = None,
                conceal: str = "") -> Subject:
        """Allow or raise. With `conceal`, an own-only refusal reads as NOT_FOUND with that message, so
        that somebody else's object and a missing one answer alike (no existence oracle)."""
        subject = subject or _current_subject()
        if subject.kind is Kind.SYSTEM:
            return subject
        grant = self.policy.grant(subject, operation)
        if grant is None:
            raise PermissionDenied(f"{_who(subject)} may not {operation}", reason="NOT_PERMITTED")
        if grant.own and not any(subject.owns(owner) for owner in owners):
            if conceal:
                raise NotFound(conceal)
            raise PermissionDenied(f"{_who(subject)} may {operation} only on its own objects", reason="NOT_OWNER")
        return subject

    def allows(self, operation: str, *owners: Owner, subject: Subject | None = None) -> bool:
        subject = subject or _current_subject()
        if subject.kind is Kind.SYSTEM:
            return True
        grant = self.policy.grant(subject, operation)
        return grant is not None and (not grant.own or any(subject.owns(owner) for owner in owners))

    def scope(self, operation: str, *, subject: Subject | None = None) -> Scope:
        """For list reads: every object, or only the subject's own (raises when neither)."""
        subject = subject or _current_subject()
        if subject.kind is Kind.SYSTEM:
            return Scope(subject, None)
        grant = self.policy.grant(subject, operation)
        if grant is None:
            raise PermissionDenied(f"{_who(subject)} may not {operation}", reason="NOT_PERMITTED")
        return Scope(subject, Owner(subject.kind, subject.id) if grant.own else None)


@dataclass(frozen=True)
class Scope:
    subject: Subject
    owner: Owner | None     # None: every object; else only this owner's

    def includes(self, owner: Owner) -> bool:
        return self.owner is None or self.owner == owner


def _who(subject: Subject) -> str:
    return {Kind.ENTERPRISE: "this enterprise", Kind.AGENCY: f"agency {subject.id}",
            Kind.REGULATOR: "a regulator", Kind.SERVICE: f"service {subject.id}", Kind.ADMIN: "an administrator",
            Kind.PUBLIC: "an anonymous caller"}.get(subject.kind, str(subject))


def _current_subject() -> Subject:
    from services.common.context import current_subject  # context imports this module's types
    return current_subject()


def undeclared(policy: Policy, operations: Iterable[str]) -> list[str]:
    """Operations a service exposes that its policy does not name (the matrix test fails on any)."""
    return sorted(set(operations) - set(policy.operations))
