"""The rules of domain §1.4–§1.6 and §7 exactly as written, each on a hand-worked example, in the Decimal
reference and in the bulk engine."""

from dataclasses import replace
from decimal import Decimal

import pytest
from evaluation_support import above_size_firm, policy_dict, simple_firm

from services.evaluation.domain import InputError, load_policy, run_evaluation
from services.evaluation.domain.policy import PolicyError
from services.evaluation.policies import load_bundled_policy

D = Decimal
POLICY = load_bundled_policy()


def agrees_with_bulk(policy, rows):
    from test_evaluation_properties import assert_bulk_agrees

    return assert_bulk_agrees(policy, rows)


# --- 1. rental deduction (§1.6, Wenling parks 2022) --------------------------------------------------------


@pytest.mark.parametrize(("size_class", "tenants", "points"), [
    ("below_size", 1, D(-10)),  # 规下: −10 for the first tenant
    ("below_size", 2, D(-15)),  # … and −5 for each further one
    ("below_size", 4, D(-25)),  # no cap
    ("above_size", 1, D(0)),  # 规上: the first tenant costs nothing
    ("above_size", 2, D(-5)),
    ("above_size", 5, D(-20)),
])
def test_rental_deduction_follows_the_landlords_size_class_and_the_tenants_order(size_class, tenants, points):
    if size_class == "below_size":
        firm = simple_firm(0, 10, adjustment_facts={"RENT": tenants})
    else:
        firm = above_size_firm(adjustment_facts={"RENT": tenants})
    result = run_evaluation(POLICY, [firm]).results[0]
    assert result.deductions == points
    assert result.total == result.raw_total + points
    assert [(a.item_id, a.count, a.points) for a in result.adjustments] == [("RENT", tenants, points)]
    agrees_with_bulk(POLICY, [firm])


def test_a_rental_fact_for_a_size_class_the_schedule_does_not_name_is_refused():
    document = policy_dict()
    document["adjustments"]["items"].append({"id": "RENT_BELOW_ONLY", "schedule": {"below_size": [-10, -5]}})
    policy = load_policy(document)
    assert policy.adjustment_item("RENT_BELOW_ONLY").applies_to("below_size")
    assert not policy.adjustment_item("RENT_BELOW_ONLY").applies_to("above_size")
    firm = above_size_firm(adjustment_facts={"RENT_BELOW_ONLY": 1})
    with pytest.raises(InputError) as error:
        run_evaluation(policy, [firm])
    assert "does not apply to a above_size firm" in str(error.value)


@pytest.mark.parametrize(("item", "message"), [
    ({"id": "X", "points": -5, "schedule": {"below_size": [-10]}}, "exactly one of points, percent or schedule"),
    ({"id": "X"}, "exactly one of points, percent or schedule"),
    ({"id": "X", "schedule": {"below_size": [0, 0]}}, "all bonus"),
    ({"id": "X", "schedule": {"below_size": [-10, 5]}}, "all bonus"),
    ({"id": "X", "schedule": {"below_size": [-10]}, "per_unit": True}, "a schedule already counts units"),
    ({"id": "X", "schedule": {"below_size": ["-10.001"]}}, "more than 2 decimals"),
])
def test_malformed_adjustment_items_are_refused_by_path(item, message):
    document = policy_dict()
    document["adjustments"]["items"].append(item)
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    assert message in str(error.value)


# --- 7. percentage bonuses and deductions (§1.6, Lishui 加减分比例) -------------------------------------------


def test_percentage_adjustments_are_a_share_of_the_indicator_total():
    document = policy_dict()
    document["adjustments"]["items"] += [
        {"id": "PCT_BONUS", "desc": "绿色工厂", "percent": 5},
        {"id": "PCT_CUT", "desc": "欠缴社保", "percent": "-2.5", "per_unit": True},
    ]
    policy = load_policy(document)
    # Huangyan 2022 worked example of §1.3(a) scores 114.41 uncapped; with the bundled pool-aggregate
    # benchmark a lone firm is its own benchmark: 6 indicators at ratio 1 = 100 points.
    firm = above_size_firm(adjustment_facts={"PCT_BONUS": 1, "PCT_CUT": 2})
    result = run_evaluation(policy, [firm]).results[0]
    assert result.raw_total == D(100)
    assert result.bonus == D("5.00")  # 5 % of 100
    assert result.deductions == D("-5.00")  # 2 × −2.5 % of 100
    assert result.total == D(100)
    agrees_with_bulk(policy, [firm])


