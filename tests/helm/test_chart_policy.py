"""Offline policy checks on every render: security, probes, resources, images, labels, contract."""

from __future__ import annotations

import re

import pytest
from chartlib import STRATEGIES, by_kind, one, pod_specs, render, scenario_files

pytestmark = pytest.mark.helm

RENDERS = [pytest.param(((), (f"rollout.strategy={s}",)), id=s) for s in STRATEGIES] + [
    pytest.param(((f,), ()), id=f.stem) for f in scenario_files()]
# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet")


def docs_for(scenario, **kw):
    files, sets = scenario
    return render(files, sets, kube_version="1.28.0", modern=True, **kw)


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("scenario", RENDERS)
def test_pod_security_standard_restricted(scenario):
    for name, spec in pod_specs(docs_for(scenario)):
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, name
        assert psc.get("runAsUser", 1) != 0, name
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), f"{name}: {flag}"
        for vol in spec.get("volumes", []):
            kinds = set(vol) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, f"{name}: volume {vol}"
        for c in containers(spec):
            sc = c.get("securityContext", {})
            where = f"{name} container {c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert not sc.get("privileged"), where
            assert "hostPort" not in str(c.get("ports", [])), where
            # A read-only root filesystem needs somewhere to write temporary files.
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if c["name"] != "redis":
                assert "/tmp" in mounts, where


@pytest.mark.parametrize("scenario", RENDERS)
def test_only_the_retrain_job_gets_an_api_token(scenario):
    docs = docs_for(scenario)
    for name, spec in pod_specs(docs):
        expected = name.endswith("-retrain")
        assert spec.get("automountServiceAccountToken") is expected, name
    for sa in by_kind(docs, "ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]


@pytest.mark.parametrize("scenario", RENDERS)
def test_probes_on_every_long_running_container(scenario):
    docs = docs_for(scenario)
    for dep in (d for d in docs if d["kind"] in LONG_RUNNING):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            where = f"{dep['metadata']['name']}/{c['name']}"
            assert "readinessProbe" in c and "livenessProbe" in c, where
            if c["name"] == "server":
                assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
                assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
                assert c["livenessProbe"]["grpc"] == {"port": 50051}, where


@pytest.mark.parametrize("scenario", RENDERS)
def test_resources_on_every_container(scenario):
    for name, spec in pod_specs(docs_for(scenario)):
        for c in containers(spec):
            res = c.get("resources", {})
            where = f"{name}/{c['name']}"
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where


@pytest.mark.parametrize("scenario", RENDERS)
def test_images_are_pinned_never_latest(scenario):
    for name, spec in pod_specs(docs_for(scenario)):
        for c in containers(spec):
            image = c["image"]
            assert re.fullmatch(r"[^:@\s]+(:[^:@\s]+)?:[A-Za-z0-9_][A-Za-z0-9_.-]*", image), image
            assert not image.lower().endswith(":latest"), f"{name}: {image}"


@pytest.mark.parametrize("scenario", RENDERS)
def test_standard_labels_and_name_lengths(scenario):
    required = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                "app.kubernetes.io/part-of", "helm.sh/chart"}
    for doc in docs_for(scenario):
        labels = doc["metadata"].get("labels", {})
        assert required <= set(labels), f"{doc['kind']}/{doc['metadata']['name']}"
        assert len(doc["metadata"]["name"]) <= 63


@pytest.mark.parametrize("scenario", RENDERS)
def test_selectors_are_a_stable_subset_of_pod_labels(scenario):
    docs = docs_for(scenario)
    allowed = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
               "app.kubernetes.io/component", "taxi-serve.io/track"}
    deployments = by_kind(docs, "Deployment")
    for dep in deployments:
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert set(selector) <= allowed, selector
        assert selector.items() <= labels.items(), dep["metadata"]["name"]
        # No Deployment may select another Deployment's pods.
        for other in deployments:
            if other is not dep:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not selector.items() <= other_labels.items(), (
                    dep["metadata"]["name"], other["metadata"]["name"])


