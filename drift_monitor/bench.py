"""Benchmark: drift tests of a 1,000-row window against a 5,000-row reference.

``python -m drift_monitor.bench`` (``make drift-bench``). Builds the reference and the windows
from the bundled green 2023-01 sample (31 model-like features), or takes ``--reference`` (e.g.
a real model's reference.parquet; windows are then resampled from it). Prints the detector fit
time once, then median and p95 over repeated evaluations, each on a different window, first fit
excluded: (1) the alibi-detect tests alone, (2) one full ``evaluate_once`` through a private
Redis holding ``scan_entries`` (20,000) entries: read them, decode the window, test, store the
verdict, export metrics.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

app = typer.Typer(add_completion=False)


def _stats(label: str, seconds: list[float]) -> None:
    ms = np.asarray(seconds) * 1e3
    typer.echo(f"{label:<46} n={len(ms):<4} median {np.median(ms):7.1f} ms   "
               f"p95 {np.quantile(ms, 0.95):7.1f} ms   max {ms.max():7.1f} ms")


@app.command()
def main(repeats: int = typer.Option(50, min=5, help="timed evaluations per measurement"),
         window: int = typer.Option(1000, min=10, help="rows per window"),
         reference: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                               help="reference parquet instead of the sample"),
         full: bool = typer.Option(True, help="also time evaluate_once through Redis")) -> None:
    """Print fit time and median/p95 evaluation times."""
    import tempfile

    import pandas as pd
    import redis

    from drift_monitor import sample
    from drift_monitor.detector import PRED_COLUMNS, VersionDetector
    from drift_monitor.settings import DriftSettings

    if reference is None:
        frame = sample.trips("2023-01").sample(frac=1.0, random_state=0).reset_index(drop=True)
        ref, pool = frame.iloc[:5000], frame.iloc[5000:].reset_index(drop=True)
        source = "green 2023-01 sample"
    else:
        ref = pd.read_parquet(reference)
        pool = ref.sample(n=window * (repeats + 1), replace=True, random_state=0)
        pool = pool.reset_index(drop=True)
        source = str(reference)
    columns = [c for c in ref.columns if c not in PRED_COLUMNS.values()]
    categorical = set(sample.CATEGORICAL) | {"hour", "weekday"}
    typer.echo(f"reference {len(ref)} rows x {len(columns)} features ({source}); "
               f"window {window}; {repeats} repeats")
    started = time.perf_counter()
    det = VersionDetector("bench", ref, tuple(columns), categorical, ignore=set(), p_value=0.05,
                          correction="bonferroni", min_category_count=25)
    fit_ms = 1e3 * (time.perf_counter() - started)
    typer.echo(f"{'detector fit (once per model version)':<46} {fit_ms:.1f} ms")
    windows = [pool.iloc[(i * window) % (len(pool) - window):][:window] for i in range(repeats + 1)]
    det.evaluate(windows[0][columns].to_numpy("<f4"), windows[0][list(PRED_COLUMNS.values())]
                 .to_numpy())  # warm-up: scipy's first call builds caches
    times = []
    for w in windows[1:]:
        x, p = w[columns].to_numpy("<f4"), w[list(PRED_COLUMNS.values())].to_numpy()
        times.append(det.evaluate(x, p).duration_s)
    _stats("alibi tests (TabularDrift + KSDrift)", times)
    if not full:
        return
    from common.redis_local import LocalRedis
    from drift_monitor.monitor import Monitor

    server = LocalRedis().start()
    try:
        client = redis.Redis.from_url(server.url)
        with tempfile.TemporaryDirectory() as home:
            sample.write_reference(ref, Path(home), "bench")
            settings = DriftSettings(redis_url=server.url, bentoml_home=Path(home),
                                     window_size=window, min_window=min(200, window))
            monitor = Monitor(settings)
            sample.write_model_hash(client, "bench", columns)
            # a full stream: scan_entries entries, of which the monitor decodes the newest window
            full_stream = pd.concat([pool] * (settings.scan_entries // len(pool) + 1))
            sample.log_predictions(client, full_stream.iloc[:settings.scan_entries], "bench",
                                   columns)
            monitor.evaluate_once()  # fits the detector
            totals = []
            for _ in range(repeats):
                started = time.perf_counter()
                monitor.evaluate_once()
                totals.append(time.perf_counter() - started)
            _stats(f"evaluate_once, {settings.scan_entries} entries in the stream", totals)
            typer.echo("  (evaluate_once = XREVRANGE of the stream + decode + tests + store "
                       "verdict + metrics)")
    finally:
        server.stop()


if __name__ == "__main__":
    app()
