"""Service health for the dashboard, read from the services' own Prometheus endpoints."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

CLIENT_FAULTS = {"OK", "InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition", "PermissionDenied",
                 "Unauthenticated", "Aborted", "OutOfRange"}


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    up: bool
    requests: float = 0.0
    errors: float = 0.0
    mean_latency_ms: float = 0.0
    # Bids above the price collar their bidders confirmed (trading; sealed sales count at the opening).
    high_price_bids: float = 0.0


def summarise(name: str, text: str) -> ServiceHealth:
    requests = errors = latency_sum = latency_count = high_price_bids = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "grpc_server_handled_total":
                requests += sample.value
                if sample.labels.get("grpc_code") not in CLIENT_FAULTS:
                    errors += sample.value
            elif sample.name == "grpc_server_handling_seconds_sum":
                latency_sum += sample.value
            elif sample.name == "grpc_server_handling_seconds_count":
                latency_count += sample.value
            elif sample.name == "trading_price_collar_confirmations_total":
                high_price_bids += sample.value
    mean = 1000 * latency_sum / latency_count if latency_count else 0.0
    return ServiceHealth(name, True, requests, errors, round(mean, 2), high_price_bids)


async def read_all(urls: dict[str, str]) -> list[ServiceHealth]:
    found = []
    async with httpx.AsyncClient(timeout=1.5) as client:
        for name, url in urls.items():
            try:
                reply = await client.get(url)
                reply.raise_for_status()
                found.append(summarise(name, reply.text))
            except (httpx.HTTPError, ValueError):
                found.append(ServiceHealth(name, False))
    return found
