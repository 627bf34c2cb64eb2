"""The single-trip row (training.model.SingleRow) equals what the vector path builds for one
trip, bit for bit: request columns, features (NaN where Redis had none), every derived column,
in the booster's column order."""

from __future__ import annotations

import numpy as np
import pytest

from common.paths import SAMPLE_DIR
from training.features import load_zones
from training.model import (
    DERIVED,
    REQUEST_COLUMNS,
    SingleRow,
    ZoneGeo,
    derive,
    matrix,
    request_columns,
)

pytestmark = pytest.mark.unit

FEATURES = ["pickup_traffic__zh_speed_median", "pickup_traffic__zh_fare_per_mile_median",
            "pickup_traffic__zh_trips", "pickup_zone__z_speed_median",
            "pickup_zone__z_fare_per_mile_median", "dropoff_zone__z_fare_per_mile_median",
            "route_stats__r_distance_median", "route_stats__r_trips"]


def vector_row(geo, names, pu, do, hour, weekday, minute, passengers, distance, feats):
    cols = request_columns(geo, [pu], [do], [hour], [weekday], [minute], [passengers],
                           [distance])
    for j, name in enumerate(FEATURES):
        cols[name] = np.array([feats[j]], dtype="float64")
    return matrix(derive(cols), names, 1)


def test_single_row_equals_the_vector_path_bit_for_bit():
    geo = ZoneGeo(load_zones(SAMPLE_DIR / "zones.csv"))
    # the booster's order is not the construction order, and a column may be absent
    names = sorted([*REQUEST_COLUMNS, *FEATURES, *DERIVED, "not_a_column"])
    single = SingleRow(geo, names, FEATURES)
    rng = np.random.default_rng(7)
    zones = [1, 2, 74, 132, 236, 264, 265]  # 264/265 have no centroid
    for _ in range(3000):
        pu, do = int(rng.choice(zones)), int(rng.choice(zones))
        feats = rng.uniform(-1.0, 40.0, len(FEATURES))
        feats[rng.random(len(FEATURES)) < 0.3] = np.nan  # features Redis did not have
        feats[rng.random(len(FEATURES)) < 0.05] = 0.0  # a zero speed
        passengers = np.nan if rng.random() < 0.3 else float(rng.integers(1, 7))
        distance = np.nan if rng.random() < 0.3 else float(rng.choice([0.0, 0.1, 3.7, 25.0]))
        args = (pu, do, int(rng.integers(0, 24)), int(rng.integers(0, 7)),
                int(rng.integers(0, 60)), passengers, distance)
        want = vector_row(geo, names, *args, feats)
        got = single.row(*args, feats)
        assert got.shape == want.shape == (1, len(names))
        # exact equality, NaN where the vector path has NaN
        np.testing.assert_array_equal(got, want, err_msg=str((args, feats)))
