"""The service as a built Bento (`bentoml build`), served from outside the checkout."""

import os
import re
import subprocess
import sys

import grpc
import httpx
import pytest

from cluster.bento_stage import export_requirements
from cluster.images import path_with_uv
from common.paths import ROOT
from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from service.launcher import serve, stop

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_built_bento_serves_http_and_grpc(model_tag, feature_redis, tmp_path):
    reqs = export_requirements()  # what the serving image installs: no Feast, Dask, LLVM
    assert not re.search(r"(?mi)^(feast|duckdb|dask|llvmlite)==", reqs.read_text())
    build = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", "bentofile.yaml"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "TAXI_MODEL_TAG": model_tag, "PATH": path_with_uv()})
    assert build.returncode == 0, build.stderr[-3000:]
    bento = re.search(r'Bento\(tag="([^"]+)"\)', build.stdout + build.stderr).group(1)
    served = serve(bento, {"REDIS_URL": feature_redis.url, "TAXI_MODEL_TAG": model_tag,
                           "TAXI_TRACK": "canary"}, tmp_path / "bento.log", cwd=tmp_path)
    try:
        body = httpx.post(f"{served.http}/predict", json={
            "pickup_zone_id": 74, "dropoff_zone_id": 236,
            "pickup_datetime": "2023-02-07T08:30:00"}).json()
        assert body["model_version"] == model_tag.split(":")[1] and body["track"] == "canary"
        with grpc.insecure_channel(served.grpc) as channel:
            reply = taxi_pb2_grpc.TripPredictorStub(channel).Predict(taxi_pb2.PredictRequest(
                pickup_zone_id=74, dropoff_zone_id=236, pickup_datetime="2023-02-07T08:30:00"))
        assert reply.duration_seconds == pytest.approx(body["duration_seconds"])
    finally:
        stop(served)
