"""Pure domain of the evaluation service: no I/O, no gRPC, no database.

Imports only the standard library, pydantic, yaml and numpy.
"""

from .bulk import CLASS_CODES, BulkResult, BulkRollup, evaluate_bulk
from .classification import ClassCounts, class_counts
from .columns import EnterpriseColumns, columns_from_records
from .digest import canonical, sha256_of
from .eligibility import SALE_KINDS, EligibilityDecision, decide_eligibility
from .engine import RunProgress, prior_year_from_run, run_evaluation
from .errors import (
    EvaluationError,
    FieldViolation,
    InputError,
    OverrideError,
    PolicyError,
    RowViolation,
    UnknownSaleKind,
)
from .hints import ImprovementHint, improvement_hints
from .override import ManualOverride, apply_override, apply_override_to_run
from .policy import Policy, load_policy
from .records import EnterpriseYear, PriorYear, validate_records
from .results import (
    AppliedAdjustment,
    AppliedMeasure,
    EnterpriseResult,
    EvaluationRun,
    IndicatorResult,
    PoolKey,
    PoolSummary,
    Rollup,
    RuleFiring,
)
from .scoring import ScoreOutcome, indicator_value, score_indicator
from .snapshot import input_digest

__all__ = [
    "CLASS_CODES", "SALE_KINDS", "AppliedAdjustment", "AppliedMeasure", "BulkResult", "BulkRollup", "ClassCounts",
    "EligibilityDecision", "EnterpriseColumns", "EnterpriseResult", "EnterpriseYear", "EvaluationError",
    "EvaluationRun", "FieldViolation", "RunProgress", "ImprovementHint", "IndicatorResult", "InputError", "ManualOverride",
    "OverrideError", "Policy", "PolicyError", "PoolKey", "PoolSummary", "PriorYear", "Rollup", "RowViolation",
    "RuleFiring", "ScoreOutcome", "UnknownSaleKind", "apply_override", "apply_override_to_run", "canonical",
    "class_counts", "columns_from_records", "decide_eligibility", "evaluate_bulk", "improvement_hints",
    "indicator_value", "input_digest", "load_policy", "prior_year_from_run", "run_evaluation", "score_indicator",
    "sha256_of", "validate_records",
]
