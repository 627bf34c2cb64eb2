"""Live: canary through operations.md (replica-ratio split), and the exact splits of
ingress-nginx annotations and Gateway API weights changed by `helm upgrade`.

No ingress controller or Gateway runs here: the tests check what Helm writes to the API
server (annotations, route weights, replica counts, endpoints), not packets.
"""

from __future__ import annotations

import pytest
from chartlib import CHART
from livelib import run_step

pytestmark = pytest.mark.k8s
OLD, NEW = "taxi_trip:20230201-ab12cd", "taxi_trip:20230301-cd34ef"


def track_pods(kube, ns, track):
    return kube.pod_ips(ns, f"app.kubernetes.io/instance=taxi-serve,taxi-serve.io/track={track}")


def assert_split(kube, ns, stable, canary):
    """Replica counts, and Services: the entry one reaches both tracks, each track its own."""
    def split():
        s, c = track_pods(kube, ns, "stable"), track_pods(kube, ns, "canary")
        return (len(s), len(c)) == (stable, canary) and \
            kube.endpoint_ips(ns, "taxi-serve") == s | c and \
            kube.endpoint_ips(ns, "taxi-serve-stable") == s and \
            kube.endpoint_ips(ns, "taxi-serve-canary") == c
    kube.wait_for(f"{stable} stable + {canary} canary pods behind the Services", split)


def test_canary_replica_ratio_weight_promote_rollback(cluster, namespace):
    out = run_step(cluster, "canary-install", namespace, label="canary: helm install --wait")
    assert "APPROXIMATED by" in out and "1 canary / 3 stable pods" in out, out
    assert_split(cluster, namespace, 3, 1)
    assert cluster.container_env(namespace, "taxi-serve-canary", "TAXI_MODEL_TAG") == NEW

    run_step(cluster, "canary-weight", namespace, label="canary: helm upgrade (weight 50) --wait")
    assert_split(cluster, namespace, 2, 2)

    run_step(cluster, "canary-promote", namespace, label="canary: helm upgrade (promote) --wait")
    assert_split(cluster, namespace, 4, 0)
    assert cluster.container_env(namespace, "taxi-serve-stable", "TAXI_MODEL_TAG") == NEW

    out = run_step(cluster, "canary-rollback", namespace, label="canary: helm rollback --wait")
    assert_split(cluster, namespace, 3, 1)
    assert cluster.container_env(namespace, "taxi-serve-stable", "TAXI_MODEL_TAG") == OLD


def canary_pod_templates(kube, ns):
    return {d["metadata"]["name"]: d["spec"]["template"]
            for d in kube.get(ns, "deployments", "-l", "app.kubernetes.io/component=server")
            ["items"]}


def helm_canary(kube, ns, verb, *sets):
    args = [a for s in sets for a in ("--set", s)]
    return kube.helm(verb, "taxi-serve", str(CHART), "-n", ns, *(
        ["--reuse-values"] if verb == "upgrade" else []), *args, "--wait", "--timeout", "2m")


def test_canary_weight_through_ingress_nginx(cluster, namespace):
    out = helm_canary(cluster, namespace, "install", "rollout.strategy=canary",
                      "ingress.enabled=true", "rollout.canary.weight=10").stdout
    assert "The split is done by ingress-nginx" in out
    def weight():
        return cluster.get(namespace, "ingress", "taxi-serve-canary")[
            "metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
    assert weight() == "10"
    templates = canary_pod_templates(cluster, namespace)
    cluster.timed("canary+ingress: helm upgrade (weight 40) --wait", helm_canary, cluster,
                  namespace, "upgrade", "rollout.canary.weight=40")
    assert weight() == "40"
    assert canary_pod_templates(cluster, namespace) == templates, "no pod restarts"
    cluster.timed("canary+ingress: helm rollback --wait", cluster.helm, "rollback",
                  "taxi-serve", "-n", namespace, "--wait")
    assert weight() == "10"


def test_canary_weight_through_gateway_api(cluster, namespace, crd_stubs):
    helm_canary(cluster, namespace, "install", "rollout.strategy=canary", "gateway.enabled=true",
                "rollout.canary.weight=20")
    def route():
        return cluster.get(namespace, "httproutes.gateway.networking.k8s.io",
                                    "taxi-serve")
    assert route()["apiVersion"] == "gateway.networking.k8s.io/v1"
    def weights():
        return {r["name"]: r["weight"]
                           for r in route()["spec"]["rules"][0]["backendRefs"]}
    assert weights() == {"taxi-serve-stable": 80, "taxi-serve-canary": 20}
    cluster.timed("canary+gateway: helm upgrade (weight 60) --wait", helm_canary, cluster,
                  namespace, "upgrade", "rollout.canary.weight=60")
    assert weights() == {"taxi-serve-stable": 40, "taxi-serve-canary": 60}
