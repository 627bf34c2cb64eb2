"""Offline: the first-model bootstrap Job and the job image (issue 12, item 4)."""

from __future__ import annotations

import pytest
from chartlib import by_kind, one, render

pytestmark = pytest.mark.helm



def bootstrap_job(docs) -> dict:
    (job,) = [j for j in by_kind(docs, "Job")
              if j["metadata"]["labels"]["app.kubernetes.io/component"] == "bootstrap"]
    return job


def bootstrap_pod(docs) -> dict:
    return bootstrap_job(docs)["spec"]["template"]["spec"]


def test_bootstrap_job_runs_the_job_image_on_a_writable_store():
    docs = render(sets=("jobImage.tag=0.1.0-abc1234",))
    job = bootstrap_job(docs)
    assert job["metadata"]["name"].startswith("taxi-serve-bootstrap-")
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["activeDeadlineSeconds"] == 3600
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})  # --wait must not block
    pod = bootstrap_pod(docs)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    assert c["image"] == "ghcr.io/taxi-serve/job:0.1.0-abc1234"
    assert c["command"] == ["python", "-m", "training", "bootstrap"]
    assert c["envFrom"] == [{"configMapRef": {"name": "taxi-serve-config"}}]
    assert "REDIS_URL" in {e["name"] for e in c["env"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is False  # it registers the champion
    # Read-only root: the pipeline writes its datasets and feature tables to a volume.
    assert {"/tmp", "/opt/taxi/app/artifacts", "/opt/taxi/app/feature_repo/data"} <= set(mounts)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["work"]
    assert volumes["model-store"]["persistentVolumeClaim"]["claimName"] == "taxi-serve-model-store"


def test_serving_pods_wait_for_the_first_model_only_with_bootstrap():
    on = one(render(), "ConfigMap", "taxi-serve-config")["data"]
    assert on["TAXI_MODEL_WAIT_S"] == "1800"
    off_docs = render(sets=("bootstrap.enabled=false",))
    assert "TAXI_MODEL_WAIT_S" not in one(off_docs, "ConfigMap", "taxi-serve-config")["data"]
    assert not [j for j in by_kind(off_docs, "Job") if "bootstrap" in j["metadata"]["name"]]


def test_job_name_changes_with_its_pod_and_only_then():
    """A Job's pod template is immutable: a new job image must make a new Job, and a model
    rollout (what the retrain job upgrades) must leave the Job as it is."""
    name = bootstrap_job(render())["metadata"]["name"]
    assert bootstrap_job(render(sets=("model.tag=taxi_trip:20990101-ff",)))["metadata"][
        "name"] == name
    assert bootstrap_job(render(sets=("jobImage.tag=0.2.0",)))["metadata"]["name"] != name


def test_cronjobs_run_the_job_image():
    docs = render(sets=("jobImage.repository=registry.example.com/ml/job", "jobImage.tag=v7"))
    for cron in by_kind(docs, "CronJob"):
        c = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == "registry.example.com/ml/job:v7", cron["metadata"]["name"]


def test_bootstrap_values_are_checked():
    from chartlib import render_fails

    assert "modelWaitSeconds" in render_fails(sets=("bootstrap.modelWaitSeconds=-1",))
    assert "jobImage.tag" in render_fails(sets=("jobImage.tag=latest",))
    assert "bootstrap" in render_fails(sets=("bootstrap.unknown=1",))
