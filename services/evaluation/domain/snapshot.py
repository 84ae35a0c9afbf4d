"""A run's inputs frozen as bytes: the enterprise-year rows and the prior-year context, exactly as evaluated.

Kept beside the run, so that the run can be reproduced (its input digest recomputed) and a firm's detail
rebuilt later from what the run saw, whatever was submitted since. Compressed JSON; Decimals as canonical
text; rows in (credit_code, year) order. The same text is what the input digest hashes, so equal inputs in
any row order give equal digests and the run serialises its inputs once.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import fields
from decimal import Decimal
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

from .digest import sha256_of
from .numbers import canonical_text
from .policy import RAW_FIELDS
from .records import EnterpriseYear, PriorYear

FORMAT = 2
READABLE = (1, 2)  # format 1 kept Decimals as entered and rows in the order given
_RECORD_FIELDS = tuple(field.name for field in fields(EnterpriseYear))
_DECIMAL_FIELDS = frozenset(RAW_FIELDS)


def inputs_text(records: Sequence[EnterpriseYear], prior: PriorYear | None) -> str:
    ordered = sorted(records, key=lambda record: (record.credit_code, record.year))
    document = {"format": FORMAT, "records": [_record(record) for record in ordered],
                "prior": None if prior is None else _prior(prior)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 1)  # level 1: a third of level 6's time, ~15 % larger


def dump_inputs(records: Sequence[EnterpriseYear], prior: PriorYear | None) -> bytes:
    return compress(inputs_text(records, prior))


def input_digest(policy: BaseModel, records: Sequence[EnterpriseYear], prior: PriorYear | None,
                 text: str | None = None) -> str:
    """sha256 over the policy and the inputs' snapshot text (`text`, when the caller already has it)."""
    text = inputs_text(records, prior) if text is None else text
    return sha256_of({"policy": policy, "inputs": hashlib.sha256(text.encode("utf-8")).hexdigest()})


def load_inputs(data: bytes) -> tuple[list[EnterpriseYear], PriorYear | None]:
    document = json.loads(zlib.decompress(data))
    if document.get("format") not in READABLE:
        raise ValueError(f"unknown input snapshot format {document.get('format')!r}")
    records = [_record_from(row) for row in document["records"]]
    prior = document["prior"]
    return records, None if prior is None else _prior_from(prior)


_FIELDS_OF = attrgetter(*_RECORD_FIELDS)
_DECIMAL_AT = tuple(index for index, name in enumerate(_RECORD_FIELDS) if name in _DECIMAL_FIELDS)
_SETS_AT = tuple(_RECORD_FIELDS.index(name) for name in ("flags", "vetoes", "downgrades"))
_FACTS_AT = _RECORD_FIELDS.index("adjustment_facts")
_AMOUNTS_AT = _RECORD_FIELDS.index("downgrade_amounts")


def _text(value: Decimal) -> str:
    """canonical_text, without its normalisation for the usual plain texts (no exponent, no trailing zero)."""
    text = str(value)
    if "E" in text or text == "-0" or ("." in text and text.endswith("0")):
        return canonical_text(value)
    return text


def _record(record: EnterpriseYear) -> list[Any]:
    row = list(_FIELDS_OF(record))
    for index in _DECIMAL_AT:
        if (value := row[index]) is not None:
            row[index] = _text(value)
    for index in _SETS_AT:
        row[index] = sorted(row[index]) if row[index] else []
    if row[_FACTS_AT]:
        row[_FACTS_AT] = dict(sorted(row[_FACTS_AT].items()))
    if row[_AMOUNTS_AT]:
        row[_AMOUNTS_AT] = {key: canonical_text(amount) for key, amount in sorted(row[_AMOUNTS_AT].items())}
    return row


def _record_from(row: list[Any]) -> EnterpriseYear:
    values = dict(zip(_RECORD_FIELDS, row, strict=True))
    for name in _DECIMAL_FIELDS:
        if values[name] is not None:
            values[name] = Decimal(values[name])
    for name in ("flags", "vetoes", "downgrades"):
        values[name] = frozenset(values[name])
    values["downgrade_amounts"] = {key: Decimal(amount) for key, amount in values["downgrade_amounts"].items()}
    return EnterpriseYear(**values)


def _prior(prior: PriorYear) -> dict[str, Any]:
    def table(mapping) -> list[list[Any]]:
        return sorted([*key, canonical_text(value)] for key, value in mapping.items())

    return {"final_classes": dict(sorted(prior.final_classes.items())),
            "consecutive_d_years": dict(sorted(prior.consecutive_d_years.items())),
            "pool_means": table(prior.pool_means), "pool_benchmarks": table(prior.pool_benchmarks),
            "rollups": sorted([dimension, key, {name: None if value is None else canonical_text(value)
                                                for name, value in sorted(indicators.items())}]
                              for (dimension, key), indicators in prior.rollups.items())}


def _prior_from(document: dict[str, Any]) -> PriorYear:
    def table(rows) -> dict[tuple[str, ...], Decimal]:
        return {tuple(row[:-1]): Decimal(row[-1]) for row in rows}

    return PriorYear(
        final_classes=document["final_classes"], consecutive_d_years=document["consecutive_d_years"],
        pool_means=table(document["pool_means"]), pool_benchmarks=table(document["pool_benchmarks"]),
        rollups={(dimension, key): {name: None if value is None else Decimal(value)
                                    for name, value in indicators.items()}
                 for dimension, key, indicators in document["rollups"]})