def test_percentage_adjustments_round_half_up_to_the_score_places():
    document = policy_dict()
    document["adjustments"]["items"].append({"id": "PCT", "percent": "3.3"})
    policy = load_policy(document)
    rows = [simple_firm(i, 10 + 7 * i, adjustment_facts={"PCT": 1} if i == 2 else {}) for i in range(3)]
    result = run_evaluation(policy, rows).result(rows[2].credit_code)
    assert result.bonus == (result.raw_total * D("0.033")).quantize(D("0.01"), rounding="ROUND_HALF_UP")
    agrees_with_bulk(policy, rows)


# --- 2. missing data (§1.4, Huangyan 2022) -----------------------------------------------------------------


def _emission_pool():
    rows = [above_size_firm(f"91331003MA0000000{i}", va_per_emission=str(v)) for i, v in enumerate((100, 300))]
    return rows


def test_a_firm_with_no_emission_figure_scores_the_pool_average():
    rows = _emission_pool() + [above_size_firm("91331003MA00000009", pollutant_t=None)]
    run = run_evaluation(POLICY, rows)
    scores = [run.result(r.credit_code).indicator("va_per_emission").score for r in rows]
    assert scores[2] == ((scores[0] + scores[1]) / 2).quantize(D("0.01"))
    indicator = run.result(rows[2].credit_code).indicator("va_per_emission")
    assert indicator.missing_rule == "pool_average_score"
    agrees_with_bulk(POLICY, rows)


def test_a_firm_missing_value_added_gets_the_missing_numerator_treatment_not_the_pool_average():
    rows = _emission_pool() + [replace(above_size_firm("91331003MA00000009"), value_added=None)]
    run = run_evaluation(POLICY, rows)
    indicator = run.result(rows[2].credit_code).indicator("va_per_emission")
    assert (indicator.value, indicator.score, indicator.missing_rule) == (None, D("0.00"), "zero_score_and_flag")
    fired = [r for r in run.result(rows[2].credit_code).rules_fired if r.rule_id == "scoring.missing.va_per_emission"]
    assert "missing numerator" in fired[0].detail
    agrees_with_bulk(POLICY, rows)


def test_missing_treatment_by_cause_is_policy_data():
    document = policy_dict()
    document["scoring"]["missing"] = {"va_per_emission": {"no_numerator": "reject"}, "default": "pool_average_score"}
    policy = load_policy(document)
    assert policy.missing_rule("va_per_emission", "no_numerator") == "reject"
    assert policy.missing_rule("va_per_emission", "no_denominator") == "pool_average_score"
    assert policy.missing_rule("tax_per_mu", "zero_denominator") == "pool_average_score"
    rows = _emission_pool() + [replace(above_size_firm("91331003MA00000009"), value_added=None)]
    with pytest.raises(InputError) as error:
        run_evaluation(policy, rows)
    assert "missing numerator; va_per_emission cannot be computed" in str(error.value)


# --- 3. class-share rounding per boundary (§1.5, §7.2 classification.rounding) ------------------------------


def _counts(n, rounding=None, shares=("0.20", "0.40", "0.35", "0.05"), minimum=20):
    from services.evaluation.domain.classification import class_counts
    from services.evaluation.domain.policy import ClassShares, ShareRounding

    a, b, c, d = (D(x) for x in shares)
    return class_counts(n, ClassShares(A=a, B=b, C=c, D=d), minimum,
                        ShareRounding(**rounding) if rounding else None).as_dict()


@pytest.mark.parametrize(("n", "expected"), [
    (100, {"A": 20, "B": 40, "C": 35, "D": 5}),  # exact shares
    (21, {"A": 4, "B": 9, "C": 6, "D": 2}),  # A ⌊4.2⌋ = 4; A+B half-up(12.6) = 13; D ⌈1.05⌉ = 2
    (37, {"A": 7, "B": 15, "C": 13, "D": 2}),  # ⌊7.4⌋; half-up(22.2) = 22; ⌈1.85⌉ = 2
    (19, {"A": 3, "B": 8, "C": 8, "D": 0}),  # below the minimum pool size nobody is D by share
])
def test_default_share_rounding_floor_a_half_up_a_plus_b_ceil_d(n, expected):
    assert _counts(n) == expected


