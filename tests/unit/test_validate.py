"""Validation: every rule catches what it should on real rows; nothing is lost."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FEB, JAN
from training.data import read_trips
from training.validate import RULES, validate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def jan():
    return read_trips(JAN)


@pytest.fixture(scope="module")
def jan_result(jan):
    return validate(jan)


def test_every_row_is_either_clean_or_quarantined(jan, jan_result):
    clean, quarantine = jan_result.clean, jan_result.quarantine
    assert len(clean) + len(quarantine) == len(jan)
    assert set(clean["source_row"]).isdisjoint(quarantine["source_row"])
    assert set(clean["source_row"]) | set(quarantine["source_row"]) == set(jan["source_row"])
    assert quarantine["reasons"].str.len().gt(0).all()


def test_real_anomalies_of_the_month_are_caught(jan_result):
    by_rule = jan_result.summary["by_rule"]
    # the data README lists these anomalies as present in the real files
    for rule in ("duration_nonpositive", "distance_zero", "distance_absurd",
                 "fare_nonpositive", "zone_out_of_range", "duration_too_long"):
        assert by_rule[rule] > 0, rule
    assert set(by_rule) == set(RULES)


def test_clean_rows_obey_every_rule(jan_result):
    c = jan_result.clean
    assert c["duration_s"].between(60, 3 * 3600).all()
    assert c["trip_distance"].between(0, 100, inclusive="right").all()
    assert c["fare_amount"].between(0, 500, inclusive="right").all()
    assert c["pickup_zone_id"].between(1, 263).all() and c["dropoff_zone_id"].between(1, 263).all()
    assert (c["trip_distance"] / (c["duration_s"] / 3600)).le(80).all()
    assert c["pickup_local"].dt.to_period("M").astype(str).eq("2023-01").all()


def test_quarantine_lists_every_broken_rule(jan):
    rows = jan.head(6).copy()
    rows.loc[rows.index[0], "fare_amount"] = -5.0
    rows.loc[rows.index[1], ["trip_distance", "pickup_zone_id"]] = [0.0, 265]
    rows.loc[rows.index[2], "fare_amount"] = 900.0
    rows.loc[rows.index[3], "dropoff_zone_id"] = pd.NA
    rows.loc[rows.index[4], "pickup_local"] = pd.Timestamp("2022-12-31 23:50")
    rows.loc[rows.index[5], ["trip_distance", "duration_s"]] = [50.0, 600.0]
    result = validate(rows)
    reasons = result.quarantine.set_index("source_row")["reasons"].to_dict()
    r = rows["source_row"].tolist()
    assert reasons[r[0]] == "fare_nonpositive"
    assert reasons[r[1]] == "distance_zero,zone_out_of_range"
    assert reasons[r[2]] == "fare_absurd"
    assert reasons[r[3]] == "null_required"
    assert reasons[r[4]] == "outside_month"
    assert reasons[r[5]] == "speed_too_high"
    assert result.clean.empty


def test_unrecorded_passenger_counts_become_unknown_not_rejections():
    trips = read_trips(FEB)
    result = validate(trips)
    zero = trips["passenger_count"].eq(0) & trips["source_row"].isin(result.clean["source_row"])
    assert zero.any()  # real rows record 0 passengers
    assert result.clean["passenger_count"].dropna().between(1, 8).all()
    assert np.isnan(result.clean.set_index("source_row").loc[
        trips.loc[zero, "source_row"], "passenger_count"]).all()
