"""Ingest: one schema for green and yellow, parquet and CSV; clear schema errors; DST; download."""

import http.server
import threading

import pandas as pd
import pytest

from tests.conftest import FEB, JAN
from training.data import SchemaError, download_month, read_trips, to_utc

pytestmark = pytest.mark.unit


def test_green_parquet_keeps_every_row_in_one_schema():
    raw = pd.read_parquet(JAN)
    trips = read_trips(JAN)
    assert len(trips) == len(raw)
    assert (trips["taxi_type"] == "green").all()
    assert trips["source_row"].tolist() == list(range(len(raw)))
    first = raw.iloc[0]
    assert trips.loc[0, "pickup_local"] == first["lpep_pickup_datetime"]
    assert trips.loc[0, "pickup_zone_id"] == first["PULocationID"]
    # durations come from UTC instants, so they equal wall-clock differences on normal days
    expected = (first["lpep_dropoff_datetime"] - first["lpep_pickup_datetime"]).total_seconds()
    assert trips.loc[0, "duration_s"] == expected


def test_yellow_csv_reads_like_green_parquet(tmp_path):
    raw = pd.read_parquet(FEB).head(500)
    yellow = raw.rename(columns={"lpep_pickup_datetime": "tpep_pickup_datetime",
                                 "lpep_dropoff_datetime": "tpep_dropoff_datetime"})
    path = tmp_path / "yellow_tripdata_2023-02.csv"
    yellow.to_csv(path, index=False)
    got, want = read_trips(path), read_trips(FEB).head(500)
    assert (got["taxi_type"] == "yellow").all()
    cols = ["pickup_local", "pickup_zone_id", "dropoff_zone_id", "trip_distance",
            "fare_amount", "duration_s"]
    pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False)


def test_missing_and_mistyped_columns_are_named(tmp_path):
    raw = pd.read_parquet(JAN).head(50)
    broken = raw.drop(columns=["DOLocationID", "fare_amount"])
    broken["trip_distance"] = "far"
    path = tmp_path / "green_tripdata_2023-01.parquet"
    broken.to_parquet(path)
    with pytest.raises(SchemaError) as err:
        read_trips(path)
    message = str(err.value)
    assert "DOLocationID" in message and "fare_amount" in message
    assert "trip_distance" in message and "wrongly typed" in message


def test_file_without_pickup_time_says_which_columns_it_wanted(tmp_path):
    path = tmp_path / "trips.parquet"
    pd.read_parquet(JAN).head(5).drop(columns=["lpep_pickup_datetime"]).to_parquet(path)
    with pytest.raises(SchemaError, match="lpep_pickup_datetime"):
        read_trips(path)


def test_dst_days_map_to_real_instants():
    local = pd.Series(pd.to_datetime([
        "2023-03-12 01:59:00",  # just before spring-forward
        "2023-03-12 02:30:00",  # does not exist: shifted to 03:00 EDT
        "2023-03-12 03:01:00",
        "2022-11-06 01:30:00",  # happens twice: read as daylight time (EDT)
        "2022-11-06 02:30:00",
    ]))
    utc = to_utc(local)
    assert utc.iloc[0] == pd.Timestamp("2023-03-12 06:59", tz="UTC")
    assert utc.iloc[1] == pd.Timestamp("2023-03-12 07:00", tz="UTC")
    assert utc.iloc[2] == pd.Timestamp("2023-03-12 07:01", tz="UTC")
    assert utc.iloc[3] == pd.Timestamp("2022-11-06 05:30", tz="UTC")
    assert utc.iloc[4] == pd.Timestamp("2022-11-06 07:30", tz="UTC")


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        _Handler.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def tlc_mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving a real TLC file (never the internet)."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / JAN.name).write_bytes(JAN.read_bytes())
    _Handler.hits = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_fetches_once_then_uses_the_cache(tlc_mirror, tmp_path):
    cache = tmp_path / "cache"
    path = download_month("green", "2023-01", cache, base_url=tlc_mirror)
    assert path.read_bytes() == JAN.read_bytes()
    again = download_month("green", "2023-01", cache, base_url=tlc_mirror)
    assert again == path
    assert _Handler.hits == [f"/{JAN.name}"]
    assert len(read_trips(path)) == len(pd.read_parquet(JAN))


def test_download_of_a_missing_month_fails_and_caches_nothing(tlc_mirror, tmp_path):
    import httpx

    with pytest.raises(httpx.HTTPStatusError):
        download_month("green", "2019-05", tmp_path / "cache", base_url=tlc_mirror)
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("taxi,month", [("blue", "2023-01"), ("green", "2023-13")])
def test_download_rejects_bad_arguments(taxi, month, tmp_path):
    with pytest.raises(ValueError):
        download_month(taxi, month, tmp_path, base_url="http://127.0.0.1:9")
