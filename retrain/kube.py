"""The job's Kubernetes side (``kubernetes`` client): the Lease that makes rollouts one at a
time, Events that explain each step, the audit ConfigMap of a run, and reading Services.

Everything is namespaced and limited to what the Role in helm/taxi-serve/templates/
retrain-rbac.yaml allows.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

from kubernetes import client, config
from kubernetes.client.rest import ApiException


class LeaseBusy(RuntimeError):
    """Another run holds the Lease: this run must not touch the release."""


def _now() -> datetime:
    return datetime.now(UTC)


class Kube:
    """Namespaced API access for one release."""

    def __init__(self, namespace: str, release: str, lease_name: str,
                 kubeconfig: str | None = None):
        if kubeconfig:
            api = config.new_client_from_config(config_file=kubeconfig)
        else:
            config.load_incluster_config()
            api = client.ApiClient()
        self.ns, self.release, self.lease_name = namespace, release, lease_name
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- Lease ------------------------------------------------------------------------------
    def acquire(self, holder: str, duration_s: int = 120) -> dict:
        """Take the Lease (create it, or take it over when its holder stopped renewing).
        Returns the previous holder's annotations (progress of a run that died)."""
        spec = client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=duration_s,
                                  acquire_time=_now(), renew_time=_now())
        try:
            lease = self.coord.read_namespaced_lease(self.lease_name, self.ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.lease_name), spec=spec)
            self.coord.create_namespaced_lease(self.ns, body)
            self._start_renewing(holder, duration_s)
            return {}
        cur = lease.spec
        if cur and cur.holder_identity and cur.holder_identity != holder and cur.renew_time:
            expires = cur.renew_time.timestamp() + (cur.lease_duration_seconds or 0)
            if expires > time.time():
                raise LeaseBusy(f"Lease {self.lease_name} held by {cur.holder_identity} "
                                f"until {datetime.fromtimestamp(expires, UTC).isoformat()}")
        lease.spec = spec
        # replace carries the resourceVersion we read: two runs racing here cannot both win
        self.coord.replace_namespaced_lease(self.lease_name, self.ns, lease)
        self._start_renewing(holder, duration_s)
        return dict(lease.metadata.annotations or {})

    def _start_renewing(self, holder: str, duration_s: int) -> None:
        self._stop.clear()

        def renew():
            while not self._stop.wait(duration_s / 3):
                try:
                    self.coord.patch_namespaced_lease(
                        self.lease_name, self.ns,
                        {"spec": {"holderIdentity": holder,
                                  "renewTime": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
                except ApiException:
                    pass  # the next renewal retries; the Lease lasts duration_s

        self._renewer = threading.Thread(target=renew, daemon=True, name="lease-renew")
        self._renewer.start()

    def release_lease(self) -> None:
        """Give the Lease up (a crashed run never gets here: its Lease simply expires)."""
        self._stop.set()
        self.coord.patch_namespaced_lease(self.lease_name, self.ns,
                                          {"spec": {"holderIdentity": None}})

    def holder(self) -> str | None:
        try:
            return self.coord.read_namespaced_lease(self.lease_name, self.ns).spec.holder_identity
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # -- Events and audit -------------------------------------------------------------------
    def event(self, reason: str, message: str, warning: bool = False) -> None:
        """A core/v1 Event on the retrain CronJob (shown by `kubectl get events`)."""
        now = _now()
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{self.lease_name}."),
            involved_object=client.V1ObjectReference(
                kind="CronJob", name=self.lease_name, namespace=self.ns, api_version="batch/v1"),
            reason=reason[:128], message=message, type="Warning" if warning else "Normal",
            source=client.V1EventSource(component="taxi-serve-retrain"),
            first_timestamp=now, last_timestamp=now, count=1)
        self.core.create_namespaced_event(self.ns, body)

    def audit_configmap(self, run_id: str, record: dict, revision: int | None) -> str:
        """Keep the run's full audit record with the release: one ConfigMap per run, labelled
        with the release and the Helm revision it ended on (create-only: never rewritten)."""
        name = f"{self.lease_name}-audit-{run_id}"[:253]
        labels = {"app.kubernetes.io/instance": self.release,
                  "app.kubernetes.io/component": "retrain-audit",
                  "taxi-serve.io/outcome": str(record.get("outcome")),
                  "taxi-serve.io/helm-revision": str(revision or "")}
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            data={"audit.json": json.dumps(record, indent=2, default=str)})
        self.core.create_namespaced_config_map(self.ns, body)
        return name

    def service_exists(self, name: str) -> bool:
        try:
            self.core.read_namespaced_service(name, self.ns)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
