"""Fixtures of the retrain-job tests (helpers in retrainlib.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrainlib import CHAMPION_MONTHS, ZONES, World, month_file  # noqa: E402

from common.paths import FEATURE_REPO  # noqa: E402
from common.redis_local import LocalRedis  # noqa: E402
from service.launcher import stop  # noqa: E402


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """Redis, a feature repo copy and the champion trained on 2021-2022 months."""
    from retrain.retrain import retrain
    from retrain.settings import RetrainSettings
    from training.register import set_champion

    tmp = tmp_path_factory.mktemp("retrain")
    repo = tmp / "feature_repo"
    repo.mkdir()
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(FEATURE_REPO / name, repo / name)
    cfg = RetrainSettings(data=[month_file(m) for m in CHAMPION_MONTHS], zones=ZONES,
                          feature_repo=repo, window_months=len(CHAMPION_MONTHS),
                          sample_fraction=1.0)  # the bundled slices are already 15% samples
    redis = LocalRedis().start()
    w = World(redis, repo, tmp, champion="")
    try:  # a failed setup must not leave the Redis (or any served process) running
        w.champion = retrain(cfg, redis.url, tmp / "champion").tag
        set_champion(w.champion, "trained on 2021-2022 months (retrain tests)")
        yield w
    finally:
        for served in w.services:
            stop(served)
        redis.stop()


@pytest.fixture(scope="session")
def good_candidate(world) -> str:
    """A candidate trained by the job's retrain step alone on the newest months (2023)."""
    proc = world.job("retrain")
    assert proc.returncode == 0, proc.stderr[-4000:]
    import json

    return json.loads(proc.stdout)["tag"]


@pytest.fixture(scope="session")
def cluster(request):
    """The local control plane (cluster/controlplane.py), or the user's KUBECONFIG."""
    import json
    import os
    import subprocess
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helm"))
    from chartlib import REPO, tool_env
    from livelib import Kube

    if os.environ.get("KUBECONFIG"):
        yield Kube(Path(os.environ["KUBECONFIG"]), managed=False)
        return
    state_dir = REPO / ".cluster" / f"pytest-retrain-{os.getpid()}"
    proc = subprocess.run([_sys.executable, str(REPO / "cluster" / "controlplane.py"), "up",
                           "--dir", str(state_dir)], capture_output=True, text=True,
                          env=tool_env(), timeout=180, check=False)
    if proc.returncode != 0:
        pytest.fail(f"local control plane did not start:\n{proc.stdout}\n{proc.stderr}")
    state = json.loads((state_dir / "state.json").read_text())
    try:
        yield Kube(Path(state["kubeconfig"]), managed=True)
    finally:
        subprocess.run([_sys.executable, str(REPO / "cluster" / "controlplane.py"), "down",
                        "--dir", str(state_dir)], capture_output=True, timeout=60, check=False)
        if request.session.testsfailed == 0:  # its logs are kept only when a test failed
            shutil.rmtree(state_dir, ignore_errors=True)


def pytest_collection_modifyitems(session, config, items):
    # The real-drift test needs the 2021-22 champion to be the champion and its feedback to be
    # the only feedback of the last hour: run it before the rollout tests promote anything.
    first = [it for it in items if "test_real_drift" in str(it.fspath)]
    items[:] = first + [it for it in items if it not in first]