def test_share_rounding_is_named_per_boundary_in_the_policy():
    # n = 37: A = 7.4, A+B = 22.2, D = 1.85 — every boundary rounded the other way
    assert _counts(37, {"A": "ceil", "A_B": "ceil", "D": "floor"}) == {"A": 8, "B": 15, "C": 13, "D": 1}
    assert _counts(37, {"A": "half_up", "A_B": "floor", "D": "half_up"}) == {"A": 7, "B": 15, "C": 13, "D": 2}
    document = policy_dict()
    document["classification"]["rounding"] = {"A": "ceil", "A_B": "ceil", "D": "floor"}
    policy = load_policy(document)
    rows = [simple_firm(i, 10 * i) for i in range(37)]
    run = run_evaluation(policy, rows)
    assert run.pools[0].share_counts == {"A": 8, "B": 15, "C": 13, "D": 1}
    agrees_with_bulk(policy, rows)
    document["classification"]["rounding"] = {"A": "nearest"}
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    assert "classification.rounding.A" in str(error.value)


def test_shares_never_overlap_even_when_a_and_d_round_outward():
    # A ⌈0.45·3⌉ = 2 and D ⌈0.45·3⌉ = 2 cannot both hold in a pool of 3: D keeps its places, A takes the rest
    counts = _counts(3, {"A": "ceil", "A_B": "ceil", "D": "ceil"}, ("0.45", "0.05", "0.05", "0.45"), 1)
    assert counts == {"A": 1, "B": 0, "C": 0, "D": 2}


# --- 4. what reaches a firm in class T (§1.5 Huai'an T, §7.3 step 6) ------------------------------------------


def _t_pool(**t_fields):
    rows = [simple_firm(i, 10 * i) for i in range(20)]
    rows.append(simple_firm(99, 5, years_since_production=1, **t_fields))  # in production < 2 years → T
    return rows


def test_by_default_a_veto_makes_a_t_firm_d_while_floor_and_downgrades_leave_it_t():
    vetoed = _t_pool(vetoes=frozenset({"V_ENV_RED"}))
    result = run_evaluation(POLICY, vetoed).result(vetoed[-1].credit_code)
    assert (result.initial_class, result.final_class) == ("T", "D")
    assert ("veto", "T", "D") in [(r.kind, r.from_class, r.to_class) for r in result.rules_fired]
    agrees_with_bulk(POLICY, vetoed)
    floored = _t_pool(tax_paid=D(1), downgrades=frozenset({"G_CREDIT"}))  # 0.1 万元/亩 < the 1.0 floor
    result = run_evaluation(POLICY, floored).result(floored[-1].credit_code)
    assert result.final_class == "T"
    assert not [r for r in result.rules_fired if r.kind in ("absolute_floor", "downgrade")]
    agrees_with_bulk(POLICY, floored)


def test_the_reach_of_hard_rules_into_class_t_is_policy_data():
    document = policy_dict()
    document["scope"]["T_hard_rules"] = {"vetoes_to_D": False, "absolute_floor": False, "downgrade_one_class": True}
    policy = load_policy(document)
    vetoed = _t_pool(vetoes=frozenset({"V_ENV_RED"}))
    assert run_evaluation(policy, vetoed).result(vetoed[-1].credit_code).final_class == "T"
    agrees_with_bulk(policy, vetoed)
    downgraded = _t_pool(downgrades=frozenset({"G_CREDIT"}))
    result = run_evaluation(policy, downgraded).result(downgraded[-1].credit_code)
    # managed as B (T_treated_as), one class down
    assert result.final_class == "C"
    assert [(r.kind, r.from_class, r.to_class) for r in result.rules_fired if r.kind == "downgrade"] == [
        ("downgrade", "T", "C")]
    agrees_with_bulk(policy, downgraded)
    document["scope"]["T_hard_rules"] = {"vetoes_to_D": True, "absolute_floor": True, "downgrade_one_class": False}
    policy = load_policy(document)
    floored = _t_pool(tax_paid=D(1))
    result = run_evaluation(policy, floored).result(floored[-1].credit_code)
    assert (result.initial_class, result.final_class) == ("T", "D")
    agrees_with_bulk(policy, floored)


# --- 11. the environmental-penalty downgrade takes an amount threshold (§1.6, §7.2) ---------------------------


