"""Offline: the k8s/ development stack renders, validates strictly and meets "restricted"."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from chartlib import CHART, REPO, load_docs, pod_specs, run, tool
from test_chart_render import VALIDATE_VERSIONS

pytestmark = pytest.mark.helm
K8S = REPO / "k8s"


@pytest.fixture(scope="module")
def stack() -> list[dict]:
    return load_docs(run([tool("kubectl"), "kustomize", str(K8S)]).stdout)


def test_stack_has_namespace_redis_prometheus_grafana(stack):
    names = {(d["kind"], d["metadata"]["name"]) for d in stack}
    assert ("Namespace", "taxi") in names
    for app in ("redis", "prometheus", "grafana"):
        assert ("Deployment", app) in names and ("Service", app) in names
    assert all(d["metadata"].get("namespace") == "taxi" for d in stack
               if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"))


@pytest.mark.parametrize("kube_version", VALIDATE_VERSIONS)
def test_stack_validates_strictly(stack, kube_version):
    for doc in stack:
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_stack_pods_meet_restricted(stack):
    for name, spec in pod_specs(stack):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert ":" in c["image"] and not c["image"].endswith(":latest"), c["image"]
            assert "memory" in c["resources"]["limits"], name


def test_rules_and_dashboards_match_the_chart_copies():
    assert (K8S / "prometheus/taxi-serve-rules.yaml").read_bytes() == \
        (CHART / "files/prometheus-rules.yaml").read_bytes()
    chart_dashboards = sorted(p.name for p in (CHART / "files/dashboards").glob("*.json"))
    stack_dashboards = sorted(p.name for p in (K8S / "grafana/dashboards").glob("*.json"))
    assert chart_dashboards == stack_dashboards
    for name in chart_dashboards:
        assert (K8S / "grafana/dashboards" / name).read_bytes() == \
            (CHART / "files/dashboards" / name).read_bytes()


def test_prometheus_scrapes_the_ports_the_chart_names(stack):
    config_map = next(d for d in stack if d["metadata"]["name"].startswith("prometheus-config"))
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    pods = next(j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    port_rule = next(r for r in pods["relabel_configs"]
                     if r.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"])
    assert port_rule["regex"] == "http|metrics" and port_rule["action"] == "keep"
    assert "taxi-serve-rules.yaml" in config_map["data"]
    rules = yaml.safe_load(config_map["data"]["taxi-serve-rules.yaml"])
    assert rules["groups"] and all(g["rules"] for g in rules["groups"])


def test_grafana_provisions_datasource_and_dashboards(stack):
    data = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in stack
            if d["kind"] == "ConfigMap"}
    ds = yaml.safe_load(data["grafana-datasources"]["datasources.yaml"])
    assert ds["datasources"][0]["uid"] == "prometheus"
    assert {"taxi-serve-serving.json", "taxi-serve-drift-accuracy.json",
            "taxi-serve-rollouts.json"} <= set(data["grafana-dashboards"])
    grafana = next(d for d in stack if d["kind"] == "Deployment" and
                   d["metadata"]["name"] == "grafana")
    mounts = {m["mountPath"] for m in grafana["spec"]["template"]["spec"]["containers"][0]
              ["volumeMounts"]}
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards",
            "/var/lib/grafana/dashboards/taxi-serve"} <= mounts
