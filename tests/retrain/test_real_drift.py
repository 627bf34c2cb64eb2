"""Real drift, end to end, without Kubernetes.

A service serves the champion trained on 2021-2022 months. February 2023 trips (after the TLC
fare increase of December 2022) reach it through the API and their true duration and fare come
back through ``POST /feedback``. ``python -m retrain run`` (rollout target ``none``: there is no
cluster here) must decide to retrain because of the feedback MAE, train on the trailing window,
pass the gate, and leave a built candidate; serving the candidate must bring the fare MAE on the
same trips down. Everything is real: data, Redis, training, BentoML store, served processes.
"""

from __future__ import annotations

import json

import pytest
import redis
from retrainlib import REPLAY_MONTH, month_file, replay

from retrain.decide import rolling_accuracy
from retrain.trips import known_trips
from tests.report import MEASURED as REPORT
from training.register import current_champion

pytestmark = [pytest.mark.retrain, pytest.mark.slow]


@pytest.fixture(scope="session")
def drift_run(world):
    """Replay, run the job, replay again; returns everything measured."""
    trips = known_trips(month_file(REPLAY_MONTH), 600, seed=0)
    champion = world.serve(world.champion, "stable", "champion")
    before = replay(champion.http, trips, "before")
    rdb = redis.Redis.from_url(world.redis.url)
    champ_version = world.champion.split(":")[1]
    before_buckets = rolling_accuracy(rdb, champ_version, "fare", 3600)

    job = world.job("run")
    last = json.loads(rdb.get("taxi:retrain:last") or b"{}")
    candidate = last.get("candidate")
    out = {"job": job, "last": last, "before": before, "before_buckets": before_buckets,
           "trips": trips}
    if candidate:
        served = world.serve(candidate, "canary", "candidate")
        out["after"] = replay(served.http, trips, "after")
        # the champion again, now on the features the retrain materialized: shows how much
        # of the gain is the model and how much the fresher features
        out["champion_fresh"] = replay(champion.http, trips, "fresh", feedback=False)
    REPORT["real drift: fare MAE on 600 Feb-2023 trips (USD)"] = {
        "before (champion, 2021-22)": round(before["fare_mae"], 3),
        "before from feedback buckets": before_buckets.mae and round(before_buckets.mae, 3),
        "champion on refreshed features": out.get("champion_fresh", {}).get("fare_mae"),
        "after (retrained candidate)": out.get("after", {}).get("fare_mae"),
        "gate (offline, newest month)": last.get("reasons", [None, None])[-2:],
    }
    return out


def test_job_decides_to_retrain_on_feedback_mae(drift_run):
    job, last = drift_run["job"], drift_run["last"]
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-5000:]
    assert last["outcome"] == "built", last
    assert any(r.startswith("fare feedback MAE") for r in last["reasons"]), last["reasons"]
    # every step was logged as one JSON line
    events = [json.loads(line)["event"] for line in job.stderr.splitlines()
              if line.startswith("{")]
    for step in ("decide", "retrain", "gate", "build", "finish"):
        assert step in events, events
    build = next(json.loads(line) for line in job.stderr.splitlines()
                 if line.startswith("{") and json.loads(line)["event"] == "build")
    assert build["compiled"] == "compiled", build  # the build step compiled its trees


def test_feedback_buckets_match_what_the_service_answered(drift_run):
    assert drift_run["before_buckets"].n == drift_run["before"]["n"]
    assert drift_run["before_buckets"].mae == pytest.approx(drift_run["before"]["fare_mae"],
                                                            abs=0.02)


def test_candidate_passes_gate_and_lowers_fare_mae(drift_run, world):
    last, before, after = drift_run["last"], drift_run["before"], drift_run["after"]
    assert any(r.startswith("better on") for r in last["reasons"]), last["reasons"]
    assert after["versions"] == [last["candidate"].split(":")[1]]
    assert before["fare_mae"] > 2.5, before  # the drift is real: the 2022 model misses
    assert after["fare_mae"] < 0.8 * before["fare_mae"], (before, after)
    # rollout target none: the candidate is built, the champion (what serves) is untouched
    assert current_champion() == world.champion
