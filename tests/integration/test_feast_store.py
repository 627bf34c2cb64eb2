"""Real Feast over the real sample: point-in-time training sets and online reads from Redis."""

import pandas as pd
import pytest
import redis

from training import store
from training.features import route_id

pytestmark = pytest.mark.integration


def test_every_clean_trip_gets_a_training_row(prepared):
    trips = prepared.trips
    assert prepared.validation_summary["rows_clean"] == len(trips)
    assert trips["route_stats__r_trips"].notna().mean() > 0.8  # most routes have history


def test_training_features_come_from_the_latest_snapshot_before_the_trip(prepared):
    """The Feast join returns, for each trip, the newest snapshot stamped at or before its
    pickup: never a later one (that would leak the trip's own future into training)."""
    route = prepared.tables["route_stats"]
    trips = prepared.trips.sample(400, random_state=1)
    checked = 0
    for _, trip in trips.iterrows():
        rows = route[(route["route_id"] == trip["route_id"])
                     & (route["event_timestamp"] <= trip["pickup_utc"])]
        rows = rows[rows["event_timestamp"] > trip["pickup_utc"] - pd.Timedelta(days=14)]
        if rows.empty:
            assert pd.isna(trip["route_stats__r_trips"])
            continue
        latest = rows.sort_values("event_timestamp").iloc[-1]
        assert trip["route_stats__r_trips"] == latest["r_trips"]
        assert trip["route_stats__r_duration_median"] == latest["r_duration_median"]
        checked += 1
    assert checked > 200


def test_features_never_include_the_trip_itself(prepared):
    """A route seen exactly once in the data has no features for that one trip."""
    trips = prepared.trips
    once = trips.groupby("route_id")["route_id"].transform("size") == 1
    assert once.any()
    assert trips.loc[once, "route_stats__r_trips"].isna().all()


def test_online_features_in_redis_are_the_newest_snapshot(prepared, feature_repo, redis_url):
    fs = store.open_store(feature_repo, redis_url)
    route = prepared.tables["route_stats"]
    newest = route[route["event_timestamp"] == route["event_timestamp"].max()]
    top = newest.sort_values("r_trips").iloc[-1]
    pu, do = divmod(int(top["route_id"]), 1000)
    assert route_id(pu, do) == top["route_id"]
    got = fs.get_online_features(
        features=fs.get_feature_service("trip_v1"),
        entity_rows=[{"pickup_zone_id": pu, "dropoff_zone_id": do, "hour_of_week": 8,
                      "route_id": int(top["route_id"])}],
        full_feature_names=True).to_dict()
    assert got["route_stats__r_trips"] == [int(top["r_trips"])]
    assert got["route_stats__r_fare_median"] == [pytest.approx(top["r_fare_median"])]
    assert redis.Redis.from_url(redis_url).dbsize() > 1000  # the materialized keys are there
