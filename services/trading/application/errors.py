"""Domain refusals (services.trading.domain.errors) as the common error tree the interceptors map, and
the one answer for "not there or not yours"."""

from __future__ import annotations

from services.common.authz import Access, Owner
from services.common.errors import NotFound, RuleViolation
from services.trading.domain.errors import DomainError as TradingRuleError


def refusal(exc: TradingRuleError) -> RuleViolation:
    # The domain's messages never carry a sealed value (Sealed hides itself), so they are safe to show.
    return RuleViolation(exc.message or exc.code, reason=exc.code)


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"{what} {ident} not found", reason="NOT_FOUND")


def require_owned(access: Access, operation: str, what: str, ident: str, owners: list[Owner] | None) -> None:
    """The operation on an object of these owners (None: no such object). Somebody else's object and a
    missing one answer alike — the same NOT_FOUND, message and reason — so ids are no existence oracle;
    a subject whose kind may not do the operation at all is refused either way."""
    try:
        access.require(operation, *(owners or ()), conceal=f"{what} {ident} not found")
    except NotFound:
        raise not_found(what, ident) from None
    if owners is None:
        raise not_found(what, ident)
