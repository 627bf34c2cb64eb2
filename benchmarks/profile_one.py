"""Where one prediction's time goes: each stage of the served path, timed in-process on the
service's own objects against a real Redis (real trips in turn, median over many), beside the
served p50 of the same trips over loopback (1 connection, server pinned to core 0, this
process and Redis on core 1). The gap between the two is what no stage here covers: the HTTP
server and BentoML's ASGI layers, the event loop's wake-ups and the loopback round trip.

``python -m benchmarks.profile_one`` (needs the champion model; `make bench` builds it).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import peer_inputs, profile_spy, wrk
from benchmarks.bench import cores, real_trips
from benchmarks.rounds import step
from benchmarks.systems import taxi_serve
from common.paths import ARTIFACTS, FEATURE_REPO
from common.redis_local import LocalRedis
from training import store
from training.register import resolve_tag

out = Console()


def timed(fn: Callable[[int], object], n: int) -> float:
    """Median microseconds of ``fn(i)`` over ``n`` calls."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def atimed(fn, n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        await fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def stages(tag: str, redis_url: str, trips: list[dict], n: int) -> list[tuple[str, float]]:
    import json

    import pydantic_core

    from service.grpc_gen import taxi_pb2
    from service.grpc_server import to_protos, to_trip
    from service.http_app import parse
    from service.predictor import Predictor, local_time
    from service.predlog import PredictionLog
    from service.schemas import TripRequest
    from training.model import predict_matrix
    from training.register import load_bundle

    p = Predictor(load_bundle(tag, compiled=True), redis_url, "stable")
    p.log = PredictionLog(redis_url, p.version, "stable", p.log_columns, capacity=n * 8)
    raws = [json.dumps(t).encode() for t in trips]
    msgs = [taxi_pb2.PredictRequest(**t).SerializeToString() for t in trips]
    parsed = [parse(TripRequest, r) for r in raws]
    k = len(trips)

    def keys(i):
        lt = local_time(parsed[i % k].pickup_datetime)
        t = parsed[i % k]
        return t, lt, [(t.pickup_zone_id, t.dropoff_zone_id, lt.weekday() * 24 + lt.hour)]

    fetched = [await p.features.fetch(keys(i)[2]) for i in range(k)]
    answers = [await p.answer([parsed[i]]) for i in range(k)]

    def model(i):
        t, lt, _ = keys(i)
        return p._model([t], [t.pickup_zone_id], [t.dropoff_zone_id], [lt.hour],
                        [lt.weekday()], [lt], fetched[i % k][0])
    xs = [model(i)[0] for i in range(k)]
    boosters, index, eff = p.bundle.boosters, p._index, p._eff
    ones = answers[0]

    def metrics(i):
        p.metrics.fetched(True, 0.0004)
        p.metrics.predicted(1, True, *model_out[i % k][1:])
        p.requests.observe("http", "/predict", "2xx", 0.001)
    model_out = [model(i) for i in range(k)]

    async def fetch(i):
        await p.features.fetch(keys(i)[2])

    async def answer(i):
        await p.answer([parsed[i % k]])

    rows = [
        ("HTTP body: parse + validate (pydantic-core, TripRequest)",
         timed(lambda i: parse(TripRequest, raws[i % k]), n)),
        ("gRPC request: unmarshal + validate (protobuf, TripRequest)",
         timed(lambda i: TripRequest.model_validate(
             to_trip(taxi_pb2.PredictRequest.FromString(msgs[i % k]))), n)),
        ("request keys: local time, hour of week", timed(keys, n)),
        ("Redis: 4 HMGETs in one round trip + decode (resp.py)", await atimed(fetch, n)),
        ("features -> model matrix (request columns, derive)",
         timed(model, n) - timed(lambda i: predict_matrix(
             boosters, index, xs[i % k], xs[i % k][:, eff]), n)),
        ("both boosters (compiled trees)", timed(lambda i: predict_matrix(
            boosters, index, xs[i % k], xs[i % k][:, eff]), n)),
        ("metrics: 4 Prometheus observations", timed(metrics, n)),
        ("prediction log: PredictionLog.record", timed(lambda i: p.log.record(
            [ones.ids[0]], model_out[i % k][1], model_out[i % k][2], model_out[i % k][0]), n)),
        ("HTTP answer: JSON (pydantic-core)",
         timed(lambda i: pydantic_core.to_json(answers[i % k].rows()[0]), n)),
        ("gRPC answer: Prediction proto + marshal",
         timed(lambda i: to_protos(answers[i % k])[0].SerializeToString(), n)),
        ("whole Predictor.answer (keys, Redis, matrix, boosters, metrics, log)",
         await atimed(answer, n)),
    ]
    await p.log.close()
    await p.features.close()
    return rows


