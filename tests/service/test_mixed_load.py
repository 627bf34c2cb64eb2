"""Large batches must not starve single trips (issue 15, finding 4): with Redis healthy, a
bounded mixed load of 1000-trip batches and single trips in one event loop (like one served
worker) answers every single trip from Redis, none degraded. Batches keep coming until at least
10 of them and 100 single trips were answered, so the mix does not depend on how fast either
is. Bounded: at most 40 batches and 300 single trips, and 60 s."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from service.http_app import create_app
from service.predictor import Predictor
from tests.report import MEASURED
from training.register import load_bundle

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def predictor(model_tag, feature_redis):
    # as served: compiled trees, the service's Redis budget (50 ms) and batch threads
    return Predictor(load_bundle(model_tag, compiled=True), feature_redis.url, "main",
                     timeout_s=0.05, batch_threads=2)


def test_large_batches_do_not_starve_single_trips(predictor):
    app = create_app(lambda: predictor, max_batch=1000)
    trips = [{"pickup_zone_id": 1 + i % 263, "dropoff_zone_id": 1 + (i * 7) % 263,
              "pickup_datetime": f"2023-02-{1 + i % 28:02d}T{i % 24:02d}:15:00",
              "trip_distance_miles": 0.5 + i % 20} for i in range(1000)]
    batch_body = json.dumps({"trips": trips}).encode()
    single_body = json.dumps(TRIP).encode()

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     timeout=30) as client:
            # warm up: first calls build caches (commands, decoded values)
            assert (await client.post("/predict_batch", content=batch_body,
                                      headers=JSON)).status_code == 200
            stop, done = time.monotonic() + 60, asyncio.Event()
            singles_out: list = []

            async def batches():
                out = []
                while time.monotonic() < stop and len(out) < 40 and (
                        len(out) < 10 or len(singles_out) < 100):
                    r = await client.post("/predict_batch", content=batch_body, headers=JSON)
                    assert r.status_code == 200, r.text
                    out.append(r.json()["predictions"][0]["degraded"])
                done.set()
                return out

            async def singles():
                out = singles_out
                while len(out) < 300 and time.monotonic() < stop and not done.is_set():
                    r = await client.post("/predict", content=single_body, headers=JSON)
                    assert r.status_code == 200, r.text
                    out.append(r.json()["degraded"])
                    await asyncio.sleep(0.005)
                return out

            return await asyncio.gather(batches(), singles())

    batch_degraded, single_degraded = asyncio.run(go())
    degraded = sum(1 for d in single_degraded if d)
    MEASURED["mixed load: degraded single trips"] = f"{degraded} of {len(single_degraded)}"
    assert len(batch_degraded) >= 10 and len(single_degraded) >= 100  # the load was mixed
    assert degraded == 0, f"{degraded} of {len(single_degraded)} single trips degraded"
    assert not any(batch_degraded)
