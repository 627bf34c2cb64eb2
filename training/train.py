"""Fit the LightGBM duration and fare models, and the baselines reported beside them.

Trips are trained twice, once with the route distance and once without it, so one model answers
both kinds of request (a ride app usually knows the distance, but not always). Recent trips
weigh more (exponential decay with a half-life), because fares and traffic drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from common.progress import rounds
from training.model import (
    CATEGORICAL,
    PER_MILE_TARGETS,
    derive,
    frame_columns,
    inputs_of,
    matrix,
)

LABEL = {"duration": "duration_s", "fare": "fare_amount"}
PLAIN_COLUMNS = ["pickup_zone_id", "dropoff_zone_id", "hour", "weekday", "trip_distance"]
PLAIN_NO_DISTANCE = PLAIN_COLUMNS[:-1]  # the same reference for requests without a distance


@dataclass
class TrainConfig:
    """Hyper-parameters; recorded with every model."""

    # Fewer, larger trees: 255 leaves at 0.1 still meet the duration bar (README, 2023-02:
    # 2.445 min, $1.569, 639 trees; 127 leaves at 0.05: 2.436 min, $1.522, 2,132 trees), and a
    # single-trip prediction costs about one cache-cold walk per tree in the server.
    num_leaves: int = 255
    learning_rate: float = 0.1
    n_estimators: int = 1500
    min_child_samples: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.7  # row subsampling: faster and a little more robust
    objective: str = "regression_l1"
    huber_alpha: dict = field(default_factory=lambda: {"duration": 300.0, "fare": 3.0})
    early_stopping_rounds: int = 50
    half_life_days: float = 120.0
    holdout_fraction: float = 0.1
    seed: int = 7
    num_threads: int = 2

    def lgb_params(self, target: str) -> dict:
        return {"objective": self.objective, "alpha": self.huber_alpha[target],
                "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                "min_child_samples": self.min_child_samples, "metric": "l1",
                "feature_fraction": self.feature_fraction, "feature_fraction_seed": self.seed,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": 1,
                "bagging_seed": self.seed, "seed": self.seed, "num_threads": self.num_threads,
                "verbosity": -1, "max_cat_to_onehot": 8, "cat_smooth": 20.0}

    def as_dict(self) -> dict:
        return asdict(self)


def with_and_without_distance(frame: pd.DataFrame) -> pd.DataFrame:
    """Stack the trips with their distance and again with it unknown."""
    blind = frame.copy()
    blind["trip_distance"] = np.nan
    return pd.concat([frame, blind], ignore_index=True)


def design(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The booster's input matrix for a frame (same code path as serving)."""
    return pd.DataFrame(matrix(derive(frame_columns(frame, inputs_of(columns))), columns,
                               len(frame)), columns=columns)


def stacked_design(cols: dict[str, np.ndarray], columns: list[str]) -> pd.DataFrame:
    """``design(with_and_without_distance(frame), columns)`` from the frame's input columns,
    written straight into one matrix: no copy of the frame, one float64 matrix in memory."""
    n = len(cols["trip_distance"])
    out = np.empty((2 * n, len(columns)))
    matrix(derive(dict(cols)), columns, n, out=out[:n])
    matrix(derive(dict(cols, trip_distance=np.full(n, np.nan))), columns, n, out=out[n:])
    return pd.DataFrame(out, columns=columns, copy=False)


def recency_weights(pickup_utc: pd.Series, half_life_days: float) -> np.ndarray:
    """Weight 1 for the newest trip, halving every ``half_life_days`` into the past."""
    age = (pickup_utc.max() - pickup_utc).dt.total_seconds() / 86400.0
    return np.power(0.5, age.to_numpy() / half_life_days)


@dataclass
class TrainingSets:
    """Design matrix, label and weight of the fit rows and of the early-stopping holdout."""

    fit: tuple[pd.DataFrame, np.ndarray, np.ndarray]
    hold: tuple[pd.DataFrame, np.ndarray, np.ndarray]
    cut: pd.Timestamp  # holdout trips start here


