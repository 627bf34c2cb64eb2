"""Monitoring on the real node: the dev stack's Prometheus (Debian's, with its pod discovery
sidecar) finds the release's pods by their prometheus.io annotations and scrapes the drift
monitor's and the serving pods' metrics over the pod network."""

from __future__ import annotations

import httpx
import pytest

from tests.node.conftest import SERVICE, prometheus_query, service_ip

pytestmark = [pytest.mark.k8s_node, pytest.mark.slow]


def test_prometheus_scrapes_the_drift_monitor_and_serving_pods(node_cluster, release,
                                                              devstack, trips):
    ip = service_ip(node_cluster, release, SERVICE, 3000)
    with httpx.Client(base_url=f"http://{ip}:3000", timeout=30) as client:
        assert all(client.post("/predict", json=t).status_code == 200 for t in trips[:20])
    def scraped(job: str) -> dict[str, str]:
        return {r["metric"]["pod"]: r["value"][1] for r in prometheus_query(
            devstack, f'up{{namespace="{release}",job="{job}"}}')}

    server_pods = {p["metadata"]["name"] for p in node_cluster.get(
        release, "pods", "-l", "app.kubernetes.io/component=server")["items"]}
    monitor_pods = {p["metadata"]["name"] for p in node_cluster.get(
        release, "pods", "-l", "app.kubernetes.io/component=drift-monitor")["items"]}
    # Discovery every 5 s, scrapes every 5 s: each pod is up within a few rounds.
    node_cluster.wait_for("every drift-monitor and serving pod scraped and up", lambda:
                          scraped("drift-monitor") == dict.fromkeys(monitor_pods, "1")
                          and scraped("server") == dict.fromkeys(server_pods, "1"), 90)
    # The drift monitor's own series, labelled with its pod (not just a TCP answer).
    threshold = prometheus_query(devstack, f'taxi_drift_p_value_threshold{{namespace="{release}"}}')
    assert {r["metric"]["pod"] for r in threshold} == monitor_pods
    assert 0 < float(threshold[0]["value"][1]) < 1
    # The serving pods' request counters, with the track label the canary analysis groups by.
    node_cluster.wait_for("the predictions' counters scraped", lambda: {
        r["metric"]["track"] for r in prometheus_query(
            devstack, f'taxi_requests_total{{namespace="{release}"}}')} == {"main"}, 30)
    # The taxi-serve alert rules, loaded from the generated rules file.
    reply = httpx.get(f"{devstack}/api/v1/rules", timeout=10)
    groups = reply.json()["data"]["groups"]
    assert groups and all(g["file"].endswith("taxi-serve-rules.yaml") for g in groups)
