"""Where a row goes before scoring: graded pool, class T, tenant list or out of scope (§1.7, §7.2 scope)."""

from __future__ import annotations

from dataclasses import dataclass

from .numbers import canonical_text
from .policy import TENANT_ROSTER, Policy
from .records import EnterpriseYear
from .results import STATUS_GRADED, STATUS_NOT_GRADED, STATUS_OUT_OF_SCOPE, STATUS_TENANT, PoolKey, RuleFiring

MIXED_TYPE_FLAG = "mixed_type"  # the fact (flag.mixed_type) that a firm is 混合型 (§1.4)


@dataclass(frozen=True, slots=True)
class Placement:
    record: EnterpriseYear
    status: str
    pool: PoolKey | None
    rules: tuple[RuleFiring, ...]


def industry_group(policy: Policy, record: EnterpriseYear) -> str:
    split = policy.classification.industry_split
    if split is None:
        return ""
    division = record.industry_division
    for group, prefixes in split.groups.items():
        if any(division.startswith(prefix.lstrip("ABCDEFGHIJKLMNOPQRST")) for prefix in prefixes):
            return group
    return split.other_group


def place(policy: Policy, record: EnterpriseYear) -> Placement:
    scope = policy.scope
    if MIXED_TYPE_FLAG in record.flags:
        # Huangyan 2021 evaluates a 混合型 firm both independently and combined; no policy gives those
        # weights yet, so such a firm is recognised and set aside with the reason rather than mis-scored.
        rule = RuleFiring("scope.mixed_type", "scope",
                          "mixed-type enterprise (混合型): this policy gives no weights for mixed-type firms")
        return Placement(record, STATUS_OUT_OF_SCOPE, None, (rule,))
    included = [rule for rule in scope.include if rule.size_class == record.size_class]
    tenant = record.land_mu is not None and record.land_mu == 0 and "tenant_no_land" in scope.separate_lists
    if tenant and (scope.tenant_list is None or not included):
        rule = RuleFiring("scope.separate_lists.tenant_no_land", "scope", "no titled industrial land")
        return Placement(record, STATUS_TENANT, None, (rule,))
    if not included:
        rule = RuleFiring("scope.include", "scope", f"size class {record.size_class} is not evaluated")
        return Placement(record, STATUS_OUT_OF_SCOPE, None, (rule,))
    minimum = included[0].min_land_mu
    if not tenant and minimum is not None and record.land_mu is not None and record.land_mu < minimum:
        rule = RuleFiring("scope.include.min_land_mu", "scope", f"land {canonical_text(record.land_mu)} 亩 < {canonical_text(minimum)} 亩")
        return Placement(record, STATUS_OUT_OF_SCOPE, None, (rule,))
    pool = PoolKey(record.region_code, record.year, record.size_class, industry_group(policy, record),
                   TENANT_ROSTER if tenant else "")
    listed = (RuleFiring("scope.tenant_list", "scope", "no titled industrial land: ranked on the 租赁企业 list"),
              ) if tenant else ()
    reasons = listed + tuple(
        RuleFiring(rule.rule_id, "not_graded", detail, None, "T")
        for rule in scope.not_graded_T
        if (detail := _not_graded_reason(rule, record))
    )
    return Placement(record, STATUS_NOT_GRADED if len(reasons) > len(listed) else STATUS_GRADED, pool, reasons)


def _not_graded_reason(rule, record: EnterpriseYear) -> str | None:
    if rule.industry_in is not None:
        digits = record.industry_digits
        for code in rule.industry_in:
            if digits.startswith(code.lstrip("ABCDEFGHIJKLMNOPQRST")):
                return f"industry {record.industry_code} in {code}"
        return None
    if rule.years_since_production_lt is not None:
        years = record.years_since_production
        if years is not None and years < rule.years_since_production_lt:
            return f"{years} years in production < {rule.years_since_production_lt}"
        return None
    if rule.flag is not None and rule.flag in record.flags:
        return f"flag {rule.flag}"
    return None
