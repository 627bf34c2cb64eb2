"""Live: blue-green through operations.md; Service endpoints follow the active color.

Pods are made Ready by the node simulator (no container runs); the Service endpoints are
computed by the real endpoints controller from the real selectors the chart renders.
"""

from __future__ import annotations

import pytest
from livelib import run_step

pytestmark = pytest.mark.k8s
OLD, NEW = "taxi_trip:20230201-ab12cd", "taxi_trip:20230301-cd34ef"


def color_pods(kube, ns, color):
    return kube.pod_ips(ns, f"app.kubernetes.io/instance=taxi-serve,taxi-serve.io/track={color}")


def assert_routing(kube, ns, active, preview):
    """Active/preview Services reach exactly the Ready pods of their colors (2 each)."""
    def routed():
        a, p = color_pods(kube, ns, active), color_pods(kube, ns, preview)
        return (len(a) == 2 and len(p) == 2
                and kube.endpoint_ips(ns, "taxi-serve-active") == a
                and kube.endpoint_ips(ns, "taxi-serve-preview") == p)
    kube.wait_for(f"active={active}, preview={preview}", routed, timeout=30)


def test_blue_green_promote_rollback_flip_and_scale(cluster, namespace):
    out = run_step(cluster, "bluegreen-install", namespace, label="blueGreen: helm install --wait")
    assert "Active color: blue" in out
    assert_routing(cluster, namespace, "blue", "green")
    blue_pods = color_pods(cluster, namespace, "blue")

    run_step(cluster, "bluegreen-preview", namespace,
             label="blueGreen: helm upgrade (new tag on idle green) --wait")
    assert cluster.container_env(namespace, "taxi-serve-green", "TAXI_MODEL_TAG") == NEW
    assert cluster.container_env(namespace, "taxi-serve-blue", "TAXI_MODEL_TAG") == OLD
    assert_routing(cluster, namespace, "blue", "green")
    assert color_pods(cluster, namespace, "blue") == blue_pods, "clients' pods untouched"
    green_pods = color_pods(cluster, namespace, "green")

    out = run_step(cluster, "bluegreen-promote", namespace,
                   label="blueGreen: helm upgrade (promote green) --wait")
    assert_routing(cluster, namespace, "green", "blue")
    # Promotion moved traffic to the very pods that were previewed: nothing restarted.
    assert color_pods(cluster, namespace, "green") == green_pods
    assert color_pods(cluster, namespace, "blue") == blue_pods

    run_step(cluster, "bluegreen-rollback", namespace, label="blueGreen: helm rollback --wait")
    assert_routing(cluster, namespace, "blue", "green")
    assert color_pods(cluster, namespace, "blue") == blue_pods

    run_step(cluster, "bluegreen-promote", namespace)
    assert_routing(cluster, namespace, "green", "blue")
    run_step(cluster, "bluegreen-flip-back", namespace,
             label="blueGreen: helm upgrade (flip back to blue) --wait")
    assert_routing(cluster, namespace, "blue", "green")

    out = run_step(cluster, "bluegreen-scale-idle", namespace,
                   label="blueGreen: scale idle down and up (2x helm upgrade --wait)")
    # The step lists Deployments while the idle color is scaled down.
    green_line = next(line for line in out.splitlines() if line.startswith("taxi-serve-green"))
    assert green_line.split()[1] == "0/0", out
    assert_routing(cluster, namespace, "blue", "green")
    history = cluster.helm("history", "taxi-serve", "-n", namespace).stdout
    assert "Rollback to" in history
