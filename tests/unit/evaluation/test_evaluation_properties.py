"""Properties of the run (hypothesis) and agreement of the numpy bulk path with the Decimal reference."""

import math
import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from evaluation_support import above_size_firm, huangyan_2022_policy, policy_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.evaluation.domain import (
    CLASS_CODES,
    EnterpriseYear,
    class_counts,
    columns_from_records,
    evaluate_bulk,
    load_policy,
    run_evaluation,
)
from services.evaluation.domain.policy import ClassShares, ShareRounding
from services.evaluation.policies import load_bundled_policy

D = Decimal
POLICY = load_bundled_policy()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

money = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
maybe_money = st.one_of(st.none(), money)


@st.composite
def firm(draw, index: int) -> EnterpriseYear:
    size = draw(st.sampled_from(["above_size", "below_size"]))
    return EnterpriseYear(
        credit_code=f"91{draw(st.sampled_from(['3310', '3311']))}03MA{index:08d}",
        region_code=draw(st.sampled_from(["331003", "331004"])),
        industry_code=draw(st.sampled_from(["C3011", "C2929", "C1711", "D4411"])),
        size_class=size,
        year=2024,
        land_mu=draw(st.one_of(st.decimals(min_value=D(3), max_value=D(300), places=1), st.just(D(0)))),
        tax_paid=draw(st.decimals(min_value=D(-20), max_value=D(3000), places=2)),
        sales=draw(money), main_revenue=draw(money), value_added=draw(money),
        energy_tce=draw(st.one_of(st.none(), st.just(D(0)), money)),
        pollutant_t=draw(maybe_money), kwh=draw(st.decimals(min_value=D(1000), max_value=D(10**7), places=0)),
        rd_expense=draw(money), avg_employees=draw(st.decimals(min_value=D(1), max_value=D(900), places=0)),
        park=draw(st.sampled_from([None, "P1", "P2"])),
        years_since_production=draw(st.sampled_from([1, 3, 10])),
        adjustment_facts=draw(st.sampled_from([{}, {"HNTE": 1}, {"RENT": 3}, {"SRDI_N": 1, "HNTE": 1}])),
        vetoes=draw(st.sampled_from([frozenset(), frozenset(), frozenset(), frozenset({"V_ENV_RED"})])),
        downgrades=draw(st.sampled_from([frozenset(), frozenset(), frozenset({"G_CREDIT"})])),
        downgrade_amounts=draw(st.sampled_from([{}, {}, {"G_ENV_PENALTY": D(10)}, {"G_ENV_PENALTY": D("9.5")}])),
        flags=draw(st.sampled_from([frozenset()] * 9 + [frozenset({"mixed_type"})])),
    )


@st.composite
def firms(draw, min_size=1, max_size=45):
    count = draw(st.integers(min_size, max_size))
    return [draw(firm(i)) for i in range(count)]


@SETTINGS
@given(st.sampled_from(["tax_per_mu", "va_per_mu", "va_per_energy", "va_per_emission", "labour_prod",
                        "rd_intensity"]),
       st.decimals(min_value=D("0.1"), max_value=D(500), places=2),
       st.decimals(min_value=D("0.01"), max_value=D(100), places=2))
def test_raising_a_higher_better_indicator_never_lowers_the_score_with_fixed_benchmarks(name, start, rise):
    # With pool benchmarks this is not a property: raising one firm raises the benchmark of everybody.
    policy = huangyan_2022_policy(cap_ratio="2.0")
    base = {"tax_per_mu": "30", "va_per_mu": "150", "va_per_energy": "3", "va_per_emission": "5000",
            "labour_prod": "20", "rd_intensity": "0.035"}
    before = run_evaluation(policy, [above_size_firm(**{**base, name: str(start)})]).results[0]
    after = run_evaluation(policy, [above_size_firm(**{**base, name: str(start + rise)})]).results[0]
    assert after.indicator(name).score >= before.indicator(name).score
    assert after.total >= before.total


@SETTINGS
@given(firms(), st.randoms(use_true_random=False))
def test_input_order_changes_no_result_and_no_digest(rows, shuffler):
    shuffled = list(rows)
    shuffler.shuffle(shuffled)
    first, second = run_evaluation(POLICY, rows), run_evaluation(POLICY, shuffled)
    assert first.results == second.results
    assert (first.input_digest, first.output_digest) == (second.input_digest, second.output_digest)


@SETTINGS
@given(firms())
def test_initial_class_counts_follow_the_shares_in_every_pool(rows):
    run = run_evaluation(POLICY, rows)
    for pool in run.pools:
        graded = [r for r in run.results if r.pool == pool.key and r.status == "graded"]
        counts = Counter(r.initial_class for r in graded)
        expected = class_counts(len(graded), POLICY.classification.shares[pool.key.size_class],
                                POLICY.classification.min_pool_size_for_shares, POLICY.classification.rounding)
        assert {label: counts.get(label, 0) for label in "ABCD"} == expected.as_dict()
        # and better classes hold better ranks
        by_rank = sorted(graded, key=lambda r: r.rank_in_pool)
        assert [r.initial_class for r in by_rank] == sorted(r.initial_class for r in graded)


