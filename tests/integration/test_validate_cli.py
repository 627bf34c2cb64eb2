"""`python -m training validate` in bounded memory: it validates chunk by chunk, writes each
chunk's quarantine (with reasons) as a parquet part, and its summary equals validating every
row at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from common.paths import ROOT
from training.data import read_trips
from training.validate import validate

pytestmark = [pytest.mark.integration, pytest.mark.scale]

KEY = ["source_file", "source_row"]


def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", "validate", *args], cwd=ROOT,
                          text=True, capture_output=True, timeout=300,
                          env={**os.environ, "BENTOML_DO_NOT_TRACK": "true"})


@pytest.fixture(scope="module")
def whole(sample_files):
    return validate(pd.concat([read_trips(f) for f in sample_files], ignore_index=True))


def test_chunked_validation_accounts_for_every_row(tmp_path, sample_files, whole):
    out = tmp_path / "validation"
    # a part left by an earlier run (another chunk size) must not be read as this run's
    (out / "quarantine.parquet").mkdir(parents=True)
    whole.quarantine.head(50).to_parquet(out / "quarantine.parquet" / "stale-00099.parquet")
    res = _validate("--out-dir", str(out), "--chunk-rows", "20000",
                    *[arg for f in sample_files for arg in ("--data", str(f))])
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    raw = sum(len(pd.read_parquet(f, columns=["PULocationID"])) for f in sample_files)
    assert summary["rows_in"] == raw == whole.summary["rows_in"]
    assert summary["chunks"] == sum(-(-len(pd.read_parquet(f, columns=["PULocationID"]))
                                      // 20_000) for f in sample_files) > len(sample_files)
    assert summary["by_rule"] == whole.summary["by_rule"]
    assert summary["rows_quarantined"] == whole.summary["rows_quarantined"]
    parts = sorted((out / "quarantine.parquet").glob("*.parquet"))
    assert len(parts) == summary["chunks"]
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert len(quarantine) == summary["rows_quarantined"]
    assert not quarantine.duplicated(KEY).any()
    assert quarantine["reasons"].str.len().gt(0).all()
    merged = quarantine.merge(whole.quarantine[[*KEY, "reasons"]], on=KEY, suffixes=("", "_w"))
    assert len(merged) == len(whole.quarantine)
    assert (merged["reasons"] == merged["reasons_w"]).all()
    assert not (out / "clean").exists()  # validation alone keeps no copy of the clean rows


def test_a_too_small_chunk_is_a_clear_error(tmp_path):
    res = _validate("--out-dir", str(tmp_path), "--chunk-rows", "10")
    assert res.returncode == 2
    assert "--chunk-rows" in res.stderr and "1000" in res.stderr
