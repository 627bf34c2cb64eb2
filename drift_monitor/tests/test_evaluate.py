"""Evaluations in process: real Redis stream entries, real alibi-detect, real sample data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import redis
from conftest import VERSION

from drift_monitor import sample
from drift_monitor.monitor import VERDICT_KEY, Monitor
from drift_monitor.settings import DriftSettings
from drift_monitor.window import STREAM, read_model_columns

pytestmark = pytest.mark.unit
CONTRACT_FIELDS = {"model_version", "drift", "feature_drift", "prediction_drift",
                   "drifted_features", "p_values", "prediction_p_values", "threshold",
                   "window_size", "evaluated_at"}


def evaluate(monitor: Monitor, client: redis.Redis, window: pd.DataFrame, columns: list[str],
             version: str = VERSION):
    """Replace the stream by ``window`` logged for ``version`` and evaluate once."""
    client.delete(STREAM)
    sample.write_model_hash(client, version, columns)
    sample.log_predictions(client, window, version, columns)
    verdicts = monitor.evaluate_once()
    assert [v.model_version for v in verdicts] == [version]
    return verdicts[0]


def count(monitor: Monitor, result: str) -> float:
    return monitor.registry.get_sample_value("taxi_drift_evaluations_total", {"result": result})


def test_same_population_windows_rarely_drift(settings, client, live, columns) -> None:
    """20 disjoint January windows vs a January reference: false positives at the set rate.

    Features and predictions are each tested at 0.05 (Bonferroni within each), so a verdict is a
    false positive with probability <= ~0.10; 6 or more of 20 would have probability ~1%.
    """
    monitor = Monitor(settings)
    verdicts = [evaluate(monitor, client, live.iloc[i * 1000:(i + 1) * 1000], columns)
                for i in range(20)]
    features = sum(v.feature_drift for v in verdicts)
    predictions = sum(v.prediction_drift for v in verdicts)
    print(f"same population: {sum(v.drift for v in verdicts)}/20 drift verdicts "
          f"({features} feature, {predictions} prediction)")
    assert all(v.window_size == 1000 for v in verdicts)
    assert features <= 3
    assert sum(v.drift for v in verdicts) <= 5
    assert count(monitor, "ok") == 20


@pytest.mark.parametrize("shift,feature", [
    (lambda w: w.assign(trip_distance=w["trip_distance"] * 1.5), "trip_distance"),
    (lambda w: w.assign(hour=np.random.default_rng(1).integers(0, 6, len(w)).astype(float)),
     "hour"),
    (lambda w: w.assign(passenger_count=np.nan), "passenger_count"),  # a lost feature
])
def test_covariate_shift_is_detected_in_one_window(settings, client, live, columns, shift,
                                                   feature) -> None:
    monitor = Monitor(settings)
    window = live.iloc[:1000]
    assert not evaluate(monitor, client, window, columns).feature_drift
    verdict = evaluate(monitor, client, shift(window.copy()), columns)
    print(f"shift of {feature}: drift={verdict.drift}, drifted={verdict.drifted_features}")
    assert verdict.drift and verdict.feature_drift
    assert feature in verdict.drifted_features
    assert verdict.p_values[feature] < settings.p_value / len(verdict.p_values)


def test_prediction_shift_is_detected(settings, client, live, columns) -> None:
    window = live.iloc[:1000].copy()
    window["pred_duration"] *= 1.3
    verdict = evaluate(Monitor(settings), client, window, columns)
    assert verdict.prediction_drift and verdict.drift
    assert verdict.prediction_p_values["duration"] < 0.025 < verdict.prediction_p_values["fare"]


def test_verdict_is_stored_in_redis_in_the_contract_format(settings, client, live,
                                                           columns) -> None:
    verdict = evaluate(Monitor(settings), client, live.iloc[:1000], columns)
    latest = json.loads(client.get(VERDICT_KEY))
    assert json.loads(client.get(f"{VERDICT_KEY}:{VERSION}")) == latest
    assert CONTRACT_FIELDS <= set(latest)
    assert latest["model_version"] == VERSION and latest["window_size"] == 1000
    assert latest["p_values"] == pytest.approx(verdict.p_values)
    assert set(latest["p_values"]) == set(columns)
    assert set(latest["prediction_p_values"]) == {"duration", "fare"}
    assert latest["threshold"] == 0.05 and latest["correction"] == "bonferroni"


def test_each_served_version_gets_its_own_window(settings, client, live, columns, store) -> None:
    """Two versions in the stream: each is evaluated on its own newest entries only."""
    other = "20230301000000-shifted1"
    sample.write_reference(live.iloc[-5000:], store, other)
    sample.write_model_hash(client, VERSION, columns)
    sample.write_model_hash(client, other, columns)
    sample.log_predictions(client, live.iloc[:1500], VERSION, columns)
    shifted = live.iloc[2000:3000].assign(trip_distance=lambda w: w["trip_distance"] * 1.5)
    sample.log_predictions(client, shifted, other, columns, track="canary")
    sample.log_predictions(client, live.iloc[3000:3100], "v-too-few", columns)
    monitor = Monitor(settings)
    verdicts = {v.model_version: v for v in monitor.evaluate_once()}
    assert set(verdicts) == {VERSION, other}
    assert verdicts[VERSION].window_size == 1000 and not verdicts[VERSION].feature_drift
    assert verdicts[other].feature_drift and "trip_distance" in verdicts[other].drifted_features
    assert json.loads(client.get(f"{VERDICT_KEY}:{other}"))["drift"] is True
    assert count(monitor, "insufficient_data") == 1
    assert monitor.registry.get_sample_value(
        "taxi_drift_detected", {"model_version": other, "kind": "features"}) == 1


def test_unusable_version_is_an_error_and_others_still_run(settings, client, live,
                                                           columns) -> None:
    sample.write_model_hash(client, VERSION, columns)
    sample.write_model_hash(client, "v-no-reference", columns)
    sample.log_predictions(client, live.iloc[:1000], VERSION, columns)
    sample.log_predictions(client, live.iloc[1000:2000], "v-no-reference", columns)
    sample.log_predictions(client, live.iloc[2000:2300], "v-no-model-hash", columns)
    monitor = Monitor(settings)
    assert [v.model_version for v in monitor.evaluate_once()] == [VERSION]
    assert count(monitor, "error") == 2
    assert "v-no" in monitor.health.last_error


def test_model_hash_errors_are_clear(client) -> None:
    with pytest.raises(ValueError, match="taxi:model:nope is missing"):
        read_model_columns(client, "nope")
    client.hset("taxi:model:bad", mapping={"columns": "not json"})
    with pytest.raises(ValueError, match="columns"):
        read_model_columns(client, "bad")


def test_reference_without_logged_column_is_rejected(settings, client, live, columns,
                                                     store) -> None:
    sample.write_reference(live.iloc[:5000].drop(columns=["hour"]), store, "v-old-reference")
    sample.write_model_hash(client, "v-old-reference", columns)
    monitor = Monitor(settings)
    with pytest.raises(ValueError, match="lacks logged columns \\['hour'\\]"):
        monitor.detector("v-old-reference")


def test_retrain_and_rollout_state_is_exported(settings, client) -> None:
    monitor = Monitor(settings)
    value = monitor.registry.get_sample_value
    assert value("taxi_rollout_canary_weight") is None  # absent keys: no samples
    assert value("taxi_retrain_outcomes", {"outcome": "promoted"}) is None
    client.set("taxi:retrain:last", json.dumps({"outcome": "promoted", "started_at": 100.0,
                                                "finished_at": 160.5, "reasons": ["drift"]}))
    client.hset("taxi:retrain:outcomes", mapping={"promoted": 2, "skipped": 5})
    client.set("taxi:rollout:state", json.dumps({"mode": "canary", "canary_weight": 25,
                                                 "active_color": "green"}))
    assert value("taxi_retrain_last_run_timestamp_seconds", {"outcome": "promoted"}) == 160.5
    assert value("taxi_retrain_outcomes", {"outcome": "skipped"}) == 5
    assert value("taxi_rollout_canary_weight") == 25
    assert value("taxi_rollout_active_color", {"color": "green"}) == 1
    assert value("taxi_rollout_active_color", {"color": "blue"}) == 0
    client.set("taxi:rollout:state", "{not json")
    assert value("taxi_rollout_canary_weight") is None


def test_settings_change_the_tests_run(redis_server, store, client, live, columns) -> None:
    s = DriftSettings(redis_url=redis_server.url, bentoml_home=store, window_size=400,
                      min_window=100, ignore_features=["hour", "minute_of_day"])
    verdict = evaluate(Monitor(s), client, live.iloc[:1000], columns)
    assert verdict.window_size == 400
    assert "hour" not in verdict.p_values and "trip_distance" in verdict.p_values


def test_time_local_windows_and_uniform_sampling(redis_server, store, client, columns) -> None:
    """Live traffic arrives in time order. The newest 1,000 January trips (about half a day)
    differ from a month-wide reference in hour, weekday and zone mix, so a sliding window reports
    drift without any change in the city; a uniform sample of the scanned entries (here about
    two weeks) does not. This is why ``window_sampling`` exists; see docs/monitoring.md."""
    ordered = sample.trips("2023-01", with_pickup=True).sort_values("pickup").head(30_000)
    sample.write_model_hash(client, VERSION, columns)
    sample.log_predictions(client, ordered, VERSION, columns)
    verdicts = {}
    for mode in ("newest", "uniform"):
        s = DriftSettings(redis_url=redis_server.url, bentoml_home=store, window_sampling=mode,
                          scan_entries=30_000)
        (verdicts[mode],) = Monitor(s).evaluate_once()
    print(f"time-ordered stream: newest drift={verdicts['newest'].drift} "
          f"{verdicts['newest'].drifted_features[:5]}; uniform drift={verdicts['uniform'].drift}")
    assert {"hour", "weekday"} & set(verdicts["newest"].drifted_features)
    assert not verdicts["uniform"].feature_drift
    assert verdicts["uniform"].window_size == 1000


def test_fdr_correction_reports_drifted_features(redis_server, store, client, live,
                                                 columns) -> None:
    s = DriftSettings(redis_url=redis_server.url, bentoml_home=store, correction="fdr")
    monitor = Monitor(s)
    same = evaluate(monitor, client, live.iloc[:1000], columns)
    assert same.correction == "fdr" and same.drifted_features == [] and not same.feature_drift
    night = live.iloc[1000:2000].assign(hour=lambda w: (w["hour"] + 12) % 24)
    shifted = evaluate(monitor, client, night, columns)
    assert shifted.feature_drift and "hour" in shifted.drifted_features
    assert all(shifted.p_values[f] < 0.05 for f in shifted.drifted_features)