@pytest.mark.parametrize("scenario", RENDERS)
def test_every_pod_template_has_a_config_checksum(scenario):
    docs = docs_for(scenario, include_tests=False)
    for d in docs:
        if d["kind"] in LONG_RUNNING:
            meta = d["spec"]["template"]["metadata"]
        elif d["kind"] == "CronJob":
            meta = d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
        else:
            continue
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "redis":
            continue  # the dev Redis reads no chart configuration
        assert re.fullmatch(r"[0-9a-f]{64}", meta["annotations"]["checksum/config"]), \
            d["metadata"]["name"]


def test_config_checksum_follows_config_not_rollout_values():
    def checksum(*sets):
        docs = render(sets=("rollout.strategy=blueGreen", *sets))
        return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
                ["checksum/config"] for d in by_kind(docs, "Deployment")
                if "checksum/config" in d["spec"]["template"]["metadata"]["annotations"]}
    base = checksum()
    assert checksum("env.TAXI_REDIS_TIMEOUT_MS=20") != base
    assert checksum("redis.url=redis://other:6379/0") != base
    assert checksum("rollout.blueGreen.activeColor=green") == base


def test_serving_container_contract():
    docs = render(sets=("rollout.strategy=canary",))
    config = one(docs, "ConfigMap", "taxi-serve-config")["data"]
    assert config["TAXI_HTTP_PORT"] == "3000" and config["TAXI_GRPC_PORT"] == "50051"
    assert config["TAXI_HOST"] == "0.0.0.0"  # pods serve on their own IP, not loopback
    assert config["BENTOML_HOME"] == "/models/bentoml"
    expected = {"taxi-serve-stable": ("stable", "taxi_trip:20230201-ab12cd"),
                "taxi-serve-canary": ("canary", "taxi_trip:20230301-cd34ef")}
    for name, (track, tag) in expected.items():
        spec = one(docs, "Deployment", name)["spec"]["template"]["spec"]
        c = spec["containers"][0]
        assert "command" not in c  # the image's tini entrypoint stays PID 1
        assert c["args"] == ["python", "-m", "service", "--no-materialize"]
        env = {e["name"]: e for e in c["env"]}
        assert env["TAXI_TRACK"]["value"] == track and env["TAXI_MODEL_TAG"]["value"] == tag
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "taxi-serve-redis-url", "key": "redis-url"}
        assert c["envFrom"] == [{"configMapRef": {"name": "taxi-serve-config"}}]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": 3000, "grpc": 50051}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/models"]["readOnly"] is True and "/tmp" in mounts
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["model-store"]["persistentVolumeClaim"]["claimName"] == \
            "taxi-serve-model-store"
        assert "emptyDir" in volumes["tmp"]


def test_drift_monitor_contract():
    docs = render()
    dep = one(docs, "Deployment", "taxi-serve-drift-monitor")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["python", "-m", "drift_monitor"]
    assert c["image"].startswith("ghcr.io/taxi-serve/drift-monitor:")
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9102}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "REDIS_URL" in {e["name"] for e in c["env"]}
    svc = one(docs, "Service", "taxi-serve-drift-monitor")
    assert svc["spec"]["ports"][0]["name"] == "metrics"


def test_cronjobs_contract():
    docs = render()
    jobs = {j["metadata"]["name"]: j for j in by_kind(docs, "CronJob")}
    commands = {name: j["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                ["command"] for name, j in jobs.items()}
    assert commands == {"taxi-serve-materialize": ["python", "-m", "training", "materialize"],
                        "taxi-serve-retrain": ["python", "-m", "retrain", "run"]}
    for job in jobs.values():
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        spec = job["spec"]["jobTemplate"]["spec"]
        assert spec["activeDeadlineSeconds"] > 0 and "backoffLimit" in spec
        pod = spec["template"]["spec"]
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/models"]["readOnly"] is False  # jobs write the model store
    retrain_pod = jobs["taxi-serve-retrain"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert retrain_pod["serviceAccountName"] == "taxi-serve-retrain"


@pytest.mark.parametrize("scenario", RENDERS)
def test_pod_topology_spread(scenario):
    files, _ = scenario
    spread = not any(f.stem == "minimal" for f in files)
    for dep in by_kind(docs_for(scenario), "Deployment"):
        if dep["metadata"]["labels"]["app.kubernetes.io/component"] != "server":
            continue
        spec = dep["spec"]["template"]["spec"]
        if not spread:
            assert "topologySpreadConstraints" not in spec
            continue
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for c in spec["topologySpreadConstraints"]:
            assert c["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
