"""Alibi Detect drift tests of one model version: features (TabularDrift) and predictions (KSDrift).

Missing values. The logged vector has NaN where a feature was unavailable, and the reference has
NaN where training had none (23% of the dropoff-zone statistics in a real reference). scipy's K-S
test gives meaningless results on NaN, so both reference and window are coded the same way before
the tests: a numeric NaN becomes ``-inf`` (K-S works on ranks, so -inf is one point mass below
every real value) and a categorical NaN becomes its own category. A change in how often a
feature is missing (a feature-store outage, say) therefore shows up as drift of that feature,
which is what the model sees too.

Rare categories. Chi-squared needs expected counts of about 5 or more; zone ids have ~260
values, most of them rare. Categories seen fewer than ``min_category_count`` times in the
reference, and categories never seen in it, are pooled into one "other" category.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# alibi-detect imports transformers, which warns at import that it found no torch/TensorFlow;
# we use neither on purpose (numpy backend only), so that line would only mislead operators.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
from alibi_detect.cd import KSDrift, TabularDrift  # noqa: E402

PRED_COLUMNS = {"duration": "pred_duration", "fare": "pred_fare"}
_MISSING, _OTHER = -1.0, -2.0  # category codes; real categories here are ids >= 0


@dataclass
class Verdict:
    """One evaluation of one model version; ``to_json`` gives the contract's verdict JSON."""

    model_version: str
    drift: bool
    feature_drift: bool
    prediction_drift: bool
    drifted_features: list[str]
    p_values: dict[str, float]
    prediction_p_values: dict[str, float]
    threshold: float
    window_size: int
    evaluated_at: float
    correction: str
    statistics: dict[str, float] = field(default_factory=dict)
    prediction_statistics: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict:
        """The verdict JSON stored in Redis (docs/monitoring.md, "Drift verdict JSON")."""
        out = asdict(self)
        for extra in ("statistics", "prediction_statistics", "duration_s"):
            out.pop(extra)
        return out


def load_reference(path: Path) -> pd.DataFrame:
    """Read a reference parquet; raises ``ValueError`` with the reason when it is unusable."""
    if not path.is_file():
        raise ValueError(f"no reference sample at {path} (a model without reference.parquet "
                         "cannot be checked for drift; set TAXI_DRIFT_REFERENCE_PATH to override)")
    frame = pd.read_parquet(path)
    missing = [c for c in PRED_COLUMNS.values() if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks prediction columns {missing}")
    if len(frame) < 10:
        raise ValueError(f"{path} has only {len(frame)} rows")
    return frame


class _Coder:
    """Codes raw feature values identically for reference and window (see module docstring)."""

    def __init__(self, reference: np.ndarray, categorical: list[bool], min_count: int):
        self.categorical = categorical
        self.kept: dict[int, np.ndarray] = {}
        for i, is_cat in enumerate(categorical):
            if is_cat:
                values, counts = np.unique(self._as_category(reference[:, i]), return_counts=True)
                self.kept[i] = values[(counts >= min_count) & (values != _MISSING)]

    @staticmethod
    def _as_category(column: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(column), _MISSING, np.round(column))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        for i, is_cat in enumerate(self.categorical):
            if is_cat:
                col = self._as_category(out[:, i])
                pooled = ~np.isin(col, self.kept[i]) & (col != _MISSING)
                out[:, i] = np.where(pooled, _OTHER, col)
            else:
                out[np.isnan(out[:, i]), i] = -np.inf
        return out


class VersionDetector:
    """Drift detectors of one model version, fitted once on its reference sample."""

    def __init__(self, version: str, reference: pd.DataFrame, columns: tuple[str, ...],
                 categorical: set[str], *, ignore: set[str], p_value: float, correction: str,
                 min_category_count: int):
        self.version = version
        self.features = [c for c in columns if c not in ignore]
        if not self.features:
            raise ValueError(f"version {version}: every feature is ignored; nothing to test")
        absent = [c for c in self.features if c not in reference.columns]
        if absent:
            raise ValueError(f"version {version}: the reference lacks logged columns {absent}")
        self._index = np.array([columns.index(c) for c in self.features])
        self.categorical = [c in categorical for c in self.features]
        self.p_value, self.correction = p_value, correction
        # The live vector is float32: round the reference the same way, or every feature with
        # repeated values (per-zone medians) sits just beside its live twin and K-S sees drift.
        ref_x = reference[self.features].to_numpy(dtype=np.float32).astype(np.float64)
        self._coder = _Coder(ref_x, self.categorical, min_category_count)
        cats = {i: None for i, is_cat in enumerate(self.categorical) if is_cat}
        self._features = TabularDrift(self._coder(ref_x), p_val=p_value, correction=correction,
                                      categories_per_feature=cats or None)
        ref_pred = reference[list(PRED_COLUMNS.values())].to_numpy(dtype=np.float64)
        self._predictions = KSDrift(_finite(ref_pred), p_val=p_value, correction=correction)

    def evaluate(self, x: np.ndarray, predictions: np.ndarray) -> Verdict:
        """Test one window: ``x`` in the logged column order, ``predictions`` (n, 2)."""
        started = time.perf_counter()
        feats = self._features.predict(self._coder(x[:, self._index]), drift_type="batch",
                                       return_p_val=True, return_distance=True)["data"]
        preds = self._predictions.predict(_finite(predictions), drift_type="batch",
                                          return_p_val=True, return_distance=True)["data"]
        p_vals, dists = feats["p_val"], feats["distance"]
        feature_drift = bool(feats["is_drift"])
        # With FDR and no rejection alibi returns the whole threshold ladder: nothing drifted.
        cutoff = float(feats["threshold"]) if np.ndim(feats["threshold"]) == 0 else -1.0
        drifted = [f for f, p in zip(self.features, p_vals) if feature_drift and p < cutoff]
        prediction_drift = bool(preds["is_drift"])
        return Verdict(
            model_version=self.version,
            drift=feature_drift or prediction_drift,
            feature_drift=feature_drift,
            prediction_drift=prediction_drift,
            drifted_features=drifted,
            p_values={f: _num(p) for f, p in zip(self.features, p_vals)},
            prediction_p_values={t: _num(p) for t, p in zip(PRED_COLUMNS, preds["p_val"])},
            threshold=self.p_value,
            window_size=int(x.shape[0]),
            evaluated_at=time.time(),
            correction=self.correction,
            statistics={f: _num(d, 0.0) for f, d in zip(self.features, dists)},
            prediction_statistics={t: _num(d, 0.0)
                                   for t, d in zip(PRED_COLUMNS, preds["distance"])},
            duration_s=time.perf_counter() - started,
        )


def _finite(pred: np.ndarray) -> np.ndarray:
    # A prediction is never missing by contract; guard anyway so one bad entry cannot poison K-S.
    out = np.array(pred, dtype=np.float64)
    out[~np.isfinite(out)] = -np.inf
    return out


def _num(value: float, nan: float = 1.0) -> float:
    # JSON has no NaN; a test that cannot be computed (e.g. a constant feature) means "no evidence".
    value = float(value)
    return nan if math.isnan(value) else value
