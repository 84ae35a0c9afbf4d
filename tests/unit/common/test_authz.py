"""The authorization model's pure parts: grants parsed from data, decisions, subjects from credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.authz import Access, Grant, Kind, Owner, Policy, Subject, undeclared
from services.common.config import PrincipalSpec
from services.common.errors import NotFound, PermissionDenied
from services.common.interceptors import subject_of

ROOT = Path(__file__).resolve().parents[3]

POLICY = Policy.from_data({"name": "t", "operations": {
    "PlaceBid": {"enterprise": "own"},
    "CreateListing": {"agency": "own:grantor|issuer"},
    "ListBids": {"enterprise": "allow", "regulator": "allow", "public": "allow"},
    "ListRegistrations": {"enterprise": "own", "agency": ["role:trading_centre", "own"]},
    "Transfer": {"service": ["trading"]},
}})
ACCESS = Access(POLICY)
ENTERPRISE = Subject(Kind.ENTERPRISE, "91330100MA27XL0J4X")
GRANTOR = Subject(Kind.AGENCY, "AG-1", frozenset({"grantor"}))
CENTRE = Subject(Kind.AGENCY, "AG-2", frozenset({"trading_centre"}))


def test_only_the_enterprise_itself_acts_for_it():
    assert ACCESS.require("PlaceBid", Owner.enterprise(ENTERPRISE.id), subject=ENTERPRISE) is ENTERPRISE
    with pytest.raises(PermissionDenied):
        ACCESS.require("PlaceBid", Owner.enterprise("91330100OTHER0000X"), subject=ENTERPRISE)
    with pytest.raises(PermissionDenied):  # an agency, whatever its roles, is not the enterprise
        ACCESS.require("PlaceBid", Owner.enterprise(ENTERPRISE.id), subject=GRANTOR)


def test_conceal_answers_like_a_missing_object():
    with pytest.raises(NotFound, match="bid b1 not found"):
        ACCESS.require("PlaceBid", Owner.enterprise("other"), subject=ENTERPRISE, conceal="bid b1 not found")


def test_agency_needs_the_role_and_its_own_object():
    assert ACCESS.allows("CreateListing", Owner.agency("AG-1"), subject=GRANTOR)
    assert not ACCESS.allows("CreateListing", Owner.agency("AG-9"), subject=GRANTOR)
    assert not ACCESS.allows("CreateListing", Owner.agency("AG-2"), subject=CENTRE)  # own, but no role


def test_alternatives_prefer_the_unrestricted_grant():
    assert ACCESS.scope("ListRegistrations", subject=CENTRE).owner is None
    assert ACCESS.scope("ListRegistrations", subject=GRANTOR).owner == Owner.agency("AG-1")
    assert ACCESS.scope("ListRegistrations", subject=ENTERPRISE).owner == Owner.enterprise(ENTERPRISE.id)
    with pytest.raises(PermissionDenied):
        ACCESS.scope("ListRegistrations", subject=Subject(Kind.REGULATOR, "r"))


def test_services_are_granted_by_name_and_undeclared_operations_are_refused():
    assert ACCESS.allows("Transfer", subject=Subject(Kind.SERVICE, "trading"))
    assert not ACCESS.allows("Transfer", subject=Subject(Kind.SERVICE, "evaluation"))
    assert not ACCESS.allows("Unknown", subject=Subject(Kind.ADMIN, "root"))
    assert undeclared(POLICY, ["PlaceBid", "Forgotten"]) == ["Forgotten"]


@pytest.mark.parametrize("grants", [{"enterprise": "role:x"}, {"regulator": "own"}, {"service": "allow"},
                                    {"agency": "allow:x"}, {"robot": "allow"}, {"system": "allow"},
                                    {"enterprise": 3}])
def test_malformed_grants_are_refused_at_load(grants):
    with pytest.raises(ValueError):
        Policy.from_data({"operations": {"Op": grants}})


def test_grant_descriptions_round_trip():
    assert [g.describe() for g in Grant.parse(Kind.AGENCY, ["role:trading_centre", "own"], "x")] == \
        ["role:trading_centre", "own"]


@pytest.mark.parametrize("service", ["registry", "trading", "evaluation"])
def test_the_service_policies_load(service):
    policy = Policy.load(ROOT / "services" / service / "authorization.yaml")
    assert policy.operations
    # Nobody is granted a business act through the admin kind.
    for operation, grants in policy.operations.items():
        if operation.startswith(("Place", "Register", "Submit", "Issue", "Transfer", "Create")) and \
                operation not in ("RegisterEnterprise", "RegisterAgency"):
            assert Kind.ADMIN not in grants, operation


def spec(**fields) -> PrincipalSpec:
    return PrincipalSpec.model_validate(fields)


def test_subjects_from_credentials():
    gateway = spec(principal="gateway", kind="service", delegate=True)
    assert subject_of(gateway, "", "") == Subject(Kind.PUBLIC, "", frozenset(), "gateway")
    assert subject_of(gateway, "enterprise:913", "").kind is Kind.ENTERPRISE
    agency = subject_of(gateway, "agency:AG-1/key:3", "grantor,issuer")
    assert (agency.kind, agency.id, agency.roles) == (Kind.AGENCY, "AG-1", frozenset({"grantor", "issuer"}))
    assert subject_of(gateway, "robot:x", "") is None
    assert subject_of(gateway, "enterprise:", "") is None
    # Only the delegate names somebody else; an agency key naming an enterprise is refused outright.
    own_key = spec(principal="agency:AG-1", kind="agency", agency_id="AG-1", roles=["grantor"])
    assert subject_of(own_key, "enterprise:913", "") is None
    assert subject_of(own_key, "", "") == Subject(Kind.AGENCY, "AG-1", frozenset({"grantor"}), "agency:AG-1")
    # Roles named by a caller count only for agencies.
    assert subject_of(gateway, "enterprise:913", "grantor").roles == frozenset()


def test_key_specs_are_checked():
    with pytest.raises(ValueError):
        spec(principal="a", kind="agency")
    with pytest.raises(ValueError):
        spec(principal="a", kind="agency", agency_id="AG", delegate=True)


def test_the_security_doc_shows_the_current_policies():
    from tools import policy_table

    doc = policy_table.DOC.read_text(encoding="utf-8")
    assert policy_table.section(doc) == policy_table.render().strip("\n"), \
        "docs/security.md is stale: run `python -m tools.policy_table`"
