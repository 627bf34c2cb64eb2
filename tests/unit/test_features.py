"""Features are point-in-time: a snapshot at T uses only trips completed before T."""

import pandas as pd
import pytest

from tests.conftest import JAN
from training.data import read_trips
from training.features import FeatureConfig, compute_feature_tables, hour_of_week, route_id
from training.validate import validate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def clean():
    return validate(read_trips(JAN)).clean


def test_hour_of_week_and_route_keys():
    local = pd.Series(pd.to_datetime(["2023-01-02 00:10", "2023-01-08 23:59", "2023-01-04 08:00"]))
    assert hour_of_week(local).tolist() == [0, 167, 56]
    assert route_id(132, 236) == 132236


def test_snapshot_uses_only_trips_finished_before_it(clean):
    cfg = FeatureConfig()
    tables = compute_feature_tables(clean, cfg)
    route = tables["route_stats"]
    snap = sorted(route["event_timestamp"].unique())[1]
    row = route[(route["event_timestamp"] == snap)].sort_values("r_trips").iloc[-1]
    known = clean[(clean["dropoff_utc"] < snap)
                  & (clean["pickup_utc"] >= snap - pd.Timedelta(days=cfg.window_days))]
    rid = route_id(known["pickup_zone_id"].astype(int), known["dropoff_zone_id"].astype(int))
    on_route = known[rid == row["route_id"]]
    assert row["r_trips"] == len(on_route)
    assert row["r_duration_median"] == on_route["duration_s"].median()
    assert row["r_fare_median"] == on_route["fare_amount"].median()


def test_changing_the_future_never_changes_the_past(clean):
    cut = pd.Timestamp("2023-01-20", tz="UTC")
    tampered = clean.copy()
    later = tampered["pickup_utc"] >= cut
    tampered.loc[later, "duration_s"] *= 10
    tampered.loc[later, "fare_amount"] *= 10
    before, after = compute_feature_tables(clean), compute_feature_tables(tampered)
    for name in before:
        b = before[name][before[name]["event_timestamp"] <= cut].reset_index(drop=True)
        a = after[name][after[name]["event_timestamp"] <= cut].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
        assert not before[name].equals(after[name])  # the tampering did reach later snapshots


def test_groups_below_the_minimum_are_not_published(clean):
    tables = compute_feature_tables(clean, FeatureConfig(min_trips=5))
    assert tables["zone_hour_traffic"]["zh_trips"].min() >= 5
    assert tables["route_stats"]["r_trips"].min() >= 5
