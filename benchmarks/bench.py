"""`make bench`: serve the champion on real Redis features and drive it over loopback.

Prints, for HTTP and gRPC: offered load, achieved req/s, p50, p99, errors, worker RSS; a batch
of 100 trips; and the naive reference (BentoML defaults + Feast get_online_features per
request) measured side by side for the saturation ratio.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
from pathlib import Path

import grpc
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.loadgen import closed_loop, http_caller, open_loop
from common.paths import ARTIFACTS, FEATURE_REPO
from common.redis_local import redis_url_or_local
from service.launcher import serve, stop
from training import store
from training.register import resolve_tag

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00",
        "trip_distance_miles": 3.2}
out = Console()


def worker_rss_mb(pid: int) -> float:
    """Largest RSS among the server's descendant processes (the workers)."""
    pids = _children(pid)
    best = 0.0
    for child in pids + [c for p in pids for c in _children(p)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass
    return best


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def grpc_caller(target: str, channels: int):
    """Round-robin over several channels: one HTTP/2 connection would pin every call to one
    server worker (SO_REUSEPORT balances connections, not calls), as a real client pool won't."""
    from service.grpc_gen import taxi_pb2, taxi_pb2_grpc

    pool = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)]
    stubs = [taxi_pb2_grpc.TripPredictorStub(c) for c in pool]
    msg = taxi_pb2.PredictRequest(**TRIP)
    turn = iter(range(1 << 62))

    async def call() -> bool:
        await stubs[next(turn) % len(stubs)].Predict(msg, timeout=5)
        return True

    async def close() -> None:
        for c in pool:
            await c.close()
    return call, close


async def measure(served, seconds: float, rate: float, clients: int) -> list[dict]:
    # The load generator's own full GC passes over this process's big heap (Feast, pandas)
    # would show up as server latency: freeze what is loaded before measuring.
    gc.collect()
    gc.freeze()
    rows = []
    call, close = await http_caller(served.http, "/predict", TRIP, connections=64)
    await closed_loop(call, 4, 2.0)  # warm-up
    rows.append({"protocol": "HTTP", "what": "1 trip",
                 **(await open_loop(call, rate, seconds)).row()})
    rows.append({"protocol": "HTTP", "what": "1 trip",
                 **(await closed_loop(call, clients, seconds)).row()})
    close()
    call, close = await http_caller(served.http, "/predict_batch", {"trips": [TRIP] * 100}, 4)
    rows.append({"protocol": "HTTP", "what": "batch of 100",
                 **(await closed_loop(call, 1, seconds / 2)).row()})
    close()
    call, close_grpc = await grpc_caller(served.grpc, channels=8)
    await closed_loop(call, 4, 2.0)
    rows.append({"protocol": "gRPC", "what": "1 trip",
                 **(await open_loop(call, rate, seconds)).row()})
    rows.append({"protocol": "gRPC", "what": "1 trip",
                 **(await closed_loop(call, clients, seconds)).row()})
    await close_grpc()
    gc.unfreeze()
    return rows


async def predlog_overhead(with_log, without_log, seconds: float) -> dict:
    """p50 of one-at-a-time /predict with and without the prediction log, interleaved in
    rounds so that machine noise hits both alike."""
    p50 = {"on": [], "off": []}
    callers = {}
    for name, served in (("on", with_log), ("off", without_log)):
        callers[name] = await http_caller(served.http, "/predict", TRIP, connections=1)
        await closed_loop(callers[name][0], 1, 1.0)
    for _ in range(4):
        for name in ("on", "off"):
            p50[name].append((await closed_loop(callers[name][0], 1, seconds / 4)).row()["p50_ms"])
    for _, close in callers.values():
        close()
    on, off = statistics.median(p50["on"]), statistics.median(p50["off"])
    return {"p50_on_ms": on, "p50_off_ms": off, "overhead_ms": on - off}


