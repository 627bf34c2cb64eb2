"""Training throughput and memory, stage by stage (``make bench-train``).

    python -m benchmarks.train_bench --data DIR [--tile 10] [--engine bounded|memory]

Prints one row per stage (rows, wall and CPU seconds, rows/s, peak RSS) and the accuracy on
the evaluation month, and writes them as JSON. ``--tile N`` first writes N replicas of every
input file (``*-rNN.parquet``, each row marked with its ``replica`` number): replicated real
rows, not new trips; timestamps are kept, so months, weekdays and hours stay true and every
replica lands in the same windows. Timing depends on the machine's load: the JSON records
``os.getloadavg()`` before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def tile(files: list[Path], copies: int, out: Path) -> list[Path]:
    """``copies`` replicas of each file, one file each, marked by a ``replica`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    tiled = []
    for f in files:
        table = pq.read_table(f)
        for r in range(copies):
            target = out / f"{f.stem}-r{r:02d}.parquet"
            if not target.exists():
                pq.write_table(table.append_column("replica", pa.array(
                    [r] * table.num_rows, pa.int16())), target)
            tiled.append(target)
    return tiled


def _memory_prepare(meter, files, zones, repo, redis_url, out_dir):
    """pipeline.prepare's steps, each metered: the in-memory engine (``--engine memory``)."""
    import pandas as pd

    from training import pipeline as p
    from training import store as fstore
    from training.data import read_trips
    from training.features import (
        FeatureConfig,
        add_trip_columns,
        compute_feature_tables,
        load_zones,
        with_request_inputs,
        write_feature_tables,
    )
    from training.model import ZoneGeo

    with meter.stage("ingest") as s:
        raw = pd.concat([read_trips(f) for f in files], ignore_index=True)
        s.rows = len(raw)
    with meter.stage("validate") as s:
        result = p.validate(raw)
        s.rows = len(raw)
    del raw
    with meter.stage("features") as s:
        tables = compute_feature_tables(result.clean)
        write_feature_tables(tables, fstore.data_dir(repo))
        s.rows = len(result.clean)
    with meter.stage("feast apply+materialize") as s:
        fs = fstore.open_store(repo, redis_url)
        fstore.apply(fs)
        fstore.materialize(fs)
        s.rows = sum(len(t) for t in tables.values())
    with meter.stage("feast point-in-time join") as s:
        trips = add_trip_columns(result.clean).reset_index(drop=True)
        geo = ZoneGeo(load_zones(zones))
        trips = with_request_inputs(trips, geo)
        joined = p.point_in_time_features(fs, trips)
        trips = pd.concat([trips, joined[[c for c in joined if c not in trips]]], axis=1)
        s.rows = len(trips)
    return p.Prepared(p.dataset_version(files, FeatureConfig()), trips, p.feast_columns(fs),
                      {**result.summary, "files": [f.name for f in files]}, tables, files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tile", type=int, default=1, help="replicas of every file")
    ap.add_argument("--engine", choices=("bounded", "memory"), default="bounded")
    ap.add_argument("--eval-month", default="2023-02")
    ap.add_argument("--train-from", default="2022-01")
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"bench-train: no data at {args.data}. It needs TLC trip files, e.g. the shared "
              "eight months (../shared/data/tlc) or `python -m training download`; skipped.",
              file=sys.stderr)
        return 2

    import shutil

    from common.paths import FEATURE_REPO, ZONES_CSV
    from common.redis_local import redis_url_or_local
    from training.bounded import prepare_bounded
    from training.meter import Meter
    from training.pipeline import discover, train_and_evaluate
    from training.register import save_model
    from training.train import TrainConfig, fit_lightgbm

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.setdefault("BENTOML_HOME", str(work / "bentoml"))
    repo = work / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(FEATURE_REPO / name, repo / name)
    files = discover([args.data])
    if args.tile > 1:
        tile(files, args.tile, work / "tiled")
        files = discover([work / "tiled"])
    load_before, start = os.getloadavg(), time.monotonic()
    meter, cfg, fit_s = Meter(log=lambda line: print(line, flush=True)), TrainConfig(), [0.0]

    def timed_fit(*a, **kw):
        t = time.monotonic()
        try:
            return fit_lightgbm(*a, **kw)
        finally:
            fit_s[0] += time.monotonic() - t

    with redis_url_or_local() as redis_url:
        if args.engine == "bounded":
            prep = prepare_bounded(files, ZONES_CSV, repo, redis_url, work / "out",
                                   args.eval_month, args.train_from, meter=meter)
        else:
            prep = _memory_prepare(meter, files, ZONES_CSV, repo, redis_url, work / "out")
    with meter.stage("train+evaluate") as s:
        trained = train_and_evaluate(prep, args.eval_month, cfg, args.train_from, fit=timed_fit)
        s.rows = sum(i["rows_fit"] + i["rows_holdout"] for i in trained["fit"].values())
    with meter.stage("register") as s:
        save_model(trained, prep, cfg.as_dict(), ZONES_CSV)
        s.rows = len(trained["test"])
    # the kernel's own peaks: resident (VmHWM) and address space (VmPeak, what
    # `prlimit --as` caps, and which runs well above RSS: thread stacks and arenas)
    vm = {k: int(v.split()[0]) // 1024 for k, v in (
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        if k in ("VmHWM", "VmPeak")}
    mae = {t: round(m["lightgbm+features"]["overall"]["mae"], 4)
           for t, m in trained["evaluation"].items()}
    result = {"engine": args.engine, "files": len(files), "tile": args.tile,
              "rows_in": prep.validation_summary["rows_in"], "stages": meter.as_dicts(),
              "train_fit_s": round(fit_s[0], 1), "wall_s": round(time.monotonic() - start, 1),
              "peak_rss_mb": round(meter.peak_rss_mb), "vm_hwm_mib": vm.get("VmHWM"),
              "vm_peak_mib": vm.get("VmPeak"), "mae": mae,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    print(meter.markdown())
    print(f"\n{result['rows_in']:,} raw rows, {len(files)} files, engine {args.engine}: "
          f"{result['wall_s']} s wall ({result['train_fit_s']} s in LightGBM fits), peak RSS "
          f"{result['peak_rss_mb']} MB (VmHWM {vm.get('VmHWM')} MiB, VmPeak {vm.get('VmPeak')} "
          f"MiB); MAE duration {mae['duration']} min, fare ${mae['fare']};"
          f" load average {load_before[0]:.1f} -> {result['loadavg_after'][0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
