"""Domain errors: each carries precise, machine-readable violations for the adapters."""

from __future__ import annotations

from dataclasses import dataclass


class EvaluationError(Exception):
    """Base of every error the evaluation domain raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem in a policy document: dotted field path plus message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyError(EvaluationError):
    def __init__(self, violations: list[FieldViolation]):
        self.violations = tuple(violations)
        super().__init__("invalid policy: " + "; ".join(str(v) for v in self.violations))


@dataclass(frozen=True, slots=True)
class RowViolation:
    """One problem in the input rows: which row (index and credit code), which field, what."""

    row: int
    credit_code: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.credit_code}) {self.field}: {self.message}"


class InputError(EvaluationError):
    def __init__(self, violations: list[RowViolation]):
        self.violations = tuple(violations)
        super().__init__("invalid input: " + "; ".join(str(v) for v in self.violations))


class OverrideError(EvaluationError):
    """A manual re-grading that does not meet the policy's audit requirements."""


class UnknownSaleKind(EvaluationError):
    """Eligibility asked for a sale kind the policy has no rule for."""
