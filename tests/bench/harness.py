"""What the service benchmarks share: a closed-loop load driver, the measurement it returns, the verdict
line that sets a figure beside its floor and its targets, the summary table of every target of the run,
and services started as their own processes (as deployed: client and server never share an event loop).

A measurement counts ACCEPTED work: an answer is "OK" or "<gRPC code or HTTP status>:<reason>"; refusals
(the service answered no, by a rule) and errors (transport, 5xx, deadlines) are reported apart and never
counted as throughput. Latencies p50/p99 are those of the accepted calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import unicodedata
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_client import error_reason
from services.common.natsd import free_port
from tests.support.services import API_KEYS_JSON, REGISTRY_KEY, TRADING_KEY

ROOT = Path(__file__).resolve().parents[2]
OK = "OK"
# Answers that are failures of the system, not refusals by a rule.
ERROR_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "CANCELLED", "DATA_LOSS", "TRANSPORT")
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "1.5"))
MEASURE_SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CALL_TIMEOUT = 30.0


def is_error(outcome: str) -> bool:
    code = outcome.split(":", 1)[0]
    return code in ERROR_CODES or (code.isdigit() and int(code) >= 500)


@dataclass
class Measurement:
    label: str
    clients: int
    seconds: float
    outcomes: Counter = field(default_factory=Counter)   # every answer in the window, by outcome
    latencies: list[float] = field(default_factory=list)  # seconds, accepted answers only, sorted

    @property
    def accepted(self) -> int:
        return self.outcomes[OK]

    @property
    def answered(self) -> int:
        return sum(self.outcomes.values())

    @property
    def rate(self) -> float:
        """Accepted answers per second."""
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, max(0, int(round(q * len(self.latencies))) - 1))
        return self.latencies[index] * 1000

    @property
    def p50(self) -> float:
        return self.percentile_ms(0.50)

    @property
    def p99(self) -> float:
        return self.percentile_ms(0.99)

    def refusals(self) -> Counter:
        return Counter({k: n for k, n in self.outcomes.items() if k != OK and not is_error(k)})

    def errors(self) -> Counter:
        return Counter({k: n for k, n in self.outcomes.items() if is_error(k)})

    def figures(self) -> str:
        return f"{self.rate:,.0f}/s p50 {self.p50:.1f} ms p99 {self.p99:.1f} ms"

    def apart(self) -> str:
        """The answers that are not accepted work, by reason."""
        refusals, errors = self.refusals(), self.errors()
        share = lambda n: f"{100 * n / self.answered:.1f} %" if self.answered else "-"  # noqa: E731
        parts = [f"{self.answered:,} answered in {self.seconds:.1f} s, {self.accepted:,} accepted"]
        parts.append(f"refused {sum(refusals.values()):,} ({share(sum(refusals.values()))})"
                     + (": " + ", ".join(f"{k} {n}" for k, n in refusals.most_common()) if refusals else ""))
        parts.append(f"errors {sum(errors.values()):,}"
                     + (": " + ", ".join(f"{k} {n}" for k, n in errors.most_common()) if errors else ""))
        return "; ".join(parts)


async def closed_loop(label: str, clients: int, call: Callable[[int, int], Awaitable[str]], *,
                      warmup: float = WARMUP_SECONDS, duration: float = MEASURE_SECONDS) -> Measurement:
    """`clients` concurrent clients, each sending its next call (client index, its call number) as soon as
    the previous one is answered. After `warmup` seconds, the answers that arrive during `duration`
    seconds are the measurement; then each client stops after its call in flight."""
    outcomes: Counter = Counter()
    latencies: list[float] = []
    begin = time.perf_counter()
    t0, t1 = begin + warmup, begin + warmup + duration

    async def client(c: int) -> None:
        n = 0
        while (started := time.perf_counter()) < t1:
            outcome = await call(c, n)
            ended = time.perf_counter()
            n += 1
            if t0 <= ended < t1:
                outcomes[outcome] += 1
                if outcome == OK:
                    latencies.append(ended - started)

    await asyncio.gather(*(client(c) for c in range(clients)))
    latencies.sort()
    return Measurement(label, clients, duration, outcomes, latencies)


async def grpc_outcome(call: Awaitable) -> str:
    """A gRPC call's outcome: OK, or its status code and the ErrorInfo reason of the refusal."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        reason = error_reason(exc)
        return f"{exc.code().name}:{reason}" if reason else exc.code().name
    return OK


