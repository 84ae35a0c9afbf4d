"""Factories shared by the evaluation domain tests."""

from __future__ import annotations

import copy
from decimal import Decimal
from functools import lru_cache
from importlib import resources

import yaml

from services.evaluation.domain import EnterpriseYear, Policy, load_policy

D = Decimal
HUANGYAN_2022_ABOVE = {"tax_per_mu": D("24.097"), "va_per_mu": D("136.16"), "va_per_energy": D("2.694"),
                       "va_per_emission": D("4929.81"), "labour_prod": D("18.14"), "rd_intensity": D("0.0302")}
HUANGYAN_2022_BELOW = {"tax_per_mu": D("11.5932"), "tax_per_kwh": D("0.2352")}


@lru_cache(maxsize=4)
def _bundled_text(ref: str) -> str:
    return resources.files("services.evaluation.policies").joinpath(f"{ref}.yaml").read_text("utf-8")


def policy_dict(ref: str = "zj-county-default@2025.2") -> dict:
    """The bundled default as a plain mapping, to be edited by a test."""
    return copy.deepcopy(yaml.safe_load(_bundled_text(ref)))


def default_policy(**scoring_overrides) -> Policy:
    document = policy_dict()
    document["scoring"].update(scoring_overrides)
    return load_policy(document)


def huangyan_2022_policy(cap_ratio=None) -> Policy:
    """zj default with Huangyan 2022's published benchmarks as fixed values (test vectors of §7.4)."""
    document = policy_dict()
    document["benchmark"]["method"] = "fixed"
    document["profiles"]["tenant_list"]["benchmark_method"] = "pool_aggregate_ratio"
    document["profiles"]["above_size_zj"]["fixed_benchmarks"] = {k: str(v) for k, v in HUANGYAN_2022_ABOVE.items()}
    document["profiles"]["below_size_zj"]["fixed_benchmarks"] = {k: str(v) for k, v in HUANGYAN_2022_BELOW.items()}
    document["scoring"]["cap_ratio"] = cap_ratio
    return load_policy(document)


def above_size_firm(code: str = "91331003MA2AAAAA01", *, tax_per_mu="30", va_per_mu="150", va_per_energy="3.0",
                    va_per_emission="5000", labour_prod="20", rd_intensity="0.035", **fields) -> EnterpriseYear:
    """A 规上 firm on 10 亩 whose indicators equal the given values exactly."""
    land = D(10)
    value_added = D(va_per_mu) * land
    values = dict(
        credit_code=code, region_code="331003", industry_code="C3011", size_class="above_size", year=2024,
        land_mu=land, tax_paid=D(tax_per_mu) * land, value_added=value_added,
        energy_tce=value_added / D(va_per_energy), pollutant_t=value_added / D(va_per_emission),
        avg_employees=value_added / D(labour_prod), main_revenue=D(10000), rd_expense=D(rd_intensity) * 10000,
        sales=D(12000), kwh=D(1_000_000), years_since_production=5, park="黄岩经济开发区",
    )
    values.update(fields)
    return EnterpriseYear(**values)


def simple_firm(index: int, total_hint: int, **fields) -> EnterpriseYear:
    """A 规下 firm whose score grows with `total_hint` (tax and tax per kWh both scale with it)."""
    values = dict(
        credit_code=f"92331003MA{index:08d}", region_code="331003", industry_code="C2929", size_class="below_size",
        year=2024, land_mu=D(10), tax_paid=D(total_hint) + 1, kwh=D(100_000), years_since_production=5,
    )
    values.update(fields)
    return EnterpriseYear(**values)
