"""Differentiated measures (差别化政策, domain §2) per class, with estimated yearly cost or benefit."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .numbers import DECIMAL_CONTEXT, HUNDRED, SQUARE_METRES_PER_MU, round_half_up
from .policy import Measures
from .results import AppliedMeasure

PATH = "differentiated_measures"


def _times(*factors: Decimal | None) -> Decimal | None:
    result = Decimal(1)
    for factor in factors:
        if factor is None:
            return None
        result = DECIMAL_CONTEXT.multiply(result, factor)
    return result


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else round_half_up(value, 2)


def measures_for(
    measures: Measures, managed_as: str, consecutive_d_years: int, raw: Mapping[str, Decimal | None]
) -> tuple[AppliedMeasure, ...]:
    """Measures for a firm managed as `managed_as` (A-D); zero-rate levers are left out."""
    applied: list[AppliedMeasure] = []
    kwh = raw.get("kwh")
    rate, key = measures.electricity_surcharge_yuan_per_kwh.rate(managed_as, consecutive_d_years)
    if rate:
        applied.append(
            AppliedMeasure(
                "electricity_surcharge", f"{PATH}.electricity_surcharge_yuan_per_kwh.{key}", rate, "元/kWh",
                kwh, "kWh", _money(_times(rate, kwh)), "元", "cost",
            )
        )
    water = raw.get("water_t")
    rate, key = measures.water_surcharge_pct.rate(managed_as, consecutive_d_years)
    if rate:
        amount = _times(rate / HUNDRED, water, measures.water_price_yuan_per_t)
        applied.append(
            AppliedMeasure(
                "water_surcharge", f"{PATH}.water_surcharge_pct.{key}", rate, "%", water, "t",
                _money(amount), "元", "cost",
            )
        )
    land = raw.get("land_mu")
    rate, key = measures.land_use_tax_relief_pct.rate(managed_as, consecutive_d_years)
    if rate:
        amount = _times(rate / HUNDRED, land, SQUARE_METRES_PER_MU, measures.land_use_tax_yuan_per_m2)
        applied.append(
            AppliedMeasure(
                "land_use_tax_relief", f"{PATH}.land_use_tax_relief_pct.{key}", rate, "%", land, "亩",
                _money(amount), "元", "benefit",
            )
        )
    energy = raw.get("energy_tce")
    rate, key = measures.energy_quota_change_pct.rate(managed_as, consecutive_d_years)
    if rate:
        change = _times(rate / HUNDRED, energy)
        applied.append(
            AppliedMeasure(
                "energy_quota_change", f"{PATH}.energy_quota_change_pct.{key}", rate, "%", energy, "tce",
                None if change is None else round_half_up(change, 4), "tce", "quota",
            )
        )
    if managed_as in measures.orderly_power_priority:
        position = measures.orderly_power_priority.index(managed_as) + 1
        applied.append(
            AppliedMeasure(
                "orderly_power_curtailment_order", f"{PATH}.orderly_power_priority", Decimal(position),
                "order (1 = curtailed first)", None, None, None, None, "priority",
            )
        )
    if managed_as in measures.new_land_supply_priority:
        position = measures.new_land_supply_priority.index(managed_as) + 1
        applied.append(
            AppliedMeasure(
                "new_land_supply_priority", f"{PATH}.new_land_supply_priority", Decimal(position),
                "priority (1 = first)", None, None, None, None, "priority",
            )
        )
    if managed_as in measures.new_land_supply_barred:
        applied.append(
            AppliedMeasure(
                "new_land_supply_barred", f"{PATH}.new_land_supply_barred", None, "", None, None, None, None,
                "access",
            )
        )
    for lever in ("pollutant_rights", "energy_rights"):
        access = getattr(measures, lever).increment_purchase_allowed[managed_as]
        if access is not True:
            applied.append(
                AppliedMeasure(
                    f"{lever}_increment_restricted", f"{PATH}.{lever}.increment_purchase_allowed.{managed_as}",
                    None, str(access), None, None, None, None, "access",
                )
            )
    return tuple(applied)