@pytest.mark.parametrize(("amount", "final"), [(D("9.99"), "A"), (D(10), "B"), (D("35.5"), "B")])
def test_environmental_penalty_downgrade_fires_at_the_policys_amount(amount, final):
    rows = [simple_firm(i, 10 * i) for i in range(20)]
    rows[19] = simple_firm(19, 190, downgrade_amounts={"G_ENV_PENALTY": amount})
    result = run_evaluation(POLICY, rows).result(rows[19].credit_code)
    assert (result.initial_class, result.final_class) == ("A", final)
    if final == "B":
        (fired,) = [r for r in result.rules_fired if r.kind == "downgrade"]
        assert fired.rule_id == "G_ENV_PENALTY" and "≥ 10" in fired.detail
    agrees_with_bulk(POLICY, rows)


def test_an_amount_rule_refuses_a_yes_no_fact_and_a_yes_no_rule_an_amount():
    rows = [simple_firm(0, 10, downgrades=frozenset({"G_ENV_PENALTY"})),
            simple_firm(1, 10, downgrade_amounts={"G_CREDIT": D(5)}),
            simple_firm(2, 10, downgrade_amounts={"G_ENV_PENALTY": D(-1)})]
    with pytest.raises(InputError) as error:
        run_evaluation(POLICY, rows)
    text = str(error.value)
    assert "G_ENV_PENALTY is decided by an amount in 万元" in text
    assert "G_CREDIT is a yes/no fact, not an amount" in text
    assert "amount for G_ENV_PENALTY must be a finite non-negative Decimal" in text


# --- 6. winsorized pool mean (§7.2 pool_mean_winsorized_5_95) -------------------------------------------------


def test_winsorized_mean_clips_one_value_of_each_tail_in_a_pool_of_twenty():
    document = policy_dict()
    document["benchmark"]["method"] = "pool_mean_winsorized_5_95"
    policy = load_policy(document)
    # 亩均税收 1, 2, …, 19 and one outlier of 1000 万元/亩: ⌊20 × 5 %⌋ = 1 value per tail is clipped,
    # 1 → 2 and 1000 → 19, so B = (190 − 1 + 2 + 19) / 20 = 10.5 (the plain mean would be 59.5)
    rows = [simple_firm(i, 0, tax_paid=D(10 * v), land_mu=D(10)) for i, v in enumerate([*range(1, 20), 1000])]
    run = run_evaluation(policy, rows)
    assert run.pools[0].benchmarks["tax_per_mu"] == D("10.5")
    document["benchmark"]["method"] = "pool_mean"
    assert run_evaluation(load_policy(document), rows).pools[0].benchmarks["tax_per_mu"] == D("59.5")
    agrees_with_bulk(policy, rows)


def test_winsorized_mean_of_a_small_pool_clips_nothing():
    from services.evaluation.domain.benchmarks import winsorized_mean

    assert winsorized_mean([D(1), D(2), D(100)], D("0.05")) == D(103) / 3  # ⌊3 × 5 %⌋ = 0
    assert winsorized_mean([], D("0.05")) is None


# --- 5. benchmarks from the prior year's published run (benchmark.source_year) ------------------------------


def test_prior_year_source_takes_the_benchmarks_the_prior_run_published():
    from services.evaluation.domain import prior_year_from_run

    last_year = [replace(simple_firm(i, 10 * i), year=2023) for i in range(20)]
    published = run_evaluation(POLICY, last_year)
    document = policy_dict()
    document["benchmark"]["source_year"] = "prior_year"
    policy = load_policy(document)
    this_year = [simple_firm(i, 30 * i) for i in range(20)]
    run = run_evaluation(policy, this_year, prior_year_from_run(published))
    # last year's Σtax/Σland = Σ(10i + 1) / 200 = 1920 / 200 = 9.6, not this year's (5720 / 200 = 28.6)
    assert published.pools[0].benchmarks["tax_per_mu"] == D("9.6")
    assert run.pools[0].benchmarks["tax_per_mu"] == D("9.6")
    assert run_evaluation(POLICY, this_year).pools[0].benchmarks["tax_per_mu"] == D("28.6")
    with pytest.raises(InputError) as missing:
        run_evaluation(policy, this_year)
    assert "no published prior-year benchmark of tax_per_mu for pool 331003/2024/below_size" in str(missing.value)


def test_prior_year_source_refuses_what_it_would_ignore():
    document = policy_dict()
    document["benchmark"].update(source_year="prior_year", multiplier=2)
    document["profiles"]["below_size_zj"]["benchmark_method"] = "fixed"
    document["profiles"]["below_size_zj"]["fixed_benchmarks"] = {"tax_per_mu": 10, "tax_per_kwh": 1}
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    paths = {violation.path for violation in error.value.violations}
    assert paths == {"benchmark.multiplier", "profiles.below_size_zj.benchmark_method"}


