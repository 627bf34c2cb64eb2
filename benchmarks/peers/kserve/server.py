"""KServe peer: a ``kserve.Model`` serving both boosters on a prebuilt vector (v1 protocol).

Runs in its own environment (.bench/kserve, from this folder's uv.lock). Usage:
``python server.py --model_dir DIR --http_port P --grpc_port G``; DIR holds duration.txt,
fare.txt and spec.json (written by benchmarks.peer_inputs). No feature fetch.
"""

import argparse
import json
from pathlib import Path

import kserve
import lightgbm as lgb
import numpy as np
from kserve import model_server


class TaxiBoosters(kserve.Model):
    def __init__(self, name: str, model_dir: Path):
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        spec = json.loads((self.model_dir / "spec.json").read_text())
        self.index = {t: np.asarray(i, dtype="intp") for t, i in spec["index"].items()}
        self.eff, self.per_mile = spec["eff"], set(spec["per_mile"])
        self.boosters = {t: lgb.Booster(model_file=str(self.model_dir / f"{t}.txt"))
                         for t in self.index}
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        x = np.asarray(payload["instances"], dtype="float64")
        out = {}
        for t, booster in self.boosters.items():
            pred = booster.predict(x[:, self.index[t]], num_threads=1)
            out[t] = pred * x[:, self.eff] if t in self.per_mile else pred
        return {"predictions": [{"duration_seconds": float(d), "fare_usd": float(f)}
                                for d, f in zip(out["duration"], out["fare"])]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", type=Path, required=True)
    args, _ = parser.parse_known_args()
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port,
                       workers=1).start([TaxiBoosters("taxi", args.model_dir)])
