"""The retrain CronJob as a pod on the real node, judged by the in-cluster Prometheus.

The dev stack (cluster/devstack/: k8s/ on Debian images) and the release `taxi-serve` in its
namespace, installed as docs/operations.md describes, canary strategy split by pod count. The
first model is trained by the bootstrap Job on 2021-22 trips; the host sends February 2023
trips through the entry Service, and their true durations and fares as feedback, for the
whole test. Each run is the Job `kubectl create job --from=cronjob/...` makes
(create_job_from_cronjob): a pod with the retrain ServiceAccount's token and nothing else,
which decides, retrains, gates, builds and rolls out with `helm upgrade`, judging the canary
on Prometheus's numbers.

1. The 2021-22 model's fares are off after the December 2022 increase: the job decides on
   that accuracy decay, trains on 2023, and the canary is promoted.
2. The job is pointed at a stale 2021-22 snapshot and told to retrain on schedule: the
   candidate passes the offline gate (its own 2022 evaluation month), then its canary's live
   fare MAE is far above the stable track's, and the job rolls it back.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from common.paths import SAMPLE_DIR
from retrain.trips import as_requests, known_trips
from tests.node.conftest import (
    CHART,
    DEVSTACK_NS,
    VALUES,
    champion_tag,
    image_sets,
    service_ip,
)
from tests.node.loadgen import Load

pytestmark = [pytest.mark.k8s_node, pytest.mark.slow]
NAME = "taxi-serve"  # the release name operations.md uses; its objects are named taxi-serve-*
CRONJOB = f"{NAME}-retrain"
SA = f"{NAME}-retrain"
STALE = [f"/opt/taxi/app/data/sample/pre-increase/green_tripdata_{m}.parquet"
         for m in ("2021-03", "2022-01", "2022-02", "2022-03")]
RATE = 40  # predictions a second, each followed by its feedback


def canary_values(kube) -> dict:
    return json.loads(kube.helm("get", "values", NAME, "-n", DEVSTACK_NS, "-o", "json")
                      .stdout)["rollout"]["canary"]


@pytest.fixture(scope="module")
def retrain_release(node_cluster, devstack, image_refs):
    """helm install into the dev stack's namespace, then pin both tracks to the first model's
    explicit version (the job compares tracks by version)."""
    kube = node_cluster
    started = time.monotonic()
    kube.helm("install", NAME, CHART, "-n", DEVSTACK_NS, "-f", str(VALUES / "real-node.yaml"),
              "-f", str(VALUES / "retrain-pod.yaml"), *image_sets(image_refs),
              "--wait", "--timeout", "20m", timeout=1260)
    first = champion_tag(kube, DEVSTACK_NS, NAME)
    kube.helm("upgrade", NAME, CHART, "-n", DEVSTACK_NS, "--reuse-values",
              "--set", f"rollout.canary.stable.modelTag={first}",
              "--set", f"rollout.canary.canary.modelTag={first}", "--wait", "--timeout", "10m",
              timeout=660)
    kube.timings["retrain release: install (2021-22 bootstrap) and pin"] = \
        time.monotonic() - started
    yield first
    kube.helm("uninstall", NAME, "-n", DEVSTACK_NS, "--wait", check=False, timeout=300)


def create_job_from_cronjob(kube, name: str) -> None:
    """What `kubectl create job NAME --from=cronjob/CRONJOB` creates: the CronJob's job
    template as a Job, annotated as a manual run and owned by the CronJob. kubectl 1.32 builds
    it only from batch/v1 CronJobs, and Kubernetes 1.20 serves batch/v1beta1 ("unknown object
    type *v1beta1.CronJob"), so the test creates the same object itself."""
    cron = kube.get(DEVSTACK_NS, "cronjob", CRONJOB)
    template = cron["spec"]["jobTemplate"]
    meta = template.get("metadata", {})
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "namespace": DEVSTACK_NS, "labels": meta.get("labels", {}),
        "annotations": {**meta.get("annotations", {}),
                        "cronjob.kubernetes.io/instantiate": "manual"},
        "ownerReferences": [{"apiVersion": cron["apiVersion"], "kind": "CronJob",
                             "name": CRONJOB, "uid": cron["metadata"]["uid"],
                             "controller": True}]},
        "spec": template["spec"]}
    kube.create(job)


def run_job(kube, name: str, timeout: float = 1200) -> dict:
    """Create a Job from the CronJob, wait for it to end, return its audit record."""
    create_job_from_cronjob(kube, name)
    started = time.monotonic()

    def ended() -> bool:
        status = kube.get(DEVSTACK_NS, "job", name)["status"]
        return bool(status.get("succeeded") or status.get("failed"))

    kube.wait_for(f"job {name}", ended, timeout)
    kube.timings[f"retrain pod {name}: create -> end"] = time.monotonic() - started
    logs = kube.kubectl("-n", DEVSTACK_NS, "logs", f"job/{name}", "--tail=60", check=False)
    status = kube.get(DEVSTACK_NS, "job", name)["status"]
    assert status.get("succeeded") == 1, f"{name} failed:\n{logs.stdout[-6000:]}"
    audits = kube.get(DEVSTACK_NS, "configmaps", "-l",
                      "app.kubernetes.io/component=retrain-audit")["items"]
    pod = kube.get(DEVSTACK_NS, "pods", "-l", f"job-name={name}")["items"][0]
    run = next(json.loads(c["data"]["audit.json"]) for c in sorted(
        audits, key=lambda c: c["metadata"]["creationTimestamp"], reverse=True))
    return {"audit": run, "pod": pod, "logs": logs.stdout}


