"""Canary analysis for real: the job's rollout step against a real control plane, with a real
Prometheus scraping real service processes.

What is real: the kube-apiserver/etcd/controller-manager of cluster/controlplane.py, the chart
installed with Helm, the job's ``helm upgrade`` steps (as the retrain ServiceAccount, with only
the chart's Role), its Lease, Events and audit ConfigMaps; Prometheus (Debian's package) on
127.0.0.1 scraping ``bentoml serve`` processes; the models, trained on real TLC months.

What stands in for what: no container runs in the simulated cluster, so the stable and canary
tracks are local service processes serving the tags Helm set on each track (started by the test
with the same tag); the load generator plays the ingress, splitting requests by the canary
weight the job records next to each ``helm upgrade`` (``taxi:rollout:state``).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
from retrainlib import (
    REPLAY_MONTH,
    LoadGen,
    helm_history,
    install_release,
    k8s_job_env,
    month_file,
    retrain_kubeconfig,
)

from common.redis_local import LocalRedis
from retrain.trips import known_trips
from service.launcher import stop
from tests.report import MEASURED as REPORT
from training.register import current_champion

pytestmark = [pytest.mark.retrain, pytest.mark.k8s, pytest.mark.slow]
ANALYSIS = {"TAXI_RETRAIN_PAUSE_S": "12", "TAXI_RETRAIN_ANALYSIS_WINDOW": "20s",
            "TAXI_RETRAIN_MIN_REQUESTS": "15", "TAXI_RETRAIN_P99_FLOOR_S": "0.15",
            "TAXI_RETRAIN_MAX_P99_RATIO": "2.0", "TAXI_RETRAIN_MIN_FEEDBACK": "100"}


def timeline(stderr: str) -> list[str]:
    """The job's JSON log as ``+seconds event: reason`` lines."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    t0 = lines[0]["ts"] if lines else 0
    keep = ("lease", "helm-upgrade", "analysis", "recover", "finish")
    out = []
    for rec in lines:
        if rec["event"] in keep and rec.get("reason", rec.get("description")):
            text = rec.get("reason") or rec.get("description")
            out.append(f"+{rec['ts'] - t0:6.1f}s {rec['event']}: {str(text)[:160]}")
    return out


def test_canary_good_promoted_then_bad_rolled_back(world, cluster, prometheus, good_candidate,
                                                    request):
    ns = f"retrain-canary-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", ns)
    old = world.champion
    install_release(cluster, ns, "rollout.strategy=canary", "replicaCount=4",
                    f"rollout.canary.stable.modelTag={old}",
                    f"rollout.canary.canary.modelTag={old}", "rollout.canary.weight=0")
    kubeconfig = retrain_kubeconfig(cluster, ns, world.tmp / f"{ns}.kubeconfig")
    env = k8s_job_env(ns, kubeconfig, TAXI_RETRAIN_PROMETHEUS_URL=prometheus.url, **ANALYSIS)

    trips = known_trips(month_file(REPLAY_MONTH), 400, seed=3)
    stable = world.serve(old, "stable", f"{ns}-stable")
    canary = world.serve(good_candidate, "canary", f"{ns}-canary-good")
    prometheus.scrape({"stable": stable, "canary": canary})
    load = LoadGen(world.redis.url, trips).start(stable, canary)
    request.addfinalizer(load.stop)

    # 1. a good candidate: weight 10 -> 50 -> 100, analysed each time, promoted
    good = world.job("rollout", "--candidate", good_candidate, **env)
    assert good.returncode == 0, good.stderr[-5000:]
    result = json.loads(good.stdout)
    assert result["outcome"] == "promoted", result
    values = json.loads(cluster.helm("get", "values", "taxi-serve", "-n", ns, "-o",
                                     "json").stdout)["rollout"]["canary"]
    assert values["stable"]["modelTag"] == good_candidate and values["weight"] == 0
    assert current_champion() == good_candidate
    analyses = [a for a in result["metrics"]["analyses"]]
    assert [a["weight"] for a in analyses] == [10, 50, 100]
    assert all(a["canary"]["requests"] >= 15 for a in analyses)

    # The stable track now serves the promoted tag (a new stand-in, ready before it takes
    # traffic, as a rolling update would); the next candidate is bad: the old 2021-22 model,
    # and slow, because its feature store hangs (SIGSTOP) and every lookup waits 400 ms.
    stable2 = world.serve(good_candidate, "stable", f"{ns}-stable-2")
    load.targets["stable"] = stable2
    stalled = LocalRedis().start()
    try:  # the stalled Redis is resumed and stopped whatever fails below
        bad = world.serve(old, "canary", f"{ns}-canary-bad", REDIS_URL=stalled.url,
                          TAXI_REDIS_TIMEOUT_MS="400")
        load.targets["canary"] = bad
        time.sleep(2)  # let a request in flight to the old stand-ins finish before they stop
        for proc in (stable, canary):
            stop(proc)
        os.kill(stalled._proc.pid, signal.SIGSTOP)  # LocalRedis has no public pid
        prometheus.scrape({"stable": stable2, "canary": bad})
        bad_run = world.job("rollout", "--candidate", old, **env)
    finally:
        os.kill(stalled._proc.pid, signal.SIGCONT)
        stalled.stop()
    counts = load.stop()
    assert bad_run.returncode == 0, bad_run.stderr[-5000:]
    result_bad = json.loads(bad_run.stdout)
    assert result_bad["outcome"] == "rolled_back", result_bad
    # A canary this slow fails on p99, or, when the machine is busy, cannot even answer enough
    # requests in the analysis window to be judged; the analysis fails closed either way.
    assert "p99" in result_bad["reason"] or "too few canary requests" in result_bad["reason"], \
        result_bad["reason"]
    values = json.loads(cluster.helm("get", "values", "taxi-serve", "-n", ns, "-o",
                                     "json").stdout)["rollout"]["canary"]
    assert values["stable"]["modelTag"] == good_candidate and values["weight"] == 0
    assert current_champion() == good_candidate

    # helm history tells both stories; stable serving never failed a request
    history = helm_history(cluster, ns)
    descriptions = [h["description"] for h in history]
    assert any(f"promote {good_candidate} to stable" in d for d in descriptions), descriptions
    assert any("rolled back at weight 10" in d for d in descriptions), descriptions
    assert counts["stable_err"] == 0 and counts["stable_ok"] > 0, counts
    events = cluster.get(ns, "events")["items"]
    reasons = {e["reason"] for e in events}
    assert {"RetrainPromoted", "RetrainRolledBack", "RetrainAnalysis"} <= reasons, reasons
    audits = cluster.get(ns, "configmaps", "-l", "app.kubernetes.io/component=retrain-audit")
    outcomes = sorted(c["metadata"]["labels"]["taxi-serve.io/outcome"] for c in audits["items"])
    assert outcomes == ["promoted", "rolled_back"], outcomes

    REPORT["canary promoted: timeline"] = timeline(good.stderr)
    REPORT["canary rolled back: timeline"] = timeline(bad_run.stderr)
    REPORT["canary: helm history"] = [f"{h['revision']} {h['status']} {h['description']}"
                                      for h in history]
    REPORT["canary: load generator"] = counts
