"""Input edges the outside review found (issue 15, finding 6), each decided in docs/api.md,
sent to the served service by a real HTTP client over loopback."""

from __future__ import annotations

import json

import httpx
import pytest
import redis

from tests.service.test_feedback import wait_logged

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00"}
JSON = {"content-type": "application/json"}


@pytest.fixture()
def rdb(feature_redis):
    client = redis.Redis.from_url(feature_redis.url)
    yield client
    client.close()


def assert_error_shape(r: httpx.Response, status: int, field: str, rule: str = "") -> None:
    """The one error shape of every 4xx: {"error": str, "detail": [{"field", "rule"}]}."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str), body
    assert all(set(d) == {"field", "rule"} for d in body["detail"]), body
    assert any(d["field"] == field and rule in d["rule"] for d in body["detail"]), body


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("request_id", "ride-1\n", "letters, digits"),
    ("pickup_datetime", "2023-02-07T08:30:00\x00", "ISO 8601"),
    ("pickup_datetime", "2023-02-07T08:30:00\n", "ISO 8601"),
    ("pickup_datetime", "2023-02-07", "must include a time of day"),
    ("pickup_datetime", "2023-03-12T02:30", "does not exist in New York"),
    ("pickup_datetime", "2024-03-10T02:00:00", "does not exist in New York"),
])
def test_edge_values_are_422_naming_field_and_rule(served, field, value, rule):
    for path, body, where in (("/predict", {**TRIP, field: value}, field),
                              ("/predict_batch", {"trips": [{**TRIP, field: value}]},
                               f"trips.0.{field}")):
        assert_error_shape(httpx.post(f"{served.http}{path}", json=body), 422, where, rule)


def test_feedback_request_id_with_a_newline_is_422(served):
    r = httpx.post(f"{served.http}/feedback",
                   json={"request_id": "ride-1\n", "actual_fare_usd": 10.0})
    assert_error_shape(r, 422, "request_id", "letters, digits")


@pytest.mark.parametrize("when", ["2022-11-06T01:30:00", "2022-11-06T01:30:00-04:00",
                                  "2022-11-06T01:30:00-05:00", "2023-03-12T02:30:00-05:00",
                                  "2023-02-07 08:30", "2023-02-07T08:30:00.250+0000"])
def test_times_that_exist_are_answered(served, when):
    """Fall-back (ambiguous) local times are answered: the models use the wall clock."""
    r = httpx.post(f"{served.http}/predict", json={**TRIP, "pickup_datetime": when})
    assert r.status_code == 200, (when, r.text)


@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/feedback"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=utf-16", None])
def test_json_routes_want_a_json_content_type(served, path, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = httpx.post(f"{served.http}{path}", content=json.dumps(TRIP).encode(), headers=headers)
    assert_error_shape(r, 415, "content-type", "application/json")


def test_json_content_type_with_utf8_charset_is_accepted(served):
    r = httpx.post(f"{served.http}/predict", content=json.dumps(TRIP).encode(),
                   headers={"content-type": "Application/JSON; charset=UTF-8"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/feedback"])
@pytest.mark.parametrize("encode", [
    lambda s: s.encode("utf-16"), lambda s: s.encode("utf-16-le"),
    lambda s: b"\xef\xbb\xbf" + s.encode()], ids=["utf16-bom", "utf16-le", "utf8-bom"])
def test_bodies_that_are_not_plain_utf8_are_400(served, path, encode):
    body = {"/predict": TRIP, "/predict_batch": {"trips": [TRIP]},
            "/feedback": {"request_id": "x1", "actual_fare_usd": 10.0}}[path]
    r = httpx.post(f"{served.http}{path}", content=encode(json.dumps(body)), headers=JSON)
    assert_error_shape(r, 400, "body", "UTF-8")


def test_feedback_body_limit_is_413_without_reading_it(served):
    big = json.dumps({"request_id": "x1", "actual_fare_usd": 10.0, "pad": "x" * (1 << 20)})
    r = httpx.post(f"{served.http}/feedback", content=big.encode(), headers=JSON, timeout=30)
    assert_error_shape(r, 413, "body", "at most")


@pytest.mark.parametrize(("content", "status", "field"), [
    (b"{not json", 400, "body"), (b"", 400, "body"), (b"[]", 422, "body"),
    (b'{"request_id": "x1"}', 422, "body"),
    (b'{"request_id": "x1", "actual_fare_usd": "ten"}', 422, "actual_fare_usd")])
def test_every_feedback_error_has_the_error_shape(served, content, status, field):
    r = httpx.post(f"{served.http}/feedback", content=content, headers=JSON)
    assert_error_shape(r, status, field)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/predict"), ("PUT", "/predict_batch"), ("GET", "/feedback"),
    ("POST", "/healthz"), ("POST", "/readyz"), ("DELETE", "/metrics"), ("POST", "/livez"),
    ("POST", "/openapi.json")])
def test_a_known_path_with_the_wrong_method_is_405(served, method, path):
    r = httpx.request(method, f"{served.http}{path}")
    assert_error_shape(r, 405, "method")
    assert r.headers["allow"]


def test_an_unknown_path_is_404_in_the_error_shape(served):
    assert_error_shape(httpx.post(f"{served.http}/predictions", json=TRIP), 404, "path")


def test_a_duplicate_feedback_names_the_model_version(served, rdb, model_tag):
    httpx.post(f"{served.http}/predict", json={**TRIP, "request_id": "edge-dup-1"})
    wait_logged(rdb, ["edge-dup-1"])
    body = {"request_id": "edge-dup-1", "actual_fare_usd": 12.0}
    first = httpx.post(f"{served.http}/feedback", json=body).json()
    again = httpx.post(f"{served.http}/feedback", json=body).json()
    assert first["status"] == "accepted" and again["status"] == "duplicate"
    assert again["model_version"] == first["model_version"] == model_tag.split(":")[1]
    assert again["track"] == first["track"] == "stable"
