"""Canonical serialisation and sha256 digests, so equal inputs give equal digests in any row order."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence, Set
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from .numbers import canonical_text


def canonical(value: Any) -> Any:
    """A JSON-ready tree: Decimals as normalised text, sets sorted, mapping keys as text."""
    if isinstance(value, Decimal):
        return canonical_text(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("floats have no canonical decimal form; use Decimal")
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: _key(kv[0]))}
    if isinstance(value, Set):
        return sorted((canonical(item) for item in value), key=_sort_text)
    if isinstance(value, Sequence):
        return [canonical(item) for item in value]
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def _key(key: Any) -> str:
    if isinstance(key, tuple):
        return "|".join(_key(part) for part in key)
    return canonical_text(key) if isinstance(key, Decimal) else str(key)


def _sort_text(item: Any) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def sha256_of(value: Any) -> str:
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_digest(policy: BaseModel, records: Sequence[Any], prior: Any | None) -> str:
    ordered = sorted(records, key=lambda record: (record.credit_code, record.year))
    return sha256_of({"policy": policy, "records": ordered, "prior": prior})
