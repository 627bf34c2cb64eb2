"""The serving image under `docker run --read-only`: the same answers as the in-process service
on 100 real trips over HTTP and gRPC, and a SIGTERM that drains the request in flight."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import grpc
import httpx
import pandas as pd
import pytest

from common.paths import SAMPLE_DIR
from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from tests.images.conftest import container_ip, start_serving

pytestmark = pytest.mark.images

# In-process answers from the model the image carries (its store copied out of the image),
# with compiled trees as the image serves them; run apart because BENTOML_HOME is read once.
IN_PROCESS = """
import asyncio, json, sys
import httpx
from service.http_app import create_app
from service.predictor import Predictor
from training.register import load_bundle, resolve_tag
url, trips = sys.argv[1], json.load(sys.stdin)
bundle = load_bundle(resolve_tag("taxi_trip:champion"), compiled=True)
assert bundle.engine == "compiled", bundle.engine
predictor = Predictor(bundle, url, "image", timeout_s=5.0)
app = create_app(lambda: predictor)
async def go():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return [(await client.post("/predict", json=t)).json() for t in trips]
print(json.dumps(asyncio.run(go())))
"""


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


def test_http_answers_equal_the_in_process_service(serving, trips, image_store, features):
    cid, base = serving
    with httpx.Client(timeout=30) as client:
        served = [client.post(f"{base}/predict", json=t).json() for t in trips]
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, features], input=json.dumps(trips),
                         capture_output=True, text=True, timeout=300, check=False,
                         env={**__import__("os").environ, "BENTOML_HOME": str(image_store)})
    assert out.returncode == 0, out.stderr[-3000:]
    expected = json.loads(out.stdout.splitlines()[-1])
    assert all(a["degraded"] == [] for a in served), [a for a in served if a["degraded"]][:3]
    assert served == expected


def test_grpc_answers_equal_http(serving, trips, daemon):
    cid, base = serving
    with httpx.Client(timeout=30) as client:
        http = client.post(f"{base}/predict_batch", json={"trips": trips}).json()["predictions"]
    channel = grpc.insecure_channel(f"{container_ip(daemon, cid)}:50051")
    try:
        reply = taxi_pb2_grpc.TripPredictorStub(channel).PredictBatch(
            taxi_pb2.PredictBatchRequest(trips=[taxi_pb2.PredictRequest(**t) for t in trips]),
            timeout=30)
    finally:
        channel.close()
    rpc = [{"request_id": p.request_id, "duration_seconds": p.duration_seconds,
            "fare_usd": p.fare_usd, "model_version": p.model_version} for p in reply.predictions]
    assert rpc == [{k: p[k] for k in rpc[0]} for p in http]


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
