"""Live: the retrain job's ServiceAccount token may roll this release out, and no more.

RBAC is enforced by the real kube-apiserver; the token is issued by its TokenRequest API.
"""

from __future__ import annotations

import json
import uuid

import pytest
from chartlib import CHART

pytestmark = pytest.mark.k8s
SA = "taxi-serve-retrain"


@pytest.fixture(scope="module")
def namespace(cluster):
    name = f"retrain-rbac-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def retrain_env(cluster, namespace, tmp_path_factory):
    """Release installed by the admin; a kubeconfig holding only the retrain SA's token."""
    cluster.helm("install", "taxi-serve", str(CHART), "-n", namespace, "--wait",
                 "--set", "rollout.strategy=canary", "--set", "ingress.enabled=true")
    token = cluster.kubectl("-n", namespace, "create", "token", SA, "--duration=10m").stdout.strip()
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o",
                                       "json").stdout)
    kubeconfig = tmp_path_factory.mktemp("retrain") / "retrain.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "retrain",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": SA, "user": {"token": token}}],
        "contexts": [{"name": "retrain", "context": {"cluster": "c", "user": SA,
                                                     "namespace": namespace}}]}))
    other = f"other-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", other)
    cluster.kubectl("-n", other, "create", "secret", "generic", "private",
                    "--from-literal=k=v")
    # Something in the same namespace that is not part of the release.
    cluster.kubectl("-n", namespace, "create", "deployment", "other-app",
                    "--image=registry.example.com/other:1.0")
    yield {**cluster.env, "KUBECONFIG": str(kubeconfig)}, other
    cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def as_sa(cluster, env, tool, *args, check=True):
    fn = cluster.helm if tool == "helm" else cluster.kubectl
    return fn(*args, env=env, check=check)


def test_retrain_sa_can_roll_out_this_release(cluster, namespace, retrain_env):
    env, _ = retrain_env
    cluster.timed("retrain SA: helm upgrade (canary weight 40) --wait", as_sa, cluster, env,
                  "helm", "upgrade", "taxi-serve", str(CHART), "-n", namespace,
                  "--reuse-values", "--set", "rollout.canary.weight=40", "--wait")
    ingress = cluster.get(namespace, "ingress", "taxi-serve-canary")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "40"
    # A model change rolls the canary Deployment: watching it needs pods/replicasets.
    as_sa(cluster, env, "helm", "upgrade", "taxi-serve", str(CHART), "-n", namespace,
          "--reuse-values", "--set", "rollout.canary.canary.modelTag=taxi_trip:20230401-ef56ab",
          "--wait")
    cluster.timed("retrain SA: helm rollback --wait", as_sa, cluster, env, "helm", "rollback",
                  "taxi-serve", "-n", namespace, "--wait")
    history = as_sa(cluster, env, "helm", "history", "taxi-serve", "-n", namespace).stdout
    assert "Rollback to 2" in history
    for what in ("pods", "services", "endpoints", "deployments", "replicasets"):
        as_sa(cluster, env, "kubectl", "-n", namespace, "get", what)
    as_sa(cluster, env, "kubectl", "-n", namespace, "rollout", "status",
          "deployment/taxi-serve-canary", "--timeout=60s")
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": "retrain-promoted", "namespace": namespace},
             "involvedObject": {"kind": "Deployment", "name": "taxi-serve-canary",
                                "namespace": namespace},
             "reason": "Promoted", "message": "canary promoted", "type": "Normal"}
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": SA, "namespace": namespace},
             "spec": {"holderIdentity": "retrain-1", "leaseDurationSeconds": 60}}
    for obj in (event, lease):
        cluster.create(obj, env=env)
    as_sa(cluster, env, "kubectl", "-n", namespace, "get", "lease", SA)
    as_sa(cluster, env, "kubectl", "-n", namespace, "patch", "lease", SA, "--type=merge",
          "-p", '{"spec":{"holderIdentity":"retrain-2"}}')


FORBIDDEN = {
    "delete a namespace": ("delete", "namespace", "{other}"),
    "read another namespace's secrets": ("-n", "{other}", "get", "secrets"),
    "create a ClusterRole": ("create", "clusterrole", "escalate", "--verb=get",
                             "--resource=secrets"),
    "bind cluster-admin": ("-n", "{ns}", "create", "rolebinding", "pwn",
                           "--clusterrole=cluster-admin", "--serviceaccount={ns}:" + SA),
    "scale a Deployment of another app": ("-n", "{ns}", "scale", "deployment/other-app",
                                          "--replicas=0"),
    "delete the release's pods": ("-n", "{ns}", "delete", "pods", "--all"),
    "exec into a pod": ("-n", "{ns}", "auth", "can-i", "create", "pods/exec"),
    "take another Lease": ("-n", "{ns}", "patch", "lease", "someone-else", "--type=merge",
                           "-p", '{"spec":{"holderIdentity":"x"}}'),
    "list nodes": ("get", "nodes"),
}


@pytest.mark.parametrize("action", sorted(FORBIDDEN))
def test_retrain_sa_is_denied_a_step_beyond(cluster, namespace, retrain_env, action):
    env, other = retrain_env
    args = [a.replace("{ns}", namespace).replace("{other}", other) for a in FORBIDDEN[action]]
    proc = as_sa(cluster, env, "kubectl", *args, check=False)
    assert proc.returncode != 0, f"{action} was allowed: {proc.stdout}"
    if "can-i" in args:
        assert proc.stdout.strip() == "no"
    else:
        assert "Forbidden" in proc.stderr or "forbidden" in proc.stderr, proc.stderr
