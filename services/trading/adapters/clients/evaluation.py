"""Eligibility answers from the evaluation service (`CheckEligibility`), behind EligibilityPort.

What the answer means for registration:
- the evaluation service decides `allowed` for the listing's sale kind (new_industrial_land,
  energy_use_increment, emission_increment) and names the rule and run that decided;
- its `grade` (A/B/C/D/T) is mapped to the listing's class numbers (1=A … 5=T) so the listing's own
  class gate (`eligibility.allowed_classes`) can be enforced by the registration use case;
- an enterprise the evaluation service has not classified (FAILED_PRECONDITION, reason NOT_EVALUATED or
  UNKNOWN_ENTERPRISE) is refused, with that reason recorded — never silently waved through;
- an unreachable evaluation service is not an answer: registration fails with UNAVAILABLE and the
  bidder retries (same key), rather than being registered without its gate checked.
"""

from __future__ import annotations

import grpc
from yaosu.evaluation.v1 import evaluation_pb2 as pb
from yaosu.evaluation.v1 import evaluation_pb2_grpc

from services.common.errors import DependencyUnavailable
from services.common.grpc_client import error_reason
from services.trading.application.ports import EligibilityAnswer

CLASS_NUMBER = {"A": 1, "B": 2, "C": 3, "D": 4, "T": 5}
# A listing that names no sale kind has no differentiated measure to apply; only its class gate counts.
# The grade is then read through this kind, whose `allowed` is ignored.
GRADE_ONLY_KIND = "new_industrial_land"
REFUSING_REASONS = frozenset({"NOT_EVALUATED", "UNKNOWN_ENTERPRISE"})



class GrpcEvaluation:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 5.0) -> None:
        self.stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self.timeout = timeout

    async def check(self, credit_code: str, sale_kind: str) -> EligibilityAnswer:
        try:
            answer = await self.stub.CheckEligibility(
                pb.CheckEligibilityRequest(credit_code=credit_code, sale_kind=sale_kind or GRADE_ONLY_KIND),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            reason = error_reason(exc)
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and reason in REFUSING_REASONS:
                return EligibilityAnswer(allowed=False, rule=reason, condition=exc.details() or reason)
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                # The listing names a sale kind the evaluation service does not know: a listing error,
                # refused so that nobody registers on an unchecked gate.
                return EligibilityAnswer(allowed=False, rule="EVALUATION_REFUSED_QUESTION",
                                         condition=exc.details() or "")
            raise DependencyUnavailable("the evaluation service is unavailable; retry",
                                        reason="EVALUATION_UNAVAILABLE") from None
        detail = f"grade {answer.grade}"
        if answer.managed_as and answer.managed_as != answer.grade:
            detail += f" (managed as {answer.managed_as})"
        detail += f", run {answer.run_id}, policy {answer.policy_ref}"
        if answer.condition:
            detail += f"; condition: {answer.condition}"
        return EligibilityAnswer(
            allowed=answer.allowed or not sale_kind, condition=detail, priority=answer.priority,
            price_coefficient=answer.price_coefficient or "1", rule=answer.rule, run_id=answer.run_id,
            evaluation_class=CLASS_NUMBER.get(answer.grade, 0))
