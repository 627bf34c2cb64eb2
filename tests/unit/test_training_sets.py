"""train.training_sets builds its matrices from index arrays and the input columns only (no
copy of the frame): row for row they must equal sorting, splitting, stacking each part with
and without distance and building the design matrix of the whole frame, as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.model import feature_columns
from training.train import (
    LABEL,
    TrainConfig,
    design,
    recency_weights,
    training_sets,
    with_and_without_distance,
)

pytestmark = pytest.mark.unit

FEAST = ["route_stats__r_distance_median", "pickup_traffic__zh_speed_median",
         "pickup_zone__z_speed_median", "pickup_zone__z_fare_per_mile_median"]


def _trips(n: int = 3_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # minutes, so that many trips share a pickup instant (ties keep their frame order)
    pickup = pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 90 * 24 * 60, n), unit="min")
    dist = rng.gamma(2.0, 1.5, n)
    dist[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({
        "pickup_utc": pickup,
        "pickup_zone_id": pd.array(rng.integers(1, 264, n), dtype="Int64"),
        "dropoff_zone_id": pd.array(rng.integers(1, 264, n), dtype="Int64"),
        "hour": rng.integers(0, 24, n), "weekday": rng.integers(0, 7, n),
        "minute_of_day": rng.integers(0, 1440, n), "passenger_count": rng.integers(1, 5, n),
        "trip_distance": dist, "pickup_borough": rng.integers(0, 6, n).astype(float),
        "dropoff_borough": rng.integers(0, 6, n).astype(float),
        "centroid_miles": rng.gamma(2.0, 1.0, n),
        "duration_s": rng.uniform(60, 3600, n), "fare_amount": rng.uniform(3, 80, n),
        "source_row": np.arange(n), "source_file": "green_tripdata_2022-01.parquet",
        # a Feast column neither booster reads: derive must not need it
        "dropoff_zone__z_trips": rng.integers(5, 50, n),
    })
    for name in FEAST:
        values = rng.uniform(1, 30, n)
        values[rng.random(n) < 0.2] = np.nan
        frame[name] = values
    return frame


def _reference(frame: pd.DataFrame, columns: list[str], target: str, cfg: TrainConfig):
    """The earlier implementation, which copied the frame at every step."""
    frame = frame.sort_values("pickup_utc", kind="stable")
    cut = frame["pickup_utc"].quantile(1.0 - cfg.holdout_fraction)
    fit, hold = frame[frame["pickup_utc"] < cut], frame[frame["pickup_utc"] >= cut]
    fit, hold = with_and_without_distance(fit), with_and_without_distance(hold)
    x_fit, x_hold = design(fit, columns), design(hold, columns)
    y_fit, y_hold = fit[LABEL[target]].to_numpy(), hold[LABEL[target]].to_numpy()
    w_fit = recency_weights(fit["pickup_utc"], cfg.half_life_days)
    w_hold = np.ones(len(hold))
    if target == "duration":
        d_fit, d_hold = x_fit["eff_distance"].to_numpy(), x_hold["eff_distance"].to_numpy()
        y_fit, y_hold = y_fit / d_fit, y_hold / d_hold
        w_fit, w_hold = w_fit * d_fit, d_hold
    return (x_fit, y_fit, w_fit), (x_hold, y_hold, w_hold), cut


@pytest.mark.parametrize("target", ["duration", "fare"])
def test_training_sets_equal_the_copying_reference(target):
    frame, cfg = _trips(), TrainConfig()
    columns = feature_columns(FEAST)
    sets = training_sets(frame, columns, target, cfg)
    ref_fit, ref_hold, ref_cut = _reference(frame, columns, target, cfg)
    assert sets.cut == ref_cut
    for got, want in ((sets.fit, ref_fit), (sets.hold, ref_hold)):
        assert list(got[0].columns) == columns
        np.testing.assert_array_equal(got[0].to_numpy(), want[0].to_numpy())
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


def test_stacked_halves_differ_only_where_distance_matters():
    frame = _trips(500)
    columns = feature_columns(FEAST)
    x = training_sets(frame, columns, "fare", TrainConfig()).fit[0]
    n = len(x) // 2
    assert x["trip_distance"].iloc[n:].isna().all()
    assert x["trip_distance"].iloc[:n].notna().any()
    same = [c for c in columns if c not in ("trip_distance", "eff_distance",
                                            "eta_from_speed_s", "fare_from_per_mile")]
    np.testing.assert_array_equal(x[same].iloc[:n].to_numpy(), x[same].iloc[n:].to_numpy())
