"""Pipeline rules of §7.3 on small, hand-checked pools, and bad input named by row and field."""

from decimal import Decimal

import pytest
from evaluation_support import above_size_firm, default_policy, policy_dict, simple_firm

from services.evaluation.domain import (
    InputError,
    ManualOverride,
    OverrideError,
    PriorYear,
    UnknownSaleKind,
    apply_override,
    apply_override_to_run,
    decide_eligibility,
    improvement_hints,
    load_policy,
    prior_year_from_run,
    run_evaluation,
)
from services.evaluation.policies import load_bundled_policy

D = Decimal
POLICY = load_bundled_policy()


def pool_of(n: int, **overrides_by_index):
    return [simple_firm(i, i * 10, **overrides_by_index.get(f"f{i}", {})) for i in range(n)]


def violations(error: InputError) -> list[tuple[int, str, str]]:
    return [(v.row, v.credit_code, v.field) for v in error.violations]


# --- bad input -------------------------------------------------------------------------------------


def test_negative_land_area_is_rejected_naming_row_and_field():
    rows = pool_of(3)
    rows[1] = simple_firm(1, 10, land_mu=D(-2))
    with pytest.raises(InputError) as error:
        run_evaluation(POLICY, rows)
    assert violations(error.value) == [(1, rows[1].credit_code, "land_mu")]
    assert "must not be negative, got -2" in str(error.value)


def test_missing_land_is_rejected():
    rows = [simple_firm(0, 10, land_mu=None)]
    with pytest.raises(InputError) as error:
        run_evaluation(POLICY, rows)
    assert violations(error.value) == [(0, rows[0].credit_code, "land_mu")]


def test_duplicate_credit_code_and_year_is_rejected_naming_both_rows():
    rows = pool_of(3) + [simple_firm(1, 99)]
    with pytest.raises(InputError) as error:
        run_evaluation(POLICY, rows)
    assert violations(error.value) == [(3, rows[1].credit_code, "credit_code")]
    assert "first at row 1" in str(error.value)


def test_missing_denominator_under_a_reject_policy_names_row_and_field():
    document = policy_dict()
    document["scoring"]["missing"] = {"default": "reject"}
    rows = pool_of(3)
    rows[2] = simple_firm(2, 20, kwh=None)
    with pytest.raises(InputError) as error:
        run_evaluation(load_policy(document), rows)
    assert violations(error.value) == [(2, rows[2].credit_code, "kwh")]
    assert "missing denominator; tax_per_kwh cannot be computed" in str(error.value)


def test_missing_denominator_by_default_scores_zero_and_is_flagged():
    rows = pool_of(3)
    rows[2] = simple_firm(2, 20, kwh=None)
    result = run_evaluation(POLICY, rows).result(rows[2].credit_code)
    indicator = result.indicator("tax_per_kwh")
    assert (indicator.value, indicator.score, indicator.missing_rule) == (None, D("0.00"), "zero_score_and_flag")
    assert "scoring.missing.tax_per_kwh" in [rule.rule_id for rule in result.rules_fired]


def test_unknown_veto_id_and_bad_size_class_are_named():
    rows = [simple_firm(0, 10, vetoes=frozenset({"V_NOPE"})), simple_firm(1, 10, size_class="medium")]
    with pytest.raises(InputError) as error:
        run_evaluation(POLICY, rows)
    assert [(v.row, v.field) for v in error.value.violations] == [(0, "vetoes"), (1, "size_class")]


# --- indicators, benchmarks, missing rules -----------------------------------------------------------


def test_negative_tax_clamps_to_zero_and_benchmark_is_ratio_of_sums():
    rows = [simple_firm(0, 0, tax_paid=D(-50)), simple_firm(1, 0, tax_paid=D(30), land_mu=D(10)),
            simple_firm(2, 0, tax_paid=D(90), land_mu=D(20))]
    run = run_evaluation(POLICY, rows)
    assert run.result(rows[0].credit_code).indicator("tax_per_mu").value == D(0)
    # Σ max(tax, 0) / Σ land = 120 / 40 = 3 (not the mean of ratios 0, 3, 4.5)
    assert run.pools[0].benchmarks["tax_per_mu"] == D(3)


def test_missing_emission_gets_the_pool_average_score_huangyan_rule():
    rows = [above_size_firm(f"91331003MA0000000{i}", va_per_emission=str(v)) for i, v in enumerate((100, 300))]
    rows.append(above_size_firm("91331003MA00000009", pollutant_t=None))
    run = run_evaluation(POLICY, rows)
    scores = [run.result(r.credit_code).indicator("va_per_emission").score for r in rows]
    assert scores[2] == ((scores[0] + scores[1]) / 2).quantize(D("0.01"))
    assert run.result(rows[2].credit_code).indicator("va_per_emission").missing_rule == "pool_average_score"


