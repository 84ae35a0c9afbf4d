"""The evaluation service's authorization policy as data: every RPC is declared, and the grants say what the
model says (the wire behaviour is in tests/integration/evaluation/test_authorization.py)."""

from __future__ import annotations

import pytest
from yaosu.evaluation.v1 import evaluation_pb2

from services.common.authz import Access, Kind, Owner, Policy, Subject, undeclared
from services.common.errors import NotFound, PermissionDenied
from services.evaluation.app import AUTHORIZATION

POLICY = Policy.load(AUTHORIZATION)
ACCESS = Access(POLICY)
METHODS = [m.name for m in evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].methods]
ACTS = ("PublishPolicy", "SubmitIndicators", "UploadIndicatorCsv", "StartRun", "PublishRun", "RegradeEnterprise",
        "ApproveRegrade")

EVALUATOR = Subject(Kind.AGENCY, "AG-JXJ", frozenset({"evaluator"}), "jxj")
TAX = Subject(Kind.AGENCY, "AG-SW", frozenset({"data_provider"}), "sw")
ADMIN = Subject(Kind.ADMIN, "admin", actor="admin")
REGULATOR = Subject(Kind.REGULATOR, "regulator", actor="regulator")
TRADING = Subject(Kind.SERVICE, "trading", actor="trading")
REGISTRY = Subject(Kind.SERVICE, "registry", actor="registry")
ME = Subject(Kind.ENTERPRISE, "91330106MA2AAAAA01", actor="gateway/enterprise:91330106MA2AAAAA01")


def test_every_rpc_is_declared_and_nothing_else():
    assert undeclared(POLICY, METHODS) == []
    assert set(POLICY.operations) == set(METHODS)


@pytest.mark.parametrize("subject", [ADMIN, REGULATOR, TRADING, REGISTRY, ME, Subject(Kind.PUBLIC, actor="gateway")])
def test_only_agencies_act(subject):
    assert [op for op in ACTS if ACCESS.allows(op, Owner.agency(subject.id), subject=subject)] == []


def test_the_evaluating_agency_runs_and_a_data_provider_submits_as_itself():
    for op in ("PublishPolicy", "StartRun", "PublishRun", "RegradeEnterprise", "ApproveRegrade"):
        assert ACCESS.allows(op, subject=EVALUATOR) and not ACCESS.allows(op, subject=TAX)
    for op in ("SubmitIndicators", "UploadIndicatorCsv"):
        assert ACCESS.allows(op, Owner.agency("AG-SW"), subject=TAX)
        assert not ACCESS.allows(op, Owner.agency("AG-TJ"), subject=TAX)
        assert not ACCESS.allows(op, Owner.agency("AG-JXJ"), subject=EVALUATOR)


def test_an_enterprise_reads_its_own_and_another_is_concealed():
    for op in ("GetEnterpriseResult", "GetEnterpriseReport", "GetIndicatorValues", "CheckEligibility"):
        assert ACCESS.require(op, Owner.enterprise(ME.id), subject=ME, conceal="none") == ME
        with pytest.raises(NotFound):
            ACCESS.require(op, Owner.enterprise("91330106MA2BBBBB02"), subject=ME, conceal="none")
    with pytest.raises(PermissionDenied):
        ACCESS.require("ListResults", subject=ME)


def test_only_trading_asks_as_a_service():
    for op in ("CheckEligibility", "GetEnterpriseResult"):
        assert ACCESS.allows(op, subject=TRADING) and not ACCESS.allows(op, subject=REGISTRY)
    assert [op for op in METHODS if ACCESS.allows(op, subject=TRADING)] == ["GetEnterpriseResult",
                                                                            "CheckEligibility"]
