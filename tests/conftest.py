"""Fixtures shared by every test subject: a real Redis, the bundled real data, a model store."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from common.paths import FEATURE_REPO, ROOT, SAMPLE_DIR, ZONES_CSV
from common.redis_local import LocalRedis, redis_url_or_local

JAN = SAMPLE_DIR / "green_tripdata_2023-01.parquet"
FEB = SAMPLE_DIR / "green_tripdata_2023-02.parquet"
# The image tests need root, a private dockerd and built images: `make test-images` builds
# them and sets TAXI_IMAGE_TESTS=1; the default run leaves tests/images out.
collect_ignore = [] if os.environ.get("TAXI_IMAGE_TESTS") == "1" else ["images"]
# The real-node tests need the same plus a kubelet: `make test-node` sets TAXI_NODE_TESTS=1.
collect_ignore += [] if os.environ.get("TAXI_NODE_TESTS") == "1" else ["node"]

# Session fixtures that take minutes. Each is announced when its setup starts and timed when
# it ends, so that a long setup is never a silent stretch of `make test`.
SLOW_SETUP = {
    "prepared": "ingest, validate, features and Feast on the bundled sample",
    "trained": "train and evaluate both models",
    "model_tag": "register the test champion and compile its trees",
    "feature_redis": "materialize the features into a private Redis",
    "served": "start a `bentoml serve` process",
    "world": "train the retrain tests' 2021-22 champion",
    "good_candidate": "run the retrain job on the 2023 months",
    "drift_run": "replay trips, run the retrain job, replay again",
    "cluster": "start the local control plane (etcd, kube-apiserver, controllers)",
    "live": "start services, the drift monitor and Prometheus, under load",
    "settled": "wait until every dashboard query has data",
    "cron_release": "helm install with minute schedules",
}


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


def announce(config, line: str) -> None:
    """Write a line to the terminal now, even from inside a captured fixture setup."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line)
        reporter.flush()  # visible now also when stdout is a file (CI logs)


class SlowSetupAnnouncer:
    """A plugin, not a conftest hook: pytest consults conftest files for a session-scoped
    fixture only from the root directory up, never tests/conftest.py."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        what = SLOW_SETUP.get(fixturedef.argname) if fixturedef.scope == "session" else None
        if what is None:
            yield
            return
        announce(request.config, f"[setup] {fixturedef.argname}: {what} ...")
        start = time.monotonic()
        outcome = yield
        state = "failed" if outcome.excinfo else "ready"
        announce(request.config,
                 f"[setup] {fixturedef.argname}: {state} in {time.monotonic() - start:.0f} s")


def pytest_configure(config):
    config.pluginmanager.register(SlowSetupAnnouncer(), "taxi-slow-setup")
    # The tools `make` installs (helm, kubectl, etcd, prometheus, promtool) come first, also
    # when pytest is run directly rather than through `make test`.
    os.environ["PATH"] = f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
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
