"""Pod discovery for a Prometheus built without Kubernetes service discovery (Debian's).

Every few seconds, lists the pods of every namespace through the API (the pod's own
ServiceAccount, read-only ClusterRole of k8s/prometheus/rbac.yaml) and writes those annotated
``prometheus.io/scrape: "true"`` as a file_sd target file: one target per container port named
``http`` or ``metrics``, labelled as k8s/prometheus/prometheus.yml's relabelling labels them
(pod labels, ``namespace``, ``pod``, ``job`` = the component label). Prometheus re-reads the
file when it changes.

    python3 pod_sd.py OUT.json [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time

from kubernetes import client, config

PORT_NAMES = {"http", "metrics"}


def label_name(key: str) -> str:
    """A Kubernetes label key as a Prometheus label name (what labelmap makes of it)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def target_groups(pods) -> list[dict]:
    groups = []
    for pod in pods:
        meta, status = pod.metadata, pod.status
        annotations = meta.annotations or {}
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        if status.phase != "Running" or not status.pod_ip:
            continue
        labels = {label_name(k): v for k, v in (meta.labels or {}).items()}
        labels.update(namespace=meta.namespace, pod=meta.name,
                      job=(meta.labels or {}).get("app.kubernetes.io/component",
                                                  "kubernetes-pods"))
        if annotations.get("prometheus.io/path"):
            labels["__metrics_path__"] = annotations["prometheus.io/path"]
        for container in pod.spec.containers:
            for port in container.ports or []:
                if port.name in PORT_NAMES:
                    groups.append({"targets": [f"{status.pod_ip}:{port.container_port}"],
                                   "labels": labels})
    return sorted(groups, key=lambda g: g["targets"][0])


def write_if_changed(path: str, groups: list[dict]) -> bool:
    text = json.dumps(groups, indent=1, sort_keys=True)
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # Prometheus never reads a half-written file
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 in its container
    config.load_incluster_config()
    api = client.CoreV1Api()
    write_if_changed(args.out, [])  # Prometheus starts with an empty, valid file
    while True:
        try:
            groups = target_groups(api.list_pod_for_all_namespaces(timeout_seconds=10).items)
            if write_if_changed(args.out, groups):
                print(f"{len(groups)} targets", flush=True)
        except Exception as exc:  # noqa: BLE001 - the API may blip; keep the last file, retry
            print(f"listing pods failed: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
