"""Steps 2 and 3: retrain on a trailing window of the newest labelled data, gate the candidate
against the champion on the newest labelled month, and check the new version in the store.

The training pipeline (training/pipeline.py) does the work: ingest -> validate -> features
(materialized to the serving Redis, as the materialize CronJob would) -> LightGBM -> evaluate on
the newest month, which training never sees -> ``save_model`` into the shared BentoML store.
Saving does not promote: serving only changes when the rollout says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.settings import RetrainSettings
from training.data import month_of

TARGETS = ("duration", "fare")
LABEL = {"duration": "duration_s", "fare": "fare_amount"}


@dataclass
class Candidate:
    tag: str
    window: dict
    gate_window: Path  # the newest labelled month's trips (features joined), for the gate
    evaluation: dict


def trailing_window(inputs: list[Path], months: int) -> list[Path]:
    """The trip files of the newest ``months`` months present (all files of those months)."""
    from training.pipeline import discover

    files = discover(inputs)
    present = sorted({str(month_of(f)) for f in files if month_of(f) is not None})
    keep = set(present[-months:])
    return [f for f in files if str(month_of(f)) in keep]


def subsample(files: list[Path], fraction: float, out_dir: Path, seed: int = 0) -> list[Path]:
    """Copies of the files with a random ``fraction`` of rows (same names: the month is read
    from the name). Fraction 1 returns the files themselves."""
    if fraction >= 1.0:
        return files
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        frame = pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f)
        part = frame.sample(frac=fraction, random_state=seed).sort_index()
        target = out_dir / f.with_suffix(".parquet").name
        part.to_parquet(target, index=False)
        out.append(target)
    return out


def retrain(cfg: RetrainSettings, redis_url: str, work_dir: Path) -> Candidate:
    """Train a candidate on the trailing window; the newest month is its evaluation month."""
    from contextlib import nullcontext

    from training.bounded import prepare_bounded
    from training.distributed import cluster_fit
    from training.pipeline import train_and_evaluate
    from training.register import save_model
    from training.settings import TrainScaleSettings
    from training.train import TrainConfig

    files = trailing_window(cfg.data, cfg.window_months)
    files = subsample(files, cfg.sample_fraction, work_dir / "data")
    # memory bounded by TAXI_TRAIN_* (the chart's limit is sized for it); the boosters train on
    # the Dask cluster at TAXI_TRAIN_DASK_ADDRESS when it is set
    scale = TrainScaleSettings()
    prep = prepare_bounded(files, cfg.zones, cfg.feature_repo, redis_url, work_dir / "artifacts",
                           settings=scale)
    tcfg = TrainConfig()
    with cluster_fit(scale.dask_address) if scale.dask_address else nullcontext() as fit:
        trained = train_and_evaluate(prep, None, tcfg, **({"fit": fit} if fit else {}))
    tag = save_model(trained, prep, tcfg.as_dict(), cfg.zones)
    gate_window = work_dir / "gate_window.parquet"
    trained["test"].to_parquet(gate_window, index=False)
    overall = {t: {k: v["overall"]["mae"] for k, v in m.items()}
               for t, m in trained["evaluation"].items()}
    return Candidate(tag, trained["window"], gate_window, overall)


@dataclass
class GateResult:
    passed: bool
    reason: str
    mae: dict  # {"candidate": {target: mae}, "champion": {...}, "n": trips}


def gate(candidate: str, champion: str | None, window: pd.DataFrame,
         margin: float, tolerance: float) -> GateResult:
    """Pass when the candidate beats the champion by ``margin`` (relative MAE) on at least one
    target and is no more than ``tolerance`` worse on the other, on the same labelled trips."""
    from training.register import load_bundle

    if champion is None:
        return GateResult(True, "no champion to beat", {})
    if champion == candidate:
        return GateResult(False, "candidate is already the champion", {})
    pc = load_bundle(candidate).predict(window)
    pk = load_bundle(champion).predict(window)
    mae = {"candidate": {}, "champion": {}, "n": int(len(window))}
    for t in TARGETS:
        y = window[LABEL[t]].to_numpy()
        mae["candidate"][t] = float(np.mean(np.abs(np.maximum(pc[t], 0) - y)))
        mae["champion"][t] = float(np.mean(np.abs(np.maximum(pk[t], 0) - y)))
    gain = {t: 1.0 - mae["candidate"][t] / mae["champion"][t] for t in TARGETS}
    text = "; ".join(f"{t} MAE {mae['candidate'][t]:.3f} vs champion {mae['champion'][t]:.3f} "
                     f"({gain[t]:+.1%})" for t in TARGETS) + f" on {len(window)} trips"
    better = [t for t in TARGETS if gain[t] >= margin]
    worse = [t for t in TARGETS if gain[t] < -tolerance]
    if worse:
        return GateResult(False, f"worse than the champion on {', '.join(worse)} beyond "
                                 f"{tolerance:.0%}: {text}", mae)
    if not better:
        return GateResult(False, f"not better than the champion by {margin:.0%}: {text}", mae)
    return GateResult(True, f"better on {', '.join(better)}: {text}", mae)


def build(tag: str, window: pd.DataFrame | None = None, compile_trees: bool = True) -> dict:
    """Step 3: the candidate as a new version in the shared model store. Serving pods load a
    model by tag from the store (TAXI_MODEL_TAG), so no new image is built: check that the
    version loads from the store as a service would, was trained on the feature services the
    service serves, and predicts finite values; its tag is what the rollout deploys.
    ``compile_trees``: also compile its trees for serving (training/compile.py). A failed
    compile is reported, not fatal: pods then serve the version with LightGBM."""
    import bentoml

    from training.register import load_bundle

    model = bentoml.models.get(tag)
    bundle = load_bundle(tag)
    expected = {"duration": "duration_v1", "fare": "fare_v1"}
    if bundle.metadata.get("feature_services") != expected:
        raise ValueError(f"{tag} was trained on {bundle.metadata.get('feature_services')}, "
                         f"the service serves {expected}")
    checked = 0
    if window is not None and len(window):
        sample = window.head(200)
        preds = bundle.predict(sample)
        if not all(np.isfinite(p).all() for p in preds.values()):
            raise ValueError(f"{tag} predicts non-finite values")
        checked = len(sample)
    compiled = "skipped"
    if compile_trees:
        from training.compile import compile_model

        try:
            compile_model(tag)
            compiled = "compiled"
        except Exception as exc:  # noqa: BLE001 - serving falls back to LightGBM
            compiled = f"not compiled: {exc!r}"[:300]
    return {"tag": tag, "path": str(model.path), "size_mb": round(_size(Path(model.path)), 2),
            "checked_trips": checked, "compiled": compiled}


def _size(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
