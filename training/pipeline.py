"""The offline pipeline end to end: ingest -> validate -> features -> Feast -> train ->
evaluate. Registration (BentoML store, champion gate) is in register.py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track

from common.progress import step
from training import store as feast_store
from training.data import file_digest, month_of, read_trips
from training.evaluate import report
from training.features import (
    FeatureConfig,
    add_trip_columns,
    compute_feature_tables,
    load_zones,
    with_request_inputs,
    write_feature_tables,
)
from training.model import SERVICE_OF, TARGETS, ZoneGeo, feature_columns, predict_frame
from training.train import (
    LABEL,
    PLAIN_COLUMNS,
    PLAIN_NO_DISTANCE,
    TrainConfig,
    design,
    fit_lightgbm,
    fit_plain,
    fit_sklearn_baseline,
)
from training.validate import RULES_VERSION, validate

console = Console(stderr=True)


def dataset_version(files: list[Path], cfg: FeatureConfig) -> str:
    """Content hash of the input files, the validation rules and the feature config."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(f"{path.name}:{file_digest(path)}\n".encode())
    h.update(f"rules={RULES_VERSION};features={cfg.key()}".encode())
    return h.hexdigest()[:12]


def discover(inputs: list[Path]) -> list[Path]:
    """Trip files from files and folders, in month order."""
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files += sorted(p for p in item.iterdir()
                            if "tripdata" in p.name and p.suffix in (".parquet", ".csv"))
        elif item.exists():
            files.append(item)
        else:
            raise FileNotFoundError(f"no such trip file or folder: {item}")
    if not files:
        raise FileNotFoundError(f"no trip files (*tripdata*.parquet/.csv) in {inputs}")
    return sorted(files, key=lambda p: (str(month_of(p)), p.name))


@dataclass
class Prepared:
    """Everything training needs: clean trips joined to point-in-time features."""

    version: str
    trips: pd.DataFrame  # clean trips + model inputs + Feast features
    feast_columns: dict[str, list[str]]
    validation_summary: dict
    tables: dict[str, pd.DataFrame]
    files: list[Path]


def prepare(files: list[Path], zones_csv: Path, repo: Path, redis_url: str, out_dir: Path,
            fcfg: FeatureConfig = FeatureConfig(), materialize: bool = True) -> Prepared:
    """Ingest, validate (writing quarantine and summary), compute and register features,
    materialize them to Redis and join point-in-time features onto every clean trip."""
    version = dataset_version(files, fcfg)
    ds_dir = out_dir / "datasets" / version
    ds_dir.mkdir(parents=True, exist_ok=True)
    frames = [read_trips(f) for f in track(files, description="ingest", console=console)]
    with step(f"validate {sum(len(f) for f in frames)} trips"):
        result = validate(pd.concat(frames, ignore_index=True))
    result.quarantine.to_parquet(ds_dir / "quarantine.parquet", index=False)
    summary = {**result.summary, "files": [f.name for f in files], "dataset_version": version,
               "by_file": result.quarantine.groupby("source_file").size().to_dict()}
    (ds_dir / "validation_summary.json").write_text(json.dumps(summary, indent=2))
    console.log(f"validated {summary['rows_in']} rows: {summary['rows_quarantined']} "
                f"quarantined -> {ds_dir / 'quarantine.parquet'}")

    with step("features: compute the tables"):
        tables = compute_feature_tables(result.clean, fcfg)
        write_feature_tables(tables, feast_store.data_dir(repo))
    with step("features: Feast apply" + (" + materialize to Redis" if materialize else "")):
        fs = feast_store.open_store(repo, redis_url)
        feast_store.apply(fs)
        if materialize:
            feast_store.materialize(fs)
    console.log(f"features: {', '.join(f'{k}={len(v)}' for k, v in tables.items())} rows")

    trips = add_trip_columns(result.clean).reset_index(drop=True)
    geo = ZoneGeo(load_zones(zones_csv))
    trips = with_request_inputs(trips, geo)
    feast_cols = feast_columns(fs)
    all_cols = sorted({c for cols in feast_cols.values() for c in cols})
    joined = point_in_time_features(fs, trips)
    trips = pd.concat([trips, joined[all_cols]], axis=1)
    return Prepared(version, trips, feast_cols, summary, tables, files)


