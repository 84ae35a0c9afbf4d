"""Checks every registry use case makes before it changes or reveals anything."""

from __future__ import annotations

from services.common.authz import Access, Kind, Owner
from services.common.errors import InvalidArgument, NotFound

MAX_IDEMPOTENCY_KEY = 200  # the idempotency table's key column


def require_key(command: object) -> None:
    """A mutating request names its idempotency key: without one a retry after a lost reply would act twice."""
    key = getattr(command, "idempotency_key", "")
    if not key.strip():
        raise InvalidArgument.field("idempotency_key", "required: a unique key per request, reused only to "
                                                       "retry that same request")
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument.field("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters")


def holder(holder_id: str, holder_kind: str) -> Owner:
    """Who owns an account (and its holds and history): an enterprise by credit code or an agency by id."""
    return Owner(Kind(holder_kind), holder_id)


def reveal(access: Access, operation: str, owner: Owner | None, missing: str) -> None:
    """Let the caller see an object it may read, else answer as if it did not exist. A caller that may not
    read such objects at all is refused as such, before learning whether this one exists."""
    if owner is None:
        access.scope(operation)
        raise NotFound(missing)
    access.require(operation, owner, conceal=missing)
