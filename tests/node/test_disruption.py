"""Disruption under load: a serving pod deleted while the host sends at least 100 predictions
a second through the Service. Two replicas and SIGTERM draining should make it invisible to
clients: every failed request is counted and reported, and the target is zero."""

from __future__ import annotations

import time

import pytest

from tests.node.conftest import SERVICE, service_ip
from tests.node.loadgen import Load

pytestmark = [pytest.mark.k8s_node, pytest.mark.slow]
SERVING = "app.kubernetes.io/component=server"


def serving_pods(kube, namespace: str) -> list[dict]:
    return [p for p in kube.get(namespace, "pods", "-l", SERVING)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def test_deleting_a_serving_pod_under_load_fails_no_request(node_cluster, release, trips):
    ip = service_ip(node_cluster, release, SERVICE, 3000)
    victim = serving_pods(node_cluster, release)[0]["metadata"]["name"]
    with Load(f"http://{ip}:3000", trips, rate=120, max_seconds=400) as load:
        time.sleep(5)
        started = time.monotonic()
        # Graceful delete: the endpoint goes, SIGTERM comes, in-flight requests finish.
        node_cluster.kubectl("-n", release, "delete", "pod", victim, "--wait=true",
                             timeout=120)
        node_cluster.wait_for("two Ready serving pods again",
                              lambda: node_cluster.ready_replicas(release, SERVICE) == 2, 180)
        node_cluster.timings["pod delete -> replacement Ready, under load"] = \
            time.monotonic() - started
        time.sleep(5)
    result = load.result
    node_cluster.timings["pod delete: requests sent"] = result.sent
    node_cluster.timings["pod delete: failed requests"] = len(result.failures)
    assert not result.ran_out, "the load stopped before the replacement was Ready"
    assert result.rate >= 100, f"load reached only {result.rate:.0f} req/s"
    assert result.failures == [], (f"{len(result.failures)} of {result.sent} failed: "
                                   f"{sorted(set(result.failures))[:5]}")
