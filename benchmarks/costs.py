"""In-process costs `make bench` prints beside the served numbers: the prediction log's
record call and both boosters, LightGBM against compiled."""

from __future__ import annotations

import asyncio
import statistics
import time


def record_cost_us(redis_url: str, n: int = 20_000) -> float:
    """Median cost of PredictionLog.record for one trip, the only part on the request path."""
    import numpy as np

    from service.predlog import PredictionLog

    async def run() -> float:
        names = [f"c{j}" for j in range(34)]
        log = PredictionLog(redis_url, "bench", "bench", names, capacity=n + 1)
        vec, one = np.zeros((1, len(names))), np.ones(1)
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


def model_costs(tag: str) -> dict:
    """Both boosters on the model's reference rows (real trips), in this process: median ms
    for one trip and for 100, LightGBM against the compiled trees (training/compile.py)."""
    import numpy as np
    import pandas as pd

    from training.model import column_index, model_columns, predict_matrix
    from training.register import load_bundle

    out = {}
    for compiled in (False, True):
        bundle = load_bundle(tag, compiled=compiled)
        names = model_columns(bundle.columns)
        x = np.ascontiguousarray(pd.read_parquet(bundle.path / "reference.parquet")[names]
                                 .to_numpy(dtype="float64"))
        index, eff = column_index(bundle.columns, names), names.index("eff_distance")
        for n, rounds in ((1, 2000), (100, 40)):
            times = []
            for i in range(rounds):
                rows = x[(i * n) % (len(x) - n):][:n]
                start = time.perf_counter()
                predict_matrix(bundle.boosters, index, rows, rows[:, eff])
                times.append(time.perf_counter() - start)
            out[f"{bundle.engine}_{n}_ms"] = statistics.median(times) * 1000
    return out