def test_declared_zero_energy_costs_the_implausible_zero_penalty():
    firm = above_size_firm(energy_tce=D(0))
    result = run_evaluation(POLICY, [firm]).results[0]
    assert result.deductions == D(-3)
    assert result.total == result.raw_total - 3
    assert result.indicator("va_per_energy").value is None


def test_bonus_is_capped_and_deductions_are_not():
    firm = simple_firm(0, 10, adjustment_facts={"HNTE": 1, "SRDI_N": 1, "RDC": 1, "STD": 1, "RENT": 3})
    result = run_evaluation(POLICY, [firm]).results[0]
    assert result.bonus == D(10)  # 3 + 4 + 2 + 2 = 11, capped at 10
    assert result.deductions == D(-20)  # Wenling 规下: -10 first tenant, -5 each further
    assert result.total == result.raw_total + 10 - 20
    assert "adjustments.bonus_cap_points" in [rule.rule_id for rule in result.rules_fired]


# --- scope, classes, hard rules ----------------------------------------------------------------------


def test_scope_tenant_list_out_of_scope_and_class_t():
    rows = pool_of(20)
    rows[0] = simple_firm(0, 0, land_mu=D(0))
    rows[1] = simple_firm(1, 10, land_mu=D(2))
    rows[2] = simple_firm(2, 20, industry_code="D4411")
    rows[3] = simple_firm(3, 30, years_since_production=1)
    rows[4] = simple_firm(4, 40, flags=frozenset({"major_project_under_construction"}))
    run = run_evaluation(POLICY, rows)
    statuses = [run.result(r.credit_code).status for r in rows[:5]]
    # the tenant is graded on the 租赁企业 list (scope.tenant_list), alone in its own pool
    assert statuses == ["graded", "out_of_scope", "not_graded", "not_graded", "not_graded"]
    assert run.result(rows[0].credit_code).pool.roster == "tenant"
    t_firm = run.result(rows[2].credit_code)
    assert (t_firm.initial_class, t_firm.final_class, t_firm.managed_as) == ("T", "T", "B")
    assert t_firm.rank_in_pool is None and t_firm.total > 0
    (main,) = [pool for pool in run.pools if not pool.key.roster]
    assert main.graded == 15  # shares cut over graded firms only


def test_absolute_floor_veto_and_downgrade_fire_in_order():
    rows = pool_of(20)
    best = simple_firm(19, 190, vetoes=frozenset({"V_ENV_RED"}))
    second = simple_firm(18, 180, downgrades=frozenset({"G_CREDIT"}), downgrade_amounts={"G_ENV_PENALTY": D(12)})
    # 0.5 万元/亩 < 1.0 floor, but a tiny power bill caps tax_per_kwh and lifts its rank above D
    poor = simple_firm(10, 0, tax_paid=D(5), land_mu=D(10), kwh=D(100))
    rows[19], rows[18], rows[10] = best, second, poor
    run = run_evaluation(POLICY, rows)
    vetoed = run.result(best.credit_code)
    assert (vetoed.initial_class, vetoed.final_class) == ("A", "D")
    assert [(r.kind, r.from_class, r.to_class) for r in vetoed.rules_fired] == [("veto", "A", "D")]
    downgraded = run.result(second.credit_code)
    assert (downgraded.initial_class, downgraded.final_class) == ("A", "B")  # downgrades do not stack
    floored = run.result(poor.credit_code)
    assert floored.initial_class != "D" and floored.final_class == "D"
    assert [r.rule_id for r in floored.rules_fired] == ["F_TAX_PER_MU"]


def test_ranks_percentiles_and_gap_to_next_class():
    run = run_evaluation(POLICY, pool_of(20))
    ranked = sorted(run.results, key=lambda r: r.rank_in_pool)
    assert [r.rank_in_pool for r in ranked] == list(range(1, 21))
    assert (ranked[0].percentile_in_pool, ranked[-1].percentile_in_pool) == (D(100), D(0))
    assert ranked[0].gap_to_next_class is None
    lowest_a = ranked[3]  # 20 × 20 % = 4 A firms
    first_b = ranked[4]
    assert (lowest_a.initial_class, first_b.initial_class) == ("A", "B")
    assert first_b.gap_to_next_class == lowest_a.total - first_b.total
    assert ranked[0].rank_in_industry == 1 and ranked[0].industry_size == 20


def test_tie_break_prefers_higher_tax_per_mu_then_credit_code():
    twins = [simple_firm(i, 10) for i in range(3)]
    run = run_evaluation(POLICY, twins)
    assert [run.result(f.credit_code).rank_in_pool for f in twins] == [1, 2, 3]


# --- measures, prior year, roll-ups ------------------------------------------------------------------


