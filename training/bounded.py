"""The offline pipeline's data preparation in bounded memory (``TrainScaleSettings``).

Same steps and results as ``pipeline.prepare``, but no step holds all the trips:

- ingest + validate read ``chunk_rows`` raw rows at a time; each chunk's clean rows and its
  quarantine (with reasons) are written to parquet parts, so every input row lands in one of
  them and the summary is the sum of the chunks' counts (validation rules are row-local);
- feature snapshots are aggregated by DuckDB over the clean parts under a memory limit
  (it spills to disk beyond it), with the same windows, rules and medians as
  ``features.compute_feature_tables``;
- Feast's point-in-time join runs on one clean part at a time (``point_in_time_features``,
  the code the parity tests check) and writes each joined part to parquet;
- training then reads at most ``max_rows`` trips of the training window, newest first: the
  models weigh trips by recency anyway (half-life ``TrainConfig.half_life_days``), so the
  newest trips carry most of the weight a full fit would give; the evaluation month is a
  deterministic uniform sample of at most ``max_rows`` trips (a hash of the trip's source).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from training import store as feast_store
from training.data import normalise
from training.features import (
    TABLES,
    TIMESTAMP,
    FeatureConfig,
    add_trip_columns,
    assemble_tables,
    load_zones,
    snapshot_times,
    with_request_inputs,
    write_feature_tables,
)
from training.model import ZoneGeo
from training.pipeline import (
    Prepared,
    dataset_version,
    feast_columns,
    point_in_time_features,
)
from training.settings import TrainScaleSettings
from training.validate import RULES, RULES_VERSION, validate


def _raw_chunks(path: Path, chunk_rows: int):
    """(first row, raw frame) chunks of one trip file."""
    first = 0
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield first, batch.to_pandas()
            first += batch.num_rows
    else:
        for frame in pd.read_csv(path, chunksize=chunk_rows, low_memory=False):
            yield first, frame
            first += len(frame)


def _fresh(directory: Path) -> Path:
    """An empty directory: parts left by an earlier run (another chunk size, other files)
    must not be read as this run's."""
    if directory.is_dir():
        shutil.rmtree(directory)
    elif directory.exists():
        directory.unlink()  # a single-file quarantine.parquet written before chunking
    directory.mkdir(parents=True)
    return directory


def ingest_validate(files: list[Path], ds_dir: Path, chunk_rows: int,
                    keep_clean: bool = True) -> dict:
    """Validate every file chunk by chunk into ``quarantine.parquet/`` parts (each quarantined
    row with its reasons) and, with ``keep_clean``, ``clean/`` parts; returns the summary, the
    sum of the chunks' counts (every rule is row-local, so chunking changes no count)."""
    quarantine_dir = _fresh(ds_dir / "quarantine.parquet")
    clean_dir = _fresh(ds_dir / "clean") if keep_clean else None
    rows_in = rows_clean = rows_bad = chunks = 0
    by_rule = dict.fromkeys(RULES, 0)
    by_file: dict[str, int] = {}
    for path in files:
        for k, (first, raw) in enumerate(_raw_chunks(Path(path), chunk_rows)):
            result = validate(normalise(raw, Path(path).name, first))
            del raw
            part = f"{Path(path).stem}-{k:05d}.parquet"
            result.quarantine.to_parquet(quarantine_dir / part, index=False)
            if clean_dir is not None and len(result.clean):
                add_trip_columns(result.clean).to_parquet(clean_dir / part, index=False)
            s = result.summary
            rows_in, rows_clean = rows_in + s["rows_in"], rows_clean + s["rows_clean"]
            rows_bad += s["rows_quarantined"]
            chunks += 1
            by_rule = {code: by_rule[code] + s["by_rule"][code] for code in by_rule}
            if s["rows_quarantined"]:
                by_file[Path(path).name] = by_file.get(Path(path).name, 0) + s["rows_quarantined"]
    assert rows_clean + rows_bad == rows_in
    return {"rules_version": RULES_VERSION, "rows_in": rows_in, "rows_clean": rows_clean,
            "rows_quarantined": rows_bad, "by_rule": by_rule, "rules": RULES,
            "files": [Path(f).name for f in files], "by_file": by_file,
            "chunks": chunks, "chunk_rows": chunk_rows}


