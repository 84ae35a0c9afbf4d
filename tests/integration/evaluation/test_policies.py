"""Policies as data: bundled defaults published at first start, new versions published by administrators,
malformed documents refused field by field, past runs untouched by new versions."""

from __future__ import annotations

import grpc
import pytest
import yaml
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import (
    EVALUATOR,
    READER,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.grpc_errors import field_violations


async def _default_document(evaluation) -> dict:
    response = await evaluation.stub.GetPolicy(pb.GetPolicyRequest(policy_ref="zj-county-default@2025.2"),
                                                metadata=READER)
    return yaml.safe_load(response.document)


async def test_bundled_policies_are_published_at_first_start(evaluation):
    listed = await evaluation.stub.ListPolicies(pb.ListPoliciesRequest(), metadata=READER)
    assert {p.policy_ref for p in listed.policies} == {"zj-county-default@2025.1", "chengdu-like-default@2025.1",
                                                       "zj-county-default@2025.2", "chengdu-like-default@2025.2"}
    latest = await evaluation.stub.GetPolicy(pb.GetPolicyRequest(policy_ref="zj-county-default"), metadata=READER)
    assert latest.policy.version == "2025.2" and latest.policy.jurisdiction_code == "330000"
    assert len(latest.policy.digest) == 64 and "profiles:" in latest.document


async def test_a_new_version_is_published_and_old_runs_keep_theirs(registry, evaluation):
    codes = await register_enterprises(registry.stub, 21)
    await submit(evaluation.stub, [row(code, 2024, **firm_values(i)) for i, code in enumerate(codes)])
    old = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106", year=2024,
                                                             policy_ref="zj-county-default@2025.1"),
                                          metadata=EVALUATOR)).run
    document = await _default_document(evaluation)
    document["version"] = "2026.1"
    document["classification"]["shares"]["above_size"] = {"A": 0.5, "B": 0.3, "C": 0.1, "D": 0.1}
    text = yaml.safe_dump(document, allow_unicode=True)
    publish_key = key()
    published = await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(idempotency_key=publish_key,
                                                                            document=text), metadata=EVALUATOR)
    assert published.policy.policy_ref == "zj-county-default@2026.1" and published.policy.published_by == "jxj:evaluator-1"
    replay = await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(idempotency_key=publish_key,
                                                                         document=text), metadata=EVALUATOR)
    assert replay.policy == published.policy
    latest = await evaluation.stub.GetPolicy(pb.GetPolicyRequest(policy_ref="zj-county-default"), metadata=READER)
    assert latest.policy.version == "2026.1"

    # The version is immutable: another document under the same ref is refused.
    document["classification"]["shares"]["above_size"] = {"A": 0.4, "B": 0.4, "C": 0.1, "D": 0.1}
    with pytest.raises(grpc.aio.AioRpcError) as exists:
        await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(
            idempotency_key=key(), document=yaml.safe_dump(document, allow_unicode=True)), metadata=EVALUATOR)
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS

    new = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                             year=2024), metadata=EVALUATOR)).run
    assert new.policy_ref == "zj-county-default@2026.1"  # empty ref: the default policy's latest version
    assert {c.grade: c.count for c in new.class_counts}["A"] == 10
    again = (await evaluation.stub.GetRun(pb.GetRunRequest(run_id=old.run_id), metadata=READER)).run
    assert (again.policy_ref, again.output_digest) == ("zj-county-default@2025.1", old.output_digest)
    assert {c.grade: c.count for c in again.class_counts}["A"] == 4


async def test_malformed_policies_are_refused_with_one_violation_per_error(evaluation):
    document = await _default_document(evaluation)
    document["version"] = "bad.1"
    document["profiles"]["above_size_zj"]["weights"]["tax_per_mu"] = 35      # weights sum to 105
    document["classification"]["shares"]["below_size"]["D"] = 0.10          # shares sum to 1.05
    document["scoring"]["rounding"] = 9                                      # out of range
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(
            idempotency_key=key(), document=yaml.safe_dump(document, allow_unicode=True)), metadata=EVALUATOR)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(invalid.value)) == {"scoring.rounding"}  # schema errors come before sums
    del document["scoring"]["rounding"]
    with pytest.raises(grpc.aio.AioRpcError) as sums:
        await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(
            idempotency_key=key(), document=yaml.safe_dump(document, allow_unicode=True)), metadata=EVALUATOR)
    assert set(field_violations(sums.value)) == {"profiles.above_size_zj.weights", "classification.shares.below_size"}
    for text, field in (("a: [1, 2", "(document)"), ("- just a list", "(document)"), ("", "document")):
        with pytest.raises(grpc.aio.AioRpcError) as broken:
            await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(idempotency_key=key(), document=text),
                                                metadata=EVALUATOR)
        assert broken.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(broken.value)
    listed = await evaluation.stub.ListPolicies(pb.ListPoliciesRequest(policy_id="zj-county-default"),
                                                metadata=READER)
    assert sorted(p.version for p in listed.policies) == ["2025.1", "2025.2"]
    with pytest.raises(grpc.aio.AioRpcError) as not_admin:
        await evaluation.stub.PublishPolicy(pb.PublishPolicyRequest(idempotency_key=key(), document="x: 1"),
                                            metadata=READER)
    assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await evaluation.stub.GetPolicy(pb.GetPolicyRequest(policy_ref="nope@1"), metadata=READER)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
