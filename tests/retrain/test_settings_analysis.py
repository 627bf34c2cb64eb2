"""Settings validation and the canary analysis math (no Prometheus needed for the math)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from retrain.analysis import TrackStats, judge
from retrain.settings import RetrainSettings

pytestmark = pytest.mark.retrain


def test_unknown_retrain_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("TAXI_RETRAIN_GATE_MARGN", "0.1")
    with pytest.raises(ValidationError, match="TAXI_RETRAIN_GATE_MARGN"):
        RetrainSettings()


def test_chart_variables_and_lists_are_read(monkeypatch):
    monkeypatch.setenv("TAXI_HELM_RELEASE", "prod-taxi-serve")
    monkeypatch.setenv("TAXI_LEASE_NAME", "prod-taxi-serve-retrain")
    monkeypatch.setenv("TAXI_RETRAIN_CANARY_STEPS", "[5, 25, 100]")
    cfg = RetrainSettings()
    assert (cfg.helm_release, cfg.lease_name, cfg.canary_steps) == \
        ("prod-taxi-serve", "prod-taxi-serve-retrain", [5, 25, 100])


@pytest.mark.parametrize("steps", ["[50, 10, 100]", "[10, 50]", "[0, 100]"])
def test_canary_steps_must_rise_to_100(monkeypatch, steps):
    monkeypatch.setenv("TAXI_RETRAIN_CANARY_STEPS", steps)
    with pytest.raises(ValidationError):
        RetrainSettings()


CFG = RetrainSettings(min_requests=50, max_error_rate_delta=0.01, max_p99_ratio=1.5,
                      p99_floor_s=0.02, max_mae_ratio=1.1, min_feedback=100)
STABLE = TrackStats(requests=1000, error_rate=0.0, p99_s=0.010, mae_fare=2.0, mae_samples=500)


def test_similar_canary_passes():
    v = judge(TrackStats(200, 0.0, 0.012, 2.05, 300), STABLE, CFG)
    assert v.passed and v.checks == {"error_rate": True, "p99": True, "mae": True}


def test_errors_fail():
    v = judge(TrackStats(200, 0.05, 0.012, 2.0, 300), STABLE, CFG)
    assert not v.passed and "error rate 5.00%" in v.reasons[0]


def test_slow_canary_fails_but_noise_floor_passes():
    slow = judge(TrackStats(200, 0.0, 0.250, None, 0), STABLE, CFG)
    assert not slow.passed and "p99 250.0 ms" in slow.reasons[0]
    fast_but_relatively_slower = judge(TrackStats(200, 0.0, 0.019, None, 0),
                                       TrackStats(1000, 0.0, 0.004, None, 0), CFG)
    assert fast_but_relatively_slower.passed


def test_worse_mae_fails_only_with_enough_feedback():
    worse = TrackStats(200, 0.0, 0.010, 3.5, 300)
    assert not judge(worse, STABLE, CFG).passed
    thin = TrackStats(200, 0.0, 0.010, 3.5, 20)
    v = judge(thin, STABLE, CFG)
    assert v.passed and v.checks["mae"] == "not enough feedback"


def test_too_few_requests_never_passes():
    v = judge(TrackStats(10, 0.0, 0.001, None, 0), STABLE, CFG)
    assert not v.passed and "too few canary requests" in v.reasons[0]