# --- 10. tenants on their own list (§1.4, Cixi 2024) and mixed-type firms ------------------------------------


def _tenant(index: int, tax: int, kwh: int = 100_000, sales: int = 500, **fields):
    return simple_firm(100 + index, 0, land_mu=D(0), tax_paid=D(tax), kwh=D(kwh), sales=D(sales), **fields)


def test_tenants_are_ranked_on_their_own_list_with_the_tenant_profile():
    landowners = [simple_firm(i, 10 * i) for i in range(5)]
    tenants = [_tenant(0, 10), _tenant(1, 30), _tenant(2, 20, years_since_production=1)]
    run = run_evaluation(POLICY, landowners + tenants)
    first, second, new = (run.result(t.credit_code) for t in tenants)
    assert first.status == second.status == "graded" and new.status == "not_graded"
    assert first.pool.roster == "tenant" and first.profile == "tenant_list"
    # 单位用电税收 benchmark over the graded tenants: Σtax/Σkwh × 10^4 = 40 / 200,000 × 10^4 = 2 元/kWh;
    # first: 10/100,000 × 10^4 = 1 → 60 × 0.5 = 30; 单位用电营业收入 equal for both → 40 each
    assert first.indicator("tax_per_kwh").score == D(30) and second.indicator("tax_per_kwh").score == D(90)
    assert (first.raw_total, second.raw_total) == (D(70), D(130))
    assert (second.rank_in_pool, first.rank_in_pool) == (1, 2)
    assert {r.rule_id for r in first.rules_fired} >= {"scope.tenant_list"}
    # landowners' pools never see a tenant
    assert all(r.pool.roster == "" for r in run.results if r.credit_code in {f.credit_code for f in landowners})
    tenant_pools = [p for p in run.pools if p.key.roster == "tenant"]
    assert [(p.graded, p.not_graded) for p in tenant_pools] == [(2, 1)]
    agrees_with_bulk(POLICY, landowners + tenants)


def test_without_a_tenant_list_a_tenant_is_set_aside_without_a_class():
    document = policy_dict()
    del document["scope"]["tenant_list"]
    policy = load_policy(document)
    rows = [simple_firm(i, 10 * i) for i in range(3)] + [_tenant(0, 10)]
    result = run_evaluation(policy, rows).result(rows[-1].credit_code)
    assert (result.status, result.final_class, result.pool) == ("tenant_list", None, None)
    agrees_with_bulk(policy, rows)


def test_a_tenant_list_profile_cannot_divide_by_land():
    document = policy_dict()
    document["profiles"]["tenant_list"]["weights"] = {"tax_per_mu": 100}
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    assert "profiles.tenant_list.weights.tax_per_mu" in {v.path for v in error.value.violations}


def test_a_mixed_type_firm_is_recognised_and_set_aside_with_the_reason():
    rows = [simple_firm(i, 10 * i) for i in range(3)]
    rows.append(simple_firm(9, 50, flags=frozenset({"mixed_type"})))
    result = run_evaluation(POLICY, rows).result(rows[-1].credit_code)
    assert (result.status, result.final_class) == ("out_of_scope", None)
    (rule,) = result.rules_fired
    assert rule.rule_id == "scope.mixed_type" and "no weights for mixed-type firms" in rule.detail
    agrees_with_bulk(POLICY, rows)


# --- 8. scoring plug-ins: min–max (§1.3b) and two-stage ranking (§1.3f) --------------------------------------


def test_min_max_scoring_with_a_twenty_percent_floor_jingde():
    document = policy_dict()
    document["scoring"]["function"] = "min_max"
    policy = load_policy(document)
    assert policy.scoring.min_max_floor_pct == 20
    # 亩均税收 10 / 20 / 30 (weight 50): positions 0, ½, 1 → 50 × (20 + 80 × p) / 100 = 10, 30, 50;
    # 单位用电税收 equal for all three (weight 50): equal extremes put everyone at the top → 50 each
    rows = [simple_firm(i, 0, tax_paid=D(100 * i), kwh=D(10_000 * i)) for i in (1, 2, 3)]
    run = run_evaluation(policy, rows)
    assert [run.result(r.credit_code).indicator("tax_per_mu").score for r in rows] == [D(10), D(30), D(50)]
    assert [run.result(r.credit_code).indicator("tax_per_kwh").score for r in rows] == [D(50)] * 3
    assert [run.result(r.credit_code).raw_total for r in rows] == [D(60), D(80), D(100)]
    agrees_with_bulk(policy, rows)


