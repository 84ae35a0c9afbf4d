"""Domain refusals (services.trading.domain.errors) as the common error tree the interceptors map."""

from __future__ import annotations

from services.common.errors import NotFound, RuleViolation
from services.trading.domain.errors import DomainError as TradingRuleError


def refusal(exc: TradingRuleError) -> RuleViolation:
    # The domain's messages never carry a sealed value (Sealed hides itself), so they are safe to show.
    return RuleViolation(exc.message or exc.code, reason=exc.code)


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"{what} {ident} not found", reason="NOT_FOUND")
