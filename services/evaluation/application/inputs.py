"""From recorded values to the domain's input rows, and from a published run to next year's context."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from services.evaluation.domain import EnterpriseYear, Policy, PriorYear
from services.evaluation.domain.policy import RAW_FIELDS

SIZE = {"above": "above_size", "below": "below_size"}


def jurisdiction_prefix(jurisdiction: str) -> str:
    """GB/T 2260: a city 330100 covers 3301xx, a province 330000 covers 33xxxx."""
    prefix = jurisdiction.strip()
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def effective_values(rows) -> dict[str, dict[str, str]]:
    """Per credit code, field → the value runs use: the latest recorded, ties to the greater source id."""
    chosen: dict[str, dict[str, tuple]] = defaultdict(dict)
    for row in rows:
        current = chosen[row.credit_code].get(row.field)
        rank = (row.recorded_at, row.source_department)
        if current is None or rank > current[0]:
            chosen[row.credit_code][row.field] = (rank, row.value)
    return {code: {field: entry[1] for field, entry in fields.items()} for code, fields in chosen.items()}


def enterprise_years(policy: Policy, year: int, enterprises: list, values: dict[str, dict[str, str]]
                     ) -> list[EnterpriseYear]:
    """One row per enterprise of the jurisdiction with data this year (deregistered ones left out).

    Facts naming rules the run's policy does not have are ignored: they cannot apply under it."""
    items = {item.id for item in policy.adjustments.items}
    vetoes = {rule.id for rule in policy.adjustments.vetoes_to_D}
    downgrades = {rule.id for rule in policy.adjustments.downgrade_one_class}
    records = []
    for enterprise in enterprises:
        fields = values.get(enterprise.credit_code)
        if not fields or enterprise.status == "deregistered" or enterprise.size_class not in SIZE:
            continue
        raw: dict[str, Any] = {name: Decimal(fields[name]) for name in RAW_FIELDS if name in fields}
        if "land_mu" not in raw:
            raw["land_mu"] = Decimal(enterprise.land_held_mu or "0")
        flags, facts, veto, down = set(), {}, set(), set()
        for field, value in fields.items():
            kind, _, name = field.partition(".")
            if kind == "flag" and value == "1":
                flags.add(name)
            elif kind == "veto" and value == "1" and name in vetoes:
                veto.add(name)
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
            adjustment_facts=facts, vetoes=frozenset(veto), downgrades=frozenset(down), **raw))
    return records


def prior_year(result_rows: list, pools: list[dict], rollups: list[dict]) -> PriorYear:
    """PriorYear from a stored published run: classes and D streaks, pool means, roll-up indicators."""
    classes, streaks = {}, {}
    for row in result_rows:
        classes[row.credit_code] = row.final_class
        streaks[row.credit_code] = row.consecutive_d_years
    means = {}
    for pool in pools:
        key = pool["key"]
        for indicator, mean in pool["means"].items():
            if mean is not None:
                means[(key["region_code"], key["size_class"], key["industry_group"], indicator)] = Decimal(mean)
    ups = {(r["dimension"], r["key"]): {name: None if v is None else Decimal(v)
                                        for name, v in r["indicators"].items()} for r in rollups}
    return PriorYear(final_classes=classes, consecutive_d_years=streaks, pool_means=means, rollups=ups)
