"""The floor a user writes by hand: FastAPI + uvicorn calling both LightGBM boosters on a
prebuilt vector (no feature fetch, no validation beyond FastAPI's, no metrics, no log).

Runs in its own environment (.bench/fastapi, from this folder's uv.lock):
``TAXI_PEER_MODEL_DIR=DIR uvicorn app:app --app-dir benchmarks/peers/fastapi``.
"""

import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model_dir = Path(os.environ["TAXI_PEER_MODEL_DIR"])
spec = json.loads((model_dir / "spec.json").read_text())
index = {t: np.asarray(i, dtype="intp") for t, i in spec["index"].items()}
boosters = {t: lgb.Booster(model_file=str(model_dir / f"{t}.txt")) for t in index}
app = FastAPI()


class Vectors(BaseModel):
    instances: list[list[float | None]]  # null: a missing feature


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.post("/predict")
def predict(body: Vectors) -> dict:
    x = np.asarray(body.instances, dtype="float64")
    out = {t: b.predict(x[:, index[t]], num_threads=1) for t, b in boosters.items()}
    duration = out["duration"] * x[:, spec["eff"]]
    return {"predictions": [{"duration_seconds": float(d), "fare_usd": float(f)}
                            for d, f in zip(duration, out["fare"])]}
