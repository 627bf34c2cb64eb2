"""The serving image under `docker run --read-only`: the same answers as `make serve` (a local
`python -m service` on the model the image carries) on 100 real trips over HTTP and gRPC, and a
SIGTERM that drains the request in flight."""

from __future__ import annotations

import json
import socket
import time

import grpc
import httpx
import pandas as pd
import pytest
from google.protobuf.json_format import MessageToDict

from common.paths import SAMPLE_DIR
from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from tests.images.conftest import container_ip, start_serving

pytestmark = pytest.mark.images


@pytest.fixture(scope="module")
def trips() -> list[dict]:
    """100 real February 2023 trips from the bundled sample, valid for the API."""
    df = pd.read_parquet(SAMPLE_DIR / "green_tripdata_2023-02.parquet")
    ok = (df.PULocationID.between(1, 263) & df.DOLocationID.between(1, 263)
          & (df.trip_distance > 0) & (df.trip_distance <= 100))
    rows = df[ok].sample(100, random_state=12)
    return [{"pickup_zone_id": int(r.PULocationID), "dropoff_zone_id": int(r.DOLocationID),
             "pickup_datetime": r.lpep_pickup_datetime.isoformat(),
             "trip_distance_miles": float(r.trip_distance), "request_id": f"img-{i}",
             **({} if pd.isna(r.passenger_count) or not 0 < r.passenger_count <= 9
                else {"passenger_count": int(r.passenger_count)})}
            for i, r in enumerate(rows.itertuples())]


def test_http_answers_equal_make_serve(serving, local_service, trips):
    cid, base = serving
    with httpx.Client(timeout=30) as client:
        served = [client.post(f"{base}/predict", json=t).json() for t in trips]
        expected = [client.post(f"{local_service.http}/predict", json=t).json() for t in trips]
    assert all(a["degraded"] == [] for a in served), [a for a in served if a["degraded"]][:3]
    assert served == expected


def _grpc(address: str, trips: list[dict]) -> tuple[list[dict], list[dict]]:
    """Each trip by Predict, then all of them by PredictBatch."""
    channel = grpc.insecure_channel(address)
    try:
        stub = taxi_pb2_grpc.TripPredictorStub(channel)
        requests = [taxi_pb2.PredictRequest(**t) for t in trips]
        one = [MessageToDict(stub.Predict(r, timeout=30)) for r in requests]
        batch = stub.PredictBatch(taxi_pb2.PredictBatchRequest(trips=requests), timeout=30)
        return one, [MessageToDict(p) for p in batch.predictions]
    finally:
        channel.close()


def test_grpc_answers_equal_make_serve(serving, local_service, trips, daemon):
    cid, base = serving
    one, batch = _grpc(f"{container_ip(daemon, cid)}:50051", trips)
    expected_one, expected_batch = _grpc(local_service.grpc, trips)
    assert not [p for p in one if p.get("degraded")], [p for p in one if p.get("degraded")][:3]
    assert len(one) == len(trips) and one == expected_one
    assert batch == expected_batch == one


def test_serves_compiled_trees_as_non_root_from_a_read_only_root(serving, daemon):
    cid, base = serving
    info = json.loads(daemon.docker("inspect", cid).stdout)[0]
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert daemon.docker("exec", cid, "id", "-u").stdout.strip() == "10001"
    assert daemon.docker("exec", cid, "touch", "/opt/taxi/x", check=False).returncode != 0
    metrics = httpx.get(f"{base}/metrics", timeout=30).text
    compiled = [line for line in metrics.splitlines() if line.startswith("taxi_model_compiled{")]
    assert compiled and all(line.endswith(" 1.0") for line in compiled), compiled


def test_sigterm_drains_the_request_in_flight(daemon, refs, features, trips):
    """Half a request is sent, then SIGTERM, then the rest: it must be answered, and the
    container must exit by itself within the chart's 30 s grace period (not be killed)."""
    cid, base = start_serving(daemon, refs["serving"], features)
    try:
        body = json.dumps({"trips": trips}).encode()
        head = (f"POST /predict_batch HTTP/1.1\r\nHost: taxi\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection((container_ip(daemon, cid), 3000), timeout=30) as sock:
            sock.sendall(head + body[:100])
            time.sleep(0.5)
            daemon.docker("kill", "--signal", "TERM", cid)
            time.sleep(1.0)
            sock.sendall(body[100:])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status, _, payload = reply.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200"), reply[:500]
        assert len(json.loads(payload)["predictions"]) == len(trips)
        code = daemon.docker("wait", cid, timeout=30).stdout.strip()
        assert code == "0", daemon.docker("logs", cid).stderr[-3000:]
    finally:
        daemon.docker("rm", "-f", cid, check=False)
