"""Settings shared by every service. Built in each composition root, never at import."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrincipalSpec(BaseModel):
    """Who an API key speaks for (services.common.authz).

    kind: admin, service, agency or regulator. A service key with `delegate` (the gateway) names the end
    user of each call in `x-on-behalf-of`; an agency key names its agency and that agency's roles.
    """

    principal: str
    kind: Literal["admin", "service", "agency", "regulator"]
    agency_id: str = ""
    roles: list[str] = Field(default_factory=list)
    delegate: bool = False

    @model_validator(mode="after")
    def _agency_named(self) -> PrincipalSpec:
        if self.kind == "agency" and not self.agency_id:
            raise ValueError(f"the agency key of {self.principal} must name its agency_id")
        if self.delegate and self.kind != "service":
            raise ValueError("only a service key may act as a delegate")
        return self


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    service_name: str = "yaosu"
    log_level: str = "INFO"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    metrics_port: int = 0
    database_url: str = "sqlite+aiosqlite:///.data/service.db"
    nats_url: str = "nats://127.0.0.1:4233"
    # A JSON file {"<sha256 hex of key>": {"principal": "...", "kind": "...", ...}}: PrincipalSpec.
    api_keys_file: Path | None = None
    # Inline alternative for tests and containers: the same mapping as JSON text.
    api_keys_json: str | None = None
    # The key this service presents when it calls another service.
    service_api_key: str = ""
    # JetStream stream replicas: 1 on one machine, 3 on a three-node NATS cluster.
    nats_stream_replicas: int = 1
    # OTLP/gRPC endpoint of a trace collector (e.g. http://127.0.0.1:4317); empty = tracing off.
    otel_exporter_otlp_endpoint: str = ""
    shutdown_grace_seconds: float = 5.0
    outbox_poll_seconds: float = 0.5

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # Accept the plain scheme operators are used to and pick the async driver ourselves.
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    def api_keys(self) -> dict[str, PrincipalSpec]:
        raw: dict[str, dict] = {}
        if self.api_keys_file and self.api_keys_file.exists():
            raw.update(json.loads(self.api_keys_file.read_text(encoding="utf-8")))
        if self.api_keys_json:
            raw.update(json.loads(self.api_keys_json))
        return {digest: PrincipalSpec.model_validate(spec) for digest, spec in raw.items()}


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
