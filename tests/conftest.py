"""Fixtures shared by every test subject: a real Redis, the bundled real data, a model store."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from common.paths import FEATURE_REPO, ROOT, SAMPLE_DIR, ZONES_CSV
from common.redis_local import LocalRedis, redis_url_or_local

JAN = SAMPLE_DIR / "green_tripdata_2023-01.parquet"
FEB = SAMPLE_DIR / "green_tripdata_2023-02.parquet"
SHARED_DATA = ROOT.parent / "shared" / "data"
# The image tests need root, a private dockerd and built images: `make test-images` builds
# them and sets TAXI_IMAGE_TESTS=1; the default run leaves tests/images out.
collect_ignore = [] if os.environ.get("TAXI_IMAGE_TESTS") == "1" else ["images"]


@pytest.fixture(scope="session")
def redis_url():
    """REDIS_URL when the user set one, else a private server started for this session."""
    with redis_url_or_local() as url:
        yield url


@pytest.fixture()
def own_redis():
    """A Redis only this test uses, which it may stop and start (outage tests)."""
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    return [JAN, FEB]


@pytest.fixture(scope="session")
def zones_csv() -> Path:
    return ZONES_CSV


def pytest_configure(config):
    # Before anything imports bentoml: tests use a private model store, never ~/bentoml.
    home = Path(tempfile.mkdtemp(prefix="taxi-bentoml-"))
    os.environ["BENTOML_HOME"] = str(home)
    config._taxi_bentoml_home = home


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_taxi_bentoml_home", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def feature_repo(tmp_path_factory) -> Path:
    """A copy of feature_repo/ whose generated data stays out of the checkout."""
    repo = tmp_path_factory.mktemp("feature_repo")
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(FEATURE_REPO / name, repo / name)
    return repo


@pytest.fixture(scope="session")
def prepared(feature_repo, redis_url, tmp_path_factory, sample_files):
    """The bundled sample ingested, validated, featurized, materialized and joined."""
    from training.pipeline import prepare

    return prepare(sample_files, ZONES_CSV, feature_repo, redis_url,
                   tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def trained(prepared):
    """Both models trained on 2023-01 and evaluated on 2023-02 (the real default config)."""
    from training.pipeline import train_and_evaluate
    from training.train import TrainConfig

    return train_and_evaluate(prepared, "2023-02", TrainConfig())


def pytest_terminal_summary(terminalreporter):
    """Print what the real-data scenario tests measured (tests/report.py)."""
    import json

    from tests.report import MEASURED

    if MEASURED:
        terminalreporter.section("measured on real data")
        for key, value in MEASURED.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value, default=str)}")
