"""The Typer CLI end to end on the bundled sample, the BentoML store and the champion gate."""

import json
import os
import subprocess
import sys

import bentoml
import pytest

from common.paths import ROOT
from training.register import current_champion, gate, load_bundle, save_model, set_champion
from training.train import TrainConfig

pytestmark = pytest.mark.integration


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=600)


def test_bad_arguments_get_a_clear_error():
    res = _cli("pipeline", "--eval-month", "2023-13")
    assert res.returncode == 2
    assert "2023-13" in res.stderr and "--eval-month" in res.stderr
    res = _cli("pipeline", "--data", "/nonexistent/trips.parquet")
    assert res.returncode != 0 and "/nonexistent/trips.parquet" in res.stderr


@pytest.mark.slow
def test_pipeline_registers_a_versioned_champion(tmp_path, feature_repo):
    home = tmp_path / "bentoml"
    res = _cli("pipeline", "--feature-repo", str(feature_repo), "--out-dir", str(tmp_path / "a"),
               env={"BENTOML_HOME": str(home)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "CHAMPION - no champion yet" in res.stdout
    pointer = json.loads((home / "taxi-serve" / "champion.json").read_text())
    report = json.loads(next((tmp_path / "a" / "reports").glob("*.json")).read_text())
    assert report["tag"] == pointer["tag"] and report["champion"] is True
    quarantine = tmp_path / "a" / "datasets" / report["dataset_version"] / "quarantine.parquet"
    assert quarantine.exists()
    assert report["validation"]["rows_quarantined"] > 0


def test_registered_model_carries_its_lineage(trained, prepared, zones_csv):
    tag = save_model(trained, prepared, TrainConfig().as_dict(), zones_csv)
    info = bentoml.models.get(tag).info
    meta = info.metadata
    assert meta["data_version"] == prepared.version == info.labels["data_version"]
    assert meta["feature_services"] == {"duration": "duration_v1", "fare": "fare_v1"}
    assert meta["params"]["objective"] == TrainConfig().objective
    assert meta["window"]["train_months"] == ["2023-01"]
    assert meta["window"]["eval_month"] == "2023-02"
    assert meta["metrics"]["fare"]["lightgbm+features"]["mae"] > 0
    assert len(meta["git_commit"]) >= 7
    bundle = load_bundle(tag)
    assert set(bundle.fallback) == {"zone_hour_traffic", "zone_stats", "route_stats"}
    assert (bundle.path / "reference.parquet").exists()


def test_gate_keeps_a_worse_candidate_out(trained, prepared, zones_csv):
    import lightgbm as lgb

    good = save_model(trained, prepared, TrainConfig().as_dict(), zones_csv)
    set_champion(good, "test setup")
    # a deliberately weak model: the same features, a single tree
    weak = dict(trained)
    weak["boosters"] = {t: lgb.Booster(model_str=b.model_to_string(num_iteration=1))
                        for t, b in trained["boosters"].items()}
    bad = save_model(weak, prepared, {"num_iteration": 1}, zones_csv)
    promote, reason = gate(bad, trained["test"])
    assert not promote and "worse than the champion" in reason
    assert current_champion() == good
    promote, reason = gate(good, trained["test"])
    assert promote