def feast_columns(fs) -> dict[str, list[str]]:
    """Per target, the Feast columns (``projection__feature``) of its feature service."""
    return {t: [f"{p.name_to_use()}__{f.name}"
                for p in fs.get_feature_service(SERVICE_OF[t]).feature_view_projections
                for f in p.features] for t in TARGETS}


def point_in_time_features(fs, trips: pd.DataFrame) -> pd.DataFrame:
    """Every feature of both models for each trip, as Feast's point-in-time join gives it at
    the pickup instant: one row per trip, in the trips' order (index 0..n-1)."""
    entity = trips[["pickup_zone_id", "dropoff_zone_id", "hour_of_week", "route_id"]].copy()
    entity["event_timestamp"] = trips["pickup_utc"].astype("datetime64[us, UTC]")
    entity["trip_idx"] = np.arange(len(trips))
    with step(f"features: point-in-time join onto {len(entity)} trips"):
        joined = feast_store.historical_features(fs, entity, feast_store.UNION_SERVICE)
    if len(joined) != len(trips) or joined["trip_idx"].duplicated().any():
        raise RuntimeError(f"point-in-time join returned {len(joined)} rows for "
                           f"{len(trips)} trips")
    return joined.sort_values("trip_idx").set_index("trip_idx").rename_axis(None)


def _rows(trips: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """``trips[mask]``, as a slice (no copy) when the rows are contiguous: the bounded
    window is ordered training trips, then evaluation trips."""
    where = np.flatnonzero(mask.to_numpy())
    if len(where) and where[-1] - where[0] + 1 == len(where):
        return trips.iloc[where[0]:where[-1] + 1]
    return trips[mask]


def split_by_month(trips: pd.DataFrame, eval_month: str | None, train_from: str | None = None):
    """Train on the months before the evaluation month (default: the latest), from
    ``train_from`` when given (one mask: each part is copied once)."""
    month = trips["pickup_local"].dt.to_period("M").astype(str)
    eval_month = eval_month or month.max()
    in_train = (month < eval_month) & ((month >= train_from) if train_from else True)
    train, test = _rows(trips, in_train), _rows(trips, month == eval_month)
    if train.empty or test.empty:
        raise ValueError(f"need trips before and in the evaluation month {eval_month}; "
                         f"months present: {sorted(month.unique())}")
    return train, test, eval_month


def train_and_evaluate(prep: Prepared, eval_month: str | None, tcfg: TrainConfig,
                       train_from: str | None = None, fit=fit_lightgbm) -> dict:
    """Fit both targets, then evaluate them (with and without distance) and the baselines.
    ``fit`` trains one booster (training.distributed gives one that trains on a Dask cluster)."""
    train, test, eval_month = split_by_month(prep.trips, eval_month, train_from)
    columns = {t: feature_columns(prep.feast_columns[t]) for t in TARGETS}
    boosters, fit_info = {}, {}
    for target in track(TARGETS, description="train", console=console):
        boosters[target], fit_info[target] = fit(train, columns[target], target, tcfg)

    without = test.assign(trip_distance=np.nan)
    ours = predict_frame(boosters, columns, test)
    blind = predict_frame(boosters, columns, without)
    evaluation = {}
    for target in TARGETS:
        with step(f"evaluate {target} on {len(test)} trips against three baselines"):
            plain = fit_plain(train, target, PLAIN_COLUMNS, tcfg)
            plain_blind = fit_plain(train, target, PLAIN_NO_DISTANCE, tcfg)
            ridge = fit_sklearn_baseline(train, target)
            preds = {
                "lightgbm+features": ours[target],
                "lightgbm+features, no distance": blind[target],
                "plain lightgbm (5 cols)": plain.predict(design(test, PLAIN_COLUMNS)),
                "plain lightgbm, no distance (4 cols)": plain_blind.predict(
                    design(test, PLAIN_NO_DISTANCE)),
                "sklearn ridge baseline": ridge.predict(test),
            }
            evaluation[target] = report(test, preds, target, LABEL[target],
                                        test["pickup_borough_name"])
    months = prep.trips["pickup_local"].dt.to_period("M").astype(str)
    window = {"train_months": sorted(train["pickup_local"].dt.to_period("M").astype(str).unique()),
              "eval_month": eval_month, "all_months": sorted(months.unique())}
    return {"boosters": boosters, "columns": columns, "fit": fit_info,
            "evaluation": evaluation, "window": window, "test": test}
