"""Rollouts under load on real pods: blue-green switch and flip-back, canary promote and
rollback, each while the host sends at least 100 predictions a second through the entry
Service. Failed requests are counted (the target is zero) and `helm history` tells the story.

The releases here share the install test's model store and Redis (existingClaim, redis.url),
so no second bootstrap trains a model. The two model tags are the same model under two names
(`taxi_trip:champion` and its explicit version): each change still rewrites the pod template
or the Service selector, which is what a rollout exercises.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.node.conftest import CHART, SERVICE, VALUES, champion_tag, image_sets, service_ip
from tests.node.loadgen import Load, check_load

pytestmark = [pytest.mark.k8s_node, pytest.mark.slow]
RATE = 120


@pytest.fixture(scope="module")
def model_tags(node_cluster, release) -> tuple[str, str]:
    return "taxi_trip:champion", champion_tag(node_cluster, release, SERVICE)


def install(kube, namespace: str, name: str, refs, *sets: str) -> None:
    # A release left by a failed run of the same test (the tests uninstall at their end).
    kube.helm("uninstall", name, "-n", namespace, "--wait", check=False, timeout=300)
    shared = ["--set", "redis.dev.enabled=false",
              "--set", f"redis.url=redis://{SERVICE}-redis:6379/0",
              "--set", f"modelStore.persistence.existingClaim={SERVICE}-model-store",
              "--set", "bootstrap.enabled=false", "--set", "driftMonitor.enabled=false",
              "--set", "tests.enabled=false"]
    kube.helm("install", name, CHART,
              "-n", namespace, "-f", str(VALUES / "real-node.yaml"), *image_sets(refs),
              *shared, *sets, "--wait", "--timeout", "10m", timeout=660)


def upgrade(kube, namespace: str, name: str, *args: str) -> float:
    started = time.monotonic()
    kube.helm("upgrade", name, CHART,
              "-n", namespace, "--reuse-values", *args, "--wait", "--timeout", "10m",
              timeout=660)
    return time.monotonic() - started


def serves_only(kube, namespace: str, service: str, track: str) -> bool:
    """The Service's endpoints are exactly the Ready pods of `track`."""
    pods = kube.pod_ips(namespace, f"app.kubernetes.io/instance={service.split('-')[0]},"
                                   f"taxi-serve.io/track={track}")
    return bool(pods) and kube.endpoint_ips(namespace, service) == pods


def history(kube, namespace: str, name: str) -> list[dict]:
    return json.loads(kube.helm("history", name, "-n", namespace, "-o", "json").stdout)


def test_blue_green_switch_and_flip_back_under_load(node_cluster, release, image_refs,
                                                    model_tags, trips):
    kube, name = node_cluster, "bg"
    install(kube, release, name, image_refs, "--set", "rollout.strategy=blueGreen",
            "--set", f"rollout.blueGreen.blue.modelTag={model_tags[0]}",
            "--set", f"rollout.blueGreen.green.modelTag={model_tags[1]}")
    active = f"{name}-taxi-serve-active"
    assert serves_only(kube, release, active, "blue")
    ip = service_ip(kube, release, active, 3000)
    with Load(f"http://{ip}:3000", trips, rate=RATE, max_seconds=400) as load:
        time.sleep(5)
        kube.timings["blue-green switch (helm upgrade --wait)"] = upgrade(
            kube, release, name, "--set", "rollout.blueGreen.activeColor=green")
        kube.wait_for("active -> green", lambda: serves_only(kube, release, active, "green"))
        time.sleep(5)
        kube.timings["blue-green flip-back (helm upgrade --wait)"] = upgrade(
            kube, release, name, "--set", "rollout.blueGreen.activeColor=blue")
        kube.wait_for("active -> blue", lambda: serves_only(kube, release, active, "blue"))
        time.sleep(5)
    check_load(kube, "blue-green", load)
    steps = history(kube, release, name)
    assert [s["revision"] for s in steps] == [1, 2, 3]
    assert [s["status"] for s in steps] == ["superseded", "superseded", "deployed"]
    kube.helm("uninstall", name, "-n", release, "--wait", timeout=300)


def test_canary_promote_and_rollback_under_load(node_cluster, release, image_refs,
                                                model_tags, trips):
    kube, name = node_cluster, "cn"
    install(kube, release, name, image_refs, "--set", "rollout.strategy=canary",
            "--set", "rollout.canary.weight=50",
            "--set", f"rollout.canary.stable.modelTag={model_tags[0]}",
            "--set", f"rollout.canary.canary.modelTag={model_tags[1]}")
    entry = f"{name}-taxi-serve"
    ip = service_ip(kube, release, entry, 3000)
    with Load(f"http://{ip}:3000", trips, rate=RATE, max_seconds=600) as load:
        time.sleep(5)
        # Promote: the stable track takes the canary's model (a rolling update of its pods).
        kube.timings["canary promote (helm upgrade --wait)"] = upgrade(
            kube, release, name, "--set", f"rollout.canary.stable.modelTag={model_tags[1]}")
        time.sleep(5)
        started = time.monotonic()
        kube.helm("rollback", name, "1", "-n", release, "--wait", "--timeout", "10m",
                  timeout=660)
        kube.timings["canary rollback (helm rollback --wait)"] = time.monotonic() - started
        time.sleep(5)
    check_load(kube, "canary", load)
    stable = kube.get(release, "deployment", f"{name}-taxi-serve-stable")
    env = {e["name"]: e.get("value") for e in
           stable["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TAXI_MODEL_TAG"] == model_tags[0]  # rolled back to revision 1's model
    steps = history(kube, release, name)
    assert [s["revision"] for s in steps] == [1, 2, 3]
    assert steps[-1]["description"] == "Rollback to 1"
    kube.helm("uninstall", name, "-n", release, "--wait", timeout=300)
