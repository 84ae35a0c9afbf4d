"""May an enterprise take part in a sale, given its published class? (trading asks this over gRPC)"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .errors import UnknownSaleKind
from .policy import CLASS_ORDER, Policy

PATH = "differentiated_measures"
SALE_KINDS = ("new_industrial_land", "energy_use_increment", "emission_increment")


@dataclass(frozen=True, slots=True)
class EligibilityDecision:
    sale_kind: str
    grade: str  # the published class, A-D or T
    managed_as: str  # T resolves to scope.T_treated_as
    allowed: bool
    condition: str | None  # e.g. only_if_intensity_reduces: allowed only for projects that cut intensity
    priority: int | None  # 1 = served first; None = no priority
    price_coefficient: Decimal  # multiplies the price or fee (1 = none)
    rule: str  # policy path that decided


def decide_eligibility(policy: Policy, grade: str, sale_kind: str) -> EligibilityDecision:
    if grade not in (*CLASS_ORDER, "T"):
        raise ValueError(f"grade must be one of A, B, C, D, T, got {grade!r}")
    managed_as = policy.scope.T_treated_as if grade == "T" else grade
    measures = policy.differentiated_measures
    if sale_kind == "new_industrial_land":
        priority = _position(measures.new_land_supply_priority, managed_as)
        if managed_as in measures.new_land_supply_barred:
            return EligibilityDecision(sale_kind, grade, managed_as, False, None, None, Decimal(1),
                                       f"{PATH}.new_land_supply_barred")
        rule = f"{PATH}.new_land_supply_priority" if priority else f"{PATH}.new_land_supply_barred (not listed)"
        return EligibilityDecision(sale_kind, grade, managed_as, True, None, priority, Decimal(1), rule)
    if sale_kind in ("energy_use_increment", "emission_increment"):
        lever = "energy_rights" if sale_kind == "energy_use_increment" else "pollutant_rights"
        access = getattr(measures, lever)
        allowed = access.increment_purchase_allowed[managed_as]
        coefficient = access.price_coefficient.get(managed_as, Decimal(1))
        rule = f"{PATH}.{lever}.increment_purchase_allowed.{managed_as}"
        if allowed is False:
            return EligibilityDecision(sale_kind, grade, managed_as, False, None, None, coefficient, rule)
        condition = None if allowed is True else str(allowed)
        return EligibilityDecision(sale_kind, grade, managed_as, True, condition,
                                   _position(access.reserve_priority, managed_as), coefficient, rule)
    raise UnknownSaleKind(f"no eligibility rule for sale kind {sale_kind!r} (known: {', '.join(SALE_KINDS)})")


def _position(order: list[str], grade: str) -> int | None:
    return order.index(grade) + 1 if grade in order else None
