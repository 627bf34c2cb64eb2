"""Image tests: the private dockerd (started and stopped with the session, host restored), the
images `make images` built at this commit, a Redis on the docker bridge and a serving container.

Containers reach only the host's bridge address (cluster/docker.py rejects everything else
from the bridge); the test Redis listens on that address, not on a public one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from cluster import docker, images
from common.paths import ROOT
from common.redis_local import server_binary, terminate
from service.launcher import free_port
from training import store

UID = "10001"
# Writable paths of the serving image when its root filesystem is read-only (the chart mounts
# the same: /tmp as an emptyDir).
SERVING_TMPFS = ["--tmpfs", f"/tmp:uid={UID},gid={UID}"]
# The parity tests compare answers from features: on a loaded machine the 50 ms default budget
# for Redis sends a few requests to the fallback, differently in each service.
REDIS_BUDGET = "TAXI_REDIS_TIMEOUT_MS=2000"


@pytest.fixture(scope="session")
def daemon():
    already = docker.status()
    started = already or docker.up()
    yield started
    if already is None:
        docker.down()
        # The host is as it was: no bridge, no FORWARD rule of ours, no daemon.
        assert subprocess.run(["ip", "link", "show", started.bridge],
                              capture_output=True).returncode != 0
        assert subprocess.run(docker._egress_rule("-C"), capture_output=True).returncode != 0
        assert docker.status() is None


class Refs(dict):
    """name -> reference of the image `make images` built at this commit; a missing image
    fails the test that needs it."""

    def __init__(self, daemon):
        super().__init__({name: images.ref(name) for name in images.NAMES})
        self.daemon = daemon

    def __getitem__(self, name: str) -> str:
        ref = super().__getitem__(name)
        if self.daemon.docker("image", "inspect", ref, check=False).returncode != 0:
            pytest.fail(f"image {ref} missing: `make images` builds it (`make test` does)")
        return ref


@pytest.fixture(scope="session")
def refs(daemon) -> Refs:
    return Refs(daemon)


@pytest.fixture(scope="session")
def bridge_redis(daemon, tmp_path_factory):
    """A private Redis on the bridge address: the host and the containers reach it."""
    work = tmp_path_factory.mktemp("bridge-redis")
    with __import__("socket").socket() as s:
        s.bind((daemon.gateway, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server_binary(), "--port", str(port), "--bind", daemon.gateway,
                             "--protected-mode", "no", "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"redis://{daemon.gateway}:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)
    yield url
    terminate(proc, timeout=5)


@pytest.fixture(scope="session")
def features(bridge_redis, feature_repo, prepared) -> str:
    """The bridge Redis with the sample's features materialized (as the materialize job does)."""
    fs = store.open_store(feature_repo, bridge_redis)
    store.apply(fs)
    store.materialize(fs)
    return bridge_redis


@pytest.fixture(scope="session")
def image_store(daemon, refs, tmp_path_factory) -> Path:
    """The model store the serving image carries, copied out of the image."""
    out = tmp_path_factory.mktemp("image-store")
    cid = daemon.docker("create", refs["serving"]).stdout.strip()
    try:
        daemon.docker("cp", f"{cid}:/opt/taxi/bentoml", str(out))
    finally:
        daemon.docker("rm", cid)
    return out / "bentoml"


def container_ip(daemon, cid: str) -> str:
    return daemon.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()


def start_serving(daemon, ref: str, redis_url: str, *extra: str) -> tuple[str, str]:
    """docker run the serving image read-only; returns (container id, http base URL)."""
    cid = daemon.docker("run", "-d", "--read-only", *SERVING_TMPFS, "-e",
                        f"REDIS_URL={redis_url}", "-e", "TAXI_TRACK=image", *extra,
                        ref).stdout.strip()
    base = f"http://{container_ip(daemon, cid)}:3000"
    deadline = time.monotonic() + 600  # minutes on a loaded machine
    while time.monotonic() < deadline:
        state = json.loads(daemon.docker("inspect", cid).stdout)[0]["State"]
        if not state["Running"]:
            logs = daemon.docker("logs", cid, check=False).stderr[-4000:]
            daemon.docker("rm", "-f", cid, check=False)
            raise AssertionError(f"serving container exited {state['ExitCode']}:\n{logs}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return cid, base
        except httpx.HTTPError:
            pass
        time.sleep(1)
    logs = daemon.docker("logs", cid, check=False).stderr[-4000:]
    daemon.docker("rm", "-f", cid, check=False)
    raise AssertionError(f"serving container not ready in 600 s:\n{logs}")


@pytest.fixture(scope="session")
def serving(daemon, refs, features):
    cid, base = start_serving(daemon, refs["serving"], features, "-e", REDIS_BUDGET)
    yield cid, base
    daemon.docker("rm", "-f", cid, check=False)


@pytest.fixture(scope="session")
def local_service(image_store, features, tmp_path_factory):
    """What `make serve` runs (`python -m service`, here without its materialize step: the
    features are in the bridge Redis already) on the model the image carries, on loopback."""
    http_port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("make-serve") / "service.log"
    # Settings rejects unknown TAXI_* variables, and TAXI_IMAGE_TESTS is this suite's own
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TAXI_")},
           "BENTOML_HOME": str(image_store), "REDIS_URL": features,
           "TAXI_TRACK": "image", "TAXI_HOST": "127.0.0.1", "TAXI_HTTP_PORT": str(http_port),
           "TAXI_GRPC_PORT": str(grpc_port), "BENTOML_DO_NOT_TRACK": "true",
           **dict([REDIS_BUDGET.split("=")])}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service", "--no-materialize"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 600  # minutes on a loaded machine
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"python -m service not ready (exit {proc.poll()}):\n"
                                     f"{log.read_text(errors='replace')[-4000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield type("Local", (), {"http": base, "grpc": f"127.0.0.1:{grpc_port}"})
    finally:
        terminate(proc, timeout=30)
