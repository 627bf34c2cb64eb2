"""The service as users run it: `bentoml serve`, real HTTP and gRPC clients over 127.0.0.1."""

import grpc
import httpx
import pytest
import schemathesis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from service.grpc_gen import taxi_pb2, taxi_pb2_grpc

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00"}


@pytest.fixture(scope="module")
def stub(served):
    channel = grpc.insecure_channel(served.grpc)
    yield taxi_pb2_grpc.TripPredictorStub(channel), channel
    channel.close()


def test_http_and_grpc_answer_the_same(served, stub, model_tag):
    http = httpx.post(f"{served.http}/predict",
                      json={**TRIP, "trip_distance_miles": 3.1, "request_id": "a1"}).json()
    rpc = stub[0].Predict(taxi_pb2.PredictRequest(
        pickup_zone_id=74, dropoff_zone_id=236, pickup_datetime="2023-02-07T08:30:00",
        trip_distance_miles=3.1, request_id="a1"))
    assert http["request_id"] == rpc.request_id == "a1"
    assert http["duration_seconds"] == pytest.approx(rpc.duration_seconds)
    assert http["fare_usd"] == pytest.approx(rpc.fare_usd)
    assert http["model_version"] == rpc.model_version == model_tag.split(":")[1]
    assert http["track"] == rpc.track == "stable"
    assert list(rpc.degraded) == http["degraded"] == []


def test_grpc_batch_and_invalid_argument(stub):
    trips = [taxi_pb2.PredictRequest(pickup_zone_id=74, dropoff_zone_id=236,
                                     pickup_datetime="2023-02-07T08:30:00", request_id=f"b{i}")
             for i in range(100)]
    reply = stub[0].PredictBatch(taxi_pb2.PredictBatchRequest(trips=trips))
    assert [p.request_id for p in reply.predictions] == [f"b{i}" for i in range(100)]
    with pytest.raises(grpc.RpcError) as err:
        stub[0].Predict(taxi_pb2.PredictRequest(pickup_zone_id=0, dropoff_zone_id=236,
                                                pickup_datetime="2023-02-07T08:30:00"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pickup_zone_id" in err.value.details()
    bad = taxi_pb2.PredictRequest(pickup_zone_id=74, dropoff_zone_id=236,
                                  pickup_datetime="2023-02-07T08:30:00", passenger_count=12)
    with pytest.raises(grpc.RpcError) as err:
        stub[0].PredictBatch(taxi_pb2.PredictBatchRequest(trips=[trips[0], bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trips.1.passenger_count" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub[0].PredictBatch(taxi_pb2.PredictBatchRequest(trips=[trips[0]] * 1001))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1000" in err.value.details()


def test_grpc_health_and_reflection(stub):
    channel = stub[1]
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "taxi.v1.TripPredictor"):
        status = health.Check(health_pb2.HealthCheckRequest(service=name)).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(refl.ServerReflectionInfo(iter([
        reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in reply.list_services_response.service}
    assert "taxi.v1.TripPredictor" in names and "grpc.health.v1.Health" in names


def test_health_readiness_and_metrics(served):
    assert httpx.get(f"{served.http}/healthz").status_code == 200
    assert httpx.get(f"{served.http}/readyz").status_code == 200
    httpx.post(f"{served.http}/predict", json=TRIP)
    httpx.post(f"{served.http}/predict", json={**TRIP, "pickup_zone_id": 999})
    text = httpx.get(f"{served.http}/metrics").text
    for name in ("taxi_request_duration_seconds_bucket", "taxi_requests_total",
                 "taxi_feature_fetch_duration_seconds_bucket", "taxi_predicted_fare_usd_bucket",
                 "taxi_trips_predicted_total"):
        assert name in text, name
    assert 'status="4xx"' in text and 'protocol="http"' in text
    compiled = [line for line in text.splitlines() if line.startswith("taxi_model_compiled{")]
    assert compiled and compiled[0].endswith(" 1.0"), compiled  # serving the compiled trees


def test_no_input_produces_a_server_error(served):
    """Schemathesis explores the served OpenAPI schema (valid and invalid bodies): no 5xx."""
    schema = schemathesis.openapi.from_url(f"{served.http}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/predict_batch"}
    for operation in operations:
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def explore(case):
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500

        explore()
