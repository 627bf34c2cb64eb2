"""A real Prometheus scraping real taxi-serve processes on 127.0.0.1, and the short load that
gives every dashboard query something to show.

Targets get the labels Kubernetes relabelling would give the pods (namespace, release,
component, track), so the queries the dashboards and rules run in a cluster run unchanged here.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import redis
import yaml

from common.redis_local import terminate
from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from service.launcher import free_port

NAMESPACE, RELEASE = "taxi-test", "taxi-serve"
TRIP = {"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00",
        "trip_distance_miles": 3.1}
ROUTES = [(74, 236), (74, 75), (166, 41), (42, 74), (75, 263), (7, 7)]


@dataclass
class Target:
    """One scraped process: host:port and the pod labels it would carry in Kubernetes."""

    address: str
    component: str
    track: str | None = None

    def labels(self) -> dict[str, str]:
        labels = {"namespace": NAMESPACE, "app_kubernetes_io_instance": RELEASE,
                  "app_kubernetes_io_part_of": "taxi-serve",
                  "app_kubernetes_io_component": self.component, "job": self.component}
        if self.track:
            labels["taxi_serve_io_track"] = self.track
        return labels


def prometheus_config(targets: list[Target], rule_file: Path) -> dict:
    # 1 s scrapes and rule evaluations, so a few seconds of load fill every rate window.
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file)],
        "scrape_configs": [{"job_name": "taxi-serve", "static_configs": [
            {"targets": [t.address], "labels": t.labels()} for t in targets]}],
    }


class Prometheus:
    """`prometheus` (Debian's package) on a free loopback port with a private TSDB."""

    def __init__(self, workdir: Path, targets: list[Target], rule_file: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(targets, rule_file)))
        self.log_path = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("prometheus not ready in 60 s")

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector (raises on a PromQL error)."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if body["status"] != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        return body["data"]["result"]

    def query_range(self, expr: str, seconds: float, step: float) -> list[dict]:
        end = time.time()
        body = httpx.get(f"{self.url}/api/v1/query_range", timeout=20, params={
            "query": expr, "start": end - seconds, "end": end, "step": step}).json()
        if body["status"] != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        return body["data"]["result"]

    def metric_names(self) -> set[str]:
        """Every series name Prometheus holds: scraped metrics and recorded series."""
        return set(httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=10)
                   .json()["data"])

    def rules(self) -> list[dict]:
        return httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]

    def targets_up(self) -> dict[str, str]:
        active = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]
        return {t["scrapeUrl"]: t["health"] for t in active["activeTargets"]}

    def stop(self) -> None:
        terminate(self.proc, timeout=15)


def seed_retrain_state(redis_url: str) -> None:
    """Write the retrain job's Redis keys in the contract format (docs/monitoring.md) as one
    finished, failed run would leave them, so the drift monitor exports the retrain and
    rollout gauges. The retrain job itself is not started by these tests."""
    r = redis.Redis.from_url(redis_url)
    now = time.time()
    r.set("taxi:retrain:last", json.dumps({
        "outcome": "failed", "started_at": now - 120, "finished_at": now - 60,
        "reasons": ["drift"], "candidate": None, "champion": None}))
    r.hset("taxi:retrain:outcomes", mapping={"promoted": 2, "rejected": 1, "failed": 1})
    r.set("taxi:rollout:state", json.dumps({
        "mode": "canary", "canary_weight": 10, "active_color": "blue",
        "stable_version": None, "canary_version": None, "step": 1, "updated_at": now}))


def _trip(i: int) -> dict:
    pu, do = ROUTES[i % len(ROUTES)]
    return {**TRIP, "pickup_zone_id": pu, "dropoff_zone_id": do,
            "trip_distance_miles": 0.8 + (i % 9) * 0.9, "request_id": f"load-{i}"}


class Load(threading.Thread):
    """Background load until stopped, so every rate window the checks read has fresh data."""

    def __init__(self, http_urls: list[str], grpc_addrs: list[str]):
        super().__init__(daemon=True)
        self.http_urls, self.grpc_addrs = http_urls, grpc_addrs
        self.halt = threading.Event()
        self.sent = {"http": 0, "grpc": 0, "invalid": 0, "feedback": 0}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            run_load(self.http_urls, self.grpc_addrs, self.halt, self.sent)
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def run_load(http_urls: list[str], grpc_addrs: list[str], halt: threading.Event,
             sent: dict[str, int]) -> None:
    """HTTP and gRPC predictions (single and batch), some invalid requests (so error panels
    have 4xx/invalid_argument series) and feedback for answered requests when the service
    offers /feedback (every other answer), until `halt` is set; counts what was sent into `sent`."""
    channels = [grpc.insecure_channel(a) for a in grpc_addrs]
    stubs = [taxi_pb2_grpc.TripPredictorStub(c) for c in channels]
    client = httpx.Client(timeout=10)
    i = 0
    try:
        while not halt.is_set():
            for url, stub in zip(http_urls, stubs):
                trip = {**_trip(i), "request_id": f"{url[-5:]}-{i}"}
                answer = client.post(f"{url}/predict", json=trip)
                sent["http"] += 1
                if i % 5 == 0:
                    client.post(f"{url}/predict_batch", json={"trips": [_trip(i + k)
                                                                        for k in range(8)]})
                    stub.PredictBatch(taxi_pb2.PredictBatchRequest(trips=[
                        taxi_pb2.PredictRequest(**_trip(i + k)) for k in range(8)]))
                stub.Predict(taxi_pb2.PredictRequest(**_trip(i + 1)))
                sent["grpc"] += 1
                if i % 7 == 0:
                    client.post(f"{url}/predict", json={**trip, "pickup_zone_id": 0})
                    try:
                        stub.Predict(taxi_pb2.PredictRequest(**{**_trip(i), "pickup_zone_id": 0}))
                    except grpc.RpcError:
                        pass
                    sent["invalid"] += 2
                if answer.status_code == 200 and i % 2 == 0:
                    fb = client.post(f"{url}/feedback", json={
                        "request_id": trip["request_id"],
                        "actual_duration_seconds": 600.0 + (i % 13) * 60,
                        "actual_fare_usd": 12.0 + (i % 11)})
                    sent["feedback"] += fb.status_code < 300
            i += 1
            halt.wait(0.05)  # leave the shared cores to the servers and Prometheus
    finally:
        client.close()
        for c in channels:
            c.close()