def test_retrain_pod_promotes_a_good_candidate_and_rolls_back_a_bad_one(
        node_cluster, retrain_release, devstack, tmp_path):
    kube, first = node_cluster, retrain_release
    feb = known_trips(SAMPLE_DIR / "green_tripdata_2023-02.parquet", 400, seed=3)
    truth = list(zip(feb["duration_s"], feb["fare_amount"], strict=True))
    ip = service_ip(kube, DEVSTACK_NS, NAME, 3000)
    with Load(f"http://{ip}:3000", as_requests(feb, "feb"), rate=RATE, workers=4,
              max_seconds=1800, truth=truth, keepalive=False) as load:
        kube.wait_for("300 trips' feedback", lambda: load.feedback.get("accepted", 0) >= 300,
                      60)

        good = run_job(kube, "retrain-good")
        audit = good["audit"]
        assert audit["outcome"] == "promoted", audit["reasons"]
        assert any("MAE" in r for r in audit["reasons"]), audit["reasons"]  # accuracy decay
        candidate = audit["candidate"]
        assert candidate != first and canary_values(kube)["stable"]["modelTag"] == candidate
        assert canary_values(kube)["weight"] == 0
        assert champion_tag(kube, DEVSTACK_NS, NAME) == candidate
        analyses = audit["metrics"]["rollout"]["analyses"]
        assert [a["weight"] for a in analyses] == [50, 100]
        kube.timings["retrain-good: canary requests judged at weight 50"] = \
            analyses[0]["canary"]["requests"]
        assert all(a["passed"] and a["canary"]["requests"] >= 15 for a in analyses), analyses

        # The same CronJob, pointed at a stale snapshot and retraining on schedule.
        stale = tmp_path / "stale.yaml"
        stale.write_text(yaml.safe_dump({"retrain": {"env": {
            "TAXI_RETRAIN_DATA": json.dumps(STALE), "TAXI_RETRAIN_WINDOW_MONTHS": "4",
            "TAXI_RETRAIN_SAMPLE_FRACTION": "1.0", "TAXI_RETRAIN_MAX_AGE_DAYS": "0.0001"}}}))
        kube.helm("upgrade", NAME, CHART, "-n", DEVSTACK_NS, "--reuse-values", "-f",
                  str(stale), "--wait", timeout=300)
        bad = run_job(kube, "retrain-stale")
        audit_bad = bad["audit"]
    assert audit_bad["outcome"] == "rolled_back", audit_bad["reasons"]
    gate = next(s for s in audit_bad["steps"] if s["step"] == "gate")
    assert gate["ok"], gate  # offline, on its own 2022 month, it looked better
    verdict = audit_bad["metrics"]["rollout"]["analyses"][-1]
    assert "fare MAE" in " ".join(verdict["reasons"]), verdict
    kube.timings["retrain-stale: canary fare MAE in Prometheus ($)"] = verdict["canary"]["mae_fare"]
    kube.timings["retrain-stale: stable fare MAE in Prometheus ($)"] = verdict["stable"]["mae_fare"]
    assert verdict["canary"]["mae_samples"] >= 100 and verdict["stable"]["mae_samples"] >= 100
    assert canary_values(kube)["stable"]["modelTag"] == candidate
    assert canary_values(kube)["weight"] == 0 and champion_tag(kube, DEVSTACK_NS, NAME) == candidate

    # Every request of the ride app was answered, through both rollouts.
    kube.timings["retrain pods: predictions + feedback sent"] = load.result.sent
    kube.timings["retrain pods: failed requests"] = len(load.result.failures)
    kube.timings["retrain pods: feedback accepted"] = load.feedback.get("accepted", 0)
    assert not load.result.ran_out
    assert load.result.failures == [], sorted(set(load.result.failures))[:5]
    # Every feedback found its logged prediction: each one counted in the accuracy buckets.
    assert set(load.feedback) == {"accepted"}, load.feedback

    # The pods ran as the retrain ServiceAccount, whose token may change this release only.
    for run in (good, bad):
        assert run["pod"]["spec"]["serviceAccountName"] == SA
    who = f"system:serviceaccount:{DEVSTACK_NS}:{SA}"
    can = {check: kube.kubectl("auth", "can-i", "--as", who, *check.split(), check=False)
           .stdout.strip() for check in (
        f"patch deployment/{NAME}-stable -n {DEVSTACK_NS}", f"get secrets -n {DEVSTACK_NS}",
        "get secrets -n default", f"create pods -n {DEVSTACK_NS}",
        f"delete deployment/prometheus -n {DEVSTACK_NS}", "list nodes")}
    assert can == {f"patch deployment/{NAME}-stable -n {DEVSTACK_NS}": "yes",
                   f"get secrets -n {DEVSTACK_NS}": "yes", "get secrets -n default": "no",
                   f"create pods -n {DEVSTACK_NS}": "no",
                   f"delete deployment/prometheus -n {DEVSTACK_NS}": "no",
                   "list nodes": "no"}, can

    # helm history tells both stories.
    history = json.loads(kube.helm("history", NAME, "-n", DEVSTACK_NS, "-o", "json").stdout)
    descriptions = [h["description"] for h in history]
    assert any(f"promote {candidate} to stable" in d for d in descriptions), descriptions
    assert any("rolled back at weight 50" in d for d in descriptions), descriptions
    reasons = {e["reason"] for e in kube.get(DEVSTACK_NS, "events")["items"]}
    assert {"RetrainPromoted", "RetrainRolledBack", "RetrainAnalysis"} <= reasons, reasons
    kube.timings["retrain pods: helm history"] = len(history)
