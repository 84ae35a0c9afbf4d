from __future__ import annotations

from services.common.config import BaseServiceSettings


class RegistrySettings(BaseServiceSettings):
    service_name: str = "registry"
    grpc_port: int = 50051
    metrics_port: int = 9101
    database_url: str = "sqlite+aiosqlite:///.data/registry.db"
    # Load the demo jurisdiction when the database is empty (make run); off in tests and production.
    demo_data: bool = False
    demo_seed: int = 20261123
    hold_sweep_seconds: float = 5.0