def training_sets(frame: pd.DataFrame, columns: list[str], target: str,
                  cfg: TrainConfig) -> TrainingSets:
    """The newest ``holdout_fraction`` of trips hold out for early stopping; both parts are
    stacked with and without distance; fit rows weigh by recency."""
    # Row for row what sorting the frame, splitting it and stacking each part with and
    # without distance gives, built from index arrays and the input columns only (the frame
    # is never copied: at 1M trips the copies were most of the peak memory).
    pickup = frame["pickup_utc"]
    order = np.argsort(pickup.array.asi8, kind="stable")
    cut = pickup.quantile(1.0 - cfg.holdout_fraction)
    n_fit = int((pickup < cut).sum())
    fit_idx, hold_idx = order[:n_fit], order[n_fit:]
    cols = frame_columns(frame, inputs_of(columns))
    label = frame[LABEL[target]].to_numpy(dtype="float64")
    x_fit = stacked_design({c: a[fit_idx] for c, a in cols.items()}, columns)
    x_hold = stacked_design({c: a[hold_idx] for c, a in cols.items()}, columns)
    del cols
    y_fit, y_hold = np.tile(label[fit_idx], 2), np.tile(label[hold_idx], 2)
    w_fit = np.tile(recency_weights(pickup.iloc[fit_idx], cfg.half_life_days), 2)
    w_hold = np.ones(len(x_hold))
    if target in PER_MILE_TARGETS:
        # |d * (pace_hat - pace)| is the original absolute error: weight by distance
        d_fit, d_hold = x_fit["eff_distance"].to_numpy(), x_hold["eff_distance"].to_numpy()
        y_fit, y_hold = y_fit / d_fit, y_hold / d_hold
        w_fit, w_hold = w_fit * d_fit, d_hold
    return TrainingSets((x_fit, y_fit, w_fit), (x_hold, y_hold, w_hold), cut)


def fit_lightgbm(frame: pd.DataFrame, columns: list[str], target: str,
                 cfg: TrainConfig) -> tuple[lgb.Booster, dict]:
    """Fit one booster with early stopping on the newest slice of the training window."""
    sets = training_sets(frame, columns, target, cfg)
    (x_fit, y_fit, w_fit), (x_hold, y_hold, w_hold) = sets.fit, sets.hold
    cats = [c for c in CATEGORICAL if c in columns]
    # the matrices' own arrays (a DataFrame would be converted, i.e. copied, by LightGBM)
    dtrain = lgb.Dataset(x_fit.to_numpy(), label=y_fit, weight=w_fit, feature_name=columns,
                         categorical_feature=cats, free_raw_data=False)
    dvalid = lgb.Dataset(x_hold.to_numpy(), label=y_hold, weight=w_hold, feature_name=columns,
                         categorical_feature=cats, reference=dtrain)
    with rounds(f"fit {target} ({len(x_fit)} rows, up to {cfg.n_estimators} rounds)",
                cfg.n_estimators) as progress:
        booster = lgb.train(cfg.lgb_params(target), dtrain, num_boost_round=cfg.n_estimators,
                            valid_sets=[dvalid],
                            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds,
                                                          verbose=False), progress])
    info = {"best_iteration": int(booster.best_iteration), "rows_fit": int(len(x_fit)),
            "rows_holdout": int(len(x_hold)), "holdout_from": str(sets.cut)}
    return booster, info


def fit_plain(frame: pd.DataFrame, target: str, columns: list[str],
              cfg: TrainConfig) -> lgb.Booster:
    """The reference a user writes first: zones, hour, weekday (and distance, when in
    ``columns``); no features, no weights."""
    params = {"objective": "regression", "num_threads": cfg.num_threads, "verbosity": -1,
              "seed": cfg.seed}
    data = lgb.Dataset(design(frame, columns), label=frame[LABEL[target]],
                       categorical_feature=[c for c in columns if c in CATEGORICAL])
    return lgb.train(params, data, num_boost_round=300)


def fit_sklearn_baseline(frame: pd.DataFrame, target: str):
    """A scikit-learn linear baseline: distance (or centroid distance) plus calendar and
    borough one-hots, in one Pipeline."""
    numeric = ["trip_distance", "centroid_miles"]
    onehot = ["hour", "weekday", "pickup_borough", "dropoff_borough"]
    pipe = make_pipeline(
        ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                  OneHotEncoder(handle_unknown="ignore")), onehot),
        ]),
        Ridge(alpha=1.0),
    )
    pipe.fit(frame[numeric + onehot], frame[LABEL[target]])
    return pipe
