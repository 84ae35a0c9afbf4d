"""The floors the service figures are compared with, measured in the same run on the same machine, once per
client count (cached for the run):

- echo: a bare grpc.aio unary echo server (no interceptors, no database) on a loopback port, in a process
  of its own, driven by the same client code as the services (one grpc.aio channel, N concurrent calls).
- fastapi: a bare FastAPI endpoint under uvicorn, started as the gateway starts (`python -m
  services.gateway`: one process, uvicorn.Server with log_config=None, access_log=False), doing one
  committed insert of one row into a SQLite WAL file with synchronous=FULL (the services' engine,
  services.common.db.make_engine), driven over HTTP/1.1 keep-alive connections by the same lean client as
  the gateway figure.

The servers run as `python -m tests.bench.floors echo PORT` and `python -m tests.bench.floors fastapi PORT DB`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from services.common.natsd import free_port
from tests.bench.harness import OK, Measurement, child, closed_loop, grpc_outcome, show_floor

ECHO_METHOD = "/yaosu.bench.v1.Echo/Echo"
ECHO_PAYLOAD = b"\x0a\x20" + b"k" * 32 + b"\x12\x40" + b"p" * 64 + b"\x1a\x30" + b"q" * 48  # ≈ a write request
_FLOORS: dict[tuple[str, int], Measurement] = {}


# ---------------------------------------------------------------- the servers (child processes)


async def _serve_echo(port: int) -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "yaosu.bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _serve_fastapi(port: int, database: str) -> None:
    import uvicorn
    from fastapi import FastAPI
    from sqlalchemy import text

    from services.common.db import make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS bids "
                                      "(id TEXT PRIMARY KEY, listing TEXT, bidder TEXT, fen INTEGER)"))
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    @app.post("/bids", status_code=201)
    async def insert(body: dict) -> dict:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO bids VALUES (:id, :listing, :bidder, :fen)"),
                                     {"id": str(uuid.uuid4()), "listing": body["listing"],
                                      "bidder": body["credit_code"], "fen": body["price_fen"]})
        return {"ok": True}

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            proxy_headers=False)
    await uvicorn.Server(config).serve()


# ---------------------------------------------------------------- the lean HTTP/1.1 client


class HttpConnection:
    """One keep-alive HTTP/1.1 connection (httpx's pool, not the server, limits at 200 clients)."""

    def __init__(self, base_url: str) -> None:
        self.host_port = base_url.removeprefix("http://").rstrip("/")
        host, _, port = self.host_port.partition(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict, headers: dict[str, str]) -> str:
        """OK for a 2xx answer, else "<status>:<reason of the problem body>"; TRANSPORT:<exception> when the
        connection failed (it is opened again for the next request)."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            status, payload = await self._post(path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.close()
            return f"TRANSPORT:{type(exc).__name__}"
        if 200 <= status < 300:
            return OK
        try:
            reason = json.loads(payload).get("reason", "")
        except (ValueError, AttributeError):
            reason = ""
        return f"{status}:{reason}" if reason else str(status)

    async def _post(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        payload = json.dumps(body).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host_port}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(payload)}\r\n{head}\r\n".encode() + payload)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def wait_http(url: str, running, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if running.process.returncode is not None:
                raise RuntimeError(f"{running.name} exited:\n{running.tail()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer:\n{running.tail()}")
            await asyncio.sleep(0.1)


# ---------------------------------------------------------------- the floors (cached per run)


async def echo_floor(clients: int) -> Measurement:
    """Accepted (= answered) echoes per second at `clients` concurrent calls, and their p50/p99."""
    found = _FLOORS.get(("echo", clients))
    if found is None:
        with tempfile.TemporaryDirectory() as folder:
            port = free_port()
            async with child("echo", ["-m", "tests.bench.floors", "echo", str(port)], {}, Path(folder)) as running:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    await asyncio.wait_for(channel.channel_ready(), 30)
                    echo = channel.unary_unary(ECHO_METHOD)
                    found = await closed_loop(f"echo gRPC {clients} clients", clients,
                                              lambda c, n: grpc_outcome(echo(ECHO_PAYLOAD, timeout=30)))
                if running.process.returncode is not None:
                    raise RuntimeError(f"the echo server exited:\n{running.tail()}")
        _FLOORS[("echo", clients)] = found
        show_floor(found, reused=False)
    else:
        show_floor(found, reused=True)
    return found


async def fastapi_floor(clients: int) -> Measurement:
    """Committed one-row inserts per second through uvicorn + FastAPI at `clients` HTTP connections."""
    found = _FLOORS.get(("fastapi", clients))
    if found is None:
        with tempfile.TemporaryDirectory() as folder:
            port = free_port()
            args = ["-m", "tests.bench.floors", "fastapi", str(port), str(Path(folder) / "floor.db")]
            async with child("fastapi", args, {}, Path(folder)) as running:
                await wait_http(f"http://127.0.0.1:{port}/healthz", running)
                connections = [HttpConnection(f"http://127.0.0.1:{port}") for _ in range(clients)]

                def insert(c: int, n: int):
                    return connections[c].post("/bids", {"listing": f"L{c % 20}", "credit_code": f"C{c}",
                                                         "price_fen": 100_000_000 + n}, {})

                found = await closed_loop(f"FastAPI one-insert {clients} clients", clients, insert)
                for connection in connections:
                    connection.close()
        _FLOORS[("fastapi", clients)] = found
        show_floor(found, reused=False)
    else:
        show_floor(found, reused=True)
    return found


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "echo":
        asyncio.run(_serve_echo(port))
    elif kind == "fastapi":
        asyncio.run(_serve_fastapi(port, sys.argv[3]))
    else:
        raise SystemExit(f"unknown floor server {kind!r}")


if __name__ == "__main__":
    main()
