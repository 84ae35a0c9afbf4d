"""Default methodology documents (domain §7), addressable as `policy_id@version`.

Files are named `<policy_id>@<version>.yaml`; reading them is the only I/O here and happens on request.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from services.evaluation.domain.errors import FieldViolation, PolicyError
from services.evaluation.domain.policy import Policy, load_policy

# 2025.2 corrects 2025.1: the rental deduction follows the landlord's size class (one RENT item with a
# schedule), and the pool-average rule for 单位排放增加值 applies only to a firm with no emission figure.
DEFAULT_POLICY_REF = "zj-county-default@2025.2"


def available_policies() -> tuple[str, ...]:
    names = (entry.name for entry in resources.files(__package__).iterdir())
    return tuple(sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml")))


@lru_cache(maxsize=32)
def load_bundled_policy(ref: str = DEFAULT_POLICY_REF) -> Policy:
    """Load a shipped policy by `policy_id@version`; the document must name itself the same way."""
    if ref not in available_policies():
        raise PolicyError([FieldViolation("policy_ref", f"no bundled policy {ref!r}")])
    policy = load_policy(resources.files(__package__).joinpath(f"{ref}.yaml").read_text("utf-8"))
    if policy.ref != ref:
        raise PolicyError([FieldViolation("policy_id", f"file {ref!r} declares {policy.ref!r}")])
    return policy
