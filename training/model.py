"""The model's view of a trip: the feature matrix both training and serving build.

The same functions turn request inputs plus Feast features into the columns the LightGBM
boosters were trained on, for a 100k-row training frame and for a single online request alike
(they work on a mapping of column name -> numpy array), so offline evaluation and online
predictions cannot disagree on preprocessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a frame is used: serving never loads it
    import pandas as pd

TARGETS = ("duration", "fare")
# feature service of each target (defined in feature_repo/definitions.py)
SERVICE_OF = {"duration": "duration_v1", "fare": "fare_v1"}
CATEGORICAL = ["pickup_zone_id", "dropoff_zone_id", "pickup_borough", "dropoff_borough"]
REQUEST_COLUMNS = ["pickup_zone_id", "dropoff_zone_id", "hour", "weekday", "minute_of_day",
                   "passenger_count", "trip_distance", "pickup_borough", "dropoff_borough",
                   "centroid_miles"]
DERIVED = ["eff_distance", "eta_from_speed_s", "fare_from_per_mile"]
# Targets learnt per mile of (effective) distance: pace generalises across trip lengths; the
# booster's answer is multiplied back by eff_distance.
PER_MILE_TARGETS = frozenset({"duration"})
DETOUR_FACTOR = 1.3  # street distance / straight-line distance between centroids, typical
MIN_EFF_DISTANCE = 0.25  # miles; a same-zone trip with no history still goes somewhere


def route_id(pickup_zone_id, dropoff_zone_id):
    """The route entity key: pickup zone * 1000 + dropoff zone (132 -> 236 is 132236)."""
    return pickup_zone_id * 1000 + dropoff_zone_id


def _number(value) -> float:
    """A zone table cell as a float, NaN when empty or not a number (zones.csv has blanks)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


class ZoneGeo:
    """Static zone attributes by LocationID: centroid and borough code (NaN when unknown).

    ``zones`` maps column name -> values: a DataFrame or the columns of zones.csv as lists.
    Borough codes are the positions of the sorted borough names (what pandas' category codes
    gave when training started using them)."""

    def __init__(self, zones: Mapping[str, Sequence]):
        ids = np.asarray([int(v) for v in zones["LocationID"]], dtype="intp")
        boroughs = [str(b) for b in zones["Borough"]]
        size = int(ids.max()) + 1
        self.lat, self.lon, self.borough = (np.full(size, np.nan) for _ in range(3))
        self.lat[ids] = [_number(v) for v in zones["lat"]]
        self.lon[ids] = [_number(v) for v in zones["lon"]]
        code = {name: i for i, name in enumerate(sorted(set(boroughs)))}
        self.borough[ids] = [code[b] for b in boroughs]
        self.borough_names = dict(zip(ids.tolist(), boroughs))


