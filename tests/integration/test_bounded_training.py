"""The bounded-memory pipeline (training.bounded) on the bundled sample: chunked validation
accounts for every row, DuckDB's snapshots equal pandas', the chunked Feast join equals the
whole-frame join, and the row budget keeps the newest training trips."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from common.paths import FEATURE_REPO
from training.bounded import load_window, prepare_bounded
from training.data import read_trips
from training.features import compute_feature_tables
from training.pipeline import train_and_evaluate
from training.settings import TrainScaleSettings
from training.train import TrainConfig
from training.validate import validate

pytestmark = [pytest.mark.integration, pytest.mark.scale]

BUDGET = 5_000  # the sample has about 50k clean trips per month: the budget must bite
KEY = ["source_file", "source_row"]


@pytest.fixture(scope="module")
def bounded(tmp_path_factory, sample_files, zones_csv, redis_url):
    repo = tmp_path_factory.mktemp("bounded_repo")
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(FEATURE_REPO / name, repo / name)
    out = tmp_path_factory.mktemp("bounded_out")
    settings = TrainScaleSettings(max_rows=BUDGET, eval_rows=BUDGET, chunk_rows=7_000)
    prep = prepare_bounded(sample_files, zones_csv, repo, redis_url, out, "2023-02", None,
                           settings=settings, materialize=False)
    return prep, out / "datasets" / prep.version


@pytest.fixture(scope="module")
def whole(sample_files):
    return validate(pd.concat([read_trips(f) for f in sample_files], ignore_index=True))


def test_every_input_row_is_clean_or_quarantined_once(bounded, whole, sample_files):
    prep, ds_dir = bounded
    clean = pd.read_parquet(ds_dir / "clean", columns=KEY)
    quarantine = pd.read_parquet(ds_dir / "quarantine.parquet")
    both = pd.concat([clean, quarantine[KEY]], ignore_index=True)
    raw_rows = sum(len(pd.read_parquet(f, columns=["PULocationID"])) for f in sample_files)
    assert len(both) == raw_rows == prep.validation_summary["rows_in"]
    assert not both.duplicated().any()
    assert quarantine["reasons"].str.len().gt(0).all()
    # chunking changes nothing: the same rows are quarantined for the same reasons
    assert prep.validation_summary["by_rule"] == whole.summary["by_rule"]
    merged = quarantine.merge(whole.quarantine[[*KEY, "reasons"]], on=KEY, suffixes=("", "_w"))
    assert len(merged) == len(whole.quarantine) and (merged["reasons"] == merged["reasons_w"]).all()


def test_duckdb_snapshots_equal_the_pandas_ones(bounded, whole):
    prep, _ = bounded
    expected = compute_feature_tables(whole.clean)
    for name, table in prep.tables.items():
        keys = [c for c in table.columns if c[:2] not in ("zh", "z_", "r_")]
        got = table.sort_values(keys).reset_index(drop=True)
        want = expected[name].sort_values(keys).reset_index(drop=True)[got.columns]
        assert len(got) > 100
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)


def test_chunked_join_equals_the_whole_frame_join(bounded, prepared):
    prep, _ = bounded
    cols = sorted({c for cs in prep.feast_columns.values() for c in cs})
    got = prep.trips[[*KEY, *cols]].set_index(KEY).sort_index()
    want = prepared.trips[[*KEY, *cols]].set_index(KEY).loc[got.index]
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, check_dtype=False)


def test_budget_keeps_the_newest_training_trips(bounded, prepared):
    prep, _ = bounded
    month = prep.trips["pickup_local"].dt.to_period("M").astype(str)
    train, test = prep.trips[month < "2023-02"], prep.trips[month == "2023-02"]
    assert len(train) == BUDGET and len(test) == BUDGET
    full_month = prepared.trips["pickup_local"].dt.to_period("M").astype(str)
    full_train = prepared.trips[full_month < "2023-02"]
    assert len(full_train) > 2 * BUDGET
    left_out = full_train[~full_train.set_index(KEY).index.isin(train.set_index(KEY).index)]
    assert left_out["pickup_utc"].max() <= train["pickup_utc"].min()
    # the evaluation sample is spread over the month, not its first days
    assert test["pickup_local"].dt.day.nunique() >= 25


def test_the_window_defaults_to_the_latest_month(bounded):
    # `python -m training pipeline` without --eval-month: the month comes from the data
    _, ds_dir = bounded
    trips = load_window(ds_dir / "joined", None, None, BUDGET, "256MB", ds_dir / "spill", 1_000)
    month = trips["pickup_local"].dt.to_period("M").astype(str)
    assert (month == "2023-02").sum() == 1_000 and (month == "2023-01").sum() == BUDGET
    # ordered training trips first, oldest first; then the evaluation sample, oldest first
    assert month.is_monotonic_increasing
    for part in (trips[month == "2023-01"], trips[month == "2023-02"]):
        assert part["pickup_utc"].is_monotonic_increasing


def test_training_on_the_budget(bounded):
    prep, _ = bounded
    trained = train_and_evaluate(prep, "2023-02", TrainConfig(n_estimators=100))
    for info in trained["fit"].values():
        assert info["rows_fit"] + info["rows_holdout"] == 2 * BUDGET  # with and without distance
    assert trained["evaluation"]["fare"]["lightgbm+features"]["overall"]["n"] == BUDGET
