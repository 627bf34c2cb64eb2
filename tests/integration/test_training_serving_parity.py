"""Training-serving parity of features: the training set holds, for every trip and every
feature view, exactly what the service would read from Redis for that trip at its pickup time,
that is the newest snapshot at or before the pickup (within the view's TTL) for the key the
service builds. Computed here independently of Feast, with pandas' as-of join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_repo.definitions import SNAPSHOT_TTL
from service.online_features import VIEWS, entity_values
from training import store
from training.features import TIMESTAMP
from training.pipeline import point_in_time_features

pytestmark = pytest.mark.integration


def serving_keys(trips: pd.DataFrame, projection: str) -> pd.DataFrame:
    """The join-key values the service reads for ``projection``, one row per trip."""
    _, keys = VIEWS[projection]
    values = [entity_values(int(p), int(d), int(h))[projection] for p, d, h in
              zip(trips["pickup_zone_id"], trips["dropoff_zone_id"], trips["hour_of_week"])]
    return pd.DataFrame(values, columns=list(keys), index=trips.index)


def expected_features(trips: pd.DataFrame, tables: dict, projection: str) -> pd.DataFrame:
    """Newest snapshot with ``event_timestamp <= pickup`` and ``pickup - event_timestamp <=
    TTL`` for the serving key; NaN where there is none."""
    table_name, keys = VIEWS[projection]
    table = tables[table_name]
    assert not table.duplicated([*keys, TIMESTAMP]).any(), f"{table_name}: duplicate snapshots"
    left = serving_keys(trips, projection)
    left[TIMESTAMP] = trips["pickup_utc"].astype("datetime64[us, UTC]")
    left["_row"] = np.arange(len(trips))
    joined = pd.merge_asof(left.sort_values(TIMESTAMP), table.sort_values(TIMESTAMP),
                           on=TIMESTAMP, by=list(keys), direction="backward",
                           allow_exact_matches=True, tolerance=pd.Timedelta(SNAPSHOT_TTL))
    return joined.sort_values("_row").reset_index(drop=True)


@pytest.mark.parametrize("projection", sorted(VIEWS))
def test_training_set_holds_what_serving_reads(prepared, projection):
    """Every trip of both bundled months, every feature of the view: equal, NaN for NaN."""
    trips = prepared.trips
    expected = expected_features(trips, prepared.tables, projection)
    columns = [c for c in trips.columns if c.startswith(f"{projection}__")]
    assert columns, f"no {projection} features in the training set"
    months = trips["pickup_local"].dt.to_period("M").astype(str).to_numpy()
    for col in columns:
        got = trips[col].to_numpy(dtype="float64")
        want = expected[col.split("__", 1)[1]].to_numpy(dtype="float64")
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        bad = {m: f"{(~same[months == m]).mean():.1%}" for m in sorted(set(months))}
        assert same.all(), f"{col}: differs from serving's read on {bad} of the trips"
    # the check has teeth: most trips of the newer month have a value to compare
    has_value = ~np.isnan(trips[columns[0]].to_numpy(dtype="float64"))
    assert has_value[months == months.max()].mean() > 0.5


def test_point_in_time_retrieval_is_deterministic(prepared, feature_repo, redis_url):
    """Two retrievals on the same data give the identical training set."""
    fs = store.open_store(feature_repo, redis_url)
    trips = prepared.trips.sample(20_000, random_state=3).reset_index(drop=True)
    first = point_in_time_features(fs, trips)
    second = point_in_time_features(fs, trips)
    feature_cols = [c for c in first.columns if "__" in c]
    assert len(feature_cols) >= 15
    pd.testing.assert_frame_equal(first[feature_cols], second[feature_cols])
