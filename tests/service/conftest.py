"""A registered champion model, features in a Redis this module owns, and a served service."""

from __future__ import annotations

import pytest

from common.redis_local import LocalRedis
from service.launcher import serve, stop
from training import store
from training.compile import compile_model
from training.register import save_model, set_champion
from training.train import TrainConfig


@pytest.fixture(scope="session")
def model_tag(trained, prepared, zones_csv) -> str:
    """The champion, with its trees compiled: served services run the compiled trees, the
    in-process predictor and offline predictions LightGBM."""
    tag = save_model(trained, prepared, TrainConfig().as_dict(), zones_csv)
    set_champion(tag, "service tests")
    compile_model(tag)
    return tag


def materialize(feature_repo, url: str) -> None:
    fs = store.open_store(feature_repo, url)
    store.apply(fs)
    store.materialize(fs)


@pytest.fixture(scope="session")
def feature_redis(feature_repo, prepared):
    """A Redis holding the materialized features; tests may stop and restart it."""
    server = LocalRedis().start()
    try:  # stopped also when materializing fails
        materialize(feature_repo, server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def served(model_tag, feature_redis, tmp_path_factory):
    env = {"REDIS_URL": feature_redis.url, "TAXI_MODEL_TAG": model_tag, "TAXI_TRACK": "stable"}
    proc = serve("service.service:TaxiService", env,
                 tmp_path_factory.mktemp("served") / "service.log")
    yield proc
    stop(proc)
