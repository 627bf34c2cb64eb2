"""The HTTP app in-process (ASGI) with a real predictor on real Redis features."""

import asyncio

import httpx
import pytest

from service.http_app import create_app
from service.predictor import ModelMismatch, Predictor, local_time
from training.register import load_bundle

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00"}


@pytest.fixture(scope="module")
def predictor(model_tag, feature_redis):
    return Predictor.load(model_tag, feature_redis.url, "main")


@pytest.fixture(scope="module")
def app(predictor):
    return create_app(lambda: predictor, max_batch=50)


_runner = asyncio.Runner()  # one loop for the module, like one served worker


def call(app, method, path, **kw):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kw)
    return _runner.run(go())


def test_one_trip(app, model_tag):
    r = call(app, "POST", "/predict", json={**TRIP, "request_id": "ride-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "ride-1"
    assert 60 < body["duration_seconds"] < 7200 and 3 < body["fare_usd"] < 200
    assert body["model_version"] == model_tag.split(":")[1]
    assert body["track"] == "main" and body["degraded"] == []


def test_batch_keeps_order_and_matches_single_answers(app):
    trips = [{**TRIP, "trip_distance_miles": d, "request_id": f"r{d}"} for d in (1, 5, 12)]
    r = call(app, "POST", "/predict_batch", json={"trips": trips})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["request_id"] for p in preds] == ["r1", "r5", "r12"]
    assert preds[0]["fare_usd"] < preds[1]["fare_usd"] < preds[2]["fare_usd"]
    single = call(app, "POST", "/predict", json=trips[1]).json()
    assert single["fare_usd"] == preds[1]["fare_usd"]


@pytest.mark.parametrize("body,field,rule", [
    ({**TRIP, "pickup_zone_id": 264}, "pickup_zone_id", "less than or equal to 263"),
    ({**TRIP, "dropoff_zone_id": "12"}, "dropoff_zone_id", "valid integer"),
    ({**TRIP, "pickup_datetime": "07/02/2023 08:30"}, "pickup_datetime", "ISO 8601"),
    ({**TRIP, "passenger_count": 9}, "passenger_count", "less than or equal to 8"),
    ({**TRIP, "trip_distance_miles": 0}, "trip_distance_miles", "greater than 0"),
    ({**TRIP, "trip_distance_miles": 101}, "trip_distance_miles", "less than or equal to 100"),
    ({**TRIP, "tip": 5}, "tip", "unknown field"),
    ({k: v for k, v in TRIP.items() if k != "pickup_datetime"}, "pickup_datetime", "required"),
])
def test_bad_input_is_422_naming_field_and_rule(app, body, field, rule):
    r = call(app, "POST", "/predict", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(d["field"] == field and rule in d["rule"] for d in detail), detail
    assert field in r.json()["error"]


def test_malformed_json_is_400_and_oversized_batch_413(app):
    r = call(app, "POST", "/predict", content=b"{not json",
             headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "body"
    r = call(app, "POST", "/predict_batch", content=b"[1,",
             headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = call(app, "POST", "/predict_batch", json={"trips": [TRIP] * 51})
    assert r.status_code == 413 and "at most 50" in r.json()["error"]
    r = call(app, "POST", "/predict_batch", json={"trips": [TRIP, {**TRIP, "pickup_zone_id": 0}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "trips.1.pickup_zone_id"


def test_dst_days_answer():
    assert local_time("2023-03-12T02:30:00").hour == 2  # skipped hour: local calendar as sent
    assert local_time("2022-11-06T01:30:00-05:00").hour == 1
    assert local_time("2023-03-12T07:30:00Z").hour == 3  # 07:30 UTC is 03:30 EDT


def test_dst_requests_are_answered(app):
    # 02:30 on 2023-03-12 does not exist and is refused (tests/service/test_input_edges.py)
    for when in ("2023-03-12T01:59:00", "2023-03-12T03:00:00", "2022-11-06T01:30:00",
                 "2023-03-12T06:30:00Z", "2023-03-12T02:30:00-05:00"):
        r = call(app, "POST", "/predict", json={**TRIP, "pickup_datetime": when})
        assert r.status_code == 200, (when, r.text)


def test_model_with_other_feature_services_is_refused(model_tag, feature_redis):
    bundle = load_bundle(model_tag)
    bundle.metadata = {**bundle.metadata, "feature_services": {"duration": "duration_v0"}}
    with pytest.raises(ModelMismatch, match="duration_v0"):
        Predictor(bundle, feature_redis.url, "main")
