"""Offline: helm lint, helm template of every strategy and scenario, strict schema validation."""

from __future__ import annotations

import crd_schemas
import kubernetes_validate
import pytest
from chartlib import CHART, STRATEGIES, by_kind, pod_specs, render, run, scenario_files, tool
from kubernetes_validate.utils import latest_version

pytestmark = pytest.mark.helm

# Every render the offline tests look at: one per strategy with default values, one per
# scenario values file.
SCENARIOS = [pytest.param(((), (f"rollout.strategy={s}",)), id=s) for s in STRATEGIES] + [
    pytest.param(((f,), ()), id=f.stem) for f in scenario_files()]
NEWEST = latest_version()
VALIDATE_VERSIONS = ["1.28.0", f"{NEWEST}.0" if NEWEST.count(".") == 1 else NEWEST]


def test_helm_is_a_real_v3_binary():
    out = run([tool("helm"), "version", "--short"]).stdout
    assert out.startswith("v3."), out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(scenario):
    files, sets = scenario
    args = [a for f in files for a in ("-f", str(f))] + [a for s in sets for a in ("--set", s)]
    # 1.20 is the oldest supported server; --strict turns every warning into a failure.
    out = run([tool("helm"), "lint", str(CHART), "--strict", "--kube-version", "1.20.2", *args])
    assert "[ERROR]" not in out.stdout and "[WARNING]" not in out.stdout, out.stdout


@pytest.mark.parametrize("kube_version", VALIDATE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_validates_strictly(scenario, kube_version):
    files, sets = scenario
    docs = render(files, sets, kube_version=kube_version, modern=True)
    assert docs, "nothing rendered"
    for doc in docs:
        ident = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in crd_schemas.SCHEMAS:
            crd_schemas.validate(doc)
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{ident} invalid for Kubernetes {kube_version}: {exc.message} "
                        f"at {'/'.join(map(str, exc.path))}")


def test_validator_catches_unknown_fields():
    """Guard against a validator that silently accepts everything."""
    doc = render(sets=("rollout.strategy=standard",), kube_version="1.28.0", modern=True)
    dep = dict(by_kind(doc, "Deployment")[0])
    dep["spec"] = dict(dep["spec"], replicaz=3)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, "1.28.0", strict=True)


def api_versions(docs) -> dict[str, str]:
    return {d["kind"]: d["apiVersion"] for d in docs}


ALL_KINDS = ("autoscaling.enabled=true", "rollout.strategy=canary", "gateway.enabled=true")


def test_kubernetes_1_20_gets_beta_apis_and_tcp_liveness():
    docs = render(sets=ALL_KINDS, kube_version="1.20.2")
    versions = api_versions(docs)
    assert versions["CronJob"] == "batch/v1beta1"
    assert versions["PodDisruptionBudget"] == "policy/v1beta1"
    assert versions["HorizontalPodAutoscaler"] == "autoscaling/v2beta2"
    for dep in by_kind(docs, "Deployment"):
        if dep["metadata"]["labels"]["app.kubernetes.io/component"] == "server":
            probe = dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
            assert probe["tcpSocket"] == {"port": "grpc"}, probe


@pytest.mark.parametrize("kube_version", VALIDATE_VERSIONS)
def test_current_kubernetes_gets_ga_apis_and_grpc_liveness(kube_version):
    docs = render(sets=ALL_KINDS, kube_version=kube_version, modern=True)
    versions = api_versions(docs)
    assert versions["CronJob"] == "batch/v1"
    assert versions["PodDisruptionBudget"] == "policy/v1"
    assert versions["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert versions["HTTPRoute"] == "gateway.networking.k8s.io/v1"
    for name, spec in pod_specs(docs):
        for c in spec["containers"]:
            if c["name"] == "server":
                assert c["livenessProbe"]["grpc"] == {"port": 50051}, name


def test_gateway_v1beta1_when_only_v1beta1_is_served():
    args = ("--api-versions", "gateway.networking.k8s.io/v1beta1/HTTPRoute")
    out = run([tool("helm"), "template", "t", str(CHART), "--set", "gateway.enabled=true",
               *args]).stdout
    assert "apiVersion: gateway.networking.k8s.io/v1beta1" in out


def test_chart_declares_kube_version():
    import yaml
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"] == ">=1.20.0-0"
    out = run([tool("helm"), "template", "t", str(CHART), "--kube-version", "1.19.9"],
              check=False)
    assert out.returncode != 0 and "kubeVersion" in out.stderr
