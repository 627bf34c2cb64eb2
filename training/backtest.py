"""Backtest the training window: for every month M the data allows, train on months before M
and evaluate on M, for several windows and recency half-lives, beside the plain LightGBM a
user writes first (zones, hour, weekday, with and without distance) on the same rows.

The defaults of ``TrainConfig`` (half-life) and of the pipeline's window come from this table
(docs/accuracy.md has it with its command), not from habit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from training.evaluate import UNIT
from training.model import TARGETS, feature_columns, predict_frame
from training.pipeline import Prepared
from training.train import (
    LABEL,
    PLAIN_COLUMNS,
    PLAIN_NO_DISTANCE,
    TrainConfig,
    design,
    fit_lightgbm,
    fit_plain,
)

console = Console(stderr=True)


@dataclass(frozen=True)
class Variant:
    """One training policy: how many months before M to train on (None: all), and the
    recency half-life in days (None: every trip weighs the same)."""

    months: int | None
    half_life_days: float | None

    @property
    def name(self) -> str:
        window = "all months" if self.months is None else f"last {self.months} mo"
        decay = ("no decay" if self.half_life_days is None
                 else f"half-life {self.half_life_days:g} d")
        return f"{window}, {decay}"


def month_column(trips: pd.DataFrame) -> pd.Series:
    return trips["pickup_local"].dt.to_period("M").astype(str)


def training_months(present: list[str], eval_month: str, months: int | None) -> list[str]:
    """The newest ``months`` months present before ``eval_month`` (all of them for None)."""
    before = [m for m in present if m < eval_month]
    return before if months is None else before[-months:]


def mae(frame: pd.DataFrame, pred: np.ndarray, target: str) -> float:
    scale = UNIT[target][1]
    return float(np.mean(np.abs(pred - frame[LABEL[target]].to_numpy(dtype="float64")))) * scale


def run(prep: Prepared, variants: list[Variant], eval_months: list[str] | None = None,
        cfg: TrainConfig = TrainConfig()) -> pd.DataFrame:
    """One row per (eval month, variant, target): the project's MAE with and without distance
    and the plain LightGBM's on the same test rows, trained on the same months."""
    month = month_column(prep.trips)
    present = sorted(month.unique())
    eval_months = eval_months or present[1:]
    columns = {t: feature_columns(prep.feast_columns[t]) for t in TARGETS}
    rows = []
    for eval_month in eval_months:
        test = prep.trips[month == eval_month]
        blind = test.assign(trip_distance=np.nan)
        for variant in variants:
            train_months = training_months(present, eval_month, variant.months)
            if not train_months or test.empty:
                continue
            train = prep.trips[month.isin(train_months)]
            vcfg = replace(cfg, half_life_days=variant.half_life_days or float("inf"))
            console.log(f"{eval_month} <- {', '.join(train_months)} ({variant.name}): "
                        f"{len(train):,} trips")
            boosters = {t: fit_lightgbm(train, columns[t], t, vcfg)[0] for t in TARGETS}
            ours, ours_blind = (predict_frame(boosters, columns, f) for f in (test, blind))
            for target in TARGETS:
                plain = fit_plain(train, target, PLAIN_COLUMNS, cfg)
                plain_blind = fit_plain(train, target, PLAIN_NO_DISTANCE, cfg)
                rows.append({
                    "eval_month": eval_month, "variant": variant.name,
                    "train_months": ",".join(train_months), "target": target,
                    "n_train": len(train), "n_test": len(test),
                    "ours": mae(test, ours[target], target),
                    "plain": mae(test, plain.predict(design(test, PLAIN_COLUMNS)), target),
                    "ours_no_distance": mae(test, ours_blind[target], target),
                    "plain_no_distance": mae(
                        test, plain_blind.predict(design(test, PLAIN_NO_DISTANCE)), target),
                })
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean MAE of each variant over the backtest months, per target, and how many months
    it beat the plain model on both measures."""
    wins = ((results["ours"] < results["plain"])
            & (results["ours_no_distance"] < results["plain_no_distance"]))
    grouped = results.assign(wins=wins).groupby(["target", "variant"], sort=False)
    return grouped.agg(ours=("ours", "mean"), ours_no_distance=("ours_no_distance", "mean"),
                       plain=("plain", "mean"), plain_no_distance=("plain_no_distance", "mean"),
                       months=("eval_month", "nunique"), months_won=("wins", "sum")).reset_index()


def markdown(results: pd.DataFrame) -> str:
    """One table per target: every backtest month and variant, ours beside the plain model."""
    out = []
    for target in TARGETS:
        unit = UNIT[target][0]
        part = results[results["target"] == target]
        out += [f"### {target} MAE ({unit})", "",
                "| eval month | trained on | policy | ours | plain | ours, no distance | "
                "plain, no distance |", "|---|---|---|---|---|---|---|"]
        for r in part.itertuples():
            out.append(f"| {r.eval_month} | {r.train_months} | {r.variant} | {r.ours:.3f} | "
                       f"{r.plain:.3f} | {r.ours_no_distance:.3f} | {r.plain_no_distance:.3f} |")
        out.append("")
    return "\n".join(out)


def rich_table(summ: pd.DataFrame) -> Table:
    t = Table(title="backtest: mean MAE over the evaluation months")
    for col in ("target", "policy", "ours", "plain", "ours no dist", "plain no dist", "won"):
        t.add_column(col, justify="left" if col in ("target", "policy") else "right")
    for r in summ.itertuples():
        t.add_row(r.target, r.variant, f"{r.ours:.3f}", f"{r.plain:.3f}",
                  f"{r.ours_no_distance:.3f}", f"{r.plain_no_distance:.3f}",
                  f"{r.months_won}/{r.months}")
    return t
