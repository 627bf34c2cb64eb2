"""The model's view of a trip: the feature matrix both training and serving build.

One function turns request inputs plus Feast features into the columns the LightGBM boosters
were trained on, so offline evaluation and online predictions cannot disagree on preprocessing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGETS = ("duration", "fare")
# feature service of each target (defined in feature_repo/definitions.py)
SERVICE_OF = {"duration": "duration_v1", "fare": "fare_v1"}
CATEGORICAL = ["pickup_zone_id", "dropoff_zone_id", "pickup_borough", "dropoff_borough"]
REQUEST_COLUMNS = ["pickup_zone_id", "dropoff_zone_id", "hour", "weekday", "minute_of_day",
                   "passenger_count", "trip_distance", "pickup_borough", "dropoff_borough",
                   "centroid_miles"]
# What the ride app may omit, and what a missing feature row means: unknown (NaN).
DERIVED = ["eff_distance", "eta_from_speed_s", "fare_from_per_mile"]


def _first_present(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    out = pd.Series(np.nan, index=frame.index, dtype="float64")
    for col in columns:
        if col in frame:
            out = out.fillna(frame[col].astype("float64"))
    return out


def add_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Physics-shaped features trees cannot build themselves (products and ratios).

    ``eff_distance`` is the route distance when the app sent it, else the route's median,
    else the centroid distance scaled by a typical street-grid detour factor.
    """
    out = frame
    route_median = _first_present(out, ["route_stats__r_distance_median"])
    out["eff_distance"] = out["trip_distance"].astype("float64").fillna(route_median).fillna(
        out["centroid_miles"] * 1.3)
    speed = _first_present(out, ["pickup_traffic__zh_speed_median",
                                 "pickup_zone__z_speed_median"])
    out["eta_from_speed_s"] = out["eff_distance"] / speed.where(speed > 0) * 3600.0
    per_mile = _first_present(out, ["pickup_traffic__zh_fare_per_mile_median",
                                    "pickup_zone__z_fare_per_mile_median",
                                    "dropoff_zone__z_fare_per_mile_median"])
    out["fare_from_per_mile"] = out["eff_distance"] * per_mile
    return out


def feature_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Select ``columns`` in order (missing ones as NaN), typed for LightGBM."""
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        out[col] = frame[col].astype("float64") if col in frame else np.nan
    return out


def feature_columns(feast_columns: list[str]) -> list[str]:
    """The ordered model input columns given a feature service's Feast column names."""
    return [*REQUEST_COLUMNS, *feast_columns, *DERIVED]
