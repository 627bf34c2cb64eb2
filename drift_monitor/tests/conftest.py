"""Fixtures of the drift monitor tests: real Redis, real sample data, a temp BentoML store.

The tests always start a private Redis (``common.redis_local.LocalRedis``): the contract's key
names are fixed, so they must not write into a Redis someone configured in ``REDIS_URL``, and the
Redis-down test stops and restarts its server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis

from common.redis_local import LocalRedis
from drift_monitor import sample
from drift_monitor.settings import PREFIX, DriftSettings

VERSION = "20230201000000-jan00001"
REFERENCE_ROWS = 5000


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TAXI_DRIFT_* or REDIS_URL from the caller's shell leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith(PREFIX) or key in ("REDIS_URL", "BENTOML_HOME"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def january() -> pd.DataFrame:
    """Model-like features of the bundled green 2023-01 trips, shuffled once (fixed seed)."""
    return sample.trips("2023-01").sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def columns(january: pd.DataFrame) -> list[str]:
    """The logged column order."""
    return sample.feature_columns(january)


@pytest.fixture
def live(january: pd.DataFrame) -> pd.DataFrame:
    """January rows disjoint from the reference: the same population, for live windows."""
    return january.iloc[REFERENCE_ROWS:].reset_index(drop=True)


@pytest.fixture
def store(tmp_path: Path, january: pd.DataFrame) -> Path:
    """A BentoML home holding the reference of ``VERSION`` (5,000 January rows)."""
    home = tmp_path / "bentoml"
    sample.write_reference(january.iloc[:REFERENCE_ROWS], home, VERSION)
    return home


@pytest.fixture
def redis_server() -> Iterator[LocalRedis]:
    """A private, empty Redis server for one test."""
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(redis_server: LocalRedis) -> redis.Redis:
    """A client of the private server."""
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def settings(redis_server: LocalRedis, store: Path) -> DriftSettings:
    """Default settings pointed at the private Redis and the temp store."""
    return DriftSettings(redis_url=redis_server.url, bentoml_home=store)