def served(tag: str, redis_url: str, inputs: dict, cpus: str | None, seconds: float,
           rate: float) -> dict:
    """p50 of taxi-serve over loopback, one request at a time, HTTP (wrk) and gRPC; then
    py-spy's on-CPU shares of the worker at ``rate`` per protocol."""
    env = {"REDIS_URL": redis_url, "TAXI_MODEL_TAG": tag, "TAXI_WORKERS": "1"}
    logs = ARTIFACTS / "bench"
    running = taxi_serve(env, inputs, logs, cpus)
    try:
        got = {}
        for ep in running.endpoints:
            step(ep, 2.0, 0.0, 1)
            got[ep.protocol] = statistics.median(
                step(ep, seconds, 0.0, 1)["p50_ms"] for _ in range(3))
        worker = max(descendants(running.proc.pid), key=rss_kb)
        for ep in running.endpoints:
            got[f"spy {ep.protocol}"] = profile_spy.record(
                worker, seconds * 2, logs / f"py-spy-{ep.protocol}.txt",
                lambda ep=ep: step(ep, seconds * 2 + 1, rate, 16))
        return got
    finally:
        running.close()


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        path = Path(f"/proc/{p}/task/{p}/children")
        kids = [int(c) for c in path.read_text().split()] if path.exists() else []
        out += kids
        todo += kids
    return out or [pid]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(n: int = typer.Option(3000, max=100_000, help="calls per stage"),
         seconds: float = typer.Option(5.0, max=60.0, help="each served run (3 per protocol)"),
         rate: float = typer.Option(500.0, help="offered req/s while py-spy samples")) -> None:
    """Print the stage table and the served p50 beside it."""
    wrk.binary()
    tag = resolve_tag(os.environ.get("TAXI_MODEL_TAG", "taxi_trip:champion"))
    cpus, pinning = cores()
    load = os.getloadavg()
    trips = real_trips(2000)
    inputs = peer_inputs.prepare(tag, trips, with_mlserver=False)
    redis = LocalRedis().start()
    try:
        fs = store.open_store(FEATURE_REPO, redis.url)
        store.apply(fs)
        store.materialize(fs)
        import uvloop

        rows = uvloop.run(stages(tag, redis.url, trips, n))
        over = served(tag, redis.url, inputs, cpus, seconds, rate)
    finally:
        redis.stop()
    table = Table(title=f"one prediction, stage by stage (median us of {n}); {pinning}")
    table.add_column("stage")
    table.add_column("us", justify="right")
    for name, us in rows:
        table.add_row(name, f"{us:.1f}")
    out.print(table)
    whole = rows[-1][1]
    for proto, first, last in (("HTTP", 0, -3), ("gRPC", 1, -2)):
        inproc = rows[first][1] + whole + rows[last][1]
        out.print(f"{proto}: served p50 {over[proto] * 1000:.0f} us (1 connection); stages "
                  f"{inproc:.0f} us; server framework, event loop and loopback "
                  f"{over[proto] * 1000 - inproc:.0f} us")
    for proto in ("HTTP", "gRPC"):
        shares = over[f"spy {proto}"]
        out.print(f"py-spy, taxi-serve worker on-CPU samples at {rate:.0f} req/s {proto}: "
                  + "; ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    out.print("load average (1, 5, 15 min) at start " + ", ".join(f"{x:.1f}" for x in load)
              + "; at end " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    typer.run(main)
