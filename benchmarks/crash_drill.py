"""Worker crash drill: SIGKILL one serving worker under steady HTTP and gRPC load.

Measures what a crash costs the ride app:
* **cold start of a worker**: from the replacement process's start (first seen by a 10 ms poll) to
  the first answer after the kill (with one worker, only the replacement can answer), and to
  its gRPC listener (grpc.aio binds once the model is loaded: it is the worker's own
  readiness, seen from outside even when another worker answers meanwhile), with the CPU
  time the replacement used until then (what a busy machine cannot hide);
* **failed requests** against **requests in flight** at the kill, per protocol (with two
  workers the survivor takes new connections, so only the in-flight ones may fail).

    python -m benchmarks.crash_drill --workers 1     # cold start
    python -m benchmarks.crash_drill --workers 2     # failures vs in flight

Load is open loop at ``--rate`` per protocol for ``--seconds`` (bounded in time and count), on
loopback only, every request with a 10 s timeout (the service's own request timeout).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field

import grpc
import httpx
import psutil
import typer

WORKER_MODULE = "_bentoml_impl.worker.service"
TIMEOUT_S = 10.0


def worker_pids(arbiter_pid: int) -> set[int]:
    """The BentoML HTTP workers under a `bentoml serve` process."""
    out = set()
    for proc in psutil.Process(arbiter_pid).children(recursive=True):
        try:
            if WORKER_MODULE in " ".join(proc.cmdline()):
                out.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def listens_on(pid: int, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                   for c in psutil.Process(pid).net_connections(kind="tcp"))
    except psutil.NoSuchProcess:
        return False


@dataclass
class Report:
    workers: int
    rate_per_protocol: float
    sent: dict = field(default_factory=lambda: {"http": 0, "grpc": 0})
    failed: dict = field(default_factory=lambda: {"http": 0, "grpc": 0})
    # answered from the model's fallback features (Redis slower than its budget): not failed
    degraded: dict = field(default_factory=lambda: {"http": 0, "grpc": 0})
    in_flight_at_kill: dict = field(default_factory=dict)
    # (protocol, sent and failed in seconds after the kill, why)
    failures: list = field(default_factory=list)
    kill_to_spawn_s: float | None = None
    spawn_to_first_http_s: float | None = None
    spawn_to_first_grpc_s: float | None = None
    spawn_to_grpc_listen_s: float | None = None
    cpu_s_to_grpc_listen: float | None = None  # the replacement's own CPU time until then

    def summary(self) -> str:
        return json.dumps(asdict(self) | {"failures": self.failures[:20]}, indent=1)


class Drill:
    def __init__(self, http_url: str, grpc_target: str, trips: list[dict]):
        from service.grpc_gen import taxi_pb2

        self.http_url, self.grpc_target = http_url, grpc_target
        self.bodies = itertools.cycle([json.dumps(t).encode() for t in trips])
        self.msgs = itertools.cycle([taxi_pb2.PredictRequest(**t).SerializeToString()
                                     for t in trips])
        self.method = ("/" + taxi_pb2.DESCRIPTOR.services_by_name["TripPredictor"].full_name
                       + "/Predict")
        self.outstanding = {"http": 0, "grpc": 0}
        self.answers: list[tuple[str, float]] = []  # (protocol, monotonic time) of each answer
        self.kill_at: float | None = None

    async def _one(self, proto: str, call, report: Report) -> None:
        self.outstanding[proto] += 1
        report.sent[proto] += 1
        sent = time.monotonic()
        try:
            if await call():
                report.degraded[proto] += 1
            self.answers.append((proto, time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - every failure is counted and kept
            report.failed[proto] += 1
            kill = self.kill_at
            report.failures.append((
                proto, None if kill is None else round(sent - kill, 3),
                None if kill is None else round(time.monotonic() - kill, 3),
                f"{type(exc).__name__}: {exc}"[:160]))
        finally:
            self.outstanding[proto] -= 1

    async def _load(self, proto: str, call, rate: float, seconds: float,
                    report: Report) -> None:
        tasks, start = [], time.monotonic()
        for i in range(int(rate * seconds)):  # bounded in count and so in time
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(proto, call, report)))
        await asyncio.gather(*tasks)

    async def run(self, arbiter_pid: int, grpc_port: int, workers: int, rate: float,
                  seconds: float, kill_after: float) -> Report:
        from service.grpc_gen import taxi_pb2

        reply_type = taxi_pb2.Prediction
        report = Report(workers=workers, rate_per_protocol=rate)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        channels = [grpc.aio.insecure_channel(
            self.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(4)]
        stubs = itertools.cycle([c.unary_unary(self.method) for c in channels])
        async with httpx.AsyncClient(base_url=self.http_url, limits=limits,
                                     timeout=TIMEOUT_S) as client:
            async def http_call() -> bool:
                r = await client.post("/predict", content=next(self.bodies),
                                      headers={"content-type": "application/json"})
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code} {r.text[:80]}")
                return bool(r.json().get("degraded"))

            async def grpc_call() -> bool:
                return bool(reply_type.FromString(
                    await next(stubs)(next(self.msgs), timeout=TIMEOUT_S)).degraded)

            loads = [asyncio.create_task(self._load("http", http_call, rate, seconds, report)),
                     asyncio.create_task(self._load("grpc", grpc_call, rate, seconds, report))]
            await asyncio.sleep(kill_after)
            await self._kill_and_watch(arbiter_pid, grpc_port, report,
                                       deadline=time.monotonic() + seconds + TIMEOUT_S)
            await asyncio.gather(*loads)
        for c in channels:
            await c.close()
        return report

    async def _kill_and_watch(self, arbiter_pid: int, grpc_port: int, report: Report,
                              deadline: float) -> None:
        before = worker_pids(arbiter_pid)
        victim = min(before)
        report.in_flight_at_kill = dict(self.outstanding)
        os.kill(victim, signal.SIGKILL)
        self.kill_at = killed = time.monotonic()
        new = None
        while new is None and time.monotonic() < deadline:
            fresh = worker_pids(arbiter_pid) - before
            new = min(fresh) if fresh else None
            await asyncio.sleep(0.01)
        if new is None:
            return
        # first seen by this 10 ms poll (psutil's create_time rests on the boot time, which
        # /proc gives to the whole second: up to 1 s off)
        spawned = time.monotonic()
        report.kill_to_spawn_s = round(spawned - killed, 3)
        while time.monotonic() < deadline and not listens_on(new, grpc_port):
            await asyncio.sleep(0.02)
        if listens_on(new, grpc_port):
            report.spawn_to_grpc_listen_s = round(time.monotonic() - spawned, 3)
            cpu = psutil.Process(new).cpu_times()
            report.cpu_s_to_grpc_listen = round(cpu.user + cpu.system, 3)
        if report.workers == 1:
            for proto in ("http", "grpc"):
                first = next((t for p, t in self.answers if p == proto and t > spawned), None)
                while first is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                    first = next((t for p, t in self.answers if p == proto and t > spawned),
                                 None)
                if first is not None:
                    setattr(report, f"spawn_to_first_{proto}_s", round(first - spawned, 3))


def main(workers: int = typer.Option(2, min=1, max=4), rate: float = typer.Option(
        100.0, help="requests per second on each protocol"),
         seconds: float = typer.Option(30.0, max=300), kill_after: float = 5.0) -> None:
    """Serve the champion (compiled trees) on the bundled sample's features and run the drill."""
    from benchmarks.bench import real_trips
    from common.paths import ARTIFACTS, FEATURE_REPO
    from common.redis_local import redis_url_or_local
    from service.launcher import serve, stop
    from training import store
    from training.register import resolve_tag

    tag = resolve_tag(os.environ.get("TAXI_MODEL_TAG", "taxi_trip:champion"))
    logs = ARTIFACTS / "crash-drill"
    logs.mkdir(parents=True, exist_ok=True)
    trips = real_trips(500)
    with redis_url_or_local() as redis_url:
        fs = store.open_store(FEATURE_REPO, redis_url)
        store.apply(fs)
        store.materialize(fs)
        env = {"REDIS_URL": redis_url, "TAXI_MODEL_TAG": tag, "TAXI_WORKERS": str(workers)}
        served = serve("service.service:TaxiService", env, logs / "service.log")
        try:
            drill = Drill(served.http, served.grpc, trips)
            report = asyncio.run(drill.run(served.proc.pid, int(served.grpc.rsplit(":", 1)[1]),
                                           workers, rate, seconds, kill_after))
        finally:
            stop(served)
    print(report.summary())
    print(f"load average {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    typer.run(main)
