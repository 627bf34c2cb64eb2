"""Version models in the BentoML model store and keep the champion honest.

One BentoML model ``taxi_trip:<version>`` holds both boosters, the fallback features the
service uses when Redis is unreachable, a reference sample of training features for the drift
monitor, the zone table, and metadata: data version, feature services, parameters, metrics,
training window and git commit. The champion pointer is a small JSON file in the store; a new
model replaces the champion only if it is no worse on the same evaluation window.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import bentoml
import numpy as np

from training.model import SERVICE_OF, TARGETS, model_columns, predict_frame, table_columns

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

log = logging.getLogger("taxi.register")
MODEL_NAME = "taxi_trip"
REFERENCE_ROWS = 5000


def store_home() -> Path:
    """The BentoML home (BENTOML_HOME, default ~/bentoml) that holds models and the pointer."""
    return Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))


def champion_file() -> Path:
    return store_home() / "taxi-serve" / "champion.json"


def current_champion() -> str | None:
    """The champion's tag, or None before the first promotion."""
    path = champion_file()
    return json.loads(path.read_text())["tag"] if path.exists() else None


def set_champion(tag: str, reason: str) -> None:
    """Point the champion at ``tag`` (atomic replace) and append to the history."""
    path = champion_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    history = json.loads(path.read_text()).get("history", []) if path.exists() else []
    history.append({"tag": tag, "at": datetime.now(UTC).isoformat(), "reason": reason})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"tag": tag, "history": history[-50:]}, indent=2))
    tmp.replace(path)


def resolve_tag(tag: str) -> str:
    """``taxi_trip:champion`` means the current champion; other tags pass through."""
    if tag.endswith(":champion"):
        champ = current_champion()
        if champ is None:
            raise LookupError("no champion model yet: run `make train` first")
        return champ
    return tag


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Bundle:
    """A loaded model version: boosters, their input columns, fallback features, metadata."""

    tag: str
    boosters: dict[str, lgb.Booster]
    columns: dict[str, list[str]]
    metadata: dict
    fallback: dict[str, dict[str, list]]  # feature view -> column -> values (newest rows)
    zones: dict[str, list[str]]  # zones.csv, column -> values
    path: Path
    engine: str = "lightgbm"  # or "compiled" (training/compile.py)

    def predict(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Predictions for a frame holding request inputs and Feast features."""
        return predict_frame(self.boosters, self.columns, frame)


def load_bundle(tag: str, compiled: bool = False) -> Bundle:
    """Load a model version from the BentoML store (``name:champion`` resolves the pointer).

    ``compiled``: use the version's compiled boosters when they exist and reproduce the
    predictions LightGBM made for the reference sample at training time (training/compile.py);
    otherwise LightGBM, with the reason logged.
    """
    model = bentoml.models.get(resolve_tag(tag))
    path = Path(model.path)
    meta = dict(model.info.metadata)
    boosters, engine = None, "lightgbm"
    if compiled:
        from training import compile as compiler

        reference = path / "reference.parquet"
        check = (table_columns(read_table(reference).slice(0, 500)) if reference.exists()
                 else None)
        boosters, reason = compiler.load(path, model.tag.version, check, meta["columns"])
        if boosters is None:
            log.warning("model %s: serving with LightGBM, %s", model.tag, reason)
        else:
            engine = "compiled"
    if boosters is None:
        # imported here: a worker serving compiled trees never needs LightGBM (nor the
        # scikit-learn and SciPy it imports), a second off its start
        import lightgbm as lgb

        boosters = {t: lgb.Booster(model_file=str(path / f"{t}.txt")) for t in TARGETS}
    fallback = {p.stem: read_table(p).to_pydict()
                for p in sorted((path / "fallback").glob("*.parquet"))}
    with open(path / "zones.csv", newline="") as f:
        rows = list(csv.reader(f))
    zones = {name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])}
    return Bundle(str(model.tag), boosters, meta["columns"], meta, fallback, zones, path, engine)


def read_table(path: Path):
    """A parquet file's numeric and boolean columns as a pyarrow Table: a serving worker reads
    its model's files without pandas, whose import was a fifth of a worker's start
    (docs/resilience.md). Converting a timestamp column, or ``read_table``'s dataset code,
    would import it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    numbers = [f.name for f in source.schema_arrow if pa.types.is_integer(f.type)
               or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)]
    return source.read(columns=numbers)