def test_d_three_years_running_pays_the_escalated_surcharge():
    rows = pool_of(20)
    worst = rows[0]
    prior = PriorYear(final_classes={worst.credit_code: "D"}, consecutive_d_years={worst.credit_code: 2})
    result = run_evaluation(POLICY, rows, prior).result(worst.credit_code)
    assert (result.final_class, result.consecutive_d_years) == ("D", 3)
    surcharge = next(m for m in result.measures if m.lever == "electricity_surcharge")
    assert surcharge.rate == D("0.40") and surcharge.rule.endswith(".D_consecutive_3y")
    assert surcharge.estimated_yearly_amount == D("40000.00")  # 0.40 元/kWh × 100,000 kWh
    without_prior = run_evaluation(POLICY, rows).result(worst.credit_code)
    assert next(m for m in without_prior.measures if m.lever == "electricity_surcharge").rate == D("0.30")


def test_rollups_are_ratios_of_sums_with_year_on_year_change():
    rows = [simple_firm(0, 0, tax_paid=D(10), land_mu=D(10), park="P"),
            simple_firm(1, 0, tax_paid=D(90), land_mu=D(30), park="P")]
    run = run_evaluation(POLICY, rows)
    park = next(r for r in run.rollups if r.dimension == "park")
    assert park.indicators["tax_per_mu"] == D("2.5")  # 100 / 40, not mean(1, 3) = 2
    assert park.firms == 2 and sum(park.class_counts.values()) == 2
    prior = PriorYear(rollups={("park", "P"): {"tax_per_mu": D(2)}})
    again = run_evaluation(POLICY, rows, prior)
    assert next(r for r in again.rollups if r.dimension == "park").yoy_change_pct["tax_per_mu"] == D("25.00")
    assert again.rankings["park:2024"] == ("P",)


def test_prior_year_from_run_feeds_the_multiple_of_prior_year_mean_method():
    run = run_evaluation(POLICY, pool_of(5))
    prior = prior_year_from_run(run)
    document = policy_dict()
    document["benchmark"].update(method="multiple_of_prior_year_mean", multiplier=2)
    result = run_evaluation(load_policy(document), pool_of(5), prior)
    mean = run.pools[0].means["tax_per_mu"]
    assert result.pools[0].benchmarks["tax_per_mu"] == mean * 2
    with pytest.raises(InputError, match="no prior-year mean"):
        run_evaluation(load_policy(document), pool_of(5))


# --- eligibility, override, hints --------------------------------------------------------------------


@pytest.mark.parametrize(("grade", "kind", "allowed", "condition", "priority"), [
    ("A", "new_industrial_land", True, None, 1),
    ("C", "new_industrial_land", True, None, None),
    ("D", "new_industrial_land", False, None, None),
    ("T", "new_industrial_land", True, None, 2),
    ("D", "emission_increment", True, "only_if_intensity_reduces", None),
    ("B", "energy_use_increment", True, None, 2),
])
def test_eligibility_by_class(grade, kind, allowed, condition, priority):
    decision = decide_eligibility(POLICY, grade, kind)
    assert (decision.allowed, decision.condition, decision.priority) == (allowed, condition, priority)
    assert decision.rule.startswith("differentiated_measures.")


def test_eligibility_for_an_unknown_sale_kind_raises():
    with pytest.raises(UnknownSaleKind):
        decide_eligibility(POLICY, "A", "moon_rights")


def _override(**fields) -> ManualOverride:
    values = dict(credit_code="92331003MA00000000", year=2024, to_class="C", reason="objection upheld",
                  approver="王芳", second_approver="李强", evidence_ref="doc-17")
    values.update(fields)
    return ManualOverride(**values)


def test_override_needs_reason_and_two_distinct_approvers():
    run = run_evaluation(POLICY, pool_of(20))
    result = run.result("92331003MA00000000")
    assert result.final_class == "D"
    for bad in (_override(reason="  "), _override(second_approver=""), _override(second_approver=" 王芳 "),
                _override(evidence_ref=None), _override(to_class="E"), _override(year=2023)):
        with pytest.raises(OverrideError):
            apply_override(POLICY, result, bad)
    regraded = apply_override(POLICY, result, _override())
    assert (regraded.initial_class, regraded.final_class, regraded.consecutive_d_years) == ("D", "C", 0)
    assert regraded.rules_fired[-1].kind == "manual_override"
    assert next(m for m in regraded.measures if m.lever == "electricity_surcharge").rate == D("0.10")
    new_run = apply_override_to_run(POLICY, run, _override())
    assert new_run.output_digest != run.output_digest and new_run.input_digest == run.input_digest


def test_hints_rank_indicators_by_points_per_percent():
    rows = [above_size_firm(f"91331003MA0000000{i}", tax_per_mu=str(10 + 10 * i)) for i in range(3)]
    result = run_evaluation(default_policy(), rows).result(rows[0].credit_code)
    hints = improvement_hints(POLICY, result)
    assert [h.indicator for h in hints][0] == max(
        result.indicators, key=lambda i: i.score).indicator  # per-percent gain is proportional to the score
    tax = next(h for h in hints if h.indicator == "tax_per_mu")
    assert tax.points_per_unit == (D(30) / tax.benchmark).quantize(D("0.0001"))
    assert tax.value_for_next_class is not None and tax.value_for_next_class > tax.value
