"""Compiled trees (training/compile.py): same answers as LightGBM, refused when they are not."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from common.paths import ROOT
from training import compile as compiler
from training.model import frame_columns
from training.register import load_bundle

pytestmark = pytest.mark.service


def test_compiled_trees_answer_what_lightgbm_answers(model_tag, trained):
    fast, slow = load_bundle(model_tag, compiled=True), load_bundle(model_tag)
    assert (fast.engine, slow.engine) == ("compiled", "lightgbm")
    test = trained["test"].sample(3000, random_state=5)
    for frame in (test, test.assign(trip_distance=np.nan)):  # with and without distance
        got, want = fast.predict(frame), slow.predict(frame)
        for target in ("duration", "fare"):
            np.testing.assert_allclose(got[target], want[target], rtol=1e-9, atol=1e-9)


def test_threads_split_a_batch_without_changing_it(model_tag):
    bundle = load_bundle(model_tag, compiled=True)
    columns = bundle.columns["fare"]
    x = pd.read_parquet(bundle.path / "reference.parquet")[columns].to_numpy("float64")
    booster = bundle.boosters["fare"]
    np.testing.assert_array_equal(booster.predict(x, num_threads=2), booster.predict(x))
    with pytest.raises(ValueError, match="columns"):
        booster.predict(x[:, :-1])


def test_compiling_again_keeps_what_is_there(model_tag):
    out = compiler.compiled_dir(model_tag.split(":")[1])
    before = (out / "manifest.json").stat().st_mtime_ns
    assert compiler.compile_model(model_tag) == out
    assert (out / "manifest.json").stat().st_mtime_ns == before


def test_trees_that_disagree_with_the_reference_are_refused(model_tag):
    bundle = load_bundle(model_tag)
    reference = pd.read_parquet(bundle.path / "reference.parquet").head(200)
    version = model_tag.split(":")[1]
    ok, reason = compiler.load(bundle.path, version, frame_columns(reference), bundle.columns)
    assert ok is not None and reason == "compiled"
    reference["pred_fare"] = reference["pred_fare"] * 1.001
    ok, reason = compiler.load(bundle.path, version, frame_columns(reference), bundle.columns)
    assert ok is None and "compiled fare differs from LightGBM" in reason


def test_a_stale_or_missing_compile_falls_back_to_lightgbm(model_tag):
    out = compiler.compiled_dir(model_tag.split(":")[1])
    manifest = out / "manifest.json"
    original = manifest.read_text()
    try:
        stale = json.loads(original)
        stale["sha256"]["duration"] = "0" * 64  # compiled from another booster file
        manifest.write_text(json.dumps(stale))
        assert load_bundle(model_tag, compiled=True).engine == "lightgbm"
    finally:
        manifest.write_text(original)
    hidden = out.with_name(out.name + ".hidden")
    out.rename(hidden)
    try:
        bundle = load_bundle(model_tag, compiled=True)
        assert bundle.engine == "lightgbm"
        assert np.isfinite(bundle.predict(pd.read_parquet(bundle.path / "reference.parquet")
                                          .head(5))["fare"]).all()
    finally:
        shutil.rmtree(out, ignore_errors=True)
        hidden.rename(out)
    assert load_bundle(model_tag, compiled=True).engine == "compiled"


def test_compile_cli_names_a_bad_tag():
    proc = subprocess.run([sys.executable, "-m", "training", "compile", "taxi_trip:nope"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "TAG" in proc.stderr, proc.stderr[-2000:]
