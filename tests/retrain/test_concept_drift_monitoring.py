"""Real concept drift as monitoring sees it (issue: drift and accuracy monitoring).

The champion trained on 2021-2022 months is served on its own track. First trips from a month
like its training data (February 2021, not used for training), then February 2023 trips (after
the TLC fare increase of December 2022) come through the API, each followed by its true
duration and fare as feedback. The service's rolling-MAE gauge must show the fare MAE rise;
what the input-drift detector says about the 2023 window is recorded, whatever it is.
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from retrainlib import REPLAY_MONTH, month_file, replay

from retrain.trips import known_trips
from tests.report import MEASURED
from tests.service.test_drift_scenarios import drift_verdicts

pytestmark = [pytest.mark.retrain, pytest.mark.slow]
N = 400


def fare_gauge(http: str, version: str, expect_n: int) -> tuple[float, int]:
    """taxi_rolling_mae / samples for fare over 15m once the refresher has seen expect_n."""
    deadline, got = time.monotonic() + 30, (float("nan"), 0)
    while time.monotonic() < deadline:
        text = httpx.get(f"{http}/metrics").text
        vals = {s.name: s.value for fam in text_string_to_metric_families(text)
                for s in fam.samples
                if s.labels.get("model_version") == version and s.labels.get("target") == "fare"
                and s.labels.get("window") == "15m" and s.labels.get("track") == "monitoring"}
        got = (vals.get("taxi_rolling_mae", float("nan")),
               int(vals.get("taxi_rolling_feedback_samples", 0)))
        if got[1] >= expect_n:
            return got
        time.sleep(0.5)
    raise AssertionError(f"rolling MAE gauge never reached {expect_n} samples: {got}")


def test_rolling_fare_mae_rises_on_2023_trips(world):
    version = world.champion.split(":")[1]
    served = world.serve(world.champion, "monitoring", "monitoring",
                         TAXI_ACCURACY_REFRESH_S="1")
    like_training = replay(served.http, known_trips(month_file("2021-02"), N, seed=3), "m21")
    before, n_before = fare_gauge(served.http, version, N)
    after_2023 = replay(served.http, known_trips(month_file(REPLAY_MONTH), N, seed=4), "m23")
    after, n_after = fare_gauge(served.http, version, 2 * N)
    verdicts = [v for v in drift_verdicts(world.redis.url, N) if v["model_version"] == version]
    MEASURED["concept drift: rolling fare MAE gauge (15m window, USD)"] = {
        "after Feb-2021 trips": round(before, 3), "n": n_before,
        "after Feb-2023 trips too": round(after, 3), "n after": n_after,
        "Feb-2023 trips alone": round(after_2023["fare_mae"], 3),
        "Feb-2021 trips alone": round(like_training["fare_mae"], 3)}
    MEASURED["concept drift: input-drift verdict on the Feb-2023 window"] = [
        {k: v[k] for k in ("drift", "feature_drift", "prediction_drift", "drifted_features",
                           "prediction_p_values")} for v in verdicts]
    assert before == pytest.approx(like_training["fare_mae"], abs=0.02)
    assert after_2023["fare_mae"] > 1.3 * like_training["fare_mae"]
    assert after > before  # the gauge shows the rise
    assert verdicts, "the drift monitor evaluated the champion's window"
