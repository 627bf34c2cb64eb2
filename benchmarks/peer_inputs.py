"""What the peers of `make bench` load and what every load generator sends, written once per
run under artifacts/bench/peers: the champion's two LightGBM boosters as text files, which
columns each reads, prebuilt feature vectors of real trips (the model's reference rows), the
HTTP bodies (one JSON a line) and the pre-serialized gRPC messages of each system."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from common.paths import ARTIFACTS, ROOT

PEERS = ARTIFACTS / "bench" / "peers"


def write_messages(path: Path, messages: list[bytes]) -> Path:
    """Each message as a 4-byte big-endian length and its bytes (benchmarks.grpcgen reads it)."""
    path.write_bytes(b"".join(struct.pack(">I", len(m)) + m for m in messages))
    return path


def read_messages(path: Path) -> list[bytes]:
    data, out, at = Path(path).read_bytes(), [], 0
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4:at + 4 + n])
        at += 4 + n
    return out


def write_lines(path: Path, bodies: list[dict]) -> Path:
    path.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    return path


def nulls(row: np.ndarray) -> list[float | None]:
    """JSON has no NaN: a missing feature goes as null, which the peers' numpy float64
    conversion turns back into NaN (LightGBM's missing value). gRPC FP64 carries NaN."""
    return [None if np.isnan(v) else float(v) for v in row]


def prepare(tag: str, trips: list[dict], n: int = 2000,
            with_mlserver: bool = True) -> dict[str, Path]:
    """Write every input; returns their paths by name. The MLServer gRPC messages are
    serialized in its own environment (``with_mlserver``)."""
    from service.grpc_gen import taxi_pb2
    from training.model import PER_MILE_TARGETS, TARGETS, column_index, model_columns
    from training.register import load_bundle

    PEERS.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(tag)
    names = model_columns(bundle.columns)
    index = column_index(bundle.columns, names)
    for t in TARGETS:
        shutil.copyfile(bundle.path / f"{t}.txt", PEERS / f"{t}.txt")
    (PEERS / "spec.json").write_text(json.dumps({
        "columns": names, "index": {t: index[t].tolist() for t in TARGETS},
        "eff": names.index("eff_distance"), "per_mile": sorted(PER_MILE_TARGETS)}))
    x = pd.read_parquet(bundle.path / "reference.parquet")[names].to_numpy(dtype="float64")
    x = x[np.random.default_rng(7).permutation(len(x))[:n]]
    vectors = [nulls(row) for row in x]
    dur = x[:, index["duration"]]
    mls = PEERS / "mlserver"
    (mls / "duration").mkdir(parents=True, exist_ok=True)
    (mls / "duration" / "model-settings.json").write_text(json.dumps({
        "name": "duration", "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": str(PEERS / "duration.txt")}}))
    v2 = [{"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, dur.shape[1]],
                       "data": nulls(row)}]} for row in dur]
    spec = PEERS / "mlserver-vectors.json"
    spec.write_text(json.dumps({"model": "duration", "vectors": dur.tolist()}))
    if with_mlserver:
        subprocess.run([str(ROOT / ".bench/mlserver/bin/python"),
                        str(ROOT / "benchmarks/peers/mlserver/requests.py"), str(spec),
                        str(PEERS / "mlserver.msgs")], check=True, timeout=300)
    batches = [{"trips": trips[i:i + 100]} for i in range(0, len(trips) - 99, 100)]
    return {
        "taxi": write_lines(PEERS / "taxi.jsonl", trips),
        "taxi_batch": write_lines(PEERS / "taxi-batch.jsonl", batches),
        "taxi_msgs": write_messages(PEERS / "taxi.msgs", [
            taxi_pb2.PredictRequest(**t).SerializeToString() for t in trips]),
        "vector": write_lines(PEERS / "vector.jsonl", [{"instances": [v]} for v in vectors]),
        "v2": write_lines(PEERS / "v2.jsonl", v2),
        "mlserver_msgs": PEERS / "mlserver.msgs",
        "model_dir": PEERS, "mlserver_dir": mls,
    }
