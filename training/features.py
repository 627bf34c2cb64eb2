"""Traffic features from trips: zone x hour-of-week, zone and route (zone-pair) statistics.

Point-in-time correctness: features are computed at snapshot instants ``T`` (weekly by default)
from trips completed before ``T`` and started within the trailing window ``[T - window, T)``.
Each row is stamped with ``T`` (the time it became known), so Feast's point-in-time join gives a
trip at time ``t`` only the latest snapshot with ``T <= t``: no trip ever sees itself or any
later trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.model import ZoneGeo, request_columns, route_id

FEATURE_SET_VERSION = "1"
TIMESTAMP = "event_timestamp"


@dataclass(frozen=True)
class FeatureConfig:
    """How features are computed; part of the dataset version."""

    window_days: int = 28
    snapshot_freq: str = "7D"
    min_trips: int = 3  # groups seen fewer times carry too little signal to publish

    def key(self) -> str:
        return f"fs{FEATURE_SET_VERSION}-w{self.window_days}-{self.snapshot_freq}-m{self.min_trips}"


def hour_of_week(local: pd.Series) -> pd.Series:
    """Monday 00:00-00:59 local time is 0, Sunday 23:00-23:59 is 167."""
    return (local.dt.dayofweek * 24 + local.dt.hour).astype("int64")


def add_trip_columns(trips: pd.DataFrame) -> pd.DataFrame:
    """Derived per-trip columns the aggregations and the models use."""
    out = trips.copy()
    out["pickup_zone_id"] = out["pickup_zone_id"].astype("int64")
    out["dropoff_zone_id"] = out["dropoff_zone_id"].astype("int64")
    out["hour_of_week"] = hour_of_week(out["pickup_local"])
    out["route_id"] = route_id(out["pickup_zone_id"], out["dropoff_zone_id"])
    out["speed_mph"] = out["trip_distance"] / (out["duration_s"] / 3600.0)
    out["fare_per_mile"] = out["fare_amount"] / out["trip_distance"]
    return out


def snapshot_times(trips: pd.DataFrame, cfg: FeatureConfig) -> pd.DatetimeIndex:
    """Snapshot instants (UTC midnights) from the first full period after the data starts
    up to the first one after the last trip ends (so the newest data is published too)."""
    start = trips["pickup_utc"].min().floor("D") + pd.Timedelta(cfg.snapshot_freq)
    end = trips["dropoff_utc"].max().ceil("D") + pd.Timedelta(cfg.snapshot_freq)
    return pd.date_range(start, end, freq=cfg.snapshot_freq, tz="UTC", inclusive="left")


def _aggregate(window: pd.DataFrame, keys: list[str], spec: dict, cfg: FeatureConfig):
    grouped = window.groupby(keys, sort=False)
    out = grouped.agg(**spec)
    out = out[out.iloc[:, 0] >= cfg.min_trips]  # first column of every spec is the trip count
    return out.reset_index()


ZONE_HOUR = {
    "zh_trips": ("speed_mph", "size"),
    "zh_speed_mean": ("speed_mph", "mean"),
    "zh_speed_median": ("speed_mph", "median"),
    "zh_duration_median": ("duration_s", "median"),
    "zh_fare_per_mile_median": ("fare_per_mile", "median"),
}
ZONE = {
    "z_trips": ("speed_mph", "size"),
    "z_speed_median": ("speed_mph", "median"),
    "z_duration_median": ("duration_s", "median"),
    "z_distance_median": ("trip_distance", "median"),
    "z_fare_per_mile_median": ("fare_per_mile", "median"),
}
ROUTE = {
    "r_trips": ("speed_mph", "size"),
    "r_distance_median": ("trip_distance", "median"),
    "r_duration_median": ("duration_s", "median"),
    "r_speed_median": ("speed_mph", "median"),
    "r_fare_median": ("fare_amount", "median"),
}
# table name -> (group keys as stored in Feast, aggregation spec)
TABLES = {
    "zone_hour_traffic": (["zone_id", "hour_of_week"], ZONE_HOUR),
    "zone_stats": (["zone_id"], ZONE),
    "route_stats": (["route_id"], ROUTE),
}


def compute_feature_tables(trips: pd.DataFrame, cfg: FeatureConfig = FeatureConfig()
                           ) -> dict[str, pd.DataFrame]:
    """Aggregate clean trips into the three feature tables, one block of rows per snapshot."""
    t = add_trip_columns(trips).rename(columns={"pickup_zone_id": "zone_id"})
    window = pd.Timedelta(days=cfg.window_days)
    blocks: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    # naive UTC numpy arrays: fast comparisons inside the loop
    pickup = t["pickup_utc"].dt.tz_convert(None).to_numpy()
    dropoff = t["dropoff_utc"].dt.tz_convert(None).to_numpy()
    for snap in snapshot_times(trips, cfg):
        end = snap.tz_convert(None).to_datetime64()
        known = (dropoff < end) & (pickup >= end - window.to_timedelta64())
        win = t[known]
        if win.empty:
            continue
        for name, (keys, spec) in TABLES.items():
            block = _aggregate(win, keys, spec, cfg)
            block[TIMESTAMP] = snap
            blocks[name].append(block)
    return assemble_tables(blocks)


def assemble_tables(blocks: dict[str, list[pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Each table's snapshot blocks as one frame with the column types Feast's sources
    declare (an empty frame with those columns when no snapshot had rows)."""
    tables = {}
    for name, (keys, spec) in TABLES.items():
        frame = pd.concat(blocks[name], ignore_index=True) if blocks[name] else pd.DataFrame(
            columns=[*keys, *spec, TIMESTAMP])
        for col in spec:
            frame[col] = frame[col].astype("int64" if col.endswith("_trips") else "float64")
        for key in keys:
            frame[key] = frame[key].astype("int64")
        # microseconds: duckdb cannot cast nanosecond TIMESTAMPTZ during materialization
        frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
        tables[name] = frame
    return tables


def write_feature_tables(tables: dict[str, pd.DataFrame], data_dir: Path) -> dict[str, Path]:
    """Write each table as the parquet file the Feast FileSource of the same name reads."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in tables.items():
        paths[name] = data_dir / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths


def load_zones(path: Path) -> pd.DataFrame:
    """Read zones.csv ("N/A" is a real zone name there, so no NA parsing)."""
    zones = pd.read_csv(path, keep_default_na=False)
    zones["lat"] = pd.to_numeric(zones["lat"], errors="coerce")
    zones["lon"] = pd.to_numeric(zones["lon"], errors="coerce")
    return zones


def model_inputs(trips: pd.DataFrame, geo: ZoneGeo) -> pd.DataFrame:
    """Request-time inputs of each trip (what the ride app would have sent)."""
    local = trips["pickup_local"]
    cols = request_columns(geo, trips["pickup_zone_id"], trips["dropoff_zone_id"],
                           local.dt.hour, local.dt.dayofweek, local.dt.minute,
                           trips["passenger_count"], trips["trip_distance"])
    return pd.DataFrame(cols, index=trips.index)


def with_request_inputs(trips: pd.DataFrame, geo: ZoneGeo) -> pd.DataFrame:
    """The trips with their request-time model inputs and the pickup borough's name (the
    per-borough evaluation groups by it)."""
    inputs = model_inputs(trips, geo)
    out = pd.concat([trips, inputs.drop(columns=[c for c in inputs if c in trips])], axis=1)
    out["pickup_borough_name"] = out["pickup_zone_id"].map(geo.borough_names)
    return out