def test_min_max_reverses_a_lower_better_indicator_and_clips_a_t_firm_outside_the_range():
    document = policy_dict()
    document["scoring"].update(function="min_max", min_max_floor_pct=0, cap_ratio=None)
    document["indicators"]["kwh_per_tax"] = {"num": "kwh", "den": "tax_paid", "unit": "kWh/万元",
                                             "direction": "lower_better"}
    document["profiles"]["below_size_zj"]["weights"] = {"tax_per_mu": 50, "kwh_per_tax": 50}
    policy = load_policy(document)
    rows = [simple_firm(i, 0, tax_paid=D(100), kwh=D(kwh)) for i, kwh in enumerate((1000, 2000, 5000))]
    rows.append(simple_firm(9, 0, tax_paid=D(100), kwh=D(9000), years_since_production=1))  # T, beyond max
    run = run_evaluation(policy, rows)
    # kWh per 万元 10, 20, 50 → positions 1, (50 − 20)/40 = ¾, 0; the T firm (90) clips to 0
    scores = [run.result(r.credit_code).indicator("kwh_per_tax").score for r in rows]
    assert scores == [D(50), D("37.50"), D(0), D(0)]
    agrees_with_bulk(policy, rows)


def _two_stage_policy():
    document = policy_dict()
    document["scoring"]["cap_ratio"] = 10
    document["profiles"]["above_size_zj"]["weights"] = {"tax_per_mu": 50, "tax_per_kwh": 50}
    document["classification"].update(method="two_stage", min_pool_size_for_shares=1, two_stage={
        "top": {"candidates": "0.5", "rerank_by": ["tax_per_mu"], "share": "0.25", "label": "A"},
        "bottom": {"candidates": "0.5", "rerank_by": ["tax_per_kwh"], "share": "0.25", "label": "D"},
        "rest": "B"})
    return load_policy(document)


def test_two_stage_ranking_anyang_reranks_the_top_and_bottom_halves():
    policy = _two_stage_policy()
    # 亩均税收 40/30/20/10 (B = 25) and 单位用电税收 5/20/40/10 元/kWh (B = 1000/1,100,000 × 10^4):
    # totals F3 260, F2 170, F1 107.5, F4 75. Top half {F3, F2} re-ranked by 亩均税收 score → F2 is A;
    # bottom half {F1, F4} re-ranked by 单位用电税收 score (27.5 < 55) → F1 is D; F3 and F4 are B.
    f1, f2, f3, f4 = (simple_firm(i, 0, tax_paid=D(tax), kwh=D(kwh)) for i, (tax, kwh) in
                      enumerate(((400, 800_000), (300, 150_000), (200, 50_000), (100, 100_000)), start=1))
    rows = [f1, f2, f3, f4]
    run = run_evaluation(policy, rows)
    result = {r.credit_code: r for r in run.results}
    assert [result[f.credit_code].total for f in (f3, f2, f1, f4)] == [D(260), D(170), D("107.50"), D(75)]
    assert [result[f.credit_code].rank_in_pool for f in (f3, f2, f1, f4)] == [1, 2, 3, 4]
    assert {f: result[r.credit_code].initial_class for f, r in zip("F1 F2 F3 F4".split(), rows, strict=True)} == {
        "F1": "D", "F2": "A", "F3": "B", "F4": "B"}
    assert run.pools[0].share_counts == {"A": 1, "B": 2, "C": 0, "D": 1}
    agrees_with_bulk(policy, rows)


def test_two_stage_needs_its_cuts_and_indicators_every_profile_scores():
    document = policy_dict()
    document["classification"]["method"] = "two_stage"
    with pytest.raises(PolicyError) as missing:
        load_policy(document)
    assert "classification.two_stage" in {v.path for v in missing.value.violations}
    document["classification"]["two_stage"] = {
        "top": {"candidates": "0.5", "rerank_by": ["rd_intensity"], "share": "0.6", "label": "A"},
        "bottom": {"candidates": "0.5", "rerank_by": ["tax_per_mu"], "share": "0.1", "label": "C"}}
    with pytest.raises(PolicyError) as wrong:
        load_policy(document)
    paths = {v.path for v in wrong.value.violations}
    assert {"classification.two_stage.top.share", "classification.two_stage.top.rerank_by.0"} <= paths