# ---------------------------------------------------------------- verdicts and the summary


@dataclass
class Verdict:
    name: str
    rate: float
    p99: float
    floor_name: str
    floor_rate: float
    min_share: float       # percent of the floor
    max_p99: float         # ms

    @property
    def share(self) -> float:
        return 100 * self.rate / self.floor_rate if self.floor_rate else 0.0

    @property
    def share_met(self) -> bool:
        return self.share >= self.min_share

    @property
    def p99_met(self) -> bool:
        return self.p99 <= self.max_p99


RESULTS: list[Verdict] = []


def show_floor(floor: Measurement, reused: bool) -> None:
    again = " (measured earlier in this run, reused)" if reused else ""
    print(f"   floor {floor.label}: {floor.figures()}{again}", flush=True)
    if floor.refusals() or floor.errors():
        print(f"      {floor.apart()}", flush=True)


def judge(name: str, measured: Measurement, floor: Measurement, *, min_share: float, max_p99: float) -> Verdict:
    """Print the figure beside its floor and its targets; keep the verdict for the summary."""
    verdict = Verdict(name, measured.rate, measured.p99, floor.label, floor.rate, min_share, max_p99)
    gap = verdict.share - min_share
    share_text = "met" if verdict.share_met else f"MISSED by {-gap:.1f} pts"
    p99_text = "met" if verdict.p99_met else f"MISSED ({measured.p99:.0f} ms)"
    print(f"   {name}: {measured.figures()} | floor {floor.label}: {floor.rate:,.0f}/s → {verdict.share:.1f} % "
          f"(target ≥ {min_share:.0f} %: {share_text}); p99 target ≤ {max_p99:.0f} ms: {p99_text}", flush=True)
    print(f"      {measured.apart()}", flush=True)
    RESULTS.append(verdict)
    return verdict


def inform(name: str, measured: Measurement, floor: Measurement | None = None) -> None:
    """A figure shown for comparison, without a target."""
    beside = f" | floor {floor.label}: {floor.rate:,.0f}/s → {100 * measured.rate / floor.rate:.1f} %" \
        if floor and floor.rate else ""
    print(f"   {name}: {measured.figures()}{beside} (no target)", flush=True)
    print(f"      {measured.apart()}", flush=True)


