"""Live: `kubectl apply -k k8s/` plus `helm install` into it, as operations.md describes.

The dev stack's images never run here (node simulator); the API server accepts and the
controllers roll out every object, and the chart finds the stack's Redis by its default URL.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess

import pytest
from chartlib import REPO
from livelib import run_step, step_script

pytestmark = pytest.mark.k8s
NS = "taxi"  # the namespace k8s/ creates


@pytest.fixture
def devstack(cluster):
    yield NS
    cluster.helm("uninstall", "taxi-serve", "-n", NS, check=False)
    cluster.kubectl("delete", "-k", str(REPO / "k8s"), "--wait=false", check=False)


def test_devstack_then_helm_install_and_helm_test(cluster, devstack):
    out = run_step(cluster, "devstack", NS, label="dev stack: kubectl apply -k k8s/ + rollouts")
    for app in ("redis", "prometheus", "grafana"):
        assert f'deployment "{app}" successfully rolled out' in out
        assert cluster.endpoint_ips(NS, app), f"Service {app} has no endpoints"
    config_maps = {c["metadata"]["name"].rsplit("-", 1)[0]
                   for c in cluster.get(NS, "configmaps")["items"]}
    assert {"prometheus-config", "grafana-datasources", "grafana-dashboards",
            "grafana-dashboard-provider"} <= config_maps

    run_step(cluster, "install", NS, label="dev: helm install into the dev stack --wait")
    secret = cluster.get(NS, "secret", "taxi-serve-redis-url")["data"]["redis-url"]
    assert base64.b64decode(secret).decode() == "redis://redis.taxi.svc.cluster.local:6379/0"
    assert cluster.endpoint_ips(NS, "taxi-serve")

    # `helm test` creates its pod; it cannot complete here because no container runs, so the
    # command is stopped once the API server has accepted the pod.
    env = {**cluster.env, "NS": NS, "RELEASE": "taxi-serve"}
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", step_script("helm-test")],
                            env=env, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cluster.wait_for("helm test pod", lambda: cluster.get(
            NS, "pod", "taxi-serve-test-predict"), timeout=60)
        pod = cluster.get(NS, "pod", "taxi-serve-test-predict")
        assert pod["metadata"]["labels"]["taxi-serve.io/client"] == "true"
        assert pod["spec"]["containers"][0]["env"][0]["value"] == "http://taxi-serve:3000"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
