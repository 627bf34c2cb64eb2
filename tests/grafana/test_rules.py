"""The generated Prometheus rule file: promtool accepts it, its unit tests pass, and every
alert the issue asks for exists and is unit-tested."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from common.paths import ROOT
from grafana import build, rules
from grafana.promql import metric_names

pytestmark = pytest.mark.unit

UNIT_TESTS = Path(__file__).parent / "promtool/rules_test.yaml"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: `make prometheus-tools` installs Debian's prometheus"
    return path


def test_promtool_check_rules_accepts_both_copies():
    for path in build.RULE_FILES:
        out = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{len(rules.RECORDINGS) + len(rules.ALERTS)} rules found" in out.stdout


def test_promtool_unit_tests_pass():
    out = subprocess.run([promtool(), "test", "rules", str(UNIT_TESTS)], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_unit_tests_fail_on_a_broken_rule(tmp_path):
    """The unit tests can fail: with the error-ratio threshold raised they must."""
    text = build.RULE_FILES[0].read_text().replace("ratio_rate5m > 0.01", "ratio_rate5m > 0.5")
    broken = tmp_path / "helm/taxi-serve/files/prometheus-rules.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text)
    tests = tmp_path / "tests/grafana/promtool/rules_test.yaml"
    tests.parent.mkdir(parents=True)
    tests.write_text(UNIT_TESTS.read_text())
    out = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "TaxiServeHighErrorRate" in out.stdout + out.stderr


def test_every_alert_has_a_firing_unit_test():
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {t["alertname"] for case in cases for t in case.get("alert_rule_test", [])
             if t["exp_alerts"]}
    assert fired == {a.alert for a in rules.ALERTS}


def test_the_alerts_the_issue_asks_for():
    by_name = {a.alert: a for a in rules.ALERTS}
    assert "taxi_serve:latency_slo_violations" in by_name["TaxiServeLatencySLOFastBurn"].expr
    assert "request_errors" in by_name["TaxiServeHighErrorRate"].expr
    drift = by_name["TaxiServeDriftDetected"]
    assert "taxi_drift_detected" in drift.expr and drift.for_ != "0m"  # held for a while
    assert "ratio_offline" in by_name["TaxiServeAccuracyBelowOfflineBaseline"].expr
    assert "fallbacks" in by_name["TaxiServeFeatureFallbackActive"].expr
    assert 'outcome="failed"' in by_name["TaxiServeRetrainFailed"].expr
    assert "taxi_model_created_timestamp_seconds" in by_name["TaxiServeModelTooOld"].expr


def test_recording_rules_are_used_and_follow_the_naming_convention():
    from grafana.dashboards import DASHBOARDS

    used = set()
    for expr in [q.expr for d in DASHBOARDS for q in d.queries()] + \
            [r.expr for r in rules.RECORDINGS] + [a.expr for a in rules.ALERTS]:
        used |= metric_names(expr)
    for r in rules.RECORDINGS:
        assert r.record.startswith("taxi_serve:") and r.record.count(":") == 2
        assert r.record in used, f"{r.record} is recorded but nothing reads it"
