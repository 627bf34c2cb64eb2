"""`helm install` on an empty real cluster: the bootstrap Job trains the first model, every pod
becomes Ready through its own probes run by the kubelet, `helm test` passes, and 300 real trips
through the Service, over HTTP and gRPC, get the answers the in-process service gives with the
same model store and the same Redis."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import grpc
import httpx
import pytest

from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from tests.node.conftest import RELEASE, SERVICE, model_store, service_ip

pytestmark = [pytest.mark.k8s_node, pytest.mark.slow]

# In-process answers (the same code path as `make serve`) from a copy of the release's model
# store, against the release's Redis; run apart because BENTOML_HOME is read once.
IN_PROCESS = """
import asyncio, json, sys
import httpx
from service.http_app import create_app
from service.predictor import Predictor
from training.register import load_bundle, resolve_tag
url, track, trips = sys.argv[1], sys.argv[2], json.load(sys.stdin)
bundle = load_bundle(resolve_tag("taxi_trip:champion"), compiled=True)
predictor = Predictor(bundle, url, track, timeout_s=5.0)
app = create_app(lambda: predictor)
async def go():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return [(await client.post("/predict", json=t)).json() for t in trips]
print(json.dumps(asyncio.run(go())))
"""


def test_every_pod_is_ready_through_its_own_probes(node_cluster, release):
    pods = node_cluster.get(release, "pods")["items"]
    by_component = {}
    for pod in pods:
        component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
        by_component.setdefault(component, []).append(pod)
    by_component.pop("test", None)  # a `helm test` pod of an earlier run
    assert sorted(by_component) == ["bootstrap", "drift-monitor", "redis", "server"], \
        sorted(by_component)
    # The bootstrap Job's pod ran to completion: the first model exists because of it.
    assert [p["status"]["phase"] for p in by_component["bootstrap"]] == ["Succeeded"]
    assert len(by_component["server"]) == 2
    for component in ("server", "drift-monitor", "redis"):
        for pod in by_component[component]:
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True", (component, pod["status"])
            for status in pod["status"]["containerStatuses"]:
                # A real container on the node's dockerd, started and passing its probes.
                assert status["containerID"].startswith("docker://"), status
                assert status["ready"] and status["started"], status
            spec = pod["spec"]["containers"][0]
            assert spec.get("readinessProbe"), f"{component} has no readiness probe"
    # The serving pods' readiness is /readyz (models and features loaded), run by the kubelet.
    serving = by_component["server"][0]["spec"]["containers"][0]
    assert serving["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_helm_test_passes_from_a_pod(node_cluster, release):
    out = node_cluster.helm("test", RELEASE, "-n", release, "--logs", "--timeout", "5m",
                            check=False, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    pod = node_cluster.get(release, "pod", f"{SERVICE}-test-predict")
    assert pod["status"]["phase"] == "Succeeded"
    assert '"duration_seconds"' in out.stdout


@pytest.fixture(scope="module")
def expected(node_cluster, release, trips, tmp_path_factory) -> list[dict]:
    """In-process answers from a copy of the release's model store (the claim's volume on
    this host) and the release's Redis (through its Service)."""
    store = tmp_path_factory.mktemp("release-store") / "bentoml"
    shutil.copytree(model_store(node_cluster, release, SERVICE), store)
    redis_ip = service_ip(node_cluster, release, f"{SERVICE}-redis", 6379)
    track = node_cluster.container_env(release, SERVICE, "TAXI_TRACK")
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, f"redis://{redis_ip}:6379/0",
                          track], input=json.dumps(trips), capture_output=True, text=True,
                         timeout=600, check=False,
                         env={**os.environ, "BENTOML_HOME": str(store)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_http_through_the_service_equals_in_process(node_cluster, release, trips, expected):
    ip = service_ip(node_cluster, release, SERVICE, 3000)
    with httpx.Client(base_url=f"http://{ip}:3000", timeout=30) as client:
        served = [client.post("/predict", json=t).json() for t in trips]
    assert all(a["degraded"] == [] for a in served), [a for a in served if a["degraded"]][:3]
    assert served == expected


def test_grpc_through_the_service_equals_in_process(node_cluster, release, trips, expected):
    ip = service_ip(node_cluster, release, SERVICE, 50051)
    channel = grpc.insecure_channel(f"{ip}:50051")
    try:
        stub = taxi_pb2_grpc.TripPredictorStub(channel)
        replies = [stub.Predict(taxi_pb2.PredictRequest(**t), timeout=30) for t in trips]
    finally:
        channel.close()
    got = [{"request_id": r.request_id, "duration_seconds": r.duration_seconds,
            "fare_usd": r.fare_usd, "model_version": r.model_version} for r in replies]
    assert got == [{k: e[k] for k in got[0]} for e in expected]


EGRESS_PROBE = """
import socket, sys
def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "open"
    except OSError as exc:
        return type(exc).__name__
try:
    socket.getaddrinfo("deb.debian.org", 80)
    dns = "resolved"
except OSError as exc:
    dns = type(exc).__name__
print(reach(sys.argv[1], 6379), reach("1.1.1.1", 443), reach("8.8.8.8", 53), dns)
"""


def test_pods_reach_the_cluster_but_nothing_beyond_the_node(node_cluster, release):
    """From a serving pod: the release's Redis answers by its Service name (cluster DNS,
    kube-proxy); a public address and a public name do not."""
    pod = next(p["metadata"]["name"] for p in node_cluster.get(
        release, "pods", "-l", "app.kubernetes.io/component=server")["items"])
    out = node_cluster.kubectl("-n", release, "exec", pod, "--", "python", "-c", EGRESS_PROBE,
                               f"{SERVICE}-redis", timeout=60)
    redis, public_tcp, public_dns_server, public_name = out.stdout.split()
    assert redis == "open"
    assert public_tcp != "open" and public_dns_server != "open"
    assert public_name != "resolved"
