"""Checks of the identifiers and free text a request carries, before they reach a query or a column: a
precise INVALID_ARGUMENT instead of a driver error (PostgreSQL refuses NUL bytes and over-long values)."""

from __future__ import annotations

import unicodedata

from services.common.errors import InvalidArgument

CREDIT_CODE_LENGTH = 18
MAX_IDENTIFIER = 64
MAX_POLICY_REF = 200
MAX_IDEMPOTENCY_KEY = 200


def is_credit_code(value: str) -> bool:
    """The shape of a 统一社会信用代码: 18 ASCII digits and capital letters (its check digit is the registry's)."""
    return len(value) == CREDIT_CODE_LENGTH and value.isascii() and value.isalnum() and value.upper() == value


def has_control_characters(value: str, *, allow_newlines: bool = False) -> bool:
    allowed = "\n\r\t" if allow_newlines else ""
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in value)


def credit_code(value: str, field: str = "credit_code") -> str:
    if not value:
        raise InvalidArgument.field(field, "required")
    if not is_credit_code(value):
        raise InvalidArgument.field(field, "a 统一社会信用代码: 18 digits and capital letters")
    return value


def identifier(value: str, field: str, *, required: bool = True, max_length: int = MAX_IDENTIFIER) -> str:
    """A run id, regrade id, policy ref, department id or filter value: short text without control characters."""
    if not value:
        if required:
            raise InvalidArgument.field(field, "required")
        return value
    if len(value) > max_length:
        raise InvalidArgument.field(field, f"at most {max_length} characters")
    if has_control_characters(value):
        raise InvalidArgument.field(field, "must not contain control characters")
    return value


def text(value: str, field: str, *, max_length: int) -> str:
    """Free text a person wrote (a reason, a reference): bounded, lines allowed, no other control characters."""
    if len(value) > max_length:
        raise InvalidArgument.field(field, f"at most {max_length} characters")
    if has_control_characters(value, allow_newlines=True):
        raise InvalidArgument.field(field, "must not contain control characters")
    return value


def idempotency_key(value: str) -> str:
    return identifier(value, "idempotency_key", required=False, max_length=MAX_IDEMPOTENCY_KEY)
