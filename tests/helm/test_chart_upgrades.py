"""Offline: what an upgrade may and may not change (selectors are immutable on Deployments)."""

from __future__ import annotations

import pytest
from chartlib import by_kind, one, render

pytestmark = pytest.mark.helm

# Per strategy: the install values, then value changes an operator or the retrain job makes.
UPGRADES = {
    "standard": [(), ("model.tag=taxi_trip:20230401-ef56ab",), ("image.tag=0.2.0",),
                 ("replicaCount=5",), ("autoscaling.enabled=true",), ("env.X=1",)],
    "canary": [(), ("rollout.canary.weight=50",), ("rollout.canary.weight=0",),
               ("rollout.canary.weight=100",),
               ("rollout.canary.stable.modelTag=taxi_trip:20230301-cd34ef",),
               ("rollout.canary.canary.imageTag=0.3.0",), ("ingress.enabled=true",),
               ("gateway.enabled=true", "autoscaling.enabled=true")],
    "blueGreen": [(), ("rollout.blueGreen.activeColor=green",),
                  ("rollout.blueGreen.scaleDownIdle=true",),
                  ("rollout.blueGreen.green.modelTag=taxi_trip:20230401-ef56ab",),
                  ("autoscaling.enabled=true", "rollout.blueGreen.scaleDownIdle=true")],
}


def workload_selectors(docs) -> dict:
    return {(d["kind"], d["metadata"]["name"]): d["spec"]["selector"]
            for d in docs if d["kind"] in ("Deployment", "PodDisruptionBudget")}


@pytest.mark.parametrize("strategy", sorted(UPGRADES))
def test_workload_selectors_never_change_across_upgrades(strategy):
    renders = [render(sets=(f"rollout.strategy={strategy}", *sets))
               for sets in UPGRADES[strategy]]
    first = workload_selectors(renders[0])
    for sets, docs in zip(UPGRADES[strategy][1:], renders[1:]):
        current = workload_selectors(docs)
        # The same Deployments exist (an upgrade never replaces one under a new name) ...
        assert current.keys() == first.keys(), sets
        # ... and each keeps its (immutable) selector.
        for key, selector in first.items():
            assert current[key] == selector, (sets, key)


@pytest.mark.parametrize("strategy", ["standard", "canary"])
def test_service_selectors_never_change_outside_blue_green(strategy):
    renders = [render(sets=(f"rollout.strategy={strategy}", *sets))
               for sets in UPGRADES[strategy]]
    first = {s["metadata"]["name"]: s["spec"]["selector"] for s in by_kind(renders[0], "Service")}
    for docs in renders[1:]:
        for svc in by_kind(docs, "Service"):
            assert svc["spec"]["selector"] == first[svc["metadata"]["name"]]


def pod_templates(docs) -> dict:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in by_kind(docs, "Deployment")}


def test_blue_green_promotion_only_moves_the_service_selectors():
    blue = render(sets=("rollout.strategy=blueGreen",))
    green = render(sets=("rollout.strategy=blueGreen", "rollout.blueGreen.activeColor=green"))
    # No pod restarts: every pod template is identical.
    assert pod_templates(blue) == pod_templates(green)
    for docs, active, preview in ((blue, "blue", "green"), (green, "green", "blue")):
        assert one(docs, "Service", "taxi-serve-active")["spec"]["selector"][
            "taxi-serve.io/track"] == active
        assert one(docs, "Service", "taxi-serve-preview")["spec"]["selector"][
            "taxi-serve.io/track"] == preview
        # Both colors keep running at full size.
        for color in ("blue", "green"):
            assert one(docs, "Deployment", f"taxi-serve-{color}")["spec"]["replicas"] == 2


def test_blue_green_idle_color_scales_down_only_when_asked():
    docs = render(sets=("rollout.strategy=blueGreen", "rollout.blueGreen.activeColor=green",
                        "rollout.blueGreen.scaleDownIdle=true"))
    assert one(docs, "Deployment", "taxi-serve-blue")["spec"]["replicas"] == 0
    assert one(docs, "Deployment", "taxi-serve-green")["spec"]["replicas"] == 2


def test_blue_green_hpa_follows_the_active_color():
    docs = render(sets=("rollout.strategy=blueGreen", "autoscaling.enabled=true",
                        "rollout.blueGreen.scaleDownIdle=true"))
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(docs, "HorizontalPodAutoscaler")}
    assert hpas == {"taxi-serve-blue"}
    assert "replicas" not in one(docs, "Deployment", "taxi-serve-blue")["spec"]


@pytest.mark.parametrize("router", ["ingress.enabled=true", "gateway.enabled=true"])
def test_canary_weight_change_touches_no_pod(router):
    low = render(sets=("rollout.strategy=canary", router, "rollout.canary.weight=10"))
    high = render(sets=("rollout.strategy=canary", router, "rollout.canary.weight=60"))
    assert pod_templates(low) == pod_templates(high)
    assert [d["spec"].get("replicas") for d in by_kind(low, "Deployment")] == \
        [d["spec"].get("replicas") for d in by_kind(high, "Deployment")]


@pytest.mark.parametrize("weight,total,canary", [
    (0, 4, 0), (10, 4, 1), (25, 4, 1), (50, 4, 2), (75, 4, 3), (90, 4, 3), (100, 4, 4),
    (10, 10, 1), (33, 3, 1), (1, 2, 1), (99, 2, 1)])
def test_canary_replica_ratio_split(weight, total, canary):
    docs = render(sets=("rollout.strategy=canary", f"replicaCount={total}",
                        f"rollout.canary.weight={weight}"))
    assert one(docs, "Deployment", "taxi-serve-canary")["spec"]["replicas"] == canary
    assert one(docs, "Deployment", "taxi-serve-stable")["spec"]["replicas"] == total - canary
    # The replica-ratio split works through the entry Service selecting both tracks.
    assert "taxi-serve.io/track" not in one(docs, "Service", "taxi-serve")["spec"]["selector"]


def test_canary_ingress_annotations_carry_the_weight():
    docs = render(sets=("rollout.strategy=canary", "ingress.enabled=true",
                        "rollout.canary.weight=35"))
    main = one(docs, "Ingress", "taxi-serve")
    canary = one(docs, "Ingress", "taxi-serve-canary")
    assert "nginx.ingress.kubernetes.io/canary" not in (main["metadata"].get("annotations") or {})
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "35"}
    def backend(ing):
        return ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend(main)["name"] == "taxi-serve-stable"
    assert backend(canary)["name"] == "taxi-serve-canary"
    assert main["spec"]["rules"][0]["host"] == canary["spec"]["rules"][0]["host"]


def test_canary_httproute_weights():
    docs = render(sets=("rollout.strategy=canary", "gateway.enabled=true",
                        "rollout.canary.weight=30"))
    refs = one(docs, "HTTPRoute", "taxi-serve")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"taxi-serve-stable": 70,
                                                     "taxi-serve-canary": 30}
