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
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chartlib import REPO, tool, tool_env  # noqa: E402
from livelib import Kube  # noqa: E402


@pytest.fixture(scope="session")
def helm_bin() -> str:
    try:
        return tool("helm")
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def cluster(helm_bin) -> Kube:
    """A live API server: the user's KUBECONFIG, or a local control plane for this session."""
    for name in ("kubectl",):
        try:
            tool(name)
        except FileNotFoundError as exc:
            pytest.fail(str(exc))
    user_config = os.environ.get("KUBECONFIG")
    if user_config:
        yield Kube(Path(user_config), managed=False)
        return
    # Logs of earlier sessions stay for diagnosis until the next run; drop them now.
    for old in (REPO / ".cluster").glob("pytest-*"):
        if not (old / "state.json").exists():
            shutil.rmtree(old, ignore_errors=True)
    state_dir = REPO / ".cluster" / f"pytest-{os.getpid()}"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "cluster" / "controlplane.py"), "up",
                           "--dir", str(state_dir)], capture_output=True, text=True,
                          env=tool_env(), timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"local control plane did not start:\n{proc.stdout}\n{proc.stderr}")
    state = json.loads((state_dir / "state.json").read_text())
    kube = Kube(Path(state["kubeconfig"]), managed=True)
    kube.timings["control plane start"] = time.monotonic() - started
    try:
        yield kube
    finally:
        kube.report_timings()
        subprocess.run([sys.executable, str(REPO / "cluster" / "controlplane.py"), "down",
                        "--dir", str(state_dir)], capture_output=True, timeout=60)


@pytest.fixture
def namespace(cluster: Kube, request) -> str:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    base = request.node.name.lower().replace("_", "-")[:30].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
