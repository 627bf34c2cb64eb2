"""Live: the real CronJob controller creates Jobs from the chart's CronJobs.

The release is installed first in the session and checked last (conftest reorders the two
tests), so the wait for the next scheduler minute overlaps the other tests.
"""

from __future__ import annotations

import time
import uuid

import pytest
from chartlib import CHART

pytestmark = pytest.mark.k8s
CRONJOBS = ("taxi-serve-materialize", "taxi-serve-retrain")


@pytest.fixture(scope="session")
def cron_release(cluster):
    ns = f"cron-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.helm("install", "taxi-serve", str(CHART), "-n", ns, "--wait",
                 "--set", "materialize.schedule=* * * * *",
                 "--set", "retrain.schedule=* * * * *")
    yield ns, time.monotonic()
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_cronjob_release_installs(cluster, cron_release):
    ns, _ = cron_release
    for name in CRONJOBS:
        cronjob = cluster.get(ns, "cronjob", name)
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        assert cronjob["spec"]["schedule"] == "* * * * *"


def test_cronjobs_create_jobs(cluster, cron_release):
    ns, installed = cron_release
    # A run is due at the next full minute; the 1.20 controller checks every 10 s.
    remaining = max(15.0, 85 - (time.monotonic() - installed))

    def jobs_created():
        jobs = cluster.get(ns, "jobs")["items"]
        owners = {o["name"] for j in jobs for o in j["metadata"].get("ownerReferences", [])
                  if o["kind"] == "CronJob"}
        return set(CRONJOBS) <= owners

    started = time.monotonic()
    cluster.wait_for("a Job from each CronJob", jobs_created, timeout=remaining)
    cluster.timings["cronjob: extra wait for the first Jobs"] = time.monotonic() - started
    for job in cluster.get(ns, "jobs")["items"]:
        assert job["spec"]["activeDeadlineSeconds"] > 0 and "backoffLimit" in job["spec"]
    # The Job controller created the pods, which the node simulator bound (they never run).
    cluster.wait_for("job pods", lambda: len(cluster.get(ns, "pods", "-l", "job-name")
                                             ["items"]) >= 2, timeout=30)
    retrain = cluster.get(ns, "pods", "-l", "app.kubernetes.io/component=retrain")["items"][0]
    assert retrain["spec"]["serviceAccountName"] == "taxi-serve-retrain"
    assert retrain["spec"]["automountServiceAccountToken"] is True
