"""Roll-ups (domain §3.2) worked by hand: a small city 330100 with two districts, a park and both size
classes; the administrative tree (park → district → city, province when a run spans cities); the split by
size class; and the numpy bulk roll-ups agreeing with the Decimal reference."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pytest
from evaluation_support import policy_dict

from services.evaluation.domain import (
    CLASS_CODES,
    EnterpriseYear,
    columns_from_records,
    evaluate_bulk,
    load_policy,
    prior_year_from_run,
    run_evaluation,
)
from services.evaluation.domain.bulk_rollups import bulk_rollups
from services.evaluation.domain.hierarchy import region_chain, region_tree
from services.evaluation.domain.policy import RAW_FIELDS
from services.evaluation.domain.rollups import rollup_keys_of

D = Decimal
PARK = "紫金港科技园"


def city_policy():
    """The zj default with every figure these examples depend on written out."""
    document = policy_dict()
    document["scope"].pop("tenant_list", None)  # a firm without titled land is set aside, on no ranked list
    document["scoring"].update(floor_ratio=0, cap_ratio=2, rounding=2)
    document["rollups"] = {"composite_size_class": "above_size", "indicator_places": 6}
    measures = document["differentiated_measures"]
    measures["electricity_surcharge_yuan_per_kwh"] = {"A": 0, "B": 0, "C": "0.10", "D": "0.30",
                                                      "D_consecutive_3y": "0.40"}
    measures["land_use_tax_relief_pct"] = {"A": 100, "B": 50, "C": 0, "D": 0}
    measures["land_use_tax_yuan_per_m2"] = 3  # 1 亩 = 10000/15 m²: 15 亩 of a B firm → 50% × 10000 m² × 3 = 15000 元
    return load_policy(document)


POLICY = city_policy()


def above(code: str, region: str, land: int, tax: int, *, park=None, kwh=2_000_000, scale=1, **fields):
    """A 规上 firm with every 规上 indicator computable; `scale` shrinks its output (a weaker firm)."""
    return EnterpriseYear(
        credit_code=code, region_code=region, industry_code="C3484", size_class="above_size", year=2024,
        land_mu=D(land), tax_paid=D(tax), value_added=D(100 * land) / scale, energy_tce=D(30 * land) / scale,
        pollutant_t=D(1), avg_employees=D(3 * land), rd_expense=D(300) / scale, main_revenue=D(10000),
        sales=D(12000) / scale, kwh=D(kwh), years_since_production=5, park=park, **fields)


def below(code: str, region: str, land: int, tax: int, kwh: int, *, park=None, years_since_production=5):
    return EnterpriseYear(
        credit_code=code, region_code=region, industry_code="C2927", size_class="below_size", year=2024,
        land_mu=D(land), tax_paid=D(tax), kwh=D(kwh), years_since_production=years_since_production, park=park)


def city() -> list[EnterpriseYear]:
    """示范 city 330100: districts 330102 (上城) and 330106 (西湖); the park 紫金港科技园 lies in 330106.

    Pools are (district, size class). 330102 规上 {F1} and 规下 {F2}: each alone → B. 330106 规上 {F3, F4}: F3
    ranks first → B; F4 second → C, then its veto V_ENV_RED → D. 330106 规下 {F5} → B; F6 started production a
    year ago → T (managed as B). F7 is a tenant without land: on its own list, in no roll-up."""
    return [
        above("91330102MA0000001A", "330102", 30, 600),
        below("92330102MA0000002B", "330102", 15, 150, 500_000),
        above("91330106MA0000003C", "330106", 45, 1350, park=PARK),
        above("91330106MA0000004D", "330106", 15, 30, park=PARK, kwh=100_000, scale=10,
              vetoes=frozenset({"V_ENV_RED"})),
        below("92330106MA0000005E", "330106", 30, 90, 1_000_000, park=PARK),
        below("92330106MA0000006F", "330106", 15, 45, 500_000, years_since_production=1),
        below("92330106MA0000007G", "330106", 0, 20, 100_000),
    ]


def units(run) -> dict[tuple[str, str], object]:
    return {(r.dimension, r.key): r for r in run.rollups}


def test_a_city_run_has_districts_a_park_and_the_city_total_as_ratios_of_sums():
    run = run_evaluation(POLICY, city())
    classes = {r.credit_code[-2:]: r.final_class for r in run.results}
    assert classes == {"1A": "B", "2B": "B", "3C": "B", "4D": "D", "5E": "B", "6F": "T", "7G": None}
    by_key = units(run)
    total, shang, xihu, park = (by_key[("region", "330100")], by_key[("region", "330102")],
                                by_key[("region", "330106")], by_key[("park", PARK)])
    # the tree: park → district → city; the city is the run's total (no parent)
    assert (total.level, total.parent, total.unit, total.size_class) == ("city", "", "330100", "")
    assert (shang.level, shang.parent) == ("county", "330100") and (xihu.level, xihu.parent) == ("county", "330100")
    assert (park.level, park.parent, park.name) == ("park", "330106", PARK)
    assert by_key[("industry", "34")].parent == "330100"  # an industry hangs under the run's total
    # graded and T firms count, the tenant does not
    assert (total.firms, shang.firms, xihu.firms, park.firms) == (6, 2, 4, 3)
    # 亩均税收 = Σ tax / Σ land: city 2265 / 150; 上城 750 / 45; 西湖 1515 / 105; park 1470 / 90
    assert total.sums["tax_paid"] == D(2265) and total.sums["land_mu"] == D(150)
    assert total.indicators["tax_per_mu"] == D("15.1")
    assert shang.indicators["tax_per_mu"] == D("16.666667")  # rounded to rollups.indicator_places = 6
    assert xihu.indicators["tax_per_mu"] == D("14.428571")  # not the mean of firm ratios (30+2+3+3)/4 = 9.5
    assert park.indicators["tax_per_mu"] == D("16.333333")
    # classes: city B = F1 F2 F3 F5, D = F4, T = F6
    assert total.class_counts == {"A": 0, "B": 4, "C": 0, "D": 1, "T": 1}
    assert total.class_shares["B"] == D("0.6667") and total.class_shares["D"] == D("0.1667")
    assert xihu.class_counts == {"A": 0, "B": 2, "C": 0, "D": 1, "T": 1}
    # land held by C and D firms: F4's 15 亩
    assert (total.land_in_c_d_mu, shang.land_in_c_d_mu, xihu.land_in_c_d_mu) == (D(15), D(0), D(15))
    # surcharge: F4 (D) 0.30 元/kWh × 100,000 kWh; relief: B (and T as B) 50% × land × 10000/15 m² × 3 元
    assert total.electricity_surcharge_yuan == D(30000) and shang.electricity_surcharge_yuan == D(0)
    assert shang.land_use_tax_relief_yuan == D(30000 + 15000)
    assert xihu.land_use_tax_relief_yuan == D(45000 + 30000 + 15000)
    assert total.land_use_tax_relief_yuan == D(135000)
    # the city is alone among cities: every indicator at the benchmark, composite = Σ weights, rank 1 of 1
    assert (total.composite_score, total.rank, total.peers, total.peer_group) == (D(100), 1, 1, "region:city:2024")
    assert run.rankings["region:city:2024"] == ("330100",)
    assert {shang.rank, xihu.rank} == {1, 2} and shang.peers == 2
    assert run.rankings["region:county:2024"] == tuple(
        r.key for r in sorted((shang, xihu), key=lambda r: r.rank))


def test_the_city_total_is_the_sum_of_its_districts():
    run = run_evaluation(POLICY, city())
    by_key = units(run)
    for size in ("", "/above_size", "/below_size"):
        total = by_key[("region", f"330100{size}")]
        districts = [r for r in run.rollups if r.dimension == "region" and r.parent == total.key]
        assert {r.key for r in districts} <= {f"330102{size}", f"330106{size}"} and districts
        for name in RAW_FIELDS:
            assert total.sums[name] == sum((r.sums[name] for r in districts), D(0)), (size, name)
        assert total.firms == sum(r.firms for r in districts)
        for grade in CLASS_CODES:
            assert total.class_counts[grade] == sum(r.class_counts[grade] for r in districts)
        for amount in ("land_in_c_d_mu", "electricity_surcharge_yuan", "land_use_tax_relief_yuan"):
            assert getattr(total, amount) == sum((getattr(r, amount) for r in districts), D(0))


def test_every_unit_is_split_by_size_class_with_its_own_weights():
    run = run_evaluation(POLICY, city())
    by_key = units(run)
    above_total, below_total = by_key[("region", "330100/above_size")], by_key[("region", "330100/below_size")]
    assert (above_total.unit, above_total.size_class, above_total.parent) == ("330100", "above_size", "")
    # 规上 F1 F3 F4: 1980 / 90; 规下 F2 F5 F6: 285 / 60
    assert above_total.indicators["tax_per_mu"] == D(22) and below_total.indicators["tax_per_mu"] == D("4.75")
    assert (above_total.firms, below_total.firms) == (3, 3)
    assert below_total.class_counts == {"A": 0, "B": 2, "C": 0, "D": 0, "T": 1}
    # a split rolls up into its parent's split of the same size class
    assert by_key[("region", "330106/below_size")].parent == "330100/below_size"
    assert by_key[("park", f"{PARK}/below_size")].parent == "330106/below_size"
    # 规下 splits are scored with the 规下 weights (tax_per_mu 50, tax_per_kwh 50) against the mean over the
    # two districts: 上城 10 亩均 and 3 元/kWh (150 / 500,000 × 10^4); 西湖 135 / 45 = 3 and 135 / 1.5M × 10^4 = 0.9.
    # Means 6.5 and 1.95: 上城 50 × 10/6.5 + 50 × 3/1.95 = 76.92 + 76.92; 西湖 50 × 3/6.5 + 50 × 0.9/1.95 = 23.08 × 2.
    shang, xihu = by_key[("region", "330102/below_size")], by_key[("region", "330106/below_size")]
    assert shang.indicators["tax_per_kwh"] == D(3) and xihu.indicators["tax_per_kwh"] == D("0.9")
    assert (shang.composite_score, xihu.composite_score) == (D("153.84"), D("46.16"))
    assert (shang.rank, xihu.rank, shang.peer_group) == (1, 2, "region:county:below_size:2024")
    assert run.rankings["region:county:below_size:2024"] == ("330102/below_size", "330106/below_size")


def test_year_on_year_change_of_the_city_total_and_a_district():
    first = run_evaluation(POLICY, city())
    rows = [r if r.credit_code != "91330102MA0000001A" else above(r.credit_code, "330102", 30, 1200)
            for r in city()]
    rows = [EnterpriseYear(**{**{f: getattr(r, f) for f in r.__slots__}, "year": 2025}) for r in rows]
    second = units(run_evaluation(POLICY, rows, prior_year_from_run(first)))
    # city 2865 / 150 = 19.1 against 15.1: +26.49 %; 上城 1350 / 45 = 30 against 16.666667: +80.00 %
    assert second[("region", "330100")].yoy_change_pct["tax_per_mu"] == D("26.49")
    assert second[("region", "330102")].yoy_change_pct["tax_per_mu"] == D("80.00")
    assert second[("region", "330106")].yoy_change_pct["tax_per_mu"] == D("0.00")
    # the 规上 split of the city: 2580 / 90 = 28.666667 against 22
    assert second[("region", "330100/above_size")].yoy_change_pct["tax_per_mu"] == D("30.30")


def test_a_park_across_districts_hangs_under_the_city_and_a_county_run_is_its_own_total():
    rows = [r if r.credit_code != "91330102MA0000001A" else above(r.credit_code, "330102", 30, 600, park=PARK)
            for r in city()]
    assert units(run_evaluation(POLICY, rows))[("park", PARK)].parent == "330100"
    county = [r for r in city() if r.region_code == "330106"]
    by_key = units(run_evaluation(POLICY, county))
    regions = {key for dimension, key in by_key if dimension == "region"}
    assert regions == {"330106", "330106/above_size", "330106/below_size"}  # no city with one county's firms
    assert by_key[("region", "330106")].parent == "" and by_key[("park", PARK)].parent == "330106"


def test_a_run_across_cities_rolls_up_to_the_province():
    rows = [*city(), above("91331003MA0000008H", "331003", 20, 500)]
    by_key = units(run_evaluation(POLICY, rows))
    assert by_key[("region", "330000")].level == "province" and by_key[("region", "330000")].parent == ""
    assert by_key[("region", "330100")].parent == "330000" and by_key[("region", "331000")].parent == "330000"
    assert by_key[("region", "331003")].parent == "331000"
    assert by_key[("region", "330000")].firms == 7 and by_key[("industry", "34")].parent == "330000"


@pytest.mark.parametrize(("code", "chain"), [
    ("330106", ("330106", "330100", "330000")),
    ("330100", ("330100", "330000")),
    ("330000", ("330000",)),
    ("310104", ("310104", "310000")),  # a municipality's district: the municipality is its city
    ("330001", ("330001", "330000")),
    ("R1", ("R1",)),  # not GB/T 2260: a unit of its own
])
def test_gb_t_2260_chains(code, chain):
    assert region_chain(code) == chain


def test_the_tree_climbs_only_as_high_as_the_firms_need():
    assert region_tree(["330102", "330106"]).top == "330100"
    assert region_tree(["330106"]).top == "330106"
    assert region_tree(["330106", "331003"]).top == "330000"
    assert region_tree(["330106", "510104"]).top is None  # two provinces: no total
    tree = region_tree(["330102", "330106"])
    assert tree.common(["330106"]) == "330106" and tree.common(["330102", "330106"]) == "330100"


def test_a_regrade_finds_every_unit_of_the_firm():
    result = run_evaluation(POLICY, city()).result("91330106MA0000004D")
    assert set(rollup_keys_of(result)) == {
        ("region", "330106"), ("region", "330106/above_size"), ("region", "330100"),
        ("region", "330100/above_size"), ("region", "330000"), ("region", "330000/above_size"),
        ("park", PARK), ("park", f"{PARK}/above_size"), ("industry", "34"), ("industry", "34/above_size")}


# --- the bulk path -------------------------------------------------------------------------------------


def seeded_province(count: int = 900) -> list[EnterpriseYear]:
    """Two cities of one province, parks inside districts and one across two districts, both size classes."""
    rng = random.Random(11)
    regions = ["330102", "330106", "330108", "331003", "331004"]
    parks = {"330102": ["钱江新材料园"], "330106": [PARK, "跨区园"], "330108": ["跨区园", "高新园"],
             "331003": ["黄岩经济开发区"], "331004": []}
    rows = []
    for i in range(count):
        region = rng.choice(regions)
        size = rng.choice(["above_size", "below_size"])
        land = D(rng.randint(30, 3000)) / 10
        rows.append(EnterpriseYear(
            credit_code=f"91330000MA{i:08d}", region_code=region, industry_code=rng.choice(["C3484", "C2927", "C1713"]),
            size_class=size, year=2024, land_mu=land, tax_paid=D(rng.randint(-500, 300000)) / 100,
            sales=D(rng.randint(1, 10**7)) / 100, main_revenue=D(rng.randint(1, 10**7)) / 100,
            value_added=D(rng.randint(1, 10**6)) / 100 if size == "above_size" else None,
            energy_tce=D(rng.randint(1, 10**5)) / 100, pollutant_t=D(rng.randint(1, 10**4)) / 100,
            kwh=D(rng.randint(10**3, 10**7)), rd_expense=D(rng.randint(0, 10**5)) / 100,
            avg_employees=D(rng.randint(1, 900)), park=rng.choice([None, *parks[region]]),
            years_since_production=rng.choice([1, 5, 9]),
            vetoes=frozenset({"V_ENV_RED"}) if rng.random() < 0.03 else frozenset()))
    return rows


def assert_bulk_agrees(rows, prior=None) -> None:
    reference = run_evaluation(POLICY, rows, prior)
    columns = columns_from_records(POLICY, rows, prior)
    bulk = evaluate_bulk(POLICY, columns)
    prior_indicators = prior.rollups if prior is not None else None
    groups = bulk_rollups(POLICY, columns, bulk.status <= 1, bulk.final_class, bulk.consecutive_d_years,
                          prior_indicators)
    expected = {(r.dimension, r.key): r for r in reference.rollups}
    seen = set()
    for name, group in groups.items():
        for i, key in enumerate(group.keys):
            unit = expected[(group.dimension, key)]
            seen.add((group.dimension, key))
            assert unit.peer_group == f"{name}:{int(group.years[i])}"
            assert (group.units[i], group.parents[i], group.level, group.size_class) == (
                unit.unit, unit.parent, unit.level, unit.size_class)
            assert int(group.firms[i]) == unit.firms
            assert [unit.class_counts[c] for c in CLASS_CODES] == list(group.class_counts[i])
            for field_name in RAW_FIELDS:
                assert math.isclose(group.sums[field_name][i], float(unit.sums[field_name]), rel_tol=1e-9, abs_tol=1e-6)
            for indicator, value in unit.indicators.items():
                bulk_value = group.indicators[indicator][i]
                assert (value is None) == bool(np.isnan(bulk_value)), (key, indicator)
                if value is not None:
                    assert math.isclose(bulk_value, float(value), rel_tol=1e-9, abs_tol=1e-6)
                change = unit.yoy_change_pct[indicator]
                if change is not None:
                    assert abs(group.yoy_change_pct[indicator][i] - float(change)) < 0.01
            assert math.isclose(group.land_in_c_d_mu[i], float(unit.land_in_c_d_mu), abs_tol=1e-6)
            # firms' amounts are rounded to the fen one by one in the reference
            assert abs(group.electricity_surcharge_yuan[i] - float(unit.electricity_surcharge_yuan)) <= 0.01 * unit.firms
            assert abs(group.land_use_tax_relief_yuan[i] - float(unit.land_use_tax_relief_yuan)) <= 0.01 * unit.firms
            # composites are floats in the bulk path: equal up to one boundary-rounding cent per indicator
            assert abs(int(unit.composite_score.scaleb(2)) - int(group.composite_cents[i])) <= 8
        ranking = tuple(key for _, key in sorted(zip(group.rank.tolist(), group.keys, strict=True)))
        year = int(group.years[0])
        assert reference.rankings[f"{name}:{year}"] == ranking, name
    assert seen == set(expected)


def test_bulk_rollups_agree_with_the_reference_on_the_hand_worked_city():
    assert_bulk_agrees(city())


def test_bulk_rollups_agree_with_the_reference_on_a_seeded_province_with_year_on_year_change():
    rows = seeded_province()
    prior = prior_year_from_run(run_evaluation(POLICY, rows))
    rng = random.Random(5)
    later = [EnterpriseYear(**{**{f: getattr(r, f) for f in r.__slots__}, "year": 2025,
                               "tax_paid": r.tax_paid * D(rng.randint(80, 130)) / 100}) for r in rows]
    assert_bulk_agrees(later, prior)
