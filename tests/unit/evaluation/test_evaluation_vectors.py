"""The worked examples of domain §7.4."""

from decimal import Decimal

import pytest
from evaluation_support import HUANGYAN_2022_ABOVE, above_size_firm, huangyan_2022_policy

from services.evaluation.domain import EnterpriseYear, class_counts, load_policy, run_evaluation, score_indicator
from services.evaluation.domain.policy import ClassShares, Scoring

D = Decimal


def test_huangyan_2022_above_size_firm_scores_114_41_without_cap():
    policy = huangyan_2022_policy(cap_ratio=None)
    result = run_evaluation(policy, [above_size_firm()]).results[0]
    scores = {i.indicator: i.score for i in result.indicators}
    assert scores == {"tax_per_mu": D("37.35"), "va_per_mu": D("22.03"), "va_per_energy": D("22.27"),
                      "va_per_emission": D("10.14"), "labour_prod": D("11.03"), "rd_intensity": D("11.59")}
    assert result.raw_total == D("114.41")
    assert result.total == D("114.41")


def test_cap_of_two_limits_tax_per_mu_to_60_points():
    uncapped = run_evaluation(huangyan_2022_policy(None), [above_size_firm(tax_per_mu="80")]).results[0]
    capped = run_evaluation(huangyan_2022_policy("2.0"), [above_size_firm(tax_per_mu="80")]).results[0]
    assert uncapped.indicator("tax_per_mu").score == D("99.60")
    assert not uncapped.indicator("tax_per_mu").capped
    assert capped.indicator("tax_per_mu").score == D("60.00")
    assert capped.indicator("tax_per_mu").capped
    assert capped.indicator("tax_per_mu").benchmark == HUANGYAN_2022_ABOVE["tax_per_mu"]


def test_huangyan_2022_below_size_firm_scores_94_27():
    # §7.4 prints 51.76 + 42.52; 50 × 12 / 11.5932 = 51.7545 rounds to 51.75, the total is 94.27 either way.
    firm = EnterpriseYear(credit_code="92331003MA2BBBBB02", region_code="331003", industry_code="C2929",
                          size_class="below_size", year=2024, land_mu=D(10), tax_paid=D(120),
                          kwh=D(6_000_000), years_since_production=5)  # 120 万元 / 6e6 kWh = 0.20 元/kWh
    result = run_evaluation(huangyan_2022_policy(None), [firm]).results[0]
    assert result.indicator("tax_per_mu").score == D("51.75")
    assert result.indicator("tax_per_kwh").value == D("0.2")
    assert result.indicator("tax_per_kwh").score == D("42.52")
    assert result.total == D("94.27")


def _scoring(**fields) -> Scoring:
    return Scoring(**{"cap_ratio": D(2), **fields})


def test_lower_better_by_inversion_scores_6_25():
    # 8 t water per 万元 against a benchmark of 10 t/万元 (= 0.1 万元/t inverted), weight 5.
    outcome = score_indicator(D(8), D(10), D(5), "lower_better", _scoring())
    assert outcome.score == D("6.25")
    assert not outcome.capped
    # The same firm on the inverted, higher-is-better indicator (Linhai 单位用水量工业增加值).
    inverted = score_indicator(D("0.125"), D("0.1"), D(5), "higher_better", _scoring())
    assert inverted.score == D("6.25")


def test_lower_better_zero_consumption_hits_the_cap():
    outcome = score_indicator(D(0), D(10), D(5), "lower_better", _scoring())
    assert (outcome.score, outcome.capped) == (D("10.00"), True)


@pytest.mark.parametrize(("value", "expected"), [("10", "5.00"), ("20", "0.00"), ("35", "0.00"), ("0", "10.00"),
                                                 ("15", "2.50")])
def test_fsou_linear_lower_better_variant(value, expected):
    outcome = score_indicator(D(value), D(10), D(10), "lower_better", _scoring(alt_lower_better_linear=True))
    assert outcome.score == D(expected)


def test_shares_for_a_pool_of_100_are_20_40_35_5():
    counts = class_counts(100, ClassShares(A=D("0.20"), B=D("0.40"), C=D("0.35"), D=D("0.05")), 20)
    assert counts.as_dict() == {"A": 20, "B": 40, "C": 35, "D": 5}


def test_pool_of_100_is_classed_20_40_35_5_end_to_end():
    from evaluation_support import simple_firm

    from services.evaluation.policies import load_bundled_policy

    run = run_evaluation(load_bundled_policy(), [simple_firm(i, i * 10) for i in range(100)])
    assert run.pools[0].share_counts == {"A": 20, "B": 40, "C": 35, "D": 5}
    labels = [r.initial_class for r in sorted(run.results, key=lambda r: r.rank_in_pool)]
    assert labels == ["A"] * 20 + ["B"] * 40 + ["C"] * 35 + ["D"] * 5
    # the best-scoring firm (highest tax) is rank 1
    assert run.result("92331003MA00000099").rank_in_pool == 1


@pytest.mark.parametrize(("n", "expected"), [(19, {"A": 3, "B": 8, "C": 8, "D": 0}),
                                             (20, {"A": 4, "B": 8, "C": 7, "D": 1}),
                                             (7, {"A": 1, "B": 3, "C": 3, "D": 0}),
                                             (1, {"A": 0, "B": 1, "C": 0, "D": 0})])
def test_small_pools_have_no_share_based_d_below_the_minimum(n, expected):
    shares = ClassShares(A=D("0.20"), B=D("0.40"), C=D("0.35"), D=D("0.05"))
    assert class_counts(n, shares, 20).as_dict() == expected


def test_bundled_chengdu_policy_scores_against_linhai_fixed_benchmarks():
    from services.evaluation.policies import load_bundled_policy

    policy = load_bundled_policy("chengdu-like-default@2025.2")
    firm = EnterpriseYear(credit_code="91510100MA3CCCCC03", region_code="510100", industry_code="C3011",
                          size_class="above_size", year=2024, land_mu=D(10), tax_paid=D(150), sales=D(3000),
                          value_added=D(300), energy_tce=D(100), cod_t=D("0.6"), water_t=D(3000),
                          avg_employees=D(20), years_since_production=5)
    result = run_evaluation(policy, [firm]).results[0]
    # every indicator sits exactly on its Linhai benchmark -> full weights, 100 points
    assert {i.indicator: i.ratio for i in result.indicators} == {
        "labour_prod": D(1), "sales_per_mu": D(1), "tax_per_mu": D(1), "va_per_cod": D(1),
        "va_per_energy": D(1), "va_per_water": D(1)}
    assert result.total == D("100.00")
    assert load_policy(policy.model_dump(mode="json")) == policy
