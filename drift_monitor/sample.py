"""Model-like feature frames built from real TLC trip files, for the tests and the benchmark.

Computes about thirty columns of the kind the taxi_trip models log (zones, boroughs, time of
day, distance, per-zone / zone-hour / route statistics, with NaN where a statistic has too few
trips), plus ``pred_duration`` / ``pred_fare`` (the observed duration and fare stand in for the
model's predictions), and writes them in the contract's formats: a ``reference.parquet`` in a
BentoML store layout and ``taxi:predlog`` stream entries with their ``taxi:model:<version>`` hash.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import redis

from drift_monitor.window import MODEL_KEY, STREAM

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
CATEGORICAL = ["pickup_zone_id", "dropoff_zone_id", "pickup_borough", "dropoff_borough"]
_MIN_TRIPS = 5  # statistics of fewer trips are missing, as in the model's feature views


def trips(month: str = "2023-01", sample_dir: Path = SAMPLE_DIR,
          with_pickup: bool = False) -> pd.DataFrame:
    """Model-like features of the green taxi trips of ``month`` (YYYY-MM), one row per trip;
    ``with_pickup`` adds the pickup time as ``pickup`` (not a feature)."""
    raw = pd.read_parquet(sample_dir / f"green_tripdata_{month}.parquet")
    zones = pd.read_csv(sample_dir / "zones.csv")
    pickup = raw["lpep_pickup_datetime"]
    duration = (raw["lpep_dropoff_datetime"] - pickup).dt.total_seconds()
    keep = (duration.between(60, 3 * 3600) & raw["trip_distance"].between(0.01, 100)
            & raw["fare_amount"].between(1, 500))
    raw, pickup, duration = raw[keep], pickup[keep], duration[keep]
    f = pd.DataFrame({
        "pickup_zone_id": raw["PULocationID"].astype(float),
        "dropoff_zone_id": raw["DOLocationID"].astype(float),
        "hour": pickup.dt.hour.astype(float),
        "weekday": pickup.dt.weekday.astype(float),
        "minute_of_day": (pickup.dt.hour * 60 + pickup.dt.minute).astype(float),
        "passenger_count": raw["passenger_count"],
        "trip_distance": raw["trip_distance"],
    })
    boroughs = {b: i for i, b in enumerate(sorted(zones["Borough"].dropna().unique()))}
    zone = zones.set_index("LocationID")
    borough = zone["Borough"].map(boroughs)
    for end in ("pickup", "dropoff"):
        f[f"{end}_borough"] = f[f"{end}_zone_id"].map(borough).astype(float)
    lat, lon = zone["lat"], zone["lon"]
    dlat = f["pickup_zone_id"].map(lat) - f["dropoff_zone_id"].map(lat)
    dlon = (f["pickup_zone_id"].map(lon) - f["dropoff_zone_id"].map(lon)) * 0.76
    f["centroid_miles"] = np.hypot(dlat, dlon) * 69.0
    speed = raw["trip_distance"] / duration * 3600
    stats = pd.DataFrame({"distance": raw["trip_distance"], "duration": duration, "speed": speed,
                          "fare_per_mile": raw["fare_amount"] / raw["trip_distance"]})
    _add_stats(f, stats, ["pickup_zone_id"], "pickup_zone__z")
    _add_stats(f, stats, ["dropoff_zone_id"], "dropoff_zone__z")
    _add_stats(f, stats, ["pickup_zone_id", "hour"], "pickup_traffic__zh")
    _add_stats(f, stats, ["pickup_zone_id", "dropoff_zone_id"], "route_stats__r")
    f["eta_from_speed_s"] = f["trip_distance"] / f["pickup_traffic__zh_speed_median"] * 3600
    f["pred_duration"] = duration
    f["pred_fare"] = raw["fare_amount"]
    if with_pickup:
        f["pickup"] = pickup
    return f.reset_index(drop=True)


def _add_stats(f: pd.DataFrame, stats: pd.DataFrame, keys: list[str], prefix: str) -> None:
    grouped = stats.groupby([f[k] for k in keys])
    table = grouped.median().add_suffix("_median")
    table.insert(0, "trips", grouped.size())
    table[table["trips"] < _MIN_TRIPS] = np.nan
    joined = f[keys].join(table, on=keys)
    for col in table.columns:
        f[f"{prefix}_{col}"] = joined[col].astype(float)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The logged feature columns of a frame from ``trips`` (not predictions, not pickup)."""
    return [c for c in frame.columns if not c.startswith("pred_") and c != "pickup"]


def write_reference(frame: pd.DataFrame, bentoml_home: Path, version: str,
                    model_name: str = "taxi_trip") -> Path:
    """Write ``frame`` as ``$BENTOML_HOME/models/<model_name>/<version>/reference.parquet``."""
    path = bentoml_home / "models" / model_name / version / "reference.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def write_model_hash(client: redis.Redis, version: str, columns: list[str]) -> None:
    """Write ``taxi:model:<version>`` as the service does at startup."""
    client.hset(MODEL_KEY.format(version=version), mapping={
        "columns": json.dumps(columns),
        "categorical": json.dumps([c for c in CATEGORICAL if c in columns]),
        "created_at": str(int(time.time())),
    })


def log_predictions(client: redis.Redis, frame: pd.DataFrame, version: str,
                    columns: list[str], track: str = "stable") -> None:
    """Append one ``taxi:predlog`` entry per row of ``frame``, in the contract's format."""
    x = frame[columns].to_numpy(dtype="<f4")
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for i, (vec, dur, fare) in enumerate(zip(x, frame["pred_duration"], frame["pred_fare"])):
        pipe.xadd(STREAM, {"rid": f"{version}-{i}", "ts": f"{now:.3f}", "v": version, "t": track,
                           "dur": f"{dur:.3f}", "fare": f"{fare:.2f}", "x": vec.tobytes()})
    pipe.execute()
