"""Helpers of the retrain-job tests: real TLC months bundled in data/sample, a real Redis, models
really trained into the session's private BentoML store, and served service processes.

The champion is trained on 2021-2022 green-taxi months (the bundled 15% row slices of
data/sample/pre-increase, see data/slice.py); the real drift (the TLC fare increase of
December 2022) shows when 2023 trips (the bundled full months) reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from common.paths import ROOT, SAMPLE_DIR, ZONES_CSV
from common.redis_local import LocalRedis
from service.launcher import Served, serve

PRE_INCREASE = SAMPLE_DIR / "pre-increase"  # 2021-02..03, 2022-01..03 (15% slices)
ZONES = ZONES_CSV
CHAMPION_MONTHS = ["2021-03", "2022-01", "2022-02", "2022-03"]
REPLAY_MONTH = "2023-02"


def month_file(month: str) -> Path:
    """The bundled trips of ``month``: 2023 months in full, earlier ones as 15% slices."""
    name = f"green_tripdata_{month}.parquet"
    path = SAMPLE_DIR / name if month >= "2023" else PRE_INCREASE / name
    if not path.exists():
        pytest.fail(f"{path} missing: not among the bundled months (data/sample)")
    return path


@dataclass
class World:
    """One Redis (features, feedback, job state), one feature repo, a trained champion."""

    redis: LocalRedis
    feature_repo: Path
    tmp: Path
    champion: str
    services: list[Served] = field(default_factory=list)

    def serve(self, tag: str, track: str, name: str, **env) -> Served:
        served = serve("service.service:TaxiService",
                       {"REDIS_URL": self.redis.url, "TAXI_MODEL_TAG": tag, "TAXI_TRACK": track,
                        **env}, self.tmp / f"{name}.log")
        self.services.append(served)
        return served

    def job_env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAXI_")}
        env.update({"REDIS_URL": self.redis.url, "OMP_NUM_THREADS": "1",
                    "TAXI_RETRAIN_DATA": json.dumps([str(SAMPLE_DIR)]),
                    "TAXI_RETRAIN_ZONES": str(ZONES),
                    "TAXI_RETRAIN_FEATURE_REPO": str(self.feature_repo),
                    "TAXI_RETRAIN_ARTIFACTS_DIR": str(self.tmp / "artifacts"),
                    "TAXI_RETRAIN_WINDOW_MONTHS": "2", "TAXI_RETRAIN_SAMPLE_FRACTION": "0.3",
                    "TAXI_RETRAIN_MIN_FEEDBACK": "200"})
        env.update(extra)
        return env

    def job(self, *args: str, timeout: float = 600, **extra) -> subprocess.CompletedProcess:
        """``python -m retrain ...`` as the CronJob runs it (its own process)."""
        return subprocess.run([sys.executable, "-m", "retrain", *args], cwd=ROOT,
                              env=self.job_env(**extra), capture_output=True, text=True,
                              timeout=timeout, check=False)


def replay(base_url: str, trips, prefix: str, feedback: bool = True) -> dict:
    """Send each trip to /predict; then (the trips have ended) post each true duration and fare
    to /feedback, as the ride app would. Returns the fare and duration MAE of the answers."""
    import time

    from retrain.trips import as_requests

    bodies = as_requests(trips, prefix)
    fares, durations, versions = [], [], set()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for body in bodies:
            resp = client.post("/predict", json=body)
            assert resp.status_code == 200, resp.text
            answer = resp.json()
            fares.append(answer["fare_usd"])
            durations.append(answer["duration_seconds"])
            versions.add(answer["model_version"])
        if feedback:
            time.sleep(2.0)  # the service logs predictions off the request path, in batches
            outcomes: dict[str, int] = {}
            for body, truth in zip(bodies, trips.itertuples(index=False)):
                fb = client.post("/feedback", json={
                    "request_id": body["request_id"],
                    "actual_duration_seconds": float(truth.duration_s),
                    "actual_fare_usd": float(truth.fare_amount)})
                assert fb.status_code == 202, f"/feedback: {fb.status_code} {fb.text}"
                outcome = fb.json().get("status", "?")
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert outcomes == {"accepted": len(bodies)}, outcomes
    return {"fare_mae": float(np.mean(np.abs(np.array(fares) - trips["fare_amount"]))),
            "duration_mae_s": float(np.mean(np.abs(np.array(durations) - trips["duration_s"]))),
            "n": len(bodies), "versions": sorted(versions)}


class Prometheus:
    """Debian's real ``prometheus`` on 127.0.0.1, scraping the given service processes every
    second; each target carries the ``track`` label of the rollout track it stands for."""

    def __init__(self, tmp: Path):
        import shutil as sh

        binary = sh.which("prometheus")
        if not binary:
            pytest.fail("prometheus not on PATH: run `make retrain-tools`")
        from service.launcher import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp / f"prometheus-{self.port}"
        self.dir.mkdir()
        self.targets = self.dir / "targets.json"
        self.targets.write_text("[]")
        (self.dir / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "taxi-serve", "honor_labels": True,
                                "file_sd_configs": [{"files": [str(self.targets)],
                                                     "refresh_interval": "1s"}]}]}))
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(self.dir / "log", "w"), stderr=subprocess.STDOUT)
        try:
            self._wait(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200)
        except BaseException:
            self.stop()  # not ready: do not leave it running
            raise

    def scrape(self, targets: dict[str, Served]) -> None:
        """Scrape these processes (track -> process) from now on (file_sd: no restart)."""
        groups = [{"targets": [s.http.removeprefix("http://")], "labels": {"track": track}}
                  for track, s in targets.items()]
        tmp = self.targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets)

        def up():
            body = httpx.get(f"{self.url}/api/v1/targets", timeout=2).json()
            active = body["data"]["activeTargets"]
            return len(active) == len(groups) and all(t["health"] == "up" for t in active)
        self._wait(up)

    def _wait(self, check, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"prometheus not ready: {(self.dir / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        from common.redis_local import terminate

        terminate(self.proc, timeout=10)


class LoadGen:
    """Drives the stable and canary processes the way the canary weight would split traffic.

    Stand-in for the ingress (no packets flow through the simulated cluster): before each
    request it reads ``canary_weight`` from ``taxi:rollout:state``, which the job writes next to
    each ``helm upgrade``, and sends the request to the canary process with that probability.
    True fares go back as feedback. Every answer from the stable track is counted, so a test
    can prove stable serving was never interrupted.
    """

    def __init__(self, redis_url: str, trips, rate: float = 25.0):
        import threading

        from retrain.trips import as_requests

        self.rdb = __import__("redis").Redis.from_url(redis_url)
        self.bodies = as_requests(trips, "load")
        self.truth = trips[["duration_s", "fare_amount"]].to_numpy()
        self.rate, self.targets = rate, {}
        self.counts = {"stable_ok": 0, "stable_err": 0, "canary_ok": 0, "canary_err": 0}
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self, stable: Served, canary: Served) -> LoadGen:
        self.targets = {"stable": stable, "canary": canary}
        self.thread.start()
        return self

    def weight(self) -> int:
        try:
            raw = self.rdb.get("taxi:rollout:state")
        except __import__("redis").RedisError:
            return 0
        return int(json.loads(raw).get("canary_weight") or 0) if raw else 0

    def _loop(self) -> None:
        import random
        import time
        import uuid

        rng = random.Random(0)
        period, next_at = 1.0 / self.rate, time.monotonic()
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self.stop_flag.is_set():
                i += 1
                k = i % len(self.bodies)
                track = "canary" if rng.random() * 100 < self.weight() else "stable"
                body = {**self.bodies[k], "request_id": f"load-{uuid.uuid4().hex[:12]}"}
                try:
                    resp = client.post(f"{self.targets[track].http}/predict", json=body)
                    ok = resp.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    try:  # feedback is best effort: it must not hold the load back
                        client.post(f"{self.targets[track].http}/feedback", timeout=0.5, json={
                            "request_id": body["request_id"],
                            "actual_duration_seconds": float(self.truth[k][0]),
                            "actual_fare_usd": float(self.truth[k][1])})
                    except httpx.HTTPError:
                        pass
                self.counts[f"{track}_{'ok' if ok else 'err'}"] += 1
                # Paced to a schedule, not a fixed sleep after each request: on a busy
                # machine the requests' own time no longer lowers the rate (a canary analysis
                # once saw 14 requests where 15 were needed); behind schedule, no burst.
                next_at += period
                pause = next_at - time.monotonic()
                if pause > 0:
                    self.stop_flag.wait(pause)
                else:
                    next_at = time.monotonic()

    def stop(self) -> dict:
        self.stop_flag.set()
        self.thread.join(timeout=30)
        return dict(self.counts)


def install_release(kube, namespace: str, *sets: str) -> None:
    """``helm install`` the chart (as an admin would) into ``namespace``."""
    args = [a for s in sets for a in ("--set", s)]
    kube.helm("install", "taxi-serve", str(ROOT / "helm" / "taxi-serve"), "-n", namespace,
              "--set", "retrain.suspend=true", *args, "--wait", "--timeout", "3m")


def retrain_kubeconfig(kube, namespace: str, path: Path) -> Path:
    """A kubeconfig holding only the retrain ServiceAccount's token: the job runs with exactly
    the Role the chart gives it."""
    token = kube.kubectl("-n", namespace, "create", "token", "taxi-serve-retrain",
                         "--duration=1h").stdout.strip()
    admin = json.loads(kube.kubectl("config", "view", "--raw", "--minify", "-o",
                                    "json").stdout)
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "retrain",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "retrain", "user": {"token": token}}],
        "contexts": [{"name": "retrain", "context": {"cluster": "c", "user": "retrain",
                                                     "namespace": namespace}}]}))
    return path


def k8s_job_env(namespace: str, kubeconfig: Path, **extra) -> dict:
    """Settings of a job acting on the release in ``namespace`` (as the CronJob passes them)."""
    return {"TAXI_RETRAIN_NAMESPACE": namespace, "TAXI_RETRAIN_KUBECONFIG": str(kubeconfig),
            "TAXI_RETRAIN_HELM_BIN": str(ROOT / ".tools" / "bin" / "helm"),
            "TAXI_HELM_RELEASE": "taxi-serve", "TAXI_HELM_CHART": "taxi-serve-0.1.0",
            "TAXI_LEASE_NAME": "taxi-serve-retrain", "TAXI_ENTRY_SERVICE": "taxi-serve",
            "TAXI_RETRAIN_HELM_TIMEOUT": "2m",
            "HELM_CACHE_HOME": str(ROOT / ".tools" / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(ROOT / ".tools" / "helm" / "config"),
            "HELM_DATA_HOME": str(ROOT / ".tools" / "helm" / "data"), **extra}


def helm_history(kube, namespace: str) -> list[dict]:
    return json.loads(kube.helm("history", "taxi-serve", "-n", namespace, "-o", "json").stdout)
