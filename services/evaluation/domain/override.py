"""Manual re-grading (手动调档): an audited change of the final class, never silent (§1.6, §7.2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .digest import sha256_of
from .errors import OverrideError
from .measures import measures_for
from .policy import CLASS_ORDER, Policy
from .records import PriorYear
from .results import EnterpriseResult, EvaluationRun, RuleFiring
from .rollups import build_rollups


@dataclass(frozen=True, slots=True)
class ManualOverride:
    credit_code: str
    year: int
    to_class: str  # A-D
    reason: str
    approver: str
    second_approver: str
    evidence_ref: str | None = None


def apply_override(policy: Policy, result: EnterpriseResult, override: ManualOverride) -> EnterpriseResult:
    """The result with the override applied (measures recomputed); raise OverrideError when not allowed."""
    _check(policy, result, override)
    managed_as = override.to_class
    previous = result.consecutive_d_years - 1 if result.final_class == "D" else 0
    consecutive_d = previous + 1 if managed_as == "D" else 0
    firing = RuleFiring(
        "adjustments.manual_override", "manual_override",
        f"{override.reason.strip()} (approved by {override.approver.strip()} and {override.second_approver.strip()}"
        + (f"; evidence {override.evidence_ref}" if override.evidence_ref else "") + ")",
        result.final_class, override.to_class,
    )
    return dataclasses.replace(
        result, final_class=override.to_class, managed_as=managed_as, consecutive_d_years=consecutive_d,
        rules_fired=(*result.rules_fired, firing),
        measures=measures_for(policy.differentiated_measures, managed_as, consecutive_d, result.raw),
    )


def apply_override_to_run(
    policy: Policy, run: EvaluationRun, override: ManualOverride, prior: PriorYear | None = None
) -> EvaluationRun:
    """The run with one result re-graded, roll-ups and output digest recomputed."""
    if policy.ref != run.policy_ref:
        raise OverrideError(f"run was computed under {run.policy_ref}, not {policy.ref}")
    target = run.result(override.credit_code, override.year)
    results = tuple(apply_override(policy, r, override) if r is target else r for r in run.results)
    rollups, rankings = build_rollups(policy, results, prior)
    digest_out = sha256_of({"policy_ref": run.policy_ref, "input_digest": run.input_digest, "results": results,
                            "pools": run.pools, "rollups": rollups, "rankings": rankings})
    return dataclasses.replace(run, results=results, rollups=rollups, rankings=rankings, output_digest=digest_out)


def _check(policy: Policy, result: EnterpriseResult, override: ManualOverride) -> None:
    rules = policy.adjustments.manual_override
    if not rules.allowed:
        raise OverrideError("the policy does not allow manual re-grading")
    if (result.credit_code, result.year) != (override.credit_code, override.year):
        raise OverrideError("override names another enterprise-year than the result")
    if result.final_class is None:
        raise OverrideError(f"{result.credit_code} has no class to re-grade (status {result.status})")
    if override.to_class not in CLASS_ORDER:
        raise OverrideError(f"to_class must be one of A, B, C, D, got {override.to_class!r}")
    if override.to_class == result.final_class:
        raise OverrideError(f"{result.credit_code} is already {result.final_class}")
    if not override.reason or not override.reason.strip():
        raise OverrideError("a reason is required")
    first, second = (override.approver or "").strip(), (override.second_approver or "").strip()
    if not first or not second:
        raise OverrideError("two approvers are required")
    if first.casefold() == second.casefold():
        raise OverrideError("the two approvers must be different people")
    if "evidence_ref" in rules.requires and not (override.evidence_ref or "").strip():
        raise OverrideError("an evidence reference is required by the policy")
