"""Fixtures for the chart tests.

Offline tests (marker `helm`) need only the helm binary. Live tests (marker `k8s`) need an API
server: the `cluster` fixture starts the local control plane (cluster/controlplane.py: etcd,
kube-apiserver, kube-controller-manager, node simulator) once per session and stops it at the
end, unless the user points KUBECONFIG at a cluster of their own. A missing tool fails the
tests; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chartlib import REPO, tool, tool_env
from livelib import Kube


@pytest.fixture(scope="session")
def helm_bin() -> str:
    try:
        return tool("helm")
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def cluster(helm_bin, request) -> Kube:
    """A live API server: the user's KUBECONFIG, or a local control plane for this session."""
    try:
        tool("kubectl")
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    user_config = os.environ.get("KUBECONFIG")
    if user_config:
        yield Kube(Path(user_config), managed=False)
        return
    # Logs of a failed session stay for diagnosis until the next run; drop them now.
    for old in (REPO / ".cluster").glob("pytest-*"):
        if not (old / "state.json").exists():
            shutil.rmtree(old, ignore_errors=True)
    state_dir = REPO / ".cluster" / f"pytest-{os.getpid()}"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "cluster" / "controlplane.py"), "up",
                           "--dir", str(state_dir)], capture_output=True, text=True,
                          env=tool_env(), timeout=180, check=False)
    if proc.returncode != 0:
        pytest.fail(f"local control plane did not start:\n{proc.stdout}\n{proc.stderr}")
    state = json.loads((state_dir / "state.json").read_text())
    kube = Kube(Path(state["kubeconfig"]), managed=True)
    kube.timings["control plane start"] = time.monotonic() - started
    try:
        yield kube
    finally:
        subprocess.run([sys.executable, str(REPO / "cluster" / "controlplane.py"), "down",
                        "--dir", str(state_dir)], capture_output=True, timeout=60, check=False)
        if request.session.testsfailed == 0:  # its logs are kept only when a test failed
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def crd_stubs(cluster: Kube) -> None:
    """Register stub CRDs for HTTPRoute, ServiceMonitor and PrometheusRule (see the file)."""
    stubs = Path(__file__).resolve().parent / "fixtures" / "crd-stubs.yaml"
    cluster.kubectl("apply", "-f", str(stubs))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(stubs))
    # Helm reads the API list once per command, so new kinds are seen from now on.
    yield
    if cluster.managed:
        return  # the plane is thrown away
    cluster.kubectl("delete", "-f", str(stubs), "--wait=false", check=False)


@pytest.fixture
def namespace(cluster: Kube, request) -> str:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:30].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# The CronJob test needs a scheduler minute to pass: install its release first and check it
# last, so that the wait overlaps the other chart tests instead of adding to them.
FIRST, LAST = "test_cronjob_release_installs", "test_cronjobs_create_jobs"


def pytest_collection_modifyitems(session, config, items):
    here = Path(__file__).resolve().parent
    ours = [i for i, item in enumerate(items) if Path(str(item.fspath)).parent == here]
    if not ours:
        return
    first = [it for it in items if it.name == FIRST]
    last = [it for it in items if it.name == LAST]
    rest = [it for it in items if it.name not in (FIRST, LAST)]
    start = ours[0]
    end = ours[-1] - len(first) - len(last) + 1
    reordered = rest[:start] + first + rest[start:end] + last + rest[end:]
    items[:] = reordered


def pytest_terminal_summary(terminalreporter):
    from livelib import TIMINGS
    if not TIMINGS:
        return
    terminalreporter.section("live chart timings (seconds)")
    for label, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{seconds:7.2f}  {label}")
