"""Decision logic: pure triggers, and the feedback buckets read from a real Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis

from retrain.decide import Accuracy, Evidence, decide, drift_verdict, rolling_accuracy
from retrain.settings import RetrainSettings

pytestmark = pytest.mark.retrain
CHAMP = "taxi_trip:20260101000000-abcdef12"
NOW = 1_800_000_000.0


def evidence(**kw) -> Evidence:
    base = dict(champion=CHAMP, drift={"drift": False}, offline_mae={"duration": 180.0,
                "fare": 1.5}, accuracy={"duration": Accuracy(190.0, 500),
                                        "fare": Accuracy(1.6, 500)}, created_at=NOW - 86400)
    return Evidence(**(base | kw))


def test_no_trigger_skips():
    d = decide(evidence(), RetrainSettings(), now=NOW)
    assert not d.retrain and "no trigger fired" in d.reasons[0]


def test_force_retrains_and_says_so():
    d = decide(evidence(), RetrainSettings(), force=True, now=NOW)
    assert d.retrain and d.reasons == ["forced"]


def test_fare_mae_over_ratio_fires():
    ev = evidence(accuracy={"duration": Accuracy(190.0, 500), "fare": Accuracy(3.3, 500)})
    d = decide(ev, RetrainSettings(mae_ratio=1.25), now=NOW)
    assert d.retrain and len(d.reasons) == 1 and d.reasons[0].startswith("fare feedback MAE 3.3")


def test_too_few_feedback_samples_do_not_count():
    ev = evidence(accuracy={"fare": Accuracy(9.0, 10)})
    assert not decide(ev, RetrainSettings(min_feedback=200), now=NOW).retrain


def test_drift_and_age_fire_together():
    ev = evidence(drift={"drift": True, "drifted_features": ["trip_distance"]},
                  created_at=NOW - 40 * 86400)
    d = decide(ev, RetrainSettings(max_age_days=30), now=NOW)
    assert d.retrain and any("drift detected (trip_distance)" in r for r in d.reasons)
    assert any("40.0 days old" in r for r in d.reasons)
    assert not decide(ev, RetrainSettings(max_age_days=30, retrain_on_drift=False),
                      now=NOW - 20 * 86400).retrain


def test_no_champion_retrains():
    assert decide(Evidence(None), RetrainSettings()).retrain


@pytest.fixture
def rdb(own_redis):
    """A Redis of this test's own (never the user's REDIS_URL)."""
    return redis.Redis.from_url(own_redis.url)


def test_rolling_accuracy_sums_recent_buckets_of_every_track(rdb):
    minute = int(NOW // 60)
    version = CHAMP.split(":")[1]
    # the layout the service writes (docs/monitoring.md): hash n, sum per minute and track
    rdb.hset(f"taxi:acc:{version}:stable:fare:{minute}", mapping={"n": 10, "sum": 30.0})
    rdb.hset(f"taxi:acc:{version}:blue:fare:{minute - 5}", mapping={"n": 30, "sum": 30.0})
    rdb.hset(f"taxi:acc:{version}:stable:fare:{minute - 120}", mapping={"n": 99, "sum": 999})
    rdb.hset(f"taxi:acc:other:stable:fare:{minute}", mapping={"n": 5, "sum": 500})
    acc = rolling_accuracy(rdb, version, "fare", 3600, now=NOW)
    assert acc.n == 40 and acc.mae == pytest.approx(60.0 / 40)
    assert rolling_accuracy(rdb, version, "duration", 3600, now=NOW) == Accuracy(None, 0)


def test_drift_verdict_only_for_this_version(rdb):
    rdb.set("taxi:drift:verdict", json.dumps({"model_version": "other", "drift": True}))
    assert drift_verdict(rdb, "v1") is None
    rdb.set("taxi:drift:verdict:v1", json.dumps({"model_version": "v1", "drift": True,
                                                  "evaluated_at": time.time()}))
    assert drift_verdict(rdb, "v1")["drift"] is True
