"""Container health check: exit 0 when the service in this container answers as serving.

gRPC services: the standard grpc.health.v1 Check on 127.0.0.1:$GRPC_PORT (overall server, service "").
The gateway (SERVICE=gateway): GET http://127.0.0.1:$HTTP_PORT/readyz answers 200.
Used by docker-compose (`python /app/healthcheck.py`); Kubernetes uses its native grpc/httpGet probes.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_S = 3.0


def check_grpc(port: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                          timeout=TIMEOUT_S)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def check_http(port: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_S) as response:
        return response.status == 200


def main() -> int:
    try:
        if os.environ.get("SERVICE") == "gateway":
            ok = check_http(os.environ.get("HTTP_PORT", "8000"))
        else:
            ok = check_grpc(os.environ["GRPC_PORT"])
    except Exception as exc:  # noqa: BLE001 — any failure means "unhealthy"; say why on stderr
        sys.stderr.write(f"unhealthy: {exc!r}\n")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
