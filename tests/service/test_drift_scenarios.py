"""Drift verdicts on real trips replayed through the served API (service + drift monitor).

The service logs what it predicts; the drift monitor (its own environment, run here as
``python -m drift_monitor evaluate-once``) compares the newest window of that log with the
reference sample saved with the model. Trips are real February 2023 trips, the model's
evaluation month (its reference sample comes from there), minus the reference rows themselves.
They are replayed in random order: a window of consecutive trips covers only hours of one day,
which a month-wide reference calls drift every time (docs/monitoring.md explains why).
"""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pandas as pd
import pytest
import redis

from common.paths import ROOT
from tests.report import MEASURED as REPORT
from tests.service.test_feedback import wait_logged

pytestmark = [pytest.mark.service, pytest.mark.slow]
DRIFT_PY = ROOT / "drift_monitor" / ".venv" / "bin" / "python"
WINDOW = 1000


def drift_verdicts(redis_url: str, window: int) -> list[dict]:
    """``python -m drift_monitor evaluate-once`` on the newest ``window`` entries of each
    logged model version (its own environment); the verdicts it printed."""
    env = {**os.environ, "REDIS_URL": redis_url, "TAXI_DRIFT_WINDOW_SIZE": str(window),
           "TAXI_DRIFT_MIN_WINDOW": str(window)}
    proc = subprocess.run([str(DRIFT_PY), "-m", "drift_monitor", "evaluate-once"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def evaluate(redis_url: str) -> dict:
    """One drift evaluation of the newest window; the verdict of the served version."""
    verdicts = drift_verdicts(redis_url, WINDOW)
    assert len(verdicts) == 1, verdicts
    return verdicts[0]


def replay(served, rdb: redis.Redis, trips: pd.DataFrame, tag: str) -> None:
    """A fresh log holding exactly these trips' predictions."""
    rdb.delete("taxi:predlog")
    body = [{"pickup_zone_id": int(r.pickup_zone_id), "dropoff_zone_id": int(r.dropoff_zone_id),
             "pickup_datetime": r.pickup_local.isoformat(), "request_id": f"{tag}-{i}",
             "trip_distance_miles": float(r.trip_distance),
             **({} if pd.isna(r.passenger_count) else {"passenger_count": int(r.passenger_count)})}
            for i, r in enumerate(trips.itertuples())]
    for start in range(0, len(body), 250):
        r = httpx.post(f"{served.http}/predict_batch", json={"trips": body[start:start + 250]},
                       timeout=60)
        assert r.status_code == 200, r.text
    wait_logged(rdb, [t["request_id"] for t in body[-50:]], timeout=30)
    assert rdb.xlen("taxi:predlog") == len(body)


@pytest.fixture(scope="module")
def february(trained) -> pd.DataFrame:
    """Real February trips that are not in the model's reference sample."""
    test = trained["test"]
    reference = test.sample(min(5000, len(test)), random_state=0).index  # as register.py draws
    return test.drop(reference).sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture()
def rdb(feature_redis):
    client = redis.Redis.from_url(feature_redis.url)
    yield client
    client.close()


def test_same_population_raises_no_drift_beyond_the_false_positive_rate(
        served, rdb, feature_redis, february, model_tag):
    verdicts = []
    for k in range(3):
        window = february.iloc[k * WINDOW:(k + 1) * WINDOW]
        replay(served, rdb, window, f"same{k}")
        verdicts.append(evaluate(feature_redis.url))
    assert all(v["model_version"] == model_tag.split(":")[1] for v in verdicts)
    assert all(v["window_size"] == WINDOW for v in verdicts)
    drifted = [v for v in verdicts if v["drift"]]
    key = "drift: same population, 3 windows (drift, features)"
    REPORT[key] = [(v["drift"], v["drifted_features"]) for v in verdicts]
    # p = 0.05 per window (Bonferroni across features): more than one of three is not chance
    assert len(drifted) <= 1, REPORT[key]
    stored = json.loads(rdb.get(f"taxi:drift:verdict:{verdicts[-1]['model_version']}"))
    assert stored["evaluated_at"] == verdicts[-1]["evaluated_at"]


def test_synthetic_covariate_shift_is_detected_within_one_window(served, rdb, feature_redis,
                                                                  february):
    window = february.iloc[3 * WINDOW:4 * WINDOW].copy()
    window["trip_distance"] = (window["trip_distance"] * 1.5).clip(upper=100)
    replay(served, rdb, window, "longer")
    verdict = evaluate(feature_redis.url)
    REPORT["drift: distance x1.5"] = (verdict["drift"], verdict["drifted_features"])
    assert verdict["drift"] and verdict["feature_drift"]
    assert "trip_distance" in verdict["drifted_features"]
    night = february.iloc[4 * WINDOW:5 * WINDOW].copy()
    night["pickup_local"] = night["pickup_local"].map(lambda t: t.replace(hour=t.hour % 5))
    replay(served, rdb, night, "night")
    verdict = evaluate(feature_redis.url)
    REPORT["drift: pickup hours moved to 0-4"] = (verdict["drift"], verdict["drifted_features"])
    assert verdict["drift"] and "hour" in verdict["drifted_features"]
