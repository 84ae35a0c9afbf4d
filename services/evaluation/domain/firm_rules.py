"""The rules that follow a firm's indicator scores, one firm at a time (domain §7.3 steps 5–6): bonuses and
deductions, then, after the class cut, the absolute floor, vetoes and downgrades. Both engines' results
are explained by these functions: the reference engine calls them, and a bulk run's detail is built with
them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .classification import one_class_down
from .numbers import ZERO, canonical_text
from .policy import CLASS_ORDER, Policy, Profile
from .records import EnterpriseYear, fired_downgrades
from .results import AppliedAdjustment, RuleFiring
from .scoring import adjustment_points, indicator_value


@dataclass(frozen=True, slots=True)
class Adjusted:
    bonus: Decimal  # after the bonus cap
    deductions: Decimal  # ≤ 0, implausible-zero penalties included
    applied: tuple[AppliedAdjustment, ...]
    firings: tuple[RuleFiring, ...]


def adjustments_of(policy: Policy, profile: Profile, record: EnterpriseYear, raw_total: Decimal) -> Adjusted:
    """§7.3 step 5: Σ bonus (capped) and Σ deductions of a firm whose indicator scores sum to `raw_total`."""
    settings = policy.adjustments
    applied: list[AppliedAdjustment] = []
    firings: list[RuleFiring] = []
    bonus = deductions = ZERO
    for adjustment in settings.items:
        count = record.adjustment_facts.get(adjustment.id, 0)
        points = adjustment_points(adjustment, count, record.size_class, raw_total, policy.scoring.rounding)
        if count:
            applied.append(AppliedAdjustment(adjustment.id, count, points))
        if adjustment.is_bonus:
            bonus += points
        else:
            deductions += points
    cap = settings.bonus_cap_points
    if cap is not None and bonus > cap:
        firings.append(RuleFiring("adjustments.bonus_cap_points", "bonus_cap",
                                  f"bonus {canonical_text(bonus)} capped at {canonical_text(cap)}"))
        bonus = cap
    penalty = policy.scoring.implausible_zero_penalty
    if penalty:
        denominators = {policy.indicators[name].den for name in profile.weights}
        for field_name in policy.scoring.implausible_zero_fields:
            value = record.raw(field_name)
            if field_name in denominators and value is not None and value == 0:
                deductions += penalty
                firings.append(RuleFiring("scoring.implausible_zero_penalty", "implausible_zero",
                                          f"declared {field_name} = 0: {canonical_text(penalty)} points"))
    return Adjusted(bonus, deductions, tuple(applied), tuple(firings))


def hard_rules_of(policy: Policy, record: EnterpriseYear, values: Mapping[str, Decimal | None],
                  initial_class: str) -> tuple[str, tuple[RuleFiring, ...]]:
    """§7.3 step 6 after the share cut: absolute floor → vetoes → downgrades, as (final class, firings).

    A T firm (never ranked) meets only the rules `scope.T_hard_rules` lets reach it; its downgrade starts
    from the class it is managed as. `values` holds the firm's indicator values where already computed."""
    label = initial_class
    ranked = label != "T"
    reach = policy.scope.T_hard_rules
    firings: list[RuleFiring] = []
    if ranked or reach.absolute_floor:
        for floor in policy.adjustments.absolute_floor:
            value = values.get(floor.indicator)
            if floor.indicator not in values:
                definition = policy.indicators[floor.indicator]
                value = indicator_value(definition, record.raw(definition.num), record.raw(definition.den))
            if value is not None and value < floor.lt and (
                    label == "T" or CLASS_ORDER.index(label) < CLASS_ORDER.index(floor.to_class)):
                firings.append(RuleFiring(floor.id, "absolute_floor",
                                          f"{floor.indicator} {canonical_text(value)} < {canonical_text(floor.lt)}",
                                          label, floor.to_class))
                label = floor.to_class
    if ranked or reach.vetoes_to_D:
        for rule in policy.adjustments.vetoes_to_D:
            if rule.id in record.vetoes:
                firings.append(RuleFiring(rule.id, "veto", rule.desc or rule.id, label, "D"))
                label = "D"
    if not (ranked or reach.downgrade_one_class):
        return label, tuple(firings)
    fired = fired_downgrades(policy, record)
    steps = len(fired) if policy.adjustments.downgrades_stack else min(1, len(fired))
    for rule in fired[:steps]:
        lower = one_class_down(policy.scope.T_treated_as if label == "T" else label)
        detail = rule.desc or rule.id
        if rule.amount_at_least is not None:
            amount = record.downgrade_amounts[rule.id]
            detail += f": {canonical_text(amount)} {rule.amount_unit} ≥ {canonical_text(rule.amount_at_least)}"
        firings.append(RuleFiring(rule.id, "downgrade", detail, label, lower))
        label = lower
    return label, tuple(firings)
