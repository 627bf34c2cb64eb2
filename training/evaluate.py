"""Accuracy on a month the model never saw: MAE, RMSE and median absolute percentage error,
overall and per pickup borough; duration in minutes, fare in dollars."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.table import Table

UNIT = {"duration": ("min", 1 / 60.0), "fare": ("USD", 1.0)}


def metrics(actual: np.ndarray, predicted: np.ndarray, target: str) -> dict:
    """MAE and RMSE in the target's reporting unit, MdAPE in percent, and the row count."""
    scale = UNIT[target][1]
    actual = np.asarray(actual, dtype="float64") * scale
    predicted = np.asarray(predicted, dtype="float64") * scale
    err = predicted - actual
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.abs(err) / np.abs(actual)
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "mdape_pct": float(np.nanmedian(ape[np.isfinite(ape)]) * 100), "n": int(len(err))}


def report(frame: pd.DataFrame, predictions: dict[str, np.ndarray], target: str,
           label: str, borough: pd.Series) -> dict:
    """Metrics of each named prediction set, overall and by borough."""
    out = {}
    for name, pred in predictions.items():
        entry = {"overall": metrics(frame[label], pred, target), "by_borough": {}}
        for b in sorted(borough.dropna().unique()):
            mask = (borough == b).to_numpy()
            if mask.sum() >= 30:  # too few trips make a borough's number noise
                entry["by_borough"][b] = metrics(frame[label][mask], pred[mask], target)
        out[name] = entry
    return out


def table(evaluation: dict, title: str) -> Table:
    """A rich table: one row per (target, model), overall numbers."""
    t = Table(title=title)
    for col in ("target", "model", "MAE", "RMSE", "MdAPE %", "n"):
        t.add_column(col, justify="right" if col not in ("target", "model") else "left")
    for target, models in evaluation.items():
        unit = UNIT[target][0]
        for name, entry in models.items():
            m = entry["overall"]
            t.add_row(target, name, f"{m['mae']:.3f} {unit}", f"{m['rmse']:.3f}",
                      f"{m['mdape_pct']:.1f}", str(m["n"]))
    return t


def markdown(evaluation: dict) -> str:
    """The same numbers as a Markdown table (for notes and the README)."""
    lines = ["| target | model | MAE | RMSE | MdAPE % | n |", "|---|---|---|---|---|---|"]
    for target, models in evaluation.items():
        unit = UNIT[target][0]
        for name, entry in models.items():
            m = entry["overall"]
            lines.append(f"| {target} | {name} | {m['mae']:.3f} {unit} | {m['rmse']:.3f} | "
                         f"{m['mdape_pct']:.1f} | {m['n']} |")
    return "\n".join(lines)
