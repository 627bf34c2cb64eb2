"""Fixtures for the real-node tests: a one-node cluster whose kubelet runs real containers.

`node_cluster` starts cluster/controlplane.py with `--node real` once per session (kubelet,
scheduler and kube-proxy on the private dockerd of cluster/docker.py) and stops it at the end;
stopping it checks that the host is back to its recorded state (cluster/hoststate.py) and the
fixture fails if it is not. The images are the ones `make images` built at this commit in the
same dockerd: the node runs them without a pull (pullPolicy Never).

Collected only with TAXI_NODE_TESTS=1 (`make test-node`), like tests/images: they need root,
dockerd and the built images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "helm"))

from chartlib import REPO, tool_env  # noqa: E402
from livelib import Kube  # noqa: E402

from cluster import docker, images  # noqa: E402
from common.paths import SAMPLE_DIR  # noqa: E402

VALUES = Path(__file__).resolve().parent / "values"
IMAGES = ("serving", "drift-monitor", "job", "redis")
CHART = str(REPO / "helm" / "taxi-serve")
RELEASE = "taxi"
SERVICE = f"{RELEASE}-taxi-serve"


@pytest.fixture(scope="session")
def node_cluster(request) -> Kube:
    """The session's own real cluster, or a running one named by TAXI_NODE_KUBECONFIG (left
    running; `make cluster-up` makes one)."""
    if os.environ.get("TAXI_NODE_KUBECONFIG"):
        yield Kube(Path(os.environ["TAXI_NODE_KUBECONFIG"]), managed=False)
        return
    state_dir = REPO / ".cluster" / f"node-{os.getpid()}"
    script = str(REPO / "cluster" / "controlplane.py")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, script, "up", "--node", "real", "--dir",
                           str(state_dir)], capture_output=True, text=True, env=tool_env(),
                          timeout=300, check=False)
    if proc.returncode != 0:
        subprocess.run([sys.executable, script, "down", "--dir", str(state_dir)],
                       capture_output=True, timeout=120, check=False)
        pytest.fail(f"real cluster did not start:\n{proc.stdout}\n{proc.stderr[-4000:]}")
    state = json.loads((state_dir / "state.json").read_text())
    kube = Kube(Path(state["kubeconfig"]), managed=True)
    kube.state_dir = state_dir
    kube.timings["real cluster cold start"] = time.monotonic() - started
    try:
        yield kube
    finally:
        down = subprocess.run([sys.executable, script, "down", "--dir", str(state_dir)],
                              capture_output=True, text=True, timeout=180, check=False)
        check = json.loads((state_dir / "node" / "host-check.json").read_text())
        if request.session.testsfailed == 0 and down.returncode == 0:
            shutil.rmtree(state_dir, ignore_errors=True)
        # The host is as the node found it: sysctls, KUBE-* chains, cgroups, mounts, logs.
        assert down.returncode == 0, down.stderr[-3000:]
        assert check["differences"] == []


@pytest.fixture(scope="session")
def image_refs(node_cluster) -> dict[str, str]:
    """name -> reference built at this commit; the node's dockerd must hold every one."""
    daemon = docker.status()
    assert daemon is not None, "the node's dockerd is not running"
    # TAXI_NODE_IMAGE_TAG: run against images built at another commit (a rerun after a change
    # that touches no image); by default the tag `make images` gives this commit.
    tag = os.environ.get("TAXI_NODE_IMAGE_TAG") or images.tag()
    refs = {name: f"{images.REGISTRY}/{images.REPOSITORY[name]}:{tag}" for name in IMAGES}
    missing = [ref for ref in refs.values()
               if daemon.docker("image", "inspect", ref, check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing from the node's dockerd: {missing}; `make test-node` "
                    "builds them (`make images` and `python -m cluster.images build redis`)")
    return refs


def image_sets(refs: dict[str, str]) -> list[str]:
    tag = refs["serving"].rsplit(":", 1)[1]
    return ["--set", f"image.tag={tag}", "--set", f"jobImage.tag={tag}",
            "--set", f"driftMonitor.image.tag={tag}", "--set", f"redis.dev.image.tag={tag}"]


@pytest.fixture(scope="session")
def node_namespace(node_cluster) -> str:
    if os.environ.get("TAXI_NODE_NAMESPACE"):
        return os.environ["TAXI_NODE_NAMESPACE"]
    name = f"real-{uuid.uuid4().hex[:5]}"
    node_cluster.kubectl("create", "namespace", name)
    return name  # the cluster is thrown away with everything in it


def cluster_ip_routed(ip: str, port: int) -> bool:
    """kube-proxy's rule for ip:port exists: only then may traffic go to a ClusterIP (a packet
    to an unprogrammed ClusterIP would follow the default route off the host)."""
    rules = subprocess.run(["iptables", "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"],
                           capture_output=True, text=True, check=False).stdout
    return any(f"-d {ip}/32" in r and f"--dport {port} " in r + " " for r in rules.splitlines())


@pytest.fixture(scope="session")
def release(node_cluster, node_namespace, image_refs):
    """helm install --wait: returns once every Deployment is available (the serving pods only
    after the bootstrap Job has trained, registered and compiled the first model).
    With TAXI_NODE_NAMESPACE, the release `taxi` already installed there is used as it is."""
    if os.environ.get("TAXI_NODE_NAMESPACE"):
        node_cluster.wait_for("the existing release's serving pods", lambda: node_cluster.
                              ready_replicas(node_namespace, SERVICE) == 2, 1800)
        return node_namespace
    started = time.monotonic()
    out = node_cluster.helm(
        "install", RELEASE, CHART, "-n", node_namespace,
        "-f", str(VALUES / "real-node.yaml"), *image_sets(image_refs),
        "--wait", "--timeout", "25m", check=False, timeout=1560)
    if out.returncode != 0:
        pods = node_cluster.kubectl("-n", node_namespace, "get", "pods", "-o", "wide",
                                    check=False).stdout
        jobs = node_cluster.kubectl("-n", node_namespace, "logs", "job/" + bootstrap_job(
            node_cluster, node_namespace), "--tail=40", check=False)
        pytest.fail(f"helm install failed: {out.stderr}\n{pods}\n{jobs.stdout}{jobs.stderr}")
    node_cluster.timings["helm install to Ready (bootstrap Job included)"] = \
        time.monotonic() - started
    return node_namespace


def bootstrap_job(kube, namespace: str) -> str:
    jobs = kube.get(namespace, "jobs")["items"]
    return next((j["metadata"]["name"] for j in jobs if "bootstrap" in j["metadata"]["name"]),
                "missing")


@pytest.fixture(scope="session")
def trips() -> list[dict]:
    """300 real February 2023 trips from the bundled sample, valid for the API."""
    df = pd.read_parquet(SAMPLE_DIR / "green_tripdata_2023-02.parquet")
    ok = (df.PULocationID.between(1, 263) & df.DOLocationID.between(1, 263)
          & (df.trip_distance > 0) & (df.trip_distance <= 100))
    rows = df[ok].sample(300, random_state=13)
    return [{"pickup_zone_id": int(r.PULocationID), "dropoff_zone_id": int(r.DOLocationID),
             "pickup_datetime": r.lpep_pickup_datetime.isoformat(),
             "trip_distance_miles": float(r.trip_distance), "request_id": f"node-{i}",
             **({} if pd.isna(r.passenger_count) or not 0 < r.passenger_count <= 9
                else {"passenger_count": int(r.passenger_count)})}
            for i, r in enumerate(rows.itertuples())]


def service_ip(kube, namespace: str, name: str, port: int) -> str:
    ip = kube.get(namespace, "service", name)["spec"]["clusterIP"]
    kube.wait_for(f"kube-proxy's rule for {ip}:{port}", lambda: cluster_ip_routed(ip, port), 30)
    return ip


def model_store(kube, namespace: str, service: str) -> Path:
    """The release's BentoML home on this host: its model-store claim's hostPath volume."""
    claim = kube.get(namespace, "pvc", f"{service}-model-store")
    volume = kube.get("default", "pv", claim["spec"]["volumeName"])
    return Path(volume["spec"]["hostPath"]["path"]) / "bentoml"


def champion_tag(kube, namespace: str, service: str) -> str:
    """The champion recorded in the release's model store."""
    champion = model_store(kube, namespace, service) / "taxi-serve" / "champion.json"
    return json.loads(champion.read_text())["tag"]


DEVSTACK_NS = "taxi"  # the namespace k8s/ (and so cluster/devstack/) creates


@pytest.fixture(scope="session")
def devstack(node_cluster) -> str:
    """`kubectl apply -k cluster/devstack/`: the dev stack of k8s/ with Redis and Prometheus
    from the images built here from Debian's packages; returns Prometheus's base URL."""
    node_cluster.kubectl("apply", "-k", str(REPO / "cluster" / "devstack"), timeout=120)
    for app in ("redis", "prometheus"):
        node_cluster.kubectl("-n", DEVSTACK_NS, "rollout", "status", f"deployment/{app}",
                             "--timeout=180s", timeout=200)
    return f"http://{service_ip(node_cluster, DEVSTACK_NS, 'prometheus', 9090)}:9090"


def prometheus_query(url: str, query: str) -> list[dict]:
    reply = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10)
    reply.raise_for_status()
    return reply.json()["data"]["result"]


def pytest_terminal_summary(terminalreporter):
    from livelib import TIMINGS
    if TIMINGS:
        terminalreporter.section("real-node timings (seconds)")
        for label, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.2f}  {label}")
