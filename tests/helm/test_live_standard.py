"""Live: the standard strategy through operations.md, with real helm against a real API server.

The control plane is real (kube-apiserver, controller-manager); pods are made Running/Ready by
the node simulator and no container runs. So these tests prove what Helm and the controllers
do with the chart (rollouts, ReplicaSets, endpoints, history), not that the service answers.
"""

from __future__ import annotations

import json

import pytest
from livelib import run_step

pytestmark = pytest.mark.k8s
OLD, NEW = "taxi_trip:20230201-ab12cd", "taxi_trip:20230301-cd34ef"
SERVERS = "app.kubernetes.io/instance=taxi-serve,app.kubernetes.io/component=server"


def serving_tag(kube, ns):
    return kube.container_env(ns, "taxi-serve", "TAXI_MODEL_TAG")


def helm_tag(kube, ns):
    out = kube.helm("get", "values", "taxi-serve", "-n", ns, "--all", "-o", "json").stdout
    return json.loads(out)["model"]["tag"]


def assert_serving(kube, ns, tag):
    """The Deployment serves `tag`, is fully rolled out, and the Service reaches its pods."""
    assert serving_tag(kube, ns) == tag
    assert kube.ready_replicas(ns, "taxi-serve") == 2
    kube.wait_for("endpoints = ready pods", lambda: kube.endpoint_ips(ns, "taxi-serve")
                  == kube.pod_ips(ns, SERVERS) and len(kube.pod_ips(ns, SERVERS)) == 2)


def test_standard_install_upgrade_rollback(cluster, namespace):
    out = run_step(cluster, "install", namespace, label="standard: helm install --wait")
    assert "Rollout strategy: standard" in out and "STATUS: deployed" in out
    assert_serving(cluster, namespace, OLD)

    run_step(cluster, "standard-upgrade", namespace, label="standard: helm upgrade --wait")
    assert_serving(cluster, namespace, NEW)
    rs = cluster.get(namespace, "replicasets", "-l", SERVERS)["items"]
    assert len(rs) == 2, "an upgrade creates a new ReplicaSet and keeps the old one"

    out = run_step(cluster, "standard-rollback", namespace,
                   label="standard: helm rollback --wait")
    assert "Rollback to 1" in out
    assert_serving(cluster, namespace, OLD)
    assert helm_tag(cluster, namespace) == OLD


def test_kubectl_rollout_status_undo_reconcile_restart(cluster, namespace):
    run_step(cluster, "install", namespace)
    run_step(cluster, "standard-upgrade", namespace)
    out = run_step(cluster, "rollout-status", namespace, label="kubectl rollout status+history")
    assert 'deployment "taxi-serve" successfully rolled out' in out
    assert "REVISION" in out and "2 " in out

    out = run_step(cluster, "rollout-undo", namespace, label="kubectl rollout undo + status")
    assert "rolled back" in out
    # The cluster serves the previous tag while Helm still records the new one ...
    assert_serving(cluster, namespace, OLD)
    assert helm_tag(cluster, namespace) == NEW
    # ... until the release is re-applied.
    run_step(cluster, "rollout-reconcile", namespace, label="helm upgrade (reconcile after undo)")
    assert_serving(cluster, namespace, NEW)

    before = cluster.pod_ips(namespace, SERVERS)
    run_step(cluster, "rollout-restart", namespace, label="kubectl rollout restart + status")
    assert_serving(cluster, namespace, NEW)
    assert cluster.pod_ips(namespace, SERVERS).isdisjoint(before), "restart replaces every pod"

    run_step(cluster, "uninstall", namespace, label="helm uninstall --wait")
    assert cluster.helm("status", "taxi-serve", "-n", namespace, check=False).returncode != 0
    cluster.wait_for("serving pods gone", lambda: not cluster.pod_ips(namespace, SERVERS))
