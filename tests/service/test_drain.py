"""Draining before shutdown (service/drain.py): once the drain file exists (a serving pod's
preStop hook creates it), every worker still answers, closes each HTTP/1.1 connection after
its response, and reports not ready, so kept-alive clients move to other pods before SIGTERM
closes the listener (issue 13's canary rollout lost a request on such a connection)."""

from __future__ import annotations

import time

import httpx
import pytest

from service.launcher import serve, stop

pytestmark = pytest.mark.service

TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00"}


@pytest.fixture(scope="module")
def draining_service(model_tag, feature_redis, tmp_path_factory):
    home = tmp_path_factory.mktemp("drain")
    flag = home / "draining"
    env = {"REDIS_URL": feature_redis.url, "TAXI_MODEL_TAG": model_tag, "TAXI_TRACK": "stable",
           "TAXI_WORKERS": "2", "TAXI_DRAIN_FILE": str(flag)}
    served = serve("service.service:TaxiService", env, home / "service.log")
    yield served, flag
    stop(served)


def test_the_drain_file_closes_connections_and_unreadies_every_worker(draining_service):
    served, flag = draining_service
    with httpx.Client(base_url=served.http, timeout=10) as client:  # one kept-alive connection
        before = client.post("/predict", json=TRIP)
        assert before.status_code == 200 and "connection" not in before.headers
        assert client.get("/readyz").status_code == 200
    flag.touch()
    time.sleep(1.0)  # each worker polls every 0.2 s
    # New connections reach either worker: 20 of them all see the drain.
    for _ in range(20):
        reply = httpx.post(f"{served.http}/predict", json=TRIP, timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.headers.get("connection") == "close", reply.headers
        assert reply.json()["duration_seconds"] == before.json()["duration_seconds"]
        assert httpx.get(f"{served.http}/readyz", timeout=10).status_code == 503
    # A kept-alive client is moved off: its connection is closed after each answer.
    with httpx.Client(base_url=served.http, timeout=10) as client:
        for _ in range(3):
            assert client.post("/predict", json=TRIP).status_code == 200
        assert client._transport._pool.connections == []  # nothing left open to reuse
