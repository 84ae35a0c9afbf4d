"""Domain error tree. Adapters map these to gRPC status codes (and the gateway to HTTP)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class DomainError(Exception):
    """A refusal the client can act on. The message is safe to show to the client."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class InvalidArgument(DomainError):
    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message, reason="INVALID_ARGUMENT")
        self.violations = list(violations or [])

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", [FieldViolation(field, description)])


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class RuleViolation(DomainError):
    """A business rule refuses the request in the current state (FAILED_PRECONDITION)."""


class IdempotencyConflict(RuleViolation):
    def __init__(self, key: str) -> None:
        super().__init__(
            "idempotency key was already used with a different request", reason="IDEMPOTENCY_KEY_REUSED"
        )
        self.key = key


class ConcurrencyConflict(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class DependencyUnavailable(DomainError):
    pass


class Overloaded(DomainError):
    """Too much work is waiting (RESOURCE_EXHAUSTED): the caller retries after the hint, nothing was done."""

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message, reason="OVERLOADED")
        self.retry_after_seconds = retry_after_seconds


def require(violations: list[FieldViolation]) -> None:
    """Raise one InvalidArgument carrying every violation found, or return when there are none."""
    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(summary, violations)
