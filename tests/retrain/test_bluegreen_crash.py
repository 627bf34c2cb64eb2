"""Blue-green with a smoke test, and a job killed mid-rollout, on the real control plane.

Real: the API server, Helm, the job as the retrain ServiceAccount, its Lease, the models and the
served processes. Stand-ins: no container runs in the simulated cluster, so the preview Service
is a local service process serving the tag Helm put on the idle color
(``TAXI_RETRAIN_PREVIEW_URL`` points the job at it); the job's smoke test sends it known
February 2023 trips and compares the answers with the same model's predictions computed in the
job's own process on the same online features.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from retrainlib import helm_history, install_release, k8s_job_env, retrain_kubeconfig

from common.paths import ROOT
from common.redis_local import LocalRedis
from training.register import current_champion, set_champion

pytestmark = [pytest.mark.retrain, pytest.mark.k8s, pytest.mark.slow]
LEASE_S = 45  # long enough that a rerun right after the kill meets the dead run's Lease


def values(cluster, ns) -> dict:
    return json.loads(cluster.helm("get", "values", "taxi-serve", "-n", ns, "-o",
                                   "json").stdout)["rollout"]


def fresh_namespace(cluster, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", ns)
    return ns


def test_bluegreen_good_switches_bad_never_does(world, cluster, good_candidate):
    ns = fresh_namespace(cluster, "retrain-bg")
    old = world.champion
    install_release(cluster, ns, "rollout.strategy=blueGreen",
                    "rollout.blueGreen.activeColor=blue",
                    f"rollout.blueGreen.blue.modelTag={old}",
                    f"rollout.blueGreen.green.modelTag={old}")
    env = k8s_job_env(ns, retrain_kubeconfig(cluster, ns, world.tmp / f"{ns}.kubeconfig"))

    preview = world.serve(good_candidate, "green", f"{ns}-preview-good")
    good = world.job("rollout", "--candidate", good_candidate,
                     TAXI_RETRAIN_PREVIEW_URL=preview.http, **env)
    assert good.returncode == 0, good.stderr[-5000:]
    result = json.loads(good.stdout)
    assert result["outcome"] == "promoted", result
    assert result["metrics"]["smoke"]["passed"] and result["metrics"]["smoke"]["trips"] == 20
    bg = values(cluster, ns)["blueGreen"]
    assert bg["activeColor"] == "green" and bg["green"]["modelTag"] == good_candidate
    assert bg["blue"]["modelTag"] == old and bg["scaleDownIdle"] is False  # rollback window
    active = cluster.get(ns, "service", "taxi-serve-active")["spec"]["selector"]
    assert active["taxi-serve.io/track"] == "green", active

    # A bad candidate: its preview cannot reach the features the model was trained with (an
    # empty Redis), so its answers differ from the model's offline predictions.
    empty = LocalRedis().start()
    try:
        bad_preview = world.serve(old, "blue", f"{ns}-preview-bad", REDIS_URL=empty.url)
        bad = world.job("rollout", "--candidate", old,
                        TAXI_RETRAIN_PREVIEW_URL=bad_preview.http, **env)
    finally:
        empty.stop()
    assert bad.returncode == 0, bad.stderr[-5000:]
    result = json.loads(bad.stdout)
    assert result["outcome"] == "rolled_back" and "smoke test failed" in result["reason"], result
    bg = values(cluster, ns)["blueGreen"]
    assert bg["activeColor"] == "green" and bg["green"]["modelTag"] == good_candidate
    assert bg["blue"]["modelTag"] == old  # idle color back to what it served
    history = [h["description"] for h in helm_history(cluster, ns)]
    assert any("switch active blue -> green" in d for d in history), history
    assert not any("switch active green -> blue" in d for d in history), history


def recover(env: dict) -> subprocess.CompletedProcess:
    """`python -m retrain recover`, as the next run starts."""
    return subprocess.run([sys.executable, "-m", "retrain", "recover"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_killed_mid_canary_then_rerun_reverts(world, cluster, good_candidate):
    """SIGKILL the job while it pauses at weight 10; a rerun inside the Lease's lifetime is
    refused (one rollout at a time), one after it expires reverts: weight 0, stable as before."""
    ns = fresh_namespace(cluster, "retrain-crash")
    old = world.champion
    install_release(cluster, ns, "rollout.strategy=canary", f"rollout.canary.stable.modelTag={old}",
                    f"rollout.canary.canary.modelTag={old}", "rollout.canary.weight=0")
    env = world.job_env(**k8s_job_env(
        ns, retrain_kubeconfig(cluster, ns, world.tmp / f"{ns}.kubeconfig"),
        TAXI_RETRAIN_PAUSE_S="600", TAXI_RETRAIN_LEASE_DURATION_S=str(LEASE_S)))
    rdb = redis.Redis.from_url(world.redis.url)
    job = subprocess.Popen([sys.executable, "-m", "retrain", "rollout", "--candidate",
                            good_candidate], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = json.loads(rdb.get("taxi:rollout:state") or b"{}")
        if state.get("step") == "weight-10" and state.get("candidate") == good_candidate \
                and state.get("phase") == "rolling":
            break
        assert job.poll() is None, job.communicate()[1][-4000:]
        time.sleep(0.5)
    else:
        pytest.fail("the job never reached weight 10")
    job.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    job.communicate()
    assert values(cluster, ns)["canary"]["weight"] == 10  # the dead run left traffic on it

    busy = recover(env)
    assert busy.returncode == 3 or "lease-busy" in busy.stderr, busy.stderr[-3000:]
    # the dead run's Lease expires LEASE_S after its last renewal at the latest
    time.sleep(max(0.0, killed_at + LEASE_S + 2 - time.monotonic()))
    rerun = recover(env)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert json.loads(rerun.stdout)["outcome"] == "rolled_back"
    canary = values(cluster, ns)["canary"]
    assert canary["weight"] == 0 and canary["stable"]["modelTag"] == old
    state = json.loads(rdb.get("taxi:rollout:state"))
    assert state["phase"] == "done" and state["canary_weight"] == 0
    history = [h["description"] for h in helm_history(cluster, ns)]
    assert any("died at weight-10" in d for d in history), history

    # A run that died while promoting (its analyses had passed) is finished, not reverted.
    before = current_champion()
    rdb.set("taxi:rollout:state", json.dumps({**state, "phase": "rolling", "step": "promoting",
                                              "candidate": good_candidate,
                                              "run_id": "died-promoting"}))
    finish = recover(env)
    assert finish.returncode == 0, finish.stderr[-4000:]
    assert json.loads(finish.stdout)["outcome"] == "promoted"
    canary = values(cluster, ns)["canary"]
    assert canary["weight"] == 0 and canary["stable"]["modelTag"] == good_candidate
    assert current_champion() == good_candidate
    set_champion(before, "retrain tests: the champion before the recovery test, restored")
