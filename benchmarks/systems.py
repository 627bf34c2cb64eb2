"""The systems `make bench` puts side by side, each started pinned to the server core:
taxi-serve (BentoML, features from Redis, both compiled boosters) and its peers, each in its
own environment under .bench/ (benchmarks/peers/<name>/uv.lock), serving the champion's
LightGBM boosters on a prebuilt vector: KServe ModelServer, MLServer's LightGBM runtime, and
a bare FastAPI + uvicorn app."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.paths import ROOT
from common.redis_local import terminate
from service.launcher import free_port, serve, stop

LEGEND = ("per request: taxi-serve validates the trip, reads its features from Redis (4 HMGETs, "
          "one round trip), builds the model row, runs both compiled boosters, records "
          "metrics and the prediction log; the peers run LightGBM on a prebuilt vector of the "
          "same model columns (KServe and FastAPI both boosters, MLServer the duration one) "
          "and fetch no features. HTTP rows: wrk over 16 connections, so at most 16 requests "
          "wait; when a server cannot keep up, achieved req/s falls below the offered rate. "
          "gRPC rows: no such bound, so the queue and the latency grow instead.")


@dataclass
class Endpoint:
    """One row of the side-by-side table: a system over one protocol."""

    system: str
    protocol: str
    per_request: str  # what the system does per request, short (the peers fetch no features)
    http: str | None = None  # URL for wrk
    bodies: Path | None = None
    grpc: tuple[str, str] | None = None  # target, method
    messages: Path | None = None


@dataclass
class Running:
    name: str
    proc: subprocess.Popen
    endpoints: list[Endpoint] = field(default_factory=list)
    stop: object = None

    def close(self) -> None:
        (self.stop or (lambda: terminate(self.proc, timeout=20)))()


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    terminate(proc, timeout=20)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _spawn(cmd: list[str], cpus: str | None, log: Path, env: dict | None = None,
           cwd: Path = ROOT) -> subprocess.Popen:
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def taxi_serve(env: dict, inputs: dict, logs: Path, cpus: str | None) -> Running:
    served = serve("service.service:TaxiService", env, logs / "service.log", cpus=cpus)
    from service.grpc_gen import taxi_pb2

    method = "/" + taxi_pb2.DESCRIPTOR.services_by_name["TripPredictor"].full_name + "/Predict"
    does = "features from Redis + both models"
    return Running("taxi-serve", served.proc, [
        Endpoint("taxi-serve", "HTTP", does, http=f"{served.http}/predict", bodies=inputs["taxi"]),
        Endpoint("taxi-serve", "gRPC", does, grpc=(served.grpc, method),
                 messages=inputs["taxi_msgs"])], stop=lambda: stop(served))


def kserve(inputs: dict, logs: Path, cpus: str | None) -> Running:
    port, grpc_port = free_port(), free_port()
    log = logs / "kserve.log"
    proc = _spawn([str(ROOT / ".bench/kserve/bin/python"),
                   str(ROOT / "benchmarks/peers/kserve/server.py"), "--model_dir",
                   str(inputs["model_dir"]), "--http_port", str(port), "--grpc_port",
                   str(grpc_port), "--enable_grpc", "false"], cpus, log)
    _wait(f"http://127.0.0.1:{port}/v1/models/taxi", proc, log)
    return Running("KServe", proc, [Endpoint(
        "KServe 0.21 ModelServer", "HTTP v1",
        "both models, no feature fetch",
        http=f"http://127.0.0.1:{port}/v1/models/taxi:predict", bodies=inputs["vector"])])


def mlserver(inputs: dict, logs: Path, cpus: str | None) -> Running:
    port, grpc_port, metrics = free_port(), free_port(), free_port()
    # One process like the others: parallel_workers 0 keeps inference in the server process
    # (the default hands each request to a worker process through a queue).
    (inputs["mlserver_dir"] / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port,
        "metrics_port": metrics, "parallel_workers": 0, "debug": False}))
    log = logs / "mlserver.log"
    proc = _spawn([str(ROOT / ".bench/mlserver/bin/mlserver"), "start",
                   str(inputs["mlserver_dir"])], cpus, log)
    _wait(f"http://127.0.0.1:{port}/v2/models/duration/ready", proc, log)
    does = "duration model, no feature fetch"
    return Running("MLServer", proc, [
        Endpoint("MLServer 1.7 LightGBM", "HTTP V2", does,
                 http=f"http://127.0.0.1:{port}/v2/models/duration/infer", bodies=inputs["v2"]),
        Endpoint("MLServer 1.7 LightGBM", "gRPC V2", does,
                 grpc=(f"127.0.0.1:{grpc_port}", "/inference.GRPCInferenceService/ModelInfer"),
                 messages=inputs["mlserver_msgs"])])


def fastapi(inputs: dict, logs: Path, cpus: str | None) -> Running:
    port = free_port()
    log = logs / "fastapi.log"
    proc = _spawn([str(ROOT / ".bench/fastapi/bin/uvicorn"), "app:app", "--app-dir",
                   str(ROOT / "benchmarks/peers/fastapi"), "--host", "127.0.0.1", "--port",
                   str(port), "--no-access-log"], cpus, log,
                  env={"TAXI_PEER_MODEL_DIR": str(inputs["model_dir"])})
    _wait(f"http://127.0.0.1:{port}/healthz", proc, log)
    return Running("FastAPI", proc, [Endpoint(
        "FastAPI + uvicorn", "HTTP",
        "both models, no feature fetch",
        http=f"http://127.0.0.1:{port}/predict", bodies=inputs["vector"])])


def check_peers(endpoints: list[Endpoint], model_dir: Path) -> None:
    """Each peer's HTTP answer to the first vector equals LightGBM's here, so every peer
    does the work its row claims (MLServer answers the duration booster's raw output)."""
    import lightgbm as lgb
    import numpy as np

    spec = json.loads((model_dir / "spec.json").read_text())
    for ep in endpoints:
        if ep.http is None or ep.system == "taxi-serve":
            continue
        body = json.loads(ep.bodies.read_text().split("\n", 1)[0])
        got = httpx.post(ep.http, json=body, timeout=10).raise_for_status().json()
        if "inputs" in body:  # V2: the duration booster's columns, raw output
            x = np.array([body["inputs"][0]["data"]], dtype="float64")
            want = {"duration": lgb.Booster(model_file=str(model_dir / "duration.txt"))
                    .predict(x)[0]}
            have = {"duration": got["outputs"][0]["data"][0]}
        else:
            x = np.array(body["instances"], dtype="float64")
            pred = {t: lgb.Booster(model_file=str(model_dir / f"{t}.txt"))
                    .predict(x[:, spec["index"][t]])[0] for t in spec["index"]}
            want = {"duration": pred["duration"] * x[0, spec["eff"]], "fare": pred["fare"]}
            row = got["predictions"][0]
            have = {"duration": row["duration_seconds"], "fare": row["fare_usd"]}
        for t, value in want.items():
            if not np.isclose(have[t], value, rtol=1e-9, atol=0):
                raise RuntimeError(f"{ep.system} {ep.protocol}: {t} {have[t]} != {value}")