def _connect(memory: str, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{memory}'")  # validated by the settings' pattern
    con.execute(f"SET temp_directory='{spill_dir}'")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET threads=2")
    return con


_SQL_AGG = {"size": "count(*)", "mean": "avg({c})", "median": "median({c})"}


def feature_tables(clean_dir: Path, cfg: FeatureConfig, memory: str,
                   spill_dir: Path) -> dict[str, pd.DataFrame]:
    """``compute_feature_tables`` over the clean parts, one DuckDB query per snapshot."""
    con = _connect(memory, spill_dir)
    # sorted by pickup: each snapshot's window query reads only the row groups it needs
    con.execute(f"""CREATE TEMP TABLE t AS SELECT pickup_zone_id AS zone_id, hour_of_week,
        route_id, pickup_utc, dropoff_utc, speed_mph, duration_s, trip_distance, fare_per_mile,
        fare_amount FROM read_parquet('{clean_dir}/*.parquet', union_by_name=true)
        ORDER BY pickup_utc""")
    lo, hi = con.execute("SELECT min(pickup_utc), max(dropoff_utc) FROM t").fetchone()
    bounds = pd.DataFrame({"pickup_utc": [pd.Timestamp(lo).tz_convert("UTC")],
                           "dropoff_utc": [pd.Timestamp(hi).tz_convert("UTC")]})
    blocks: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    for snap in snapshot_times(bounds, cfg):
        for name, (keys, spec) in TABLES.items():
            aggs = ", ".join(f"{_SQL_AGG[how].format(c=col)} AS {out}"
                             for out, (col, how) in spec.items())
            first = next(iter(spec))
            block = con.execute(
                f"""SELECT {', '.join(keys)}, {aggs} FROM t
                WHERE dropoff_utc < $snap AND pickup_utc >= $snap - INTERVAL {cfg.window_days} DAY
                GROUP BY ALL HAVING {first} >= {cfg.min_trips}""",
                {"snap": snap.to_pydatetime()}).df()
            if len(block):
                block[TIMESTAMP] = snap
                blocks[name].append(block)
    con.close()
    return assemble_tables(blocks)


def join_parts(fs, clean_dir: Path, joined_dir: Path, geo: ZoneGeo) -> int:
    """Feast's point-in-time join, one clean part at a time; returns the rows joined."""
    _fresh(joined_dir)
    rows = 0
    for part in sorted(clean_dir.glob("*.parquet")):
        trips = pd.read_parquet(part)
        trips = with_request_inputs(trips, geo)
        trips["month"] = trips["pickup_local"].dt.to_period("M").astype(str)
        features = point_in_time_features(fs, trips)
        cols = [c for c in features if c not in trips]
        pd.concat([trips, features[cols]], axis=1).to_parquet(joined_dir / part.name,
                                                              index=False)
        rows += len(trips)
    return rows


# Raw columns nothing reads after validation and the feature snapshots: not loaded for training.
_UNUSED = ("month", "total_amount", "vendorid", "payment_type", "ratecodeid", "taxi_type",
           "dropoff_local", "dropoff_utc", "speed_mph", "fare_per_mile", "event_timestamp")


def load_window(joined_dir: Path, eval_month: str | None, train_from: str | None,
                max_rows: int, memory: str, spill_dir: Path,
                eval_rows: int | None = None, batch_rows: int = 100_000) -> pd.DataFrame:
    """The newest ``max_rows`` training trips plus a sample of at most ``eval_rows`` trips
    (default ``max_rows``) of the evaluation month.

    Memory depends on the budgets, not on the data: DuckDB picks each part with a top-N (a
    heap of N rows, whatever the number of trips) and orders the result itself (spilling
    beyond ``memory``); it streams out in Arrow record batches of ``batch_rows``, and the
    columns become pandas columns one at a time, each Arrow buffer freed once converted,
    so the window is in memory about once."""
    import pyarrow as pa

    con = _connect(memory, spill_dir)
    present = {r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{joined_dir}/*.parquet', union_by_name=true)"
    ).fetchall()}
    unused = ", ".join(c for c in _UNUSED if c in present)
    src = f"read_parquet('{joined_dir}/*.parquet', union_by_name=true)"
    # fetchall: a half-read execute() result blocks the streamed query below
    eval_month = eval_month or con.execute(f"SELECT max(month) FROM {src}").fetchall()[0][0]
    since = f"AND month >= '{train_from}'" if train_from else ""
    # oldest first, ties in file order: the in-memory pipeline's order, so that bagging draws
    # the same rows and an unsampled window trains the same boosters
    reader = con.sql(f"""SELECT * EXCLUDE (part) FROM (
        (SELECT * EXCLUDE ({unused}), 0 AS part FROM {src} WHERE month < $m {since}
         ORDER BY pickup_utc DESC, source_file DESC, source_row DESC LIMIT {max_rows})
        UNION ALL
        (SELECT * EXCLUDE ({unused}), 1 AS part FROM {src} WHERE month = $m
         ORDER BY hash(source_file, source_row) LIMIT {eval_rows or max_rows}))
        ORDER BY part, pickup_utc, source_file, source_row""",
                     params={"m": eval_month}).to_arrow_reader(batch_rows)
    table = pa.Table.from_batches(list(reader), schema=reader.schema)
    con.close()
    return table.to_pandas(split_blocks=True, self_destruct=True)


def prepare_bounded(files: list[Path], zones_csv: Path, repo: Path, redis_url: str,
                    out_dir: Path, eval_month: str | None = None, train_from: str | None = None,
                    fcfg: FeatureConfig = FeatureConfig(),
                    settings: TrainScaleSettings | None = None, materialize: bool = True,
                    meter=None) -> Prepared:
    """``pipeline.prepare`` in memory bounded by ``settings``; ``meter`` (training.meter)
    records each stage when given."""
    from contextlib import nullcontext

    settings = settings or TrainScaleSettings()
    stage = meter.stage if meter else (lambda name: nullcontext(type("S", (), {})()))
    version = dataset_version(files, fcfg)
    ds_dir = out_dir / "datasets" / version
    spill = ds_dir / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    with stage("ingest+validate") as s:
        summary = ingest_validate(files, ds_dir, settings.chunk_rows)
        summary["dataset_version"] = version
        (ds_dir / "validation_summary.json").write_text(json.dumps(summary, indent=2))
        s.rows = summary["rows_in"]
    with stage("features") as s:
        tables = feature_tables(ds_dir / "clean", fcfg, settings.duckdb_memory, spill)
        write_feature_tables(tables, feast_store.data_dir(repo))
        s.rows = summary["rows_clean"]
    with stage("feast apply+materialize") as s:
        fs = feast_store.open_store(repo, redis_url)
        feast_store.apply(fs)
        if materialize:
            feast_store.materialize(fs)
        s.rows = sum(len(t) for t in tables.values())
    with stage("feast point-in-time join") as s:
        s.rows = join_parts(fs, ds_dir / "clean", ds_dir / "joined", ZoneGeo(load_zones(zones_csv)))
    with stage("load training window") as s:
        trips = load_window(ds_dir / "joined", eval_month, train_from, settings.max_rows,
                            settings.duckdb_memory, spill, settings.eval_rows)
        s.rows = len(trips)
    return Prepared(version, trips, feast_columns(fs), summary, tables, list(files))
