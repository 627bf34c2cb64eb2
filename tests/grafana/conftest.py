"""The live stack of the dashboard tests: a stable and a canary service (real BentoML
processes on the trained sample model), the drift monitor, and a real Prometheus scraping
them all and evaluating the generated rule file, after a short load."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from common.paths import ROOT
from common.redis_local import LocalRedis, terminate
from grafana.build import RULE_FILES
from service.launcher import free_port, serve, stop
from tests.grafana.livestack import Load, Prometheus, Target, seed_retrain_state
from tests.service.conftest import feature_redis, model_tag  # noqa: F401  (session fixtures)

DRIFT_DIR = ROOT / "drift_monitor"
DRIFT_PYTHON = DRIFT_DIR / ".venv/bin/python"
WARMUP_SECONDS = float(os.environ.get("TAXI_LOAD_SECONDS", "20"))


def start_drift_monitor(redis_url: str, log_path) -> tuple[subprocess.Popen, int]:
    """`python -m drift_monitor` from its own environment; fails loudly when it is missing,
    because the drift panels cannot be checked without it."""
    if not (DRIFT_DIR / "__main__.py").exists():
        raise RuntimeError("drift_monitor/ is not in this checkout: the drift, retrain and "
                           "rollout panels cannot be verified")
    if not DRIFT_PYTHON.exists():
        subprocess.run(["make", "-C", str(ROOT), "drift-setup"], check=True)
    port = free_port()
    # Evaluate every 2 s on a small window: the load lasts seconds, not hours.
    env = {**os.environ, "REDIS_URL": redis_url, "TAXI_DRIFT_PORT": str(port),
           "TAXI_DRIFT_INTERVAL_S": "2", "TAXI_DRIFT_MIN_WINDOW": "50",
           "TAXI_DRIFT_WINDOW_SIZE": "500"}
    proc = subprocess.Popen([str(DRIFT_PYTHON), "-m", "drift_monitor", "run"], cwd=ROOT, env=env,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"drift monitor exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    terminate(proc, timeout=10)
    raise RuntimeError("drift monitor not healthy in 120 s")


@pytest.fixture(scope="session")
def live(model_tag, feature_redis, tmp_path_factory):  # noqa: F811
    """Prometheus after the load: a stable service on the feature Redis, a canary whose Redis
    is gone (so fallback and degraded-feature series exist), and the drift monitor."""
    work = tmp_path_factory.mktemp("live-prometheus")
    # Rolling MAE refreshed every 2 s instead of 10 s: the load lasts seconds.
    common = {"TAXI_MODEL_TAG": model_tag, "TAXI_ACCURACY_REFRESH_S": "2"}
    procs, prometheus, load, drift_error = [], None, None, None
    stable = canary = canary_redis = None
    try:  # everything started here is stopped in `finally`, also when a start fails
        stable = serve("service.service:TaxiService",
                       {**common, "REDIS_URL": feature_redis.url, "TAXI_TRACK": "stable"},
                       work / "stable.log")
        canary_redis = LocalRedis().start()
        canary = serve("service.service:TaxiService",
                       {**common, "REDIS_URL": canary_redis.url, "TAXI_TRACK": "canary"},
                       work / "canary.log")
        canary_redis.stop()  # the canary answers from its fallback features from now on
        seed_retrain_state(feature_redis.url)
        targets = [Target(stable.http.removeprefix("http://"), "server", "stable"),
                   Target(canary.http.removeprefix("http://"), "server", "canary")]
        try:
            drift, drift_port = start_drift_monitor(feature_redis.url, work / "drift.log")
            procs.append(drift)
            targets.append(Target(f"127.0.0.1:{drift_port}", "drift-monitor"))
        except RuntimeError as exc:
            # Keep going: the serving panels are still checked, and the drift panels fail
            # with this reason instead of the whole session erroring.
            drift_error = str(exc)
        prometheus = Prometheus(work, targets, RULE_FILES[0])
        load = Load([stable.http, canary.http], [stable.grpc, canary.grpc])
        load.start()
        time.sleep(WARMUP_SECONDS)  # a few scrapes and rule evaluations before any check
        if load.error:
            raise load.error
        prometheus.load, prometheus.targets, prometheus.workdir = load, targets, work
        prometheus.drift_error = drift_error
        yield prometheus
    finally:
        if load:
            load.stop()
        if prometheus:
            prometheus.stop()
        for proc in procs:
            terminate(proc, timeout=10)
        for served in (canary, stable):
            if served:
                stop(served)
        if canary_redis:
            canary_redis.stop()
