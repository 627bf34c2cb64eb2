"""Disruption under load: a serving pod deleted, then the node drained with the PDB in place,
while the host sends at least 100 predictions a second through the Service. Two replicas,
the preStop drain and SIGTERM draining should make it invisible to clients: every failed
request is counted and reported, and the target is zero."""

from __future__ import annotations

import time

import pytest

from tests.node.conftest import SERVICE, service_ip
from tests.node.loadgen import Load, check_load

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
    check_load(node_cluster, "pod delete", load)


def test_draining_the_node_respects_the_pdb_and_fails_no_request(node_cluster, release, trips):
    """`kubectl drain` of the only node, serving pods selected, under load: the PDB
    (maxUnavailable 1) lets one pod go; its replacement cannot schedule on the cordoned node,
    so the second eviction is refused and the drain times out, with the last pod serving
    every request. Uncordoned, the node takes the replacement back."""
    kube = node_cluster
    node = kube.get("default", "nodes")["items"][0]["metadata"]["name"]
    ip = service_ip(kube, release, SERVICE, 3000)
    before = {p["metadata"]["name"] for p in serving_pods(kube, release)}
    assert len(before) == 2
    try:
        with Load(f"http://{ip}:3000", trips, rate=120, max_seconds=400) as load:
            time.sleep(5)
            started = time.monotonic()
            drain = kube.kubectl("drain", node, "--pod-selector", SERVING, "--ignore-daemonsets",
                                 "--delete-emptydir-data", "--timeout=45s", check=False,
                                 timeout=120)
            kube.timings["node drain (serving pods, PDB) until refused"] = \
                time.monotonic() - started
            left = [p for p in serving_pods(kube, release)
                    if p["metadata"]["name"] in before]
            pending = [p for p in serving_pods(kube, release)
                       if p["status"].get("phase") == "Pending"]
            kube.kubectl("uncordon", node)
            kube.wait_for("two Ready serving pods again",
                          lambda: kube.ready_replicas(release, SERVICE) == 2, 300)
            kube.timings["node drain: uncordon -> two Ready pods"] = time.monotonic() - started
            time.sleep(5)
    finally:
        kube.kubectl("uncordon", node, check=False)
    assert drain.returncode != 0 and "disruption budget" in drain.stdout + drain.stderr, \
        drain.stdout[-2000:] + drain.stderr[-2000:]
    assert len(left) == 1, "the PDB must keep one of the two serving pods"
    assert len(pending) == 1, "the evicted pod's replacement waits for a schedulable node"
    check_load(kube, "node drain", load)
