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

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN = frozenset({str, int, bool, type(None)})


def canonical(value: Any) -> Any:
    """A JSON-ready tree: Decimals as normalised text, sets sorted, mapping keys as text."""
    # Fast paths on the exact type (runs of 50k results are canonicalised for digests and storage);
    # anything else takes the general path below, which gives the same tree.
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is Decimal:
        return canonical_text(value)
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: canonical(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return [canonical(item) for item in value]
    if kind is frozenset or kind is set:
        return sorted((canonical(item) for item in value), key=_sort_text)
    if kind is dict:
        return {_key(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: _key(kv[0]))}
    return _canonical_general(value)


def _canonical_general(value: Any) -> Any:
    if isinstance(value, Decimal):
        return canonical_text(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("floats have no canonical decimal form; use Decimal")
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
        _FIELD_NAMES[type(value)] = names
        return {name: canonical(getattr(value, name)) for name in names}
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
