"""Feast definitions: entities, feature views over the training pipeline's parquet tables,
and one feature service per model.

Table and column names come from training/features.py, which writes the parquet files these
sources read (relative paths resolve against this repository). Only definitions live here:
`feast apply` imports this module.
"""

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

# Snapshots are weekly; a row older than this is stale and must not be joined to a trip.
SNAPSHOT_TTL = timedelta(days=14)
# Absolute, because the duckdb offline store resolves paths against the working directory.
DATA_DIR = Path(__file__).resolve().parent / "data"

zone = Entity(name="zone", join_keys=["zone_id"], value_type=ValueType.INT64,
              description="TLC taxi zone (LocationID 1-263)")
hour_of_week = Entity(name="hour_of_week", join_keys=["hour_of_week"],
                      value_type=ValueType.INT64,
                      description="Monday 00h local = 0 ... Sunday 23h = 167")
route = Entity(name="route", join_keys=["route_id"], value_type=ValueType.INT64,
               description="zone pair: pickup_zone_id * 1000 + dropoff_zone_id")


def _source(name: str) -> FileSource:
    return FileSource(name=f"{name}_source", path=str(DATA_DIR / f"{name}.parquet"),
                      timestamp_field="event_timestamp")


zone_hour_traffic = FeatureView(
    name="zone_hour_traffic",
    entities=[zone, hour_of_week],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="zh_trips", dtype=Int64, description="trips from the zone in this hour"),
        Field(name="zh_speed_mean", dtype=Float64, description="mean speed, mph"),
        Field(name="zh_speed_median", dtype=Float64, description="median speed, mph"),
        Field(name="zh_duration_median", dtype=Float64, description="median duration, s"),
        Field(name="zh_fare_per_mile_median", dtype=Float64, description="median fare/mile"),
    ],
    source=_source("zone_hour_traffic"),
    description="Traffic from a pickup zone by hour of week over a trailing 28-day window",
)

zone_stats = FeatureView(
    name="zone_stats",
    entities=[zone],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="z_trips", dtype=Int64),
        Field(name="z_speed_median", dtype=Float64),
        Field(name="z_duration_median", dtype=Float64),
        Field(name="z_distance_median", dtype=Float64),
        Field(name="z_fare_per_mile_median", dtype=Float64),
    ],
    source=_source("zone_stats"),
    description="Trips starting in a zone over a trailing 28-day window",
)

route_stats = FeatureView(
    name="route_stats",
    entities=[route],
    ttl=SNAPSHOT_TTL,
    schema=[
        Field(name="r_trips", dtype=Int64),
        Field(name="r_distance_median", dtype=Float64),
        Field(name="r_duration_median", dtype=Float64),
        Field(name="r_speed_median", dtype=Float64),
        Field(name="r_fare_median", dtype=Float64),
    ],
    source=_source("route_stats"),
    description="Trips along a zone pair over a trailing 28-day window",
)

# The same zone statistics seen from both ends of the trip.
pickup_zone = zone_stats.with_name("pickup_zone").with_join_key_map({"zone_id": "pickup_zone_id"})
dropoff_zone = zone_stats.with_name("dropoff_zone").with_join_key_map(
    {"zone_id": "dropoff_zone_id"})
# Every join key is mapped, hour_of_week to itself: Feast 0.67's offline point-in-time join
# (ibis/duckdb) joins a projected view on the mapped keys only, so with zone_id alone each trip
# got an arbitrary hour of its zone's snapshot while serving reads its own hour.
pickup_traffic = zone_hour_traffic.with_name("pickup_traffic").with_join_key_map(
    {"zone_id": "pickup_zone_id", "hour_of_week": "hour_of_week"})

duration_features = FeatureService(
    name="duration_v1",
    features=[
        pickup_traffic[["zh_trips", "zh_speed_mean", "zh_speed_median", "zh_duration_median"]],
        pickup_zone[["z_trips", "z_speed_median", "z_duration_median", "z_distance_median"]],
        dropoff_zone[["z_trips", "z_speed_median", "z_duration_median"]],
        route_stats[["r_trips", "r_distance_median", "r_duration_median", "r_speed_median"]],
    ],
    description="Features of the trip duration model",
)

fare_features = FeatureService(
    name="fare_v1",
    features=[
        pickup_traffic[["zh_trips", "zh_speed_median", "zh_duration_median",
                        "zh_fare_per_mile_median"]],
        pickup_zone[["z_trips", "z_distance_median", "z_fare_per_mile_median"]],
        dropoff_zone[["z_trips", "z_fare_per_mile_median"]],
        route_stats[["r_trips", "r_distance_median", "r_duration_median", "r_fare_median"]],
    ],
    description="Features of the fare model",
)

# Union of both models' features: one online read serves both models per request, and one
# point-in-time join builds both training sets.
trip_features = FeatureService(
    name="trip_v1",
    features=[pickup_traffic, pickup_zone, dropoff_zone, route_stats],
    description="Every feature of both models (serving and training read this service)",
)