@SETTINGS
@given(firms())
def test_same_inputs_and_policy_give_the_same_digests(rows):
    reformatted = [
        EnterpriseYear(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                          "land_mu": r.land_mu.quantize(D("0.0001"))})  # 10.5 vs 10.5000: same value
        for r in rows
    ]
    first, again, other = run_evaluation(POLICY, rows), run_evaluation(POLICY, rows), run_evaluation(POLICY, reformatted)
    assert first.input_digest == again.input_digest == other.input_digest
    assert first.output_digest == again.output_digest == other.output_digest
    changed = [*rows[:-1], EnterpriseYear(**{**{f: getattr(rows[-1], f) for f in rows[-1].__dataclass_fields__},
                                               "land_mu": rows[-1].land_mu + 1})]
    assert run_evaluation(POLICY, changed).input_digest != first.input_digest


@SETTINGS
@given(firms())
def test_a_veto_always_ends_in_d_whatever_the_score(rows):
    run = run_evaluation(POLICY, rows)
    evaluated = [r for r in run.results if r.status in ("graded", "not_graded")]
    by_code = {r.credit_code: r for r in rows}
    for result in evaluated:
        if by_code[result.credit_code].vetoes:
            assert result.final_class == "D"
            assert "veto" in [rule.kind for rule in result.rules_fired]


def assert_bulk_agrees(policy, rows):
    reference = run_evaluation(policy, rows)
    bulk = evaluate_bulk(policy, columns_from_records(policy, rows))
    for index, row in enumerate(rows):
        expected = reference.result(row.credit_code, row.year)
        if expected.status not in ("graded", "not_graded"):
            assert bulk.status[index] >= 2
            continue
        assert bulk.total(index) == expected.total, row.credit_code
        for indicator in expected.indicators:
            cents = int(bulk.indicator_cents[indicator.indicator][index])
            assert Decimal(cents).scaleb(-policy.scoring.rounding) == indicator.score
            if indicator.value is not None:
                assert bool(bulk.capped[indicator.indicator][index]) == indicator.capped
        assert CLASS_CODES[bulk.initial_class[index]] == expected.initial_class
        assert CLASS_CODES[bulk.final_class[index]] == expected.final_class
        assert int(bulk.rank_in_pool[index]) == (expected.rank_in_pool or 0)
    return reference, bulk


@SETTINGS
@given(firms(max_size=60), st.sampled_from(["pool_aggregate_ratio", "pool_mean", "pool_median",
                                            "pool_mean_winsorized_5_95"]))
def test_bulk_path_agrees_with_the_decimal_reference(rows, method):
    document = policy_dict()
    document["benchmark"]["method"] = method
    assert_bulk_agrees(load_policy(document), rows)


def _variant(name: str):
    document = policy_dict()
    if name == "min_max":
        document["scoring"]["function"] = "min_max"
    elif name == "two_stage":
        document["profiles"]["above_size_zj"]["weights"] = {"tax_per_mu": 50, "va_per_mu": 20, "tax_per_kwh": 30}
        document["classification"].update(method="two_stage", two_stage={
            "top": {"candidates": "0.5", "rerank_by": ["tax_per_mu"], "share": "0.15", "label": "A"},
            "bottom": {"candidates": "0.5", "rerank_by": ["tax_per_kwh"], "share": "0.1", "label": "C"}})
    elif name == "t_reach_all":
        document["scope"]["T_hard_rules"] = {"vetoes_to_D": False, "absolute_floor": True,
                                             "downgrade_one_class": True}
        document["adjustments"]["downgrades_stack"] = True
    elif name == "percent_items":
        document["adjustments"]["items"] += [{"id": "PCT", "percent": "-3.5", "per_unit": True}]
    elif name == "no_tenant_list":
        del document["scope"]["tenant_list"]
    elif name == "winsorized":
        document["benchmark"]["method"] = "pool_mean_winsorized_5_95"
    return load_policy(document)


@SETTINGS
@given(firms(max_size=50), st.sampled_from(["min_max", "two_stage", "t_reach_all", "percent_items", "no_tenant_list"]),
       st.randoms(use_true_random=False))
def test_bulk_path_agrees_with_the_decimal_reference_under_every_plug_in(rows, variant, rng):
    if variant == "percent_items":
        rows = [replace(row, adjustment_facts={**row.adjustment_facts, "PCT": rng.randint(0, 2)}) for row in rows]
    assert_bulk_agrees(_variant(variant), rows)


