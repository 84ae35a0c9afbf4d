"""The REST routes' authorization: one policy as data (services/gateway/authorization.yaml), one gate.

The gate is a dependency of the whole /api/v1 router, so no route escapes it: it names the operation
after the route as declared ("POST /api/v1/listings/{listing_id}/bids"), maps the caller to a Subject
(an agency with its registry roles) and refuses what the policy does not grant the caller's kind — 401
for an anonymous caller, 403 otherwise. For own-only grants it checks an enterprise named in the path
itself; an owner the handler learns (a body's credit code, a listing's agency, a trade's parties) the
handler checks with `Guard.require(Owner…)`. Disclosure rules (entries with a dot) are asked with
`Guard.allows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts

from services.common.authz import Access, Kind, Owner, Policy, Scope, Subject
from services.gateway.api.deps import OptionalUser
from services.gateway.api.errors import ProblemError
from services.gateway.identity import Role, User, subject_of

POLICY = Path(__file__).resolve().parents[1] / "authorization.yaml"
API_PREFIX = "/api/v1"


def load_access(path: Path = POLICY) -> Access:
    return Access(Policy.load(path))


def route_operations(app: FastAPI) -> dict[int, str]:
    """Every route of the app (by identity: routes compare by value) → its operation name,
    "METHOD /full/path/{param}" (HEAD excluded)."""
    found: dict[int, str] = {}
    for context in iter_route_contexts(app.routes):
        methods = sorted(m for m in (context.methods or ()) if m != "HEAD")
        if context.path and methods:
            found[id(context.original_route)] = f"{methods[0]} {context.path}"
    return found


def api_operations(app: FastAPI) -> set[str]:
    """The operations of every /api/v1 route: what the policy must name."""
    return {op for op in route_operations(app).values() if op.split(" ", 1)[1].startswith(API_PREFIX)}


def _operation(request: Request) -> str:
    table = getattr(request.app.state, "route_operations", None)
    if table is None:
        table = request.app.state.route_operations = route_operations(request.app)
    return table.get(id(request.scope.get("route")), "")


@dataclass(frozen=True)
class Guard:
    """The gate's decision for one request: who does which operation, and the policy to ask further."""

    access: Access
    subject: Subject
    operation: str
    user: User | None

    def require(self, *owners: Owner, conceal: str = "") -> None:
        """The operation on an object of these owners (raises 403, or 404 with `conceal`)."""
        self.access.require(self.operation, *owners, subject=self.subject, conceal=conceal)

    def allows(self, rule: str, *owners: Owner) -> bool:
        """A disclosure rule of the policy, for objects of these owners."""
        return self.access.allows(rule, *owners, subject=self.subject)

    def scope(self) -> Scope:
        """Every object, or only the caller's own (Scope.owner)."""
        return self.access.scope(self.operation, subject=self.subject)


async def authorize(request: Request, user: OptionalUser) -> Guard:
    access: Access = request.app.state.access
    roles = await request.app.state.clients.agency_roles(user.agency_id) \
        if user is not None and user.role is Role.AGENCY else frozenset()
    subject = subject_of(user, roles)
    operation = _operation(request)
    grant = access.policy.grant(subject, operation)
    if grant is None:
        if subject.kind is Kind.PUBLIC:
            raise ProblemError(401, "authentication required", reason="UNAUTHENTICATED",
                               headers={"WWW-Authenticate": "Bearer"})
        raise ProblemError(403, "not allowed for this user", reason="NOT_PERMITTED")
    guard = Guard(access, subject, operation, user)
    credit_code = request.path_params.get("credit_code")
    if grant.own and subject.kind is Kind.ENTERPRISE and credit_code is not None:
        guard.require(Owner.enterprise(credit_code))
    return guard


GuardDep = Annotated[Guard, Depends(authorize)]
