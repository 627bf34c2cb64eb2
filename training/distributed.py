"""Train the boosters on a Dask cluster with LightGBM's own ``lightgbm.dask``.

The pipeline is unchanged up to the fit: Feast's point-in-time join and the design matrix are
built by the driver (in bounded memory, training.bounded), then the matrix is split into one
partition per worker and LightGBM trains data-parallel across the workers' processes.

lightgbm.dask does not support early stopping (workers could stop at different rounds), so
the cluster fits ``n_estimators`` rounds while scoring the same holdout as the local fit (the
newest trips) and the booster is cut at the round where the holdout's L1 was lowest; the
holdout's score comes from the worker whose model is returned (its share of the holdout).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.model import CATEGORICAL, PER_MILE_TARGETS
from training.train import (
    LABEL,
    TrainConfig,
    design,
    recency_weights,
    with_and_without_distance,
)


def fit_lightgbm_dask(client, frame: pd.DataFrame, columns: list[str], target: str,
                      cfg: TrainConfig) -> tuple[lgb.Booster, dict]:
    """``train.fit_lightgbm`` on the cluster behind ``client`` (same split, weights, params)."""
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMRegressor

    frame = frame.sort_values("pickup_utc", kind="stable")
    cut = frame["pickup_utc"].quantile(1.0 - cfg.holdout_fraction)
    fit, hold = frame[frame["pickup_utc"] < cut], frame[frame["pickup_utc"] >= cut]
    fit, hold = with_and_without_distance(fit), with_and_without_distance(hold)
    x_fit, x_hold = design(fit, columns), design(hold, columns)
    y_fit, y_hold = fit[LABEL[target]].to_numpy(), hold[LABEL[target]].to_numpy()
    w_fit = recency_weights(fit["pickup_utc"], cfg.half_life_days)
    w_hold = np.ones(len(hold))
    if target in PER_MILE_TARGETS:
        d_fit, d_hold = x_fit["eff_distance"].to_numpy(), x_hold["eff_distance"].to_numpy()
        y_fit, y_hold = y_fit / d_fit, y_hold / d_hold
        w_fit, w_hold = w_fit * d_fit, d_hold
    workers = max(1, len(client.scheduler_info()["workers"]))

    def parts(x: pd.DataFrame, y: np.ndarray, w: np.ndarray):
        # shuffled before splitting, so that every worker sees every month and zone
        order = np.random.default_rng(cfg.seed).permutation(len(x))
        both = x.iloc[order].assign(_y=y[order], _w=w[order]).reset_index(drop=True)
        ddf = dd.from_pandas(both, npartitions=workers).persist()
        return ddf[columns], ddf["_y"], ddf["_w"]

    (xf, yf, wf), (xh, yh, wh) = parts(x_fit, y_fit, w_fit), parts(x_hold, y_hold, w_hold)
    params = cfg.lgb_params(target) | {"num_threads": 1}
    params.pop("metric")
    model = DaskLGBMRegressor(client=client, n_estimators=cfg.n_estimators, metric="l1",
                              **params)
    model.fit(xf, yf, sample_weight=wf, eval_set=[(xh, yh)], eval_sample_weight=[wh],
              categorical_feature=[c for c in CATEGORICAL if c in columns])
    curve = model.evals_result_["valid_0"]["l1"]
    best = int(np.argmin(curve)) + 1 if curve else cfg.n_estimators
    booster = lgb.Booster(model_str=model.booster_.model_to_string(num_iteration=best))
    info = {"best_iteration": best, "rows_fit": int(len(fit)), "rows_holdout": int(len(hold)),
            "holdout_from": str(cut), "engine": "lightgbm.dask", "workers": workers}
    return booster, info


@contextmanager
def cluster_fit(address: str):
    """A ``fit`` for ``pipeline.train_and_evaluate`` that trains on the scheduler at
    ``address`` (e.g. tcp://10.0.0.5:8786)."""
    from distributed import Client

    with Client(address, timeout="60s") as client:
        yield partial(fit_lightgbm_dask, client)
