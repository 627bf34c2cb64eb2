"""Prediction log and ground-truth feedback on the served service (real Redis, HTTP, gRPC)."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import numpy as np
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from service.grpc_gen import taxi_pb2, taxi_pb2_grpc

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00",
        "trip_distance_miles": 3.1, "passenger_count": 2}


def wait_logged(client: redis.Redis, rids: list[str], timeout: float = 10.0) -> None:
    """The log is written off the request path: wait until every prediction is in Redis."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for rid in rids:
            pipe.exists(f"taxi:pred:{rid}")
        if all(pipe.execute()):
            return
        time.sleep(0.05)
    raise AssertionError("predictions were not logged within the timeout")


def samples(text: str, name: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == name]


@pytest.fixture()
def rdb(feature_redis):
    client = redis.Redis.from_url(feature_redis.url)
    yield client
    client.close()


def test_prediction_log_holds_the_vector_the_models_used(served, rdb, model_tag):
    answer = httpx.post(f"{served.http}/predict", json={**TRIP, "request_id": "log-1"}).json()
    wait_logged(rdb, ["log-1"])
    version = model_tag.split(":")[1]
    model = rdb.hgetall(f"taxi:model:{version}")
    columns = json.loads(model[b"columns"])
    assert set(json.loads(model[b"categorical"])) <= set(columns)
    assert "pickup_zone_id" in json.loads(model[b"categorical"])
    entries = [f for _, f in rdb.xrange("taxi:predlog") if f[b"rid"] == b"log-1"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry[b"v"].decode() == version and entry[b"t"] == b"stable"
    assert float(entry[b"dur"]) == pytest.approx(answer["duration_seconds"], abs=0.05)
    assert float(entry[b"fare"]) == pytest.approx(answer["fare_usd"], abs=0.005)
    x = dict(zip(columns, np.frombuffer(entry[b"x"], dtype="<f4")))
    assert x["pickup_zone_id"] == 74 and x["dropoff_zone_id"] == 236
    assert x["trip_distance"] == pytest.approx(3.1) and x["passenger_count"] == 2
    assert x["hour"] == 8 and x["weekday"] == 1  # a Tuesday
    assert not np.isnan(x["route_stats__r_trips"])  # online features were logged too


def test_feedback_is_joined_once_and_unknown_ids_are_reported(served, rdb):
    answer = httpx.post(f"{served.http}/predict", json={**TRIP, "request_id": "fb-1"}).json()
    wait_logged(rdb, ["fb-1"])
    body = {"request_id": "fb-1", "actual_duration_seconds": 1000.0, "actual_fare_usd": 20.5}
    first = httpx.post(f"{served.http}/feedback", json=body)
    assert first.status_code == 202
    assert first.json()["status"] == "accepted" and first.json()["track"] == "stable"
    again = httpx.post(f"{served.http}/feedback", json=body)
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    unknown = httpx.post(f"{served.http}/feedback", json={**body, "request_id": "never-made"})
    assert unknown.status_code == 202 and unknown.json()["status"] == "unknown_request"
    joined = [f for _, f in rdb.xrange("taxi:feedback") if f[b"rid"] == b"fb-1"]
    assert len(joined) == 1
    assert float(joined[0][b"err_fare"]) == pytest.approx(abs(20.5 - answer["fare_usd"]))
    assert float(joined[0][b"err_dur"]) == pytest.approx(
        abs(1000.0 - answer["duration_seconds"]), abs=0.05)
    unmatched = [f for _, f in rdb.xrange("taxi:feedback:unmatched")
                 if f[b"rid"] == b"never-made"]
    assert len(unmatched) == 1 and float(unmatched[0][b"act_fare"]) == 20.5  # kept, not lost
    text = httpx.get(f"{served.http}/metrics").text
    results = {s.labels["result"]: s.value for s in samples(text, "taxi_feedback_total")}
    assert results["accepted"] >= 1 and results["duplicate"] >= 1
    assert results["unknown_request"] >= 1


@pytest.mark.parametrize(("body", "field"), [
    ({"request_id": "x1"}, "body"),
    ({"request_id": "x1", "actual_duration_seconds": -5}, "actual_duration_seconds"),
    ({"request_id": "x1", "actual_fare_usd": 1e9}, "actual_fare_usd"),
    ({"request_id": "x 1", "actual_fare_usd": 10}, "request_id"),
    ({"request_id": "x1", "actual_fare_usd": "ten"}, "actual_fare_usd"),
    ({"request_id": "x1", "actual_fare_usd": 10, "tip": 2}, "tip"),
])
def test_bad_feedback_is_a_422_naming_the_field(served, body, field):
    r = httpx.post(f"{served.http}/feedback", json=body)
    assert r.status_code == 422
    assert field in [d["field"] for d in r.json()["detail"]], r.json()


def test_grpc_feedback(served, rdb):
    channel = grpc.insecure_channel(served.grpc)
    stub = taxi_pb2_grpc.TripPredictorStub(channel)
    try:
        pred = stub.Predict(taxi_pb2.PredictRequest(
            pickup_zone_id=74, dropoff_zone_id=236, pickup_datetime="2023-02-07T08:30:00",
            request_id="grpc-fb-1"))
        wait_logged(rdb, ["grpc-fb-1"])
        reply = stub.Feedback(taxi_pb2.FeedbackRequest(request_id="grpc-fb-1",
                                                       actual_fare_usd=pred.fare_usd + 2))
        assert reply.status == "accepted" and reply.model_version == pred.model_version
        assert stub.Feedback(taxi_pb2.FeedbackRequest(
            request_id="grpc-fb-1", actual_fare_usd=1.0)).status == "duplicate"
        with pytest.raises(grpc.RpcError) as err:
            stub.Feedback(taxi_pb2.FeedbackRequest(request_id="grpc-fb-2",
                                                   actual_duration_seconds=-1))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "actual_duration_seconds" in err.value.details()
    finally:
        channel.close()


def test_rolling_mae_gauge_matches_the_joined_feedback(served, rdb, model_tag):
    rids = [f"mae-{i}" for i in range(30)]
    trips = [{**TRIP, "request_id": rid, "trip_distance_miles": 1.0 + i / 10}
             for i, rid in enumerate(rids)]
    answers = httpx.post(f"{served.http}/predict_batch", json={"trips": trips}).json()
    wait_logged(rdb, rids)
    rng = np.random.default_rng(0)
    for p in answers["predictions"]:
        r = httpx.post(f"{served.http}/feedback", json={
            "request_id": p["request_id"], "actual_fare_usd": p["fare_usd"] + rng.normal(0, 3)})
        assert r.status_code == 202
    version = model_tag.split(":")[1]
    first_minute = int(time.time() // 60) - 14  # the 15m window, as minute buckets
    errors = [float(f[b"err_fare"]) for _, f in rdb.xrange("taxi:feedback")
              if f[b"v"].decode() == version and f[b"t"] == b"stable" and f[b"err_fare"]
              and float(f[b"ts"]) // 60 >= first_minute]
    deadline, got = time.monotonic() + 15, {}
    while time.monotonic() < deadline:
        text = httpx.get(f"{served.http}/metrics").text
        got = {s.name: s.value for s in samples(text, "taxi_rolling_mae")
               + samples(text, "taxi_rolling_feedback_samples")
               if s.labels.get("target") == "fare" and s.labels.get("window") == "15m"
               and s.labels.get("model_version") == version}
        if got.get("taxi_rolling_feedback_samples") == len(errors):
            break
        time.sleep(0.5)
    assert got.get("taxi_rolling_feedback_samples") == len(errors)
    assert got["taxi_rolling_mae"] == pytest.approx(np.mean(errors), rel=1e-6)
    offline = [s for s in samples(text, "taxi_model_offline_mae")
               if s.labels["target"] == "fare"]
    assert offline and offline[0].value > 0
