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

from training.model import CATEGORICAL
from training.train import TrainConfig, training_sets


def fit_lightgbm_dask(client, frame: pd.DataFrame, columns: list[str], target: str,
                      cfg: TrainConfig) -> tuple[lgb.Booster, dict]:
    """``train.fit_lightgbm`` on the cluster behind ``client`` (same split, weights, params)."""
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMRegressor

    sets = training_sets(frame, columns, target, cfg)
    (x_fit, y_fit, w_fit), (x_hold, y_hold, w_hold) = sets.fit, sets.hold
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
    info = {"best_iteration": best, "rows_fit": int(len(x_fit)),
            "rows_holdout": int(len(x_hold)), "holdout_from": str(sets.cut),
            "engine": "lightgbm.dask", "workers": workers}
    return booster, info


@contextmanager
def cluster_fit(address: str):
    """A ``fit`` for ``pipeline.train_and_evaluate`` that trains on the scheduler at
    ``address`` (e.g. tcp://10.0.0.5:8786)."""
    from distributed import Client

    with Client(address, timeout="60s") as client:
        yield partial(fit_lightgbm_dask, client)
