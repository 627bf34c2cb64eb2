"""Offline: optional resources follow their flags; the schema rejects bad values; every key
of values.yaml is documented."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from chartlib import CHART, by_kind, one, render, render_fails

pytestmark = pytest.mark.helm


def kinds_and_names(docs) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


# flag -> objects it adds. Flags on by default are listed with "=false".
OPTIONAL = {
    "ingress.enabled=true": {("Ingress", "taxi-serve")},
    "gateway.enabled=true": {("HTTPRoute", "taxi-serve")},
    "metrics.serviceMonitor.enabled=true": {("ServiceMonitor", "taxi-serve"),
                                            ("Service", "taxi-serve-metrics")},
    "metrics.prometheusRule.enabled=true": {("PrometheusRule", "taxi-serve")},
    "metrics.grafanaDashboards.enabled=true": {("ConfigMap", "taxi-serve-dashboards")},
    "autoscaling.enabled=true": {("HorizontalPodAutoscaler", "taxi-serve")},
    "redis.dev.enabled=true": {("Deployment", "taxi-serve-redis"),
                               ("Service", "taxi-serve-redis"),
                               ("NetworkPolicy", "taxi-serve-redis")},
    "podDisruptionBudget.enabled=false": {("PodDisruptionBudget", "taxi-serve")},
    "networkPolicy.enabled=false": {("NetworkPolicy", "taxi-serve"),
                                    ("NetworkPolicy", "taxi-serve-drift-monitor")},
    "driftMonitor.enabled=false": {("Deployment", "taxi-serve-drift-monitor"),
                                   ("Service", "taxi-serve-drift-monitor"),
                                   ("NetworkPolicy", "taxi-serve-drift-monitor")},
    "materialize.enabled=false": {("CronJob", "taxi-serve-materialize")},
    "retrain.enabled=false": {("CronJob", "taxi-serve-retrain"),
                              ("ServiceAccount", "taxi-serve-retrain"),
                              ("Role", "taxi-serve-retrain"),
                              ("RoleBinding", "taxi-serve-retrain")},
    "tests.enabled=false": {("Pod", "taxi-serve-test-predict")},
    "bootstrap.enabled=false": {("Job", "taxi-serve-bootstrap-423be728")},
    "modelStore.persistence.enabled=false": {("PersistentVolumeClaim", "taxi-serve-model-store")},
    "modelStore.persistence.existingClaim=models": {
        ("PersistentVolumeClaim", "taxi-serve-model-store")},
    "redis.existingSecret=my-redis": {("Secret", "taxi-serve-redis-url")},
    "serviceAccount.create=false,serviceAccount.name=existing": {
        ("ServiceAccount", "taxi-serve")},
}


@pytest.mark.parametrize("flag", sorted(OPTIONAL))
def test_optional_resources_follow_their_flag(flag):
    default = kinds_and_names(render())
    flipped = kinds_and_names(render(sets=(flag,)))
    objects = OPTIONAL[flag]
    adds = flag.split(",")[0].endswith("=true")
    present, absent = (flipped, default) if adds else (default, flipped)
    assert objects <= present, f"{flag}: missing {objects - present}"
    assert not objects & absent, f"{flag}: still rendered {objects & absent}"


def test_everything_optional_off_leaves_the_core_only():
    docs = render(values_files=(CHART.parent.parent / "tests/helm/values/minimal.yaml",))
    assert {d["kind"] for d in docs} == {"ConfigMap", "Secret", "ServiceAccount",
                                        "PersistentVolumeClaim", "Deployment", "Service"}


def test_existing_redis_secret_is_referenced_not_created():
    docs = render(sets=("redis.existingSecret=taxi-redis", "redis.secretKey=url"))
    env = {e["name"]: e for e in one(docs, "Deployment", "taxi-serve")["spec"]["template"]
           ["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "taxi-redis", "key": "url"}
    assert not by_kind(docs, "Secret")


def test_default_redis_url_secret_and_dev_redis():
    secret = one(render(), "Secret", "taxi-serve-redis-url")
    assert secret["stringData"] == {"redis-url": "redis://redis.taxi.svc.cluster.local:6379/0"}
    dev = one(render(sets=("redis.dev.enabled=true",)), "Secret", "taxi-serve-redis-url")
    assert dev["stringData"] == {"redis-url": "redis://taxi-serve-redis:6379/0"}


# (values, a fragment of the error). Schema errors and template `fail`s both stop the render.
BAD_VALUES = {
    "canary weight 150": (("rollout.canary.weight=150",), "weight"),
    "canary weight -1": (("rollout.canary.weight=-1",), "weight"),
    "unknown top-level key": (("replicas=3",), "Additional property replicas"),
    "unknown nested key": (("rollout.canary.wieght=10",), "Additional property wieght"),
    "unknown strategy": (("rollout.strategy=rolling",), "strategy"),
    "unknown color": (("rollout.blueGreen.activeColor=red",), "activeColor"),
    "latest image": (("image.tag=latest",), "image.tag"),
    "latest drift image": (("driftMonitor.image.tag=Latest",), "driftMonitor.image.tag"),
    "latest track image": (("rollout.canary.canary.imageTag=latest",), "imageTag"),
    "latest model": (("model.tag=taxi_trip:latest",), "model.tag"),
    "model without version": (("model.tag=taxi_trip",), "model.tag"),
    "root user": (("podSecurity.runAsUser=0",), "runAsUser"),
    "no replicas": (("replicaCount=0",), "replicaCount"),
    "port as text": (("ports.http=web",), "ports.http"),
    "redis url scheme": (("redis.url=http://redis:6379",), "redis.url"),
    "bad access mode": (("modelStore.persistence.accessModes={ReadWriteSometimes}",),
                        "accessModes"),
    "string for boolean": (("autoscaling.enabled=yes",), "autoscaling.enabled"),
    "dev redis with existing secret": (("redis.dev.enabled=true", "redis.existingSecret=x"),
                                       "exclude each other"),
    "hpa with replica-ratio canary": (("rollout.strategy=canary", "autoscaling.enabled=true"),
                                      "replica-ratio canary"),
    "replica-ratio canary on one pod": (("rollout.strategy=canary", "replicaCount=1"),
                                        "at least 2"),
    "hpa min above max": (("autoscaling.enabled=true", "autoscaling.minReplicas=5",
                           "autoscaling.maxReplicas=3"), "minReplicas"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_rejected(case):
    sets, fragment = BAD_VALUES[case]
    err = render_fails(sets=sets)
    assert fragment in err, err


def test_bad_values_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollout:\n  strategy: canary\n  canary:\n    weight: 150\n")
    assert "weight" in render_fails(values_files=(bad,))


def value_paths(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict) and value:
            yield from value_paths(value, path + ".")


def test_every_key_in_values_yaml_has_a_comment():
    """Each key of the values tree has a comment above it or on its line (example data inside
    lists, such as NetworkPolicy peers, is described by the comment of its list)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    parents: list[tuple[int, bool]] = []  # (indent, is a list item) of the enclosing lines
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        in_list = stripped.startswith("-") or any(item for _, item in parents)
        parents.append((indent, stripped.startswith("-")))
        m = re.match(r"([A-Za-z][\w.-]*):", stripped)
        if not m or in_list:
            continue
        above = lines[i - 1].strip() if i else ""
        if not (above.startswith("#") or "#" in line.split(":", 1)[1]):
            undocumented.append(f"line {i + 1}: {m.group(1)}")
    assert not undocumented, undocumented


