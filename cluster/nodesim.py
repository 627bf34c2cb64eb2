"""A stand-in for the scheduler, the kubelet and a volume provisioner, for a local test plane.

There is no kubelet and no container runtime on the test machine, so this program does the
API-visible parts of their work (what kwok does), and nothing else:
  * registers one Ready Node;
  * binds every unscheduled pod to it (there is no kube-scheduler either);
  * reports bound pods Running and Ready with a pod IP, so that Deployments roll out and
    Services get endpoints. NO CONTAINER EVER RUNS: probes are not executed, commands are not
    started, and a Job's pod stays Running until its deadline (it never "succeeds");
  * finalizes pods being deleted (the kubelet's part of graceful deletion);
  * provisions a hostPath PersistentVolume, pre-bound, for each pending claim; the real
    persistentvolume-binder controller then completes the binding.
With --volumes-only it is just that provisioner, beside a real kubelet (cluster/node.py): the
directory is made world-writable then, because the chart's pods run as a non-root user and
fsGroup does not apply to hostPath volumes.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import threading
import time
from datetime import UTC, datetime

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger("nodesim")
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
PV_LABEL = "nodesim.taxi-serve.dev/provisioned"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeSim:
    def __init__(self, api: client.CoreV1Api, node: str, pv_root: str, ready_delay: float,
                 volumes_only: bool = False):
        self.api, self.node, self.pv_root, self.ready_delay = api, node, pv_root, ready_delay
        self.volumes_only = volumes_only
        self.ips = (str(ip) for ip in POD_CIDR.hosts())
        next(self.ips)  # .1 is the "gateway"
        self.lock = threading.Lock()

    # -- node ---------------------------------------------------------------------------
    def register_node(self) -> None:
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti"}
        body = client.V1Node(
            metadata=client.V1ObjectMeta(name=self.node, labels={
                "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "local-a",
                "nodesim.taxi-serve.dev/simulated": "true"}),
            spec=client.V1NodeSpec(pod_cidr=str(POD_CIDR)))
        try:
            self.api.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.api.patch_node_status(self.node, {"status": {
            "capacity": capacity, "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "NodeSimReady",
                            "message": "simulated node: containers do not run",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "nodeInfo": {"kubeletVersion": "v1.20.2-nodesim", "kubeProxyVersion": "",
                         "containerRuntimeVersion": "none://", "operatingSystem": "linux",
                         "architecture": "amd64", "osImage": "nodesim", "kernelVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": ""}}})

    # -- pods ---------------------------------------------------------------------------
    def handle_pod(self, pod: client.V1Pod) -> None:
        meta, spec, status = pod.metadata, pod.spec, pod.status
        try:
            if meta.deletion_timestamp:
                if spec.node_name == self.node or not spec.node_name:
                    # What the kubelet does once containers have stopped.
                    self.api.delete_namespaced_pod(meta.name, meta.namespace,
                                                   grace_period_seconds=0)
            elif not spec.node_name:
                self.api.create_namespaced_pod_binding(
                    meta.name, meta.namespace, client.V1Binding(
                        metadata=client.V1ObjectMeta(name=meta.name),
                        target=client.V1ObjectReference(kind="Node", name=self.node)),
                    _preload_content=False)  # the client cannot deserialize the reply
            elif spec.node_name == self.node and status.phase == "Pending":
                time.sleep(self.ready_delay)
                self.mark_running(pod)
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone or changed meanwhile: the watch retries
                log.warning("pod %s/%s: %s %s", meta.namespace, meta.name, exc.status,
                            exc.reason)

    def mark_running(self, pod: client.V1Pod) -> None:
        with self.lock:
            ip = next(self.ips)
        ts = now()
        ready = [{"type": t, "status": "True", "lastTransitionTime": ts}
                 for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        containers = [{
            "name": c.name, "image": c.image, "imageID": "", "ready": True, "started": True,
            "restartCount": 0, "state": {"running": {"startedAt": ts}},
        } for c in pod.spec.containers]
        self.api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "hostIP": "127.0.0.1", "startTime": ts, "conditions": ready,
                       "containerStatuses": containers}})
        log.info("pod %s/%s Running/Ready at %s", pod.metadata.namespace, pod.metadata.name, ip)

    # -- volumes ------------------------------------------------------------------------
    def handle_claim(self, pvc: client.V1PersistentVolumeClaim) -> None:
        if pvc.spec.volume_name or pvc.metadata.deletion_timestamp:
            return
        name = f"pv-{pvc.metadata.uid}"
        if self.volumes_only:
            path = os.path.join(self.pv_root, name)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)  # noqa: S103 - a throw-away local volume for non-root pods
        body = client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=name, labels={PV_LABEL: "true"}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": pvc.spec.resources.requests["storage"]},
                access_modes=pvc.spec.access_modes,
                storage_class_name=pvc.spec.storage_class_name or "",
                persistent_volume_reclaim_policy="Retain",
                host_path=client.V1HostPathVolumeSource(path=f"{self.pv_root}/{name}"),
                claim_ref=client.V1ObjectReference(
                    namespace=pvc.metadata.namespace, name=pvc.metadata.name,
                    uid=pvc.metadata.uid, kind="PersistentVolumeClaim", api_version="v1")))
        try:
            self.api.create_persistent_volume(body)
            log.info("provisioned %s for %s/%s", name, pvc.metadata.namespace,
                     pvc.metadata.name)
        except ApiException as exc:
            if exc.status != 409:
                log.warning("pv for %s/%s: %s", pvc.metadata.namespace, pvc.metadata.name,
                            exc.reason)

    def release_volumes(self) -> None:
        """Delete our volumes whose claim is gone (a provisioner's reclaim step)."""
        for pv in self.api.list_persistent_volume(label_selector=PV_LABEL).items:
            if pv.status.phase == "Released":
                try:
                    self.api.delete_persistent_volume(pv.metadata.name)
                except ApiException:
                    pass

    # -- loops --------------------------------------------------------------------------
    def run_watch(self, lister, handler) -> None:
        """List, handle everything, then watch; start over on any error or expiry."""
        while True:
            try:
                items = lister()
                for item in items.items:
                    handler(item)
                stream = watch.Watch().stream(
                    lister, resource_version=items.metadata.resource_version, timeout_seconds=60)
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        handler(event["object"])
            except Exception as exc:  # noqa: BLE001 - keep simulating whatever happens
                log.warning("watch restarts after: %s", exc)
                time.sleep(0.5)

    def run(self) -> None:
        loops = [(self.api.list_persistent_volume_claim_for_all_namespaces, self.handle_claim)]
        if not self.volumes_only:
            self.register_node()
            loops.append((self.api.list_pod_for_all_namespaces, self.handle_pod))
        for lister, handler in loops:
            threading.Thread(target=self.run_watch, args=(lister, handler), daemon=True).start()
        log.info("simulating %s", "volumes" if self.volumes_only else f"node {self.node}")
        while True:
            time.sleep(5)
            try:
                self.release_volumes()
            except Exception as exc:  # noqa: BLE001
                log.warning("volume reclaim: %s", exc)


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated node for a local control plane")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", default="nodesim-1")
    parser.add_argument("--pv-root", default="/tmp/nodesim-volumes")
    parser.add_argument("--ready-delay", type=float, default=0.2,
                        help="seconds between binding a pod and reporting it Ready")
    parser.add_argument("--volumes-only", action="store_true",
                        help="only provision volumes (a real kubelet runs the pods)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config.load_kube_config(config_file=args.kubeconfig)
    NodeSim(client.CoreV1Api(), args.node, args.pv_root, args.ready_delay,
            args.volumes_only).run()


if __name__ == "__main__":
    main()
