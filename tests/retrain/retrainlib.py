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