def haversine_miles(lat1, lon1, lat2, lon2):
    """Great-circle distance in miles (NaN when a zone has no shape)."""
    lat1, lon1, lat2, lon2 = (np.radians(v) for v in (lat1, lon1, lat2, lon2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 3958.8 * 2 * np.arcsin(np.sqrt(a))


def request_columns(geo: ZoneGeo, pickup_zone_id, dropoff_zone_id, hour, weekday, minute,
                    passenger_count, trip_distance) -> dict[str, np.ndarray]:
    """What the ride app sends (local pickup time already split) plus static zone geometry."""
    pu = np.asarray(pickup_zone_id, dtype="int64")
    do = np.asarray(dropoff_zone_id, dtype="int64")
    hour = np.asarray(hour, dtype="float64")
    return {
        "pickup_zone_id": pu.astype("float64"), "dropoff_zone_id": do.astype("float64"),
        "hour": hour, "weekday": np.asarray(weekday, dtype="float64"),
        "minute_of_day": hour * 60 + np.asarray(minute, dtype="float64"),
        "passenger_count": np.asarray(passenger_count, dtype="float64"),
        "trip_distance": np.asarray(trip_distance, dtype="float64"),
        "pickup_borough": geo.borough[pu], "dropoff_borough": geo.borough[do],
        "centroid_miles": haversine_miles(geo.lat[pu], geo.lon[pu], geo.lat[do], geo.lon[do]),
    }


def _first_present(cols: Mapping[str, np.ndarray], names: tuple[str, ...], n: int
                   ) -> np.ndarray:
    out = np.full(n, np.nan)
    for name in names:
        if name in cols:
            out = np.where(np.isnan(out), np.asarray(cols[name], dtype="float64"), out)
    return out


# Where ``derive`` takes each quantity from, first present and not NaN wins (the batch path
# and ``SingleRow`` both read these).
EFF_DISTANCE_FROM = ("trip_distance", "route_stats__r_distance_median")
SPEED_FROM = ("pickup_traffic__zh_speed_median", "pickup_zone__z_speed_median")
PER_MILE_FROM = ("pickup_traffic__zh_fare_per_mile_median", "pickup_zone__z_fare_per_mile_median",
                 "dropoff_zone__z_fare_per_mile_median")


def derive(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add physics-shaped features trees cannot build themselves (products and ratios).

    ``eff_distance`` is the route distance when the app sent it, else the route's median,
    else the centroid distance times a typical detour factor.
    """
    n = len(cols["trip_distance"])
    eff = _first_present(cols, EFF_DISTANCE_FROM, n)
    eff = np.where(np.isnan(eff), cols["centroid_miles"] * DETOUR_FACTOR, eff)
    eff = np.maximum(eff, MIN_EFF_DISTANCE)
    speed = _first_present(cols, SPEED_FROM, n)
    per_mile = _first_present(cols, PER_MILE_FROM, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(speed > 0, eff / speed * 3600.0, np.nan)
    cols["eff_distance"], cols["eta_from_speed_s"] = eff, eta
    cols["fare_from_per_mile"] = eff * per_mile
    return cols


def matrix(cols: Mapping[str, np.ndarray], columns: list[str], n: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """An n x len(columns) float64 matrix in the booster's column order (absent -> NaN),
    written into ``out`` when given (a slice of a bigger matrix)."""
    out = np.full((n, len(columns)), np.nan) if out is None else out
    for j, name in enumerate(columns):
        out[:, j] = cols[name] if name in cols else np.nan
    return out


# What ``derive`` reads besides a booster's own columns
DERIVE_INPUTS = frozenset({"centroid_miles", *EFF_DISTANCE_FROM, *SPEED_FROM, *PER_MILE_FROM})


def frame_columns(frame: pd.DataFrame, names=None) -> dict[str, np.ndarray]:
    """A training/evaluation frame as the column mapping ``derive`` and ``matrix`` take;
    ``names`` limits it to those columns (a float64 copy of every column of a 1M-trip frame
    is most of training's memory)."""
    from pandas.api.types import is_numeric_dtype

    keep = frame.columns if names is None else [c for c in frame.columns if c in names]
    return {c: frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in keep
            if is_numeric_dtype(frame[c])}


def table_columns(table) -> dict[str, np.ndarray]:
    """``frame_columns`` for a small pyarrow Table of numeric and boolean columns (what
    ``training.register.read_table`` reads): each column as float64, nulls as NaN. Through
    Python values: pyarrow's to_numpy imports pandas (a second of a worker's start), and this
    reads a few hundred reference rows."""
    return {name: np.array([np.nan if v is None else v for v in column.to_pylist()],
                           dtype="float64")
            for name, column in zip(table.column_names, table.columns)}


def inputs_of(columns: list[str]) -> frozenset[str]:
    """The frame columns ``derive`` + ``matrix`` need for a booster's ``columns``."""
    return frozenset(columns) | DERIVE_INPUTS


def feature_columns(feast_columns: list[str]) -> list[str]:
    """The ordered model input columns given a feature service's Feast column names."""
    return [*REQUEST_COLUMNS, *feast_columns, *DERIVED]


def model_columns(columns: Mapping[str, list[str]]) -> list[str]:
    """Every column any target's booster reads, once, sorted: the one matrix serving builds
    (and logs) per request; each booster takes its own columns from it."""
    return sorted({c for cols in columns.values() for c in cols})


def column_index(columns: Mapping[str, list[str]], names: list[str]) -> dict[str, np.ndarray]:
    """Per target, the positions of its booster's columns in a matrix of ``names``."""
    pos = {name: i for i, name in enumerate(names)}
    return {t: np.array([pos[c] for c in columns[t]], dtype="intp") for t in columns}


def predict_matrix(boosters: dict, index: Mapping[str, np.ndarray], x: np.ndarray,
                   eff_distance: np.ndarray, num_threads: int = 1) -> dict:
    """Both targets from one matrix of every model column (``column_index`` says which
    columns each booster reads). One thread by default: a single-row predict on the default
    thread pool has 8-12 ms p99 spikes (DESIGN.md measurements)."""
    out = {}
    for t in TARGETS:
        pred = boosters[t].predict(x[:, index[t]], num_threads=num_threads)
        out[t] = pred * eff_distance if t in PER_MILE_TARGETS else pred
    return out


def predict_all(boosters: dict, columns: dict[str, list[str]], cols: Mapping, n: int) -> dict:
    """Both targets for derived columns of n trips (the same path serving takes)."""
    names = model_columns(columns)
    return predict_matrix(boosters, column_index(columns, names), matrix(cols, names, n),
                          np.asarray(cols["eff_distance"], dtype="float64"))


def predict_frame(boosters: dict, columns: dict[str, list[str]], frame: pd.DataFrame) -> dict:
    """``predict_all`` for a frame of trips with request inputs and Feast features."""
    return predict_all(boosters, columns, derive(frame_columns(frame)), len(frame))


class SingleRow:
    """One trip's model row as ``matrix(derive(request_columns(...)), names, 1)`` gives it,
    bit for bit, without per-column numpy calls on 1-element arrays (92 us of a served
    prediction, docs/performance.md). Python floats and numpy float64 share IEEE double
    arithmetic, and the operations run in ``derive``'s order; the centroid distance comes
    from ``haversine_miles`` itself on the same 1-element arrays, cached per zone pair."""

    MAX_CACHED_PAIRS = 100_000

    def __init__(self, geo: ZoneGeo, names: list[str], feature_names: list[str]):
        self.geo, self.names = geo, list(names)
        self.feature_names = list(feature_names)
        self._centroid: dict[tuple[int, int], float] = {}

    def centroid(self, pu: int, do: int) -> float:
        value = self._centroid.get((pu, do))
        if value is None:
            if len(self._centroid) >= self.MAX_CACHED_PAIRS:
                self._centroid.clear()
            p, d = np.array([pu]), np.array([do])
            geo = self.geo
            value = self._centroid[(pu, do)] = float(
                haversine_miles(geo.lat[p], geo.lon[p], geo.lat[d], geo.lon[d])[0])
        return value

    def row(self, pu: int, do: int, hour: int, weekday: int, minute: int,
            passengers: float, distance: float, features) -> np.ndarray:
        """A 1 x len(names) float64 matrix; ``features`` are the fetched values in
        ``feature_names`` order. ``passengers`` / ``distance``: NaN when not sent."""
        hour_f = float(hour)
        centroid = self.centroid(pu, do)
        cols = {"pickup_zone_id": float(pu), "dropoff_zone_id": float(do), "hour": hour_f,
                "weekday": float(weekday), "minute_of_day": hour_f * 60 + float(minute),
                "passenger_count": float(passengers), "trip_distance": float(distance),
                "pickup_borough": float(self.geo.borough[pu]),
                "dropoff_borough": float(self.geo.borough[do]), "centroid_miles": centroid}
        cols.update(zip(self.feature_names, map(float, features)))
        eff = _first(cols, EFF_DISTANCE_FROM)
        if math.isnan(eff):
            eff = centroid * DETOUR_FACTOR
        if eff < MIN_EFF_DISTANCE:  # np.maximum: NaN stays NaN
            eff = MIN_EFF_DISTANCE
        speed = _first(cols, SPEED_FROM)
        per_mile = _first(cols, PER_MILE_FROM)
        cols["eff_distance"] = eff
        cols["eta_from_speed_s"] = eff / speed * 3600.0 if speed > 0 else math.nan
        cols["fare_from_per_mile"] = eff * per_mile
        nan = math.nan
        return np.array([[cols.get(name, nan) for name in self.names]], dtype="float64")


def _first(cols: Mapping[str, float], names: tuple[str, ...]) -> float:
    """``_first_present`` for one row: the first of ``names`` present and not NaN."""
    for name in names:
        value = cols.get(name)
        if value is not None and not math.isnan(value):
            return value
    return math.nan
