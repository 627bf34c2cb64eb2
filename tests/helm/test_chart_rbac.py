"""Offline: the retrain job's Role covers exactly this release, namespaced, no wildcards."""

from __future__ import annotations

import re

import pytest
from chartlib import CHART, STRATEGIES, by_kind, one, render, scenario_files

pytestmark = pytest.mark.helm

RENDERS = [pytest.param(((), (f"rollout.strategy={s}",)), id=s) for s in STRATEGIES] + [
    pytest.param(((f,), ()), id=f.stem) for f in scenario_files() if f.stem != "minimal"]
PLURAL = {"Ingress": "ingresses", "NetworkPolicy": "networkpolicies",
          "PodDisruptionBudget": "poddisruptionbudgets"}


def resource_of(doc) -> tuple[str, str]:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    return group, PLURAL.get(doc["kind"], doc["kind"].lower() + "s")


def allows(rules, verb, group, resource, name=None) -> bool:
    for rule in rules:
        if (group in rule["apiGroups"] and resource in rule["resources"]
                and verb in rule["verbs"]
                and ("resourceNames" not in rule or name in rule["resourceNames"])):
            return True
    return False


def test_role_renders_every_template_of_the_chart():
    helper = (CHART / "templates" / "_rbac.tpl").read_text()
    listed = re.search(r'define "taxi-serve.releaseTemplates" -}}\n(.*?)\n{{- end', helper,
                       re.DOTALL).group(1).split()
    on_disk = sorted(p.name for p in (CHART / "templates").glob("*.yaml"))
    assert sorted(listed + ["retrain-rbac.yaml"]) == on_disk


@pytest.mark.parametrize("scenario", RENDERS)
def test_retrain_role_is_namespaced_and_has_no_wildcards(scenario):
    files, sets = scenario
    docs = render(files, sets, kube_version="1.28.0", modern=True)
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    role = one(docs, "Role", "taxi-serve-retrain")
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    binding = one(docs, "RoleBinding", "taxi-serve-retrain")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "taxi-serve-retrain"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "taxi-serve-retrain",
                                    "namespace": "taxi"}]


@pytest.mark.parametrize("scenario", RENDERS)
def test_retrain_role_can_upgrade_every_object_of_the_release(scenario):
    files, sets = scenario
    docs = render(files, sets, kube_version="1.28.0", modern=True, include_tests=False)
    rules = one(docs, "Role", "taxi-serve-retrain")["rules"]
    for doc in docs:
        group, resource = resource_of(doc)
        name = doc["metadata"]["name"]
        for verb in ("get", "patch", "update", "delete", "create"):
            assert allows(rules, verb, group, resource, name), (verb, doc["kind"], name)


def test_retrain_role_is_limited_to_the_release_names():
    docs = render(sets=("rollout.strategy=canary",))
    rules = one(docs, "Role", "taxi-serve-retrain")["rules"]
    assert allows(rules, "patch", "apps", "deployments", "taxi-serve-canary")
    assert not allows(rules, "patch", "apps", "deployments", "another-app")
    assert not allows(rules, "delete", "", "pods", "taxi-serve-canary-abc")
    assert not allows(rules, "patch", "coordination.k8s.io", "leases", "someone-else")
    # What the contract names: Helm's records, rollout status, events, one Lease.
    assert allows(rules, "list", "", "secrets")
    for resource in ("pods", "services", "endpoints"):
        assert allows(rules, "get", "", resource, "x") and allows(rules, "list", "", resource)
    assert allows(rules, "create", "", "events")
    assert allows(rules, "create", "coordination.k8s.io", "leases")
    for verb in ("get", "update"):
        assert allows(rules, verb, "coordination.k8s.io", "leases", "taxi-serve-retrain")


def test_retrain_role_can_move_the_hpa_between_colors():
    """Promotion with a scaled-down idle color moves the HPA; the Role must allow both."""
    docs = render(sets=("rollout.strategy=blueGreen", "autoscaling.enabled=true",
                        "rollout.blueGreen.scaleDownIdle=true"))
    rules = one(docs, "Role", "taxi-serve-retrain")["rules"]
    for color in ("blue", "green"):
        assert allows(rules, "create", "autoscaling", "horizontalpodautoscalers")
        assert allows(rules, "delete", "autoscaling", "horizontalpodautoscalers",
                      f"taxi-serve-{color}")