def test_schema_and_values_yaml_describe_the_same_keys():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def schema_paths(node, prefix=""):
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}{key}"
            yield path
            # Shared definitions ($ref, e.g. resources) may allow more than the defaults set.
            if sub.get("type") == "object" and "properties" in sub:
                yield from schema_paths(sub, path + ".")

    shared = {p for p in value_paths(values) if p.split(".")[-1] == "resources"}
    from_values = {p for p in value_paths(values)
                   if not any(p.startswith(s + ".") for s in shared)}
    assert from_values == set(schema_paths(schema))


def test_schema_is_closed_everywhere():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def objects(node, path="$"):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield path, node
            for key, sub in node.items():
                yield from objects(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                yield from objects(sub, f"{path}[{i}]")

    open_objects = [p for p, o in objects(schema) if o.get("additionalProperties") is not False]
    assert not open_objects, open_objects


def test_serving_pods_delay_sigterm_by_a_prestop_sleep():
    """A terminating pod keeps answering while its endpoint removal propagates, and tells
    kept-alive clients to reconnect (the real node's canary rollout lost a request without
    it, tests/node/test_rollouts.py)."""
    for deployment in by_kind(render(sets=("rollout.strategy=canary",)), "Deployment"):
        if "drift" in deployment["metadata"]["name"]:
            continue
        spec = deployment["spec"]["template"]["spec"]
        server = spec["containers"][0]
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert server["lifecycle"]["preStop"]["exec"]["command"] == [
            "sh", "-c", f"touch {env['TAXI_DRAIN_FILE']} && sleep 5"]
        assert env["TAXI_DRAIN_FILE"].startswith("/tmp/")  # the writable emptyDir
        assert spec["terminationGracePeriodSeconds"] > 5
    off = by_kind(render(sets=("preStopDelaySeconds=0",)), "Deployment")
    for d in off:
        server = d["spec"]["template"]["spec"]["containers"][0]
        assert "lifecycle" not in server
        assert "TAXI_DRAIN_FILE" not in {e["name"] for e in server.get("env", [])}
    err = render_fails(sets=("preStopDelaySeconds=30", "terminationGracePeriodSeconds=30"))
    assert "preStopDelaySeconds must be below terminationGracePeriodSeconds" in err, err
