"""Sample a served taxi-serve worker with py-spy (its own environment, .bench/profile) while
the load generator holds a fixed rate, and sort its on-CPU samples into the stages of a
prediction by the innermost frame that belongs to one."""

from __future__ import annotations

import collections
import subprocess
import threading
from pathlib import Path

from common.paths import ROOT

PY_SPY = ROOT / ".bench/profile/bin/py-spy"
# (stage, path fragments): the first stage whose fragment is in a frame's file, searched from
# the innermost frame outwards. Order matters only within one frame.
STAGES = [
    ("models: both compiled boosters", ("training/compile.py", "lightgbm/")),
    ("feature matrix: request columns, derive", ("training/model.py", "training/features.py")),
    ("Redis: features (resp.py, decode)", ("service/resp.py", "service/online_features.py",
                                           "hiredis", "feast/")),
    ("metrics (prometheus-client)", ("service/metrics.py", "prometheus_client/")),
    ("prediction log", ("service/predlog.py",)),
    ("validation and JSON (pydantic, http_app)", ("pydantic", "service/schemas.py",
                                                  "service/http_app.py", "json/")),
    ("gRPC: grpc.aio, marshalling, servicer", ("grpc/", "grpc_server.py", "google/protobuf",
                                               "grpc_gen/")),
    ("predictor glue (local time, ids, answers)", ("service/predictor.py",)),
    ("HTTP server: uvicorn, h11/httptools", ("uvicorn/", "h11/", "httptools")),
    ("BentoML and Starlette ASGI layers", ("bentoml/", "_bentoml_impl", "starlette/",
                                           "opentelemetry", "anyio/", "service/service.py",
                                           "slow_clients.py")),
    ("event loop (asyncio/uvloop)", ("asyncio/", "uvloop", "selectors.py")),
]


def stage_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, fragments in STAGES:
            if any(f in frame for f in fragments):
                return name
    return "other (threads, GC, imports)"


def breakdown(raw: Path) -> dict[str, float]:
    """Share of samples per stage, from py-spy's raw (collapsed) output."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[stage_of(stack)] += int(n)
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.most_common()}


def record(pid: int, seconds: float, out: Path, load) -> dict[str, float]:
    """py-spy on ``pid`` for ``seconds`` while ``load()`` runs in a thread."""
    if not PY_SPY.exists():
        raise RuntimeError(f"{PY_SPY} missing: `make bench-peers` installs it")
    driver = threading.Thread(target=load)
    driver.start()
    try:
        subprocess.run([str(PY_SPY), "record", "--pid", str(pid), "--duration",
                        str(int(seconds)), "--rate", "250", "--nonblocking", "--format", "raw",
                        "--output", str(out)], check=True, capture_output=True,
                       timeout=seconds + 60)
    finally:
        driver.join()
    return breakdown(out)