def test_bulk_path_agrees_on_a_larger_seeded_population_including_rollups():
    rng = random.Random(7)
    rows = [EnterpriseYear(
        credit_code=f"91330000MA{i:08d}", region_code=rng.choice(["331003", "331004", "331081"]),
        industry_code=f"C{rng.randint(13, 43)}{rng.randint(10, 99)}", size_class=rng.choice(["above_size", "below_size"]),
        year=2024, land_mu=D(rng.randint(30, 3000)) / 10, tax_paid=D(rng.randint(-500, 300000)) / 100,
        sales=D(rng.randint(1, 10**7)) / 100, main_revenue=D(rng.randint(1, 10**7)) / 100,
        value_added=D(rng.randint(1, 10**6)) / 100, energy_tce=D(rng.randint(0, 10**5)) / 100,
        pollutant_t=None if rng.random() < 0.1 else D(rng.randint(1, 10**4)) / 100, kwh=D(rng.randint(10**3, 10**7)),
        rd_expense=D(rng.randint(0, 10**5)) / 100, avg_employees=D(rng.randint(1, 900)),
        park=rng.choice([None, "P1", "P2", "P3"]), years_since_production=rng.choice([1, 5, 9]),
    ) for i in range(1500)]
    reference, bulk = assert_bulk_agrees(POLICY, rows)
    park = {r.key: r for r in reference.rollups if r.dimension == "park"}
    for position, key in enumerate(bulk.rollups["park"].keys):
        assert abs(float(park[key].indicators["tax_per_mu"]) - bulk.rollups["park"].indicators["tax_per_mu"][position]) < 1e-4
        assert [park[key].class_counts[c] for c in CLASS_CODES] == list(bulk.rollups["park"].class_counts[position])
        # roll-up composites are floats in the bulk path: equal up to one boundary-rounding cent per indicator
        assert abs(int(park[key].composite_score.scaleb(2)) - int(bulk.rollups["park"].composite_cents[position])) <= 6
    bulk_ranking = sorted(zip(bulk.rollups["park"].rank, bulk.rollups["park"].keys, strict=True))
    assert reference.rankings["park:2024"] == tuple(key for _, key in bulk_ranking)


def test_bulk_path_falls_back_to_decimal_on_an_exact_half():
    document = policy_dict()
    document["benchmark"]["method"] = "fixed"
    document["profiles"]["tenant_list"]["benchmark_method"] = "pool_aggregate_ratio"
    document["profiles"]["above_size_zj"]["fixed_benchmarks"] = {
        "tax_per_mu": 10, "va_per_mu": 10, "va_per_energy": 10, "va_per_emission": 10, "labour_prod": 10,
        "rd_intensity": 10}
    document["profiles"]["below_size_zj"]["fixed_benchmarks"] = {"tax_per_mu": 10, "tax_per_kwh": 10}
    policy = load_policy(document)
    # 50 × (0.01 / 10) / 10 = 0.005 exactly: 四舍五入 gives 0.01, a float may land on 0.00499…
    rows = [EnterpriseYear(credit_code="92331003MA00000001", region_code="331003", industry_code="C2929",
                           size_class="below_size", year=2024, land_mu=D(10), tax_paid=D("0.01"), kwh=D(10**9),
                           years_since_production=5)]
    reference, bulk = assert_bulk_agrees(policy, rows)
    assert reference.results[0].indicator("tax_per_mu").score == D("0.01")
    assert bulk.exact_fallbacks >= 1


ROUNDINGS = st.sampled_from(["floor", "ceil", "half_up"])


def _shares_in_twentieths(cuts: list[int]) -> list[int]:
    """Three cut points of 0..20 as the four shares A, B, C, D in twentieths (they sum to 20)."""
    low, middle, high = sorted(cuts)
    return [low, middle - low, high - middle, 20 - high]


def _rounded(value: Fraction, mode: str) -> int:
    """An independent statement of the three roundings, on exact fractions."""
    if mode == "floor":
        return math.floor(value)
    if mode == "ceil":
        return math.ceil(value)
    return math.floor(value + Fraction(1, 2))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.lists(st.integers(0, 20), min_size=3, max_size=3).map(_shares_in_twentieths),
       ROUNDINGS, ROUNDINGS, ROUNDINGS, st.integers(1, 40))
def test_class_shares_follow_the_policys_rounding_at_every_boundary(n, parts, a_mode, ab_mode, d_mode, minimum):
    a, b, c, d = (Fraction(part, 20) for part in parts)  # shares in steps of 5 %
    shares = ClassShares(A=D(parts[0]) / 20, B=D(parts[1]) / 20, C=D(parts[2]) / 20, D=D(parts[3]) / 20)
    counts = class_counts(n, shares, minimum, ShareRounding(A=a_mode, A_B=ab_mode, D=d_mode))
    expected_d = min(_rounded(n * d, d_mode), n) if n >= minimum else 0
    expected_a = min(_rounded(n * a, a_mode), n - expected_d)
    expected_ab = max(expected_a, min(_rounded(n * (a + b), ab_mode), n - expected_d))
    assert (counts.A, counts.A + counts.B, counts.D) == (expected_a, expected_ab, expected_d)
    assert counts.C == n - expected_ab - expected_d >= 0 and min(counts.as_dict().values()) >= 0