def latest_snapshot(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each entity's newest feature row: what the service falls back to without Redis."""
    from training.features import TIMESTAMP

    out = {}
    for name, frame in tables.items():
        keys = [c for c in frame.columns if c.endswith("_id") or c == "hour_of_week"]
        out[name] = (frame.sort_values(TIMESTAMP).groupby(keys, as_index=False).tail(1)
                     .reset_index(drop=True))
    return out


def save_model(trained: dict, prep, params: dict, zones_csv: Path) -> str:
    """Write a new model version to the store; returns its tag (a candidate until promoted)."""
    from training.train import design

    now = datetime.now(UTC)
    # to the millisecond: two models of one dataset saved within a second must not collide
    version = f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}-{prep.version[:8]}"
    test = trained["test"]
    overall = {t: {name: e["overall"] for name, e in m.items()}
               for t, m in trained["evaluation"].items()}
    metadata = {
        "data_version": prep.version, "files": [f.name for f in prep.files],
        "feature_services": SERVICE_OF, "columns": trained["columns"], "params": params,
        "fit": trained["fit"], "metrics": overall, "window": trained["window"],
        "git_commit": git_commit(), "created_at": now.isoformat(),
        "rules_version": prep.validation_summary["rules_version"],
    }
    labels = {"data_version": prep.version, "eval_month": trained["window"]["eval_month"]}
    with bentoml.models.create(bentoml.Tag(MODEL_NAME, version), labels=labels,
                               metadata=metadata, module=__name__) as model:
        path = Path(model.path)
        for target, booster in trained["boosters"].items():
            booster.save_model(str(path / f"{target}.txt"))
        (path / "fallback").mkdir()
        for name, frame in latest_snapshot(prep.tables).items():
            frame.to_parquet(path / "fallback" / f"{name}.parquet", index=False)
        shutil.copy(zones_csv, path / "zones.csv")
        sample = test.sample(min(REFERENCE_ROWS, len(test)), random_state=0)
        reference = design(sample, model_columns(trained["columns"]))
        preds = predict_frame(trained["boosters"], trained["columns"], sample)
        for target, pred in preds.items():
            reference[f"pred_{target}"] = pred
        reference.to_parquet(path / "reference.parquet", index=False)
        tag = str(model.tag)
    return tag


def gate(candidate: str, test: pd.DataFrame, tolerance: float = 0.0) -> tuple[bool, str]:
    """Should ``candidate`` become champion? Compares MAE of both targets on ``test``."""
    from training.evaluate import metrics
    from training.train import LABEL

    champion = current_champion()
    if champion is None:
        return True, "no champion yet"
    if champion == candidate:
        return True, "candidate is the champion"
    cand, champ = load_bundle(candidate), load_bundle(champion)
    pc, pk = cand.predict(test), champ.predict(test)
    worse = []
    scores = []
    for target in TARGETS:
        mc = metrics(test[LABEL[target]], pc[target], target)["mae"]
        mk = metrics(test[LABEL[target]], pk[target], target)["mae"]
        scores.append(f"{target} MAE {mc:.3f} vs champion {mk:.3f}")
        if mc > mk * (1.0 + tolerance):
            worse.append(target)
    summary = "; ".join(scores) + f" (champion {champion}, {len(test)} trips)"
    if worse:
        return False, f"worse than the champion on {', '.join(worse)}: {summary}"
    return True, f"no worse than the champion: {summary}"
