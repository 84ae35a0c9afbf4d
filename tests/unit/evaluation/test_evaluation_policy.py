"""Policy documents: the bundled defaults load; malformed documents fail with precise field paths."""

import json
from decimal import Decimal

import pytest
from evaluation_support import policy_dict

from services.evaluation.domain import PolicyError, load_policy
from services.evaluation.policies import DEFAULT_POLICY_REF, available_policies, load_bundled_policy


def paths(error: PolicyError) -> dict[str, str]:
    return {violation.path: violation.message for violation in error.violations}


def test_bundled_policies_load_by_id_at_version():
    assert set(available_policies()) == {"zj-county-default@2025.1", "chengdu-like-default@2025.1",
                                         "zj-county-default@2025.2", "chengdu-like-default@2025.2"}
    policy = load_bundled_policy(DEFAULT_POLICY_REF)
    assert policy.ref == "zj-county-default@2025.2"
    assert policy.profiles["above_size_zj"].weights["tax_per_mu"] == 30
    assert policy.differentiated_measures.electricity_surcharge_yuan_per_kwh.D_consecutive_3y == Decimal("0.40")


def test_unknown_bundled_policy_is_a_policy_error():
    with pytest.raises(PolicyError) as error:
        load_bundled_policy("nowhere@1")
    assert paths(error.value) == {"policy_ref": "no bundled policy 'nowhere@1'"}


def test_json_text_and_mapping_give_the_same_policy():
    document = policy_dict()
    assert load_policy(json.dumps(document, ensure_ascii=False)) == load_policy(document)


def test_type_errors_name_the_field_path():
    document = policy_dict()
    document["scoring"]["cap_ratio"] = "two"
    document["classification"]["shares"]["above_size"]["A"] = -0.2
    document["indicators"]["tax_per_mu"]["den"] = "land_hectares"
    document["scoring"]["surprise"] = 1
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    found = paths(error.value)
    assert "scoring.cap_ratio" in found
    assert "classification.shares.above_size.A" in found
    assert "indicators.tax_per_mu.den" in found
    assert found["scoring.surprise"] == "Extra inputs are not permitted"


def test_cross_reference_errors_name_the_field_path():
    document = policy_dict()
    document["profiles"]["above_size_zj"]["weights"]["tax_per_mu"] = 25
    document["profiles"]["below_size_zj"]["weights"]["tax_per_sky"] = 0.5
    document["profiles"]["below_size_zj"]["weights"]["tax_per_mu"] = 49.5
    document["classification"]["shares"]["below_size"]["D"] = 0.10
    document["classification"]["tie_break"] = ["tax_per_mu"]
    document["adjustments"]["absolute_floor"][0]["indicator"] = "profit"
    document["profile_for"]["below_size"] = "nowhere"
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    found = paths(error.value)
    assert found["profiles.above_size_zj.weights"] == "weights sum to 95, expected 100"
    assert found["profiles.below_size_zj.weights.tax_per_sky"] == "unknown indicator"
    assert found["classification.shares.below_size"] == "shares sum to 1.05, expected 1"
    assert found["classification.tie_break"] == "must end with credit_code so every tie is broken"
    assert found["adjustments.absolute_floor.0.indicator"] == "unknown indicator"
    assert found["profile_for.below_size"] == "unknown profile 'nowhere'"


def test_fixed_benchmark_method_requires_every_weighted_benchmark():
    document = policy_dict()
    document["benchmark"]["method"] = "fixed"
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    assert paths(error.value)["profiles.above_size_zj.fixed_benchmarks.tax_per_mu"] == (
        "required when the benchmark method is fixed")


def test_lower_better_indicator_without_cap_is_rejected():
    document = policy_dict()
    document["indicators"]["water_per_va"] = {"num": "water_t", "den": "value_added", "unit": "t/万元",
                                              "direction": "lower_better"}
    document["profiles"]["above_size_zj"]["weights"] = {"tax_per_mu": 95, "water_per_va": 5}
    document["scoring"]["cap_ratio"] = None
    with pytest.raises(PolicyError) as error:
        load_policy(document)
    assert "profiles.above_size_zj.weights.water_per_va" in paths(error.value)


def test_not_yaml_and_not_a_mapping_are_document_errors():
    with pytest.raises(PolicyError) as error:
        load_policy("policy_id: [unclosed")
    assert list(paths(error.value)) == ["(document)"]
    with pytest.raises(PolicyError) as error:
        load_policy("- just\n- a list\n")
    assert paths(error.value) == {"(document)": "top level must be a mapping"}


def test_missing_required_sections_are_listed():
    with pytest.raises(PolicyError) as error:
        load_policy({"policy_id": "x", "version": "1"})
    found = paths(error.value)
    for section in ("jurisdiction", "scope", "indicators", "profiles", "benchmark", "scoring", "classification",
                    "differentiated_measures"):
        assert found[section] == "Field required"


def test_a_2025_1_document_still_loads_with_its_rental_rules_as_schedules():
    """Past runs stay reproducible under their own document: free_units / first_unit_points become schedules
    with the same points, for every size class, as 2025.1 applied them."""
    legacy = load_bundled_policy("zj-county-default@2025.1")
    items = {item.id: item for item in legacy.adjustments.items}
    assert items["RENT1"].schedule == {"above_size": [0, -5], "below_size": [0, -5]}
    assert items["RENT2"].schedule == {"above_size": [-10, -5], "below_size": [-10, -5]}
    assert legacy.missing_rule("va_per_emission", "no_numerator") == "pool_average_score"
