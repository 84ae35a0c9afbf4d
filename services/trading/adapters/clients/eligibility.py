"""Eligibility answers for registration when no evaluation service is configured (EVALUATION_ADDR empty;
with it, adapters/clients/evaluation.py asks CheckEligibility). `NoEvaluationService` allows registration
when the listing names no class gate and refuses it when one is named — a class gate that cannot be
asked is never silently waived. The answer records why.
"""

from __future__ import annotations

from services.trading.application.ports import EligibilityAnswer

NO_SERVICE_RULE = "no-evaluation-service"


class NoEvaluationService:
    async def check(self, credit_code: str, sale_kind: str) -> EligibilityAnswer:
        return EligibilityAnswer(allowed=True, rule=NO_SERVICE_RULE,
                                 condition="class gates cannot be checked without the evaluation service")
