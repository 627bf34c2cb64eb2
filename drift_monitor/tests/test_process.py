"""``python -m drift_monitor`` as a subprocess: real HTTP scrape, health, Redis outage."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import VERSION
from prometheus_client.parser import text_string_to_metric_families

from common.redis_local import LocalRedis, terminate
from drift_monitor import sample
from drift_monitor.monitor import VERDICT_KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Parse /metrics into {(sample name, sorted labels): value}."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.fixture
def monitor_proc(redis_server: LocalRedis, store: Path, tmp_path: Path) -> Iterator[str]:
    """The monitor process, evaluating every 0.5 s; yields its base URL."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url, "BENTOML_HOME": str(store),
           "TAXI_DRIFT_PORT": str(port), "TAXI_DRIFT_HOST": "127.0.0.1",
           "TAXI_DRIFT_INTERVAL_S": "0.5", "TAXI_DRIFT_REDIS_TIMEOUT_S": "0.5",
           "OMP_NUM_THREADS": "1", "TAXI_MODEL_TAG": "taxi_trip:champion", "TAXI_TRACK": "main"}
    log = (tmp_path / "monitor.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "drift_monitor"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url) or proc.poll() is not None, 90, "first /healthz 200")
        assert proc.poll() is None, (tmp_path / "monitor.log").read_text()
        yield url
        assert proc.poll() is None, "the monitor died during the test"
    finally:
        terminate(proc, timeout=10)
        log.close()
    assert proc.returncode == 0, (tmp_path / "monitor.log").read_text()  # clean SIGTERM exit


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_metrics_and_verdict_over_http(monitor_proc, client, live, columns) -> None:
    sample.write_model_hash(client, VERSION, columns)
    shifted = live.iloc[:1000].assign(trip_distance=lambda w: w["trip_distance"] * 1.5)
    sample.log_predictions(client, shifted, VERSION, columns)
    client.hset("taxi:retrain:outcomes", mapping={"rolled_back": 1})
    client.set("taxi:rollout:state", json.dumps({"canary_weight": 10, "active_color": "blue"}))
    version = (("model_version", VERSION),)
    wait_for(lambda: ("taxi_drift_window_size", version) in scrape(monitor_proc), 60,
             "a verdict of the logged version")
    m = scrape(monitor_proc)
    p_dist = m[("taxi_drift_feature_p_value", (("feature", "trip_distance"),) + version)]
    assert p_dist < 0.05 / len(columns)
    assert m[("taxi_drift_detected", (("kind", "features"),) + version)] == 1
    assert m[("taxi_drift_detected", (("kind", "any"),) + version)] == 1
    assert m[("taxi_drift_window_size", version)] == 1000
    assert m[("taxi_drift_p_value_threshold", ())] == 0.05
    assert time.time() - m[("taxi_drift_last_evaluation_timestamp_seconds", version)] < 30
    assert ("taxi_drift_prediction_p_value", version + (("target", "fare"),)) in m
    assert m[("taxi_drift_evaluation_duration_seconds_count", ())] >= 1
    assert m[("taxi_drift_evaluations_total", (("result", "ok"),))] >= 1
    assert m[("taxi_retrain_outcomes", (("outcome", "rolled_back"),))] == 1
    assert m[("taxi_rollout_canary_weight", ())] == 10
    assert m[("taxi_rollout_active_color", (("color", "blue"),))] == 1
    verdict = json.loads(client.get(f"{VERDICT_KEY}:{VERSION}"))
    assert verdict["drift"] is True and "trip_distance" in verdict["drifted_features"]
    assert httpx.get(f"{monitor_proc}/nope", timeout=5).status_code == 404


def test_redis_outage_is_counted_reported_and_survived(monitor_proc, redis_server) -> None:
    body = httpx.get(f"{monitor_proc}/healthz", timeout=5).json()
    assert body["healthy"] and body["redis_ok"] and body["loop_started"]
    errors_before = scrape(monitor_proc)[("taxi_drift_evaluations_total", (("result", "error"),))]
    redis_server.stop()
    wait_for(lambda: httpx.get(f"{monitor_proc}/healthz", timeout=5).status_code == 503, 30,
             "/healthz 503 while Redis is down")
    body = httpx.get(f"{monitor_proc}/healthz", timeout=5).json()
    assert not body["redis_ok"] and "redis" in body["last_error"]
    m = scrape(monitor_proc)  # /metrics still answers; the retrain collector gives no samples
    assert m[("taxi_drift_evaluations_total", (("result", "error"),))] > errors_before
    assert ("taxi_rollout_canary_weight", ()) not in m
    redis_server.start()  # same port
    wait_for(lambda: _healthy(monitor_proc), 30, "/healthz 200 after Redis is back")
