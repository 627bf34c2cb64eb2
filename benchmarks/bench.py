"""`make bench`: taxi-serve and its peers side by side, over loopback, in one run.

Every server runs on core 0 (``taskset``); this process, the load generators (wrk for HTTP,
benchmarks.grpcgen for gRPC) and Redis on core 1. The systems take turns over rounds and each
row is the median. Then, for taxi-serve alone: a batch of 100 trips, the prediction log's
overhead, in-process model costs, and the naive reference (BentoML defaults, Feast
``get_online_features`` per request) for the saturation ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import peer_inputs, systems, wrk
from benchmarks.costs import model_costs, record_cost_us
from benchmarks.rounds import interleaved, step
from common.paths import ARTIFACTS, FEATURE_REPO, SAMPLE_DIR
from common.redis_local import LocalRedis
from service.launcher import serve, stop
from training import store
from training.register import resolve_tag

out = Console(width=200)  # the table is read from `make bench` output and logs


def real_trips(n: int, seed: int = 7) -> list[dict]:
    """``n`` distinct real February-2023 trips of the bundled sample that pass validation, as
    requests (so features, routes and model paths vary as in real traffic)."""
    from training.data import read_trips
    from training.validate import validate

    clean = validate(read_trips(SAMPLE_DIR / "green_tripdata_2023-02.parquet")).clean
    rows = clean.sample(n, random_state=seed)
    return [{"pickup_zone_id": int(r.pickup_zone_id), "dropoff_zone_id": int(r.dropoff_zone_id),
             "pickup_datetime": r.pickup_local.isoformat(),
             "trip_distance_miles": float(r.trip_distance),
             **({} if not 1 <= r.passenger_count <= 8 else
                {"passenger_count": int(r.passenger_count)})}
            for r in rows.itertuples()]


def rss_mb(pid: int) -> float:
    """Largest RSS among a server process and its descendants (BentoML's are its workers)."""
    best, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return best


def cores() -> tuple[str | None, str]:
    """Servers on core 0, this process (load generators, Redis) on core 1; no pinning on
    a single core."""
    if len(os.sched_getaffinity(0)) < 2:
        return None, "not pinned (1 core)"
    os.sched_setaffinity(0, {1})
    return "0", "servers on core 0; load generators and Redis on core 1"


def interleaved_ab(urls: dict[str, str], bodies: Path, seconds: float, rounds: int) -> dict:
    """Median p50 of each URL, 1 connection back to back, the URLs in turn each round."""
    p50 = {k: [] for k in urls}
    for _ in range(rounds):
        for k, url in urls.items():
            time.sleep(1.0)
            p50[k].append(wrk.run(url, bodies, seconds, 1)["p50_ms"])
    return {k: statistics.median(v) for k, v in p50.items()}


def taxi_extras(env: dict, inputs: dict, logs: Path, cpus, seconds: float, rounds: int,
                clients: int) -> dict:
    """Batch of 100, prediction-log A/B, naive reference: taxi-serve alone."""
    got = {}
    on = serve("service.service:TaxiService", env, logs / "log-on.log", cpus=cpus)
    off = serve("service.service:TaxiService", {**env, "TAXI_PREDLOG_ENABLED": "false"},
                logs / "log-off.log", cpus=cpus)
    try:
        for s in (on, off):
            wrk.run(f"{s.http}/predict", inputs["taxi"], 2, 4)
        ab = interleaved_ab({"on": f"{on.http}/predict", "off": f"{off.http}/predict"},
                            inputs["taxi"], seconds / 2, max(4, rounds))
        got["predlog"] = {"p50_on_ms": ab["on"], "p50_off_ms": ab["off"],
                          "overhead_ms": ab["on"] - ab["off"]}
        batch = [wrk.run(f"{on.http}/predict_batch", inputs["taxi_batch"], seconds / 2, 1)
                 for _ in range(rounds)]
        got["batch"] = {"p50_ms": statistics.median(b["p50_ms"] for b in batch),
                        "p99_ms": statistics.median(b["p99_ms"] for b in batch),
                        "runs": " ".join(f"{b['p50_ms']:.2f}/{b['p99_ms']:.2f}" for b in batch)}
    finally:
        stop(on)
        stop(off)
    naive = serve("benchmarks.naive_service:NaiveTaxi", env, logs / "naive.log", cpus=cpus)
    try:
        wrk.run(f"{naive.http}/predict", inputs["taxi"], 2, 4)
        got["naive"] = {**wrk.run(f"{naive.http}/predict", inputs["taxi"], seconds, clients),
                        "rss_mb": rss_mb(naive.proc.pid)}
    finally:
        stop(naive)
    return got


def main(seconds: float = typer.Option(10.0, max=120.0, help="length of each load step"),
         rates: str = typer.Option("500,1000", help="open-loop offered loads, req/s"),
         clients: int = typer.Option(32, help="closed-loop connections for saturation"),
         connections: int = typer.Option(16, help="open-loop connections (HTTP)"),
         rounds: int = typer.Option(3, min=1, max=9, help="rounds over all systems (median)"),
         peers: bool = typer.Option(True, help="run KServe, MLServer and FastAPI too"),
         workers: int = typer.Option(1, help="taxi-serve workers")) -> None:
    """Run the benchmark and print the tables (also saved to artifacts/bench.json)."""
    tag = resolve_tag(os.environ.get("TAXI_MODEL_TAG", "taxi_trip:champion"))
    logs = ARTIFACTS / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    server_cpus, pinning = cores()
    load_start = os.getloadavg()
    trips = real_trips(2000)
    inputs = peer_inputs.prepare(tag, trips, with_mlserver=peers)
    redis = LocalRedis().start()  # this process's core: the pinning covers Redis too
    running: list[systems.Running] = []
    try:
        fs = store.open_store(FEATURE_REPO, redis.url)
        store.apply(fs)
        store.materialize(fs)
        env = {"REDIS_URL": redis.url, "TAXI_MODEL_TAG": tag, "TAXI_WORKERS": str(workers)}
        running.append(systems.taxi_serve(env, inputs, logs, server_cpus))
        if peers:
            for start in (systems.kserve, systems.mlserver, systems.fastapi):
                running.append(start(inputs, logs, server_cpus))
        endpoints = [e for r in running for e in r.endpoints]
        systems.check_peers(endpoints, inputs["model_dir"])
        for ep in endpoints:  # warm-up: first calls load code paths and fill caches
            step(ep, 2.0, 0.0, 4)
        rows = interleaved(endpoints, [float(r) for r in rates.split(",")], seconds, rounds,
                           connections, log=out.print)
        sat = interleaved(endpoints, [0.0], seconds, 1, clients, log=out.print)
        rss = {r.name: rss_mb(r.proc.pid) for r in running}
        for r in running:
            r.close()
        running = []
        extras = taxi_extras(env, inputs, logs, server_cpus, seconds, rounds, clients)
        extras["predlog"]["record_us"] = record_cost_us(redis.url)
    finally:
        for r in running:
            r.close()
        redis.stop()
    costs = model_costs(tag)
    load_end = os.getloadavg()
    report(tag, workers, pinning, rows + sat, rss, extras, costs, load_start, load_end)
    (ARTIFACTS / "bench.json").write_text(json.dumps(
        {"tag": tag, "workers": workers, "pinning": pinning, "rows": rows + sat, "rss_mb": rss,
         **extras, "model_costs_ms": costs, "load_start": load_start, "load_end": load_end,
         "at": time.time()}, indent=2))


def report(tag, workers, pinning, rows, rss, extras, costs, load_start, load_end) -> None:
    table = Table(title=f"taxi-serve {tag} ({workers} worker) and peers; {pinning}")
    for col in ("system", "protocol", "per request", "offered", "achieved req/s", "p50 ms",
                "p99 ms", "errors", "RSS MB", "load 1m", "rounds p50/p99 ms"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["system"], r["protocol"], r["per_request"], r["offered"],
                      f"{r['achieved']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      str(r["errors"]), f"{rss.get(r['system'].split()[0], 0):.0f}",
                      f"{r['load1']:.1f}", r["runs"])
    out.print(table)
    out.print(systems.LEGEND)
    b, p, n = extras["batch"], extras["predlog"], extras["naive"]
    out.print(f"taxi-serve HTTP batch of 100 (1 connection): p50 {b['p50_ms']:.2f} ms, "
              f"p99 {b['p99_ms']:.2f} ms (rounds {b['runs']})")
    out.print(f"prediction log overhead on /predict p50 (1 connection, interleaved): "
              f"{p['p50_on_ms']:.3f} ms with, {p['p50_off_ms']:.3f} ms without = "
              f"{p['overhead_ms']:+.3f} ms; PredictionLog.record itself "
              f"{p['record_us']:.1f} us per trip")
    out.print("both boosters, one thread, in-process (median ms): 1 trip LightGBM "
              f"{costs.get('lightgbm_1_ms', float('nan')):.3f} / compiled "
              f"{costs.get('compiled_1_ms', float('nan')):.3f}; 100 trips LightGBM "
              f"{costs.get('lightgbm_100_ms', float('nan')):.2f} / compiled "
              f"{costs.get('compiled_100_ms', float('nan')):.2f}")
    sat = next(r["achieved"] for r in rows if r["system"] == "taxi-serve"
               and r["protocol"] == "HTTP" and r["offered"].startswith("closed"))
    out.print(f"saturation vs naive reference (BentoML defaults + Feast per request): "
              f"{sat:.0f} / {n['achieved']:.0f} req/s = {sat / n['achieved']:.1f}x "
              f"(naive p50 {n['p50_ms']:.1f} ms, RSS {n['rss_mb']:.0f} MB)")
    out.print("load average (1, 5, 15 min) at start " + ", ".join(f"{x:.1f}" for x in load_start)
              + "; at end " + ", ".join(f"{x:.1f}" for x in load_end))


if __name__ == "__main__":
    typer.run(main)