def _columns(text: str) -> int:
    """How many terminal columns the text takes (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _columns(text))


def print_summary() -> None:
    if not RESULTS:
        return
    width = max(_columns(v.name) for v in RESULTS)
    floor_width = max(len(v.floor_name) for v in RESULTS)
    print(f"\n== targets ({sum(v.share_met and v.p99_met for v in RESULTS)} of {len(RESULTS)} figures meet both)")
    print(f"   {_pad('figure', width)}  {'accepted/s':>10}  {_pad('floor', floor_width)}  {'floor/s':>8}  "
          f"{'share':>7}  {'target':>6}  {'':6}  {'p99 ms':>7}  {'target':>6}")
    for v in RESULTS:
        print(f"   {_pad(v.name, width)}  {v.rate:>10,.0f}  {_pad(v.floor_name, floor_width)}  {v.floor_rate:>8,.0f}  "
              f"{v.share:>6.1f}%  {'≥' + format(v.min_share, '.0f') + '%':>6}  {'met' if v.share_met else 'MISSED':6}  "
              f"{v.p99:>7.1f}  {'≤' + format(v.max_p99, '.0f'):>6}  {'met' if v.p99_met else 'MISSED'}")
    print("   (floors measured once per client count in this run, on this machine; refusals: each module's lines)",
          flush=True)


# ---------------------------------------------------------------- services in their own processes


def registry_env(database_url: str, nats_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "NATS_URL": nats_url, "API_KEYS_JSON": API_KEYS_JSON,
            "SERVICE_API_KEY": REGISTRY_KEY}


def trading_env(database_url: str, nats_url: str, registry_addr: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "NATS_URL": nats_url, "API_KEYS_JSON": API_KEYS_JSON,
            "SERVICE_API_KEY": TRADING_KEY, "REGISTRY_ADDR": registry_addr, **extra}


@dataclass
class Process:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    port: int = 0
    metrics_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def child(name: str, args: list[str], env: dict[str, str], folder: Path) -> AsyncIterator[Process]:
    """A Python child process (`python <args>`) with the repository on its path, its output in a log file;
    terminated (then killed) on exit."""
    log = folder / f"{name}.log"
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "gen"), str(ROOT)]),
                "LOG_LEVEL": "WARNING", **env}
    with open(log, "ab") as out:
        process = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=ROOT, env=full_env,
                                                       stdout=out, stderr=asyncio.subprocess.STDOUT,
                                                       start_new_session=True)
    running = Process(name, process, log)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_serving(running: Process, service: str = "", timeout: float = 120.0) -> None:
    """Until the child's standard gRPC health service answers SERVING."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if running.process.returncode is not None:
                raise RuntimeError(f"{running.name} exited with {running.process.returncode}:\n{running.tail()}")
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{running.name} did not report SERVING:\n{running.tail()}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def service(name: str, env: dict[str, str], folder: Path) -> AsyncIterator[Process]:
    """`python -m services.<name>` as deployed (one process, its settings from the environment) on free
    ports; yields once it reports SERVING."""
    port, metrics_port = free_port(), free_port()
    async with child(name, ["-m", f"services.{name}"],
                     {"GRPC_PORT": str(port), "METRICS_PORT": str(metrics_port), **env}, folder) as running:
        running.port, running.metrics_port = port, metrics_port
        await wait_serving(running)
        yield running


# ---------------------------------------------------------------- where the time went: the write engines


def _scrape(port: int) -> dict[str, float]:
    """The yaosu_write_* samples of a service's /metrics, by name and labels."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()  # noqa: S310
    samples: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("yaosu_write_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


class EngineWatch:
    """The services' write engines over a measurement: batches, commands per batch, batch time (start →
    commit) and command time (queued → answered), from the yaosu_write_* metrics before and after."""

    def __init__(self, **ports: int) -> None:
        self.ports = ports
        self.before: dict[str, dict[str, float]] = {}
        self.started = time.perf_counter()

    async def start(self) -> None:
        self.before = {name: await asyncio.to_thread(_scrape, port) for name, port in self.ports.items()}
        self.started = time.perf_counter()

    async def report(self) -> None:
        elapsed = time.perf_counter() - self.started
        for name, port in self.ports.items():
            try:
                after = await asyncio.to_thread(_scrape, port)
            except OSError as exc:
                print(f"      {name}: no metrics ({exc})", flush=True)
                continue
            before = self.before.get(name, {})

            def delta(metric: str, engine: str, after: dict = after, before: dict = before) -> float:
                key = f'{metric}{{engine="{engine}"}}'
                return after.get(key, 0.0) - before.get(key, 0.0)

            engines = sorted({k.split('engine="', 1)[1].split('"', 1)[0] for k in after if 'engine="' in k})
            for engine in engines:
                batches = delta("yaosu_write_batch_size_count", engine)
                if not batches:
                    continue
                commands = delta("yaosu_write_batch_size_sum", engine)
                batch_ms = 1000 * delta("yaosu_write_commit_seconds_sum", engine) / batches
                answered = delta("yaosu_write_command_seconds_count", engine)
                command_ms = 1000 * delta("yaosu_write_command_seconds_sum", engine) / answered if answered else 0.0
                busy = 100 * batch_ms * batches / 1000 / elapsed
                print(f"      {name} write engine \"{engine}\" during the load ({elapsed:.1f} s with warm-up and "
                      f"tail): {batches:,.0f} batches of {commands / batches:.1f} commands on average, batch start → "
                      f"commit {batch_ms:.1f} ms mean (batches in progress {busy:.0f} % of the time), queued → "
                      f"answered {command_ms:.1f} ms mean", flush=True)