def record_cost_us(tag: str, redis_url: str, n: int = 20_000) -> float:
    """Median cost of PredictionLog.record for one trip, the only part on the request path."""
    import numpy as np

    from service.predlog import PredictionLog

    async def run() -> float:
        names = [f"c{j}" for j in range(34)]
        log = PredictionLog(redis_url, "bench", "bench", names, capacity=n + 1)
        vec, one = {name: np.zeros(1) for name in names}, np.ones(1)
        times = []
        for i in range(n):
            start = time.perf_counter()
            log.record([f"b{i}"], one, one, vec)
            times.append(time.perf_counter() - start)
            if i % 256 == 255:
                await asyncio.sleep(0.002)  # let the flusher write, as a served loop would
        await log.close()
        return statistics.median(times) * 1e6

    return asyncio.run(run())


async def measure_naive(served, seconds: float, clients: int) -> list[dict]:
    call, close = await http_caller(served.http, "/predict", TRIP, connections=clients)
    await closed_loop(call, 4, 2.0)
    row = (await closed_loop(call, clients, seconds)).row()
    close()
    return [{"protocol": "HTTP", "what": "naive reference", **row}]


def main(seconds: float = typer.Option(10.0, help="length of each load step"),
         rate: float = typer.Option(500.0, help="open-loop offered load, req/s"),
         clients: int = typer.Option(32, help="closed-loop concurrency for saturation"),
         workers: int = typer.Option(os.cpu_count() or 2, help="service HTTP workers")) -> None:
    """Run the benchmark and print the table (also saved to artifacts/bench.json)."""
    tag = resolve_tag(os.environ.get("TAXI_MODEL_TAG", "taxi_trip:champion"))
    logs = ARTIFACTS / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    with redis_url_or_local() as redis_url:
        fs = store.open_store(FEATURE_REPO, redis_url)
        store.apply(fs)
        store.materialize(fs)
        env = {"REDIS_URL": redis_url, "TAXI_MODEL_TAG": tag, "TAXI_WORKERS": str(workers)}
        served = serve("service.service:TaxiService", env, logs / "service.log")
        try:
            rss = worker_rss_mb(served.proc.pid)
            rows = asyncio.run(measure(served, seconds, rate, clients))
            rss = max(rss, worker_rss_mb(served.proc.pid))
        finally:
            stop(served)
        served = serve("service.service:TaxiService", env, logs / "service-log-on.log")
        quiet = serve("service.service:TaxiService", {**env, "TAXI_PREDLOG_ENABLED": "false"},
                      logs / "service-log-off.log")
        try:
            overhead = asyncio.run(predlog_overhead(served, quiet, seconds))
        finally:
            stop(served)
            stop(quiet)
        overhead["record_us"] = record_cost_us(tag, redis_url)
        naive = serve("benchmarks.naive_service:NaiveTaxi", env, logs / "naive.log")
        try:
            rows += asyncio.run(measure_naive(naive, seconds, clients))
            naive_rss = worker_rss_mb(naive.proc.pid)
        finally:
            stop(naive)
    table = Table(title=f"taxi-serve {tag}, {workers} workers, load generator on the same "
                        f"{os.cpu_count()}-core machine")
    for col in ("protocol", "what", "offered", "achieved req/s", "p50 ms", "p99 ms", "errors",
                "worker RSS MB"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["protocol"], r["what"], r["offered"], f"{r['achieved']:.0f}",
                      f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", str(r["errors"]),
                      f"{naive_rss if r['what'] == 'naive reference' else rss:.0f}")
    out.print(table)
    out.print(f"prediction log overhead on /predict p50 (1 client, interleaved): "
              f"{overhead['p50_on_ms']:.3f} ms with, {overhead['p50_off_ms']:.3f} ms without = "
              f"{overhead['overhead_ms']:+.3f} ms; PredictionLog.record itself "
              f"{overhead['record_us']:.1f} us per trip")
    http_sat = next(r["achieved"] for r in rows
                    if r["protocol"] == "HTTP" and r["offered"] == "closed")
    naive_sat = rows[-1]["achieved"]
    out.print(f"saturation vs naive reference: {http_sat:.0f} / {naive_sat:.0f} req/s = "
              f"{http_sat / naive_sat:.1f}x")
    (ARTIFACTS / "bench.json").write_text(json.dumps(
        {"tag": tag, "workers": workers, "rows": rows, "worker_rss_mb": rss,
         "naive_rss_mb": naive_rss, "predlog": overhead, "ratio": http_sat / naive_sat,
         "at": time.time()}, indent=2))


if __name__ == "__main__":
    typer.run(main)
