"""Settings: defaults, environment parsing, and rejection of bad or unknown keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from drift_monitor.settings import DriftSettings

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_defaults_follow_the_contract() -> None:
    s = DriftSettings()
    assert (s.port, s.window_size, s.p_value, s.correction) == (9102, 1000, 0.05, "bonferroni")
    assert s.redis_url is None
    assert s.bentoml_home == Path("~/bentoml").expanduser()
    assert s.reference_for("v1") == s.bentoml_home / "models/taxi_trip/v1/reference.parquet"


def test_environment_is_read_with_prefix_and_unprefixed_urls(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path))
    monkeypatch.setenv("TAXI_DRIFT_PORT", "9200")
    monkeypatch.setenv("TAXI_DRIFT_CORRECTION", "fdr")
    monkeypatch.setenv("TAXI_DRIFT_IGNORE_FEATURES", '["hour", "weekday"]')
    monkeypatch.setenv("TAXI_DRIFT_REFERENCE_PATH", str(tmp_path / "{version}.parquet"))
    monkeypatch.setenv("TAXI_MODEL_TAG", "taxi_trip:abc")  # the chart's; not ours to reject
    s = DriftSettings()
    assert s.redis_url == "redis://example:6380/2" and s.bentoml_home == tmp_path
    assert (s.port, s.correction, s.ignore_features) == (9200, "fdr", ["hour", "weekday"])
    assert s.reference_for("v7") == tmp_path / "v7.parquet"


def test_unknown_prefixed_key_is_rejected_by_name(monkeypatch) -> None:
    monkeypatch.setenv("TAXI_DRIFT_WINDOW", "500")  # a typo of WINDOW_SIZE
    with pytest.raises(ValidationError, match="TAXI_DRIFT_WINDOW"):
        DriftSettings()


@pytest.mark.parametrize("key,value", [
    ("TAXI_DRIFT_CORRECTION", "holm"), ("TAXI_DRIFT_P_VALUE", "1.5"),
    ("TAXI_DRIFT_WINDOW_SIZE", "5"), ("TAXI_DRIFT_MIN_WINDOW", "5000"),
])
def test_bad_values_are_rejected(monkeypatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        DriftSettings()


def test_cli_exits_with_a_clear_message_on_unknown_keys(monkeypatch) -> None:
    env = {"PATH": "/usr/bin:/bin", "TAXI_DRIFT_WINDOWSIZE": "10"}
    proc = subprocess.run([sys.executable, "-m", "drift_monitor", "settings"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "TAXI_DRIFT_WINDOWSIZE" in proc.stderr
