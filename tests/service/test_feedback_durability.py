"""Feedback under concurrent load and across a Redis restart: every feedback counted once.

The service runs against its own Redis with an append-only file fsynced on every write (the
durability production needs); half-way through the load that Redis is restarted. Clients
retry until they get a 202, exactly as a ride app would; the stream and the accuracy buckets
must then hold every request id once, however many retries and duplicates were sent.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from common.redis_local import LocalRedis
from service.launcher import serve, stop
from tests.service.conftest import materialize
from tests.service.test_feedback import TRIP, wait_logged

pytestmark = [pytest.mark.service, pytest.mark.slow]
N = 600


@pytest.fixture()
def durable(model_tag, feature_repo, prepared, tmp_path):
    server = LocalRedis(persist=True).start()
    materialize(feature_repo, server.url)
    served = serve("service.service:TaxiService",
                   {"REDIS_URL": server.url, "TAXI_MODEL_TAG": model_tag, "TAXI_TRACK": "canary",
                    "TAXI_WORKERS": "2"}, tmp_path / "service.log")
    yield served, server
    stop(served)
    server.stop()


async def post_until_stored(client: httpx.AsyncClient, url: str, body: dict,
                            outcomes: dict) -> None:
    """Retry through outages (503, refused connections) until the service says 202."""
    while True:
        try:
            r = await client.post(url, json=body)
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 202:
            status = r.json()["status"]
            outcomes[status] = outcomes.get(status, 0) + 1
            return
        assert r is None or r.status_code == 503, r.text
        await asyncio.sleep(0.05)


async def load(http: str, rids: list[str], server: LocalRedis) -> dict:
    outcomes: dict[str, int] = {}
    # every id twice: a ride app that retries on timeouts sends duplicates
    bodies = [{"request_id": rid, "actual_fare_usd": 10.0 + i % 7,
               "actual_duration_seconds": 600.0 + i} for i, rid in enumerate(rids)] * 2
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client):
        while not queue.empty():
            await post_until_stored(client, f"{http}/feedback", queue.get_nowait(), outcomes)

    async def restart():
        while queue.qsize() > len(bodies) * 2 // 3:
            await asyncio.sleep(0.01)
        server.stop(keep_data=True)
        await asyncio.sleep(1.0)
        server.start()

    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.gather(restart(), *(worker(client) for _ in range(16)))
    return outcomes


def test_every_accepted_feedback_is_counted_exactly_once(durable):
    served, server = durable
    rids = [f"dur-{i}" for i in range(N)]
    for start in range(0, N, 200):
        trips = [{**TRIP, "request_id": rid} for rid in rids[start:start + 200]]
        assert httpx.post(f"{served.http}/predict_batch", json={"trips": trips},
                          timeout=30).status_code == 200
    rdb = redis.Redis.from_url(server.url)
    wait_logged(rdb, rids)
    outcomes = asyncio.run(load(served.http, rids, server))
    assert sum(outcomes.values()) == 2 * N
    assert outcomes.get("unknown_request", 0) == 0
    # the restart really happened mid-load: the AOF brought the log and features back
    stored = [f[b"rid"].decode() for _, f in rdb.xrange("taxi:feedback")]
    assert sorted(stored) == sorted(rids), "each request id exactly once in the stream"
    counts = {t: 0 for t in ("duration", "fare")}
    for key in rdb.scan_iter("taxi:acc:*"):
        target = key.decode().split(":")[4]
        counts[target] += int(rdb.hget(key, "n"))
    assert counts == {"duration": N, "fare": N}
    # the service's counters: a reply lost in the restart turns an accept into a duplicate on
    # retry, never into a second accept
    text = httpx.get(f"{served.http}/metrics").text
    by_result = {s.labels["result"]: s.value for fam in text_string_to_metric_families(text)
                 for s in fam.samples if s.name == "taxi_feedback_total"}
    assert by_result.get("accepted", 0) <= N
    assert by_result.get("accepted", 0) + by_result.get("duplicate", 0) == 2 * N
    rdb.close()
