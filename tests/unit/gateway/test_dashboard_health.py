"""The dashboard's service health is read from the services' own metrics text: requests, server faults,
latency, and the bids above the price collar their bidders confirmed (the dashboard's 高价确认 alert)."""

from __future__ import annotations

from services.gateway.portal.health import summarise

TRADING_METRICS = """\
# HELP grpc_server_handled_total Completed RPCs.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_method="PlaceBid",grpc_code="OK"} 40.0
grpc_server_handled_total{grpc_method="PlaceBid",grpc_code="FailedPrecondition"} 5.0
grpc_server_handled_total{grpc_method="PlaceBid",grpc_code="Internal"} 1.0
# HELP grpc_server_handling_seconds RPC latency.
# TYPE grpc_server_handling_seconds histogram
grpc_server_handling_seconds_sum{grpc_method="PlaceBid"} 0.46
grpc_server_handling_seconds_count{grpc_method="PlaceBid"} 46.0
# HELP trading_price_collar_confirmations_total Bids above the price collar placed with confirmation.
# TYPE trading_price_collar_confirmations_total counter
trading_price_collar_confirmations_total{mechanism="listing"} 2.0
trading_price_collar_confirmations_total{mechanism="tender"} 1.0
"""


def test_health_counts_faults_latency_and_confirmed_high_price_bids() -> None:
    health = summarise("trading", TRADING_METRICS)
    assert (health.up, health.requests, health.errors) == (True, 46.0, 1.0)  # refusals are not faults
    assert health.mean_latency_ms == 10.0
    assert health.high_price_bids == 3.0


def test_a_service_without_the_collar_has_none() -> None:
    assert summarise("registry", TRADING_METRICS.split("# HELP trading_price")[0]).high_price_bids == 0.0
