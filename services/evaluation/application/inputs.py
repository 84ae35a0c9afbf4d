"""From recorded values to the domain's input rows, and from a published run to next year's context."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from services.evaluation.domain import EnterpriseYear, Policy, PoolKey, PriorYear
from services.evaluation.domain.policy import RAW_FIELDS

SIZE = {"above": "above_size", "below": "below_size"}


def jurisdiction_prefix(jurisdiction: str) -> str:
    """GB/T 2260: a city 330100 covers 3301xx, a province 330000 covers 33xxxx."""
    prefix = jurisdiction.strip()
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def effective_values(records) -> dict[str, dict[str, str]]:
    """Per credit code, field → the value runs use: the latest recorded, ties to the greater source id.

    `records` are the stored records of the year (credit_code, source_department, recorded_at, values): an
    enterprise with one record uses it as it is; several are applied oldest first, so that for every field
    the latest record naming it wins."""
    single: dict[str, Any] = {}
    several: dict[str, list] = defaultdict(list)
    for record in records:
        code = record.credit_code
        if code in several:
            several[code].append(record)
        elif code in single:
            several[code] = [single.pop(code), record]
        else:
            single[code] = record
    chosen = {code: record.values for code, record in single.items()}
    for code, found in several.items():
        merged: dict[str, str] = {}
        for record in sorted(found, key=lambda r: (r.recorded_at, r.source_department)):
            merged.update(record.values)
        chosen[code] = merged
    return chosen


def enterprise_years(policy: Policy, year: int, enterprises: list, values: dict[str, dict[str, str]]
                     ) -> list[EnterpriseYear]:
    """One row per enterprise of the jurisdiction with data this year (deregistered ones left out).

    Facts naming rules the run's policy does not have are ignored: they cannot apply under it."""
    items = {item.id for item in policy.adjustments.items}
    vetoes = {rule.id for rule in policy.adjustments.vetoes_to_D}
    downgrades = {rule.id for rule in policy.adjustments.downgrade_one_class}
    amounts = {rule.id for rule in policy.adjustments.downgrade_one_class if rule.amount_at_least is not None}
    records = []
    for enterprise in enterprises:
        fields = values.get(enterprise.credit_code)
        if not fields or enterprise.status == "deregistered" or enterprise.size_class not in SIZE:
            continue
        raw: dict[str, Any] = {name: Decimal(fields[name]) for name in RAW_FIELDS if name in fields}
        if "land_mu" not in raw:
            raw["land_mu"] = Decimal(enterprise.land_held_mu or "0")
        flags, facts, veto, down, amount = set(), {}, set(), set(), {}
        for field, value in fields.items():
            kind, _, name = field.partition(".")
            if kind == "flag" and value == "1":
                flags.add(name)
            elif kind == "veto" and value == "1" and name in vetoes:
                veto.add(name)
            elif kind == "downgrade" and name in amounts:
                amount[name] = Decimal(value)
            elif kind == "downgrade" and value == "1" and name in downgrades:
                down.add(name)
            elif kind == "adjustment" and name in items and int(value):
                facts[name] = int(value)
        years = fields.get("years_since_production")
        records.append(EnterpriseYear(
            credit_code=enterprise.credit_code, region_code=enterprise.region_code,
            industry_code=enterprise.industry_code, size_class=SIZE[enterprise.size_class], year=year,
            name=enterprise.name, park=enterprise.park or None,
            years_since_production=None if years is None else int(years), flags=frozenset(flags),
            adjustment_facts=facts, vetoes=frozenset(veto), downgrades=frozenset(down), downgrade_amounts=amount,
            **raw))
    return records


def prior_year(result_rows: list, pools: list[dict], rollups: list[dict]) -> PriorYear:
    """PriorYear from a stored published run: classes and D streaks, pool means, roll-up indicators."""
    classes, streaks = {}, {}
    for row in result_rows:
        classes[row.credit_code] = row.final_class
        streaks[row.credit_code] = row.consecutive_d_years
    means, benchmarks = {}, {}
    for pool in pools:
        key = pool["key"]
        pool_key = PoolKey(key["region_code"], key["year"], key["size_class"], key["industry_group"],
                           key.get("roster", ""))
        for indicator, mean in pool["means"].items():
            if mean is not None:
                means[pool_key.prior_key(indicator)] = Decimal(mean)
        for indicator, benchmark in pool["benchmarks"].items():
            if benchmark is not None:
                benchmarks[pool_key.prior_key(indicator)] = Decimal(benchmark)
    ups = {(r["dimension"], r["key"]): {name: None if v is None else Decimal(v)
                                        for name, v in r["indicators"].items()} for r in rollups}
    return PriorYear(final_classes=classes, consecutive_d_years=streaks, pool_means=means,
                     pool_benchmarks=benchmarks, rollups=ups)
