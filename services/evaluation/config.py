from __future__ import annotations

from services.common.config import BaseServiceSettings


class EvaluationSettings(BaseServiceSettings):
    service_name: str = "evaluation"
    grpc_port: int = 50052
    metrics_port: int = 9102
    database_url: str = "sqlite+aiosqlite:///.data/evaluation.db"
    # Where the registry answers ListEnterprises / GetEnterprise (REGISTRY_ADDR).
    registry_addr: str = "127.0.0.1:50051"
    # Backfill of the enterprise replica through ListEnterprises: at start, then every this many seconds
    # (the evaluation-registry consumer keeps it current in between).
    registry_sync_seconds: float = 600.0
    # Codes missing from the replica are looked up in the registry directly, at most this many per submission.
    registry_lookup_limit: int = 200
    # The methodology used to validate submissions and for runs that name no policy (latest version).
    default_policy_id: str = "zj-county-default"
    # Load two years of demo indicator data and publish both runs when the database is empty (make run).
    demo_data: bool = False
    demo_seed: int = 20261124
    demo_jurisdiction: str = "330100"
    demo_years: tuple[int, ...] = (2024, 2025)
