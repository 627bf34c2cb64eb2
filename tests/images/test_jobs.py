"""The job and drift-monitor images do their work read-only and as non-root: the pipeline on
the bundled sample registers a champion in a mounted store, retrain answers --help, and the
drift monitor evaluates the serving container's logged predictions."""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest

from tests.images.conftest import UID, container_ip

pytestmark = pytest.mark.images


def job_options(store, env: tuple[str, ...] = ()) -> list[str]:
    """`docker run` options of the job image as the chart runs it: read-only, /tmp, the
    artifacts and the feature data as tmpfs (the chart mounts volumes there) and ``store`` as
    the model store."""
    args = ["--read-only"]
    for path in ("/tmp", "/opt/taxi/app/artifacts", "/opt/taxi/app/feature_repo/data"):
        args += ["--tmpfs", f"{path}:uid={UID},gid={UID}"]
    args += ["-v", f"{store}:/models"]
    for e in env:
        args += ["-e", e]
    return args


def sigterm_exit_code(daemon, cid: str) -> str:
    """SIGTERM a running container; its exit code, once it stopped within the chart's 30 s
    grace period."""
    daemon.docker("kill", "--signal", "TERM", cid)
    return daemon.docker("wait", cid, timeout=30).stdout.strip()


def job_run(daemon, ref: str, store, *cmd: str, env: tuple[str, ...] = ()):
    """docker run the job image read-only (``job_options``) and wait for it."""
    name = f"taxi-job-{uuid.uuid4().hex[:8]}"
    args = ["run", "--rm", "--name", name, *job_options(store, env)]
    try:  # the pipeline takes minutes, many more on a loaded machine
        return daemon.docker(*args, ref, *cmd, check=False, timeout=2400)
    finally:  # a timed-out client leaves its container running
        daemon.docker("rm", "-f", name, check=False)


def test_job_image_runs_the_pipeline_on_its_bundled_sample(daemon, refs, bridge_redis,
                                                           tmp_path):
    store = tmp_path / "models"
    store.mkdir()
    os.chown(store, int(UID), int(UID))
    out = job_run(daemon, refs["job"], store, "python", "-m", "training", "pipeline",
                  env=(f"REDIS_URL={bridge_redis.rsplit('/', 1)[0]}/1",))  # not the served db
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    champion = json.loads((store / "bentoml" / "taxi-serve" / "champion.json").read_text())
    name, version = champion["tag"].split(":")
    assert name == "taxi_trip"
    assert (store / "bentoml" / "models" / name / version / "duration.txt").exists()


def test_job_image_has_retrain_helm_and_a_linker(daemon, refs, tmp_path):
    out = job_run(daemon, refs["job"], tmp_path, "python", "-m", "retrain", "--help")
    assert out.returncode == 0 and "run" in out.stdout, out.stderr[-2000:]
    for tool in (["helm", "version", "--short"], ["ld", "--version"]):
        out = job_run(daemon, refs["job"], tmp_path, *tool)
        assert out.returncode == 0, out.stderr[-2000:]


def test_drift_image_evaluates_the_served_predictions(daemon, refs, serving, image_store):
    cid, base = serving
    trip = {"pickup_zone_id": 74, "dropoff_zone_id": 236,
            "pickup_datetime": "2023-02-07T08:30:00", "trip_distance_miles": 2.5}
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{base}/predict_batch", json={"trips": [trip] * 300})
    assert r.status_code == 200, r.text
    version = r.json()["predictions"][0]["model_version"]
    redis_url = daemon.docker("exec", cid, "printenv", "REDIS_URL").stdout.strip()
    out = daemon.docker("run", "--rm", "--read-only", "--tmpfs", f"/tmp:uid={UID},gid={UID}",
                        "-v", f"{image_store}:/models:ro", "-e", f"REDIS_URL={redis_url}",
                        "-e", "BENTOML_HOME=/models", "-e", "TAXI_DRIFT_MIN_WINDOW=50",
                        refs["drift-monitor"], "python", "-m", "drift_monitor", "evaluate-once",
                        check=False, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    verdicts = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert any(v.get("model_version") == version for v in verdicts), \
        (out.stdout, out.stderr[-2000:])


def test_drift_monitor_exits_on_sigterm_within_the_grace_period(daemon, refs, bridge_redis,
                                                                 image_store):
    """`run` (the Deployment's command) serves /metrics; SIGTERM stops it cleanly, well
    within the chart's 30 s grace period, instead of waiting to be killed."""
    cid = daemon.docker("run", "-d", "--read-only", "--tmpfs", f"/tmp:uid={UID},gid={UID}",
                        "-v", f"{image_store}:/models:ro", "-e", f"REDIS_URL={bridge_redis}",
                        "-e", "BENTOML_HOME=/models", refs["drift-monitor"]).stdout.strip()
    try:
        ip = container_ip(daemon, cid)
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://{ip}:9102/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            running = daemon.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip()
            assert running == "true" and time.monotonic() < deadline, \
                daemon.docker("logs", cid, check=False).stderr[-3000:]
            time.sleep(1)
        code = sigterm_exit_code(daemon, cid)
        assert code == "0", daemon.docker("logs", cid, check=False).stderr[-3000:]
    finally:
        daemon.docker("rm", "-f", cid, check=False)


def test_job_image_stops_on_sigterm_and_leaves_the_store_untouched(daemon, refs, bridge_redis,
                                                                   tmp_path):
    """A pipeline stopped mid-training (a CronJob's pod deleted, a node drained) exits within
    the grace period and registers nothing: no model version, no champion pointer."""
    store = tmp_path / "models"
    store.mkdir()
    os.chown(store, int(UID), int(UID))
    env = (f"REDIS_URL={bridge_redis.rsplit('/', 1)[0]}/1",)
    cid = daemon.docker("run", "-d", *job_options(store, env), refs["job"], "python", "-m",
                        "training", "pipeline").stdout.strip()
    try:
        deadline = time.monotonic() + 1200  # the steps before the fit, on a loaded machine
        while "fit duration" not in (logs := daemon.docker("logs", cid, check=False)).stdout \
                + logs.stderr:
            running = daemon.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip()
            assert running == "true" and time.monotonic() < deadline, logs.stderr[-3000:]
            time.sleep(1)
        code = sigterm_exit_code(daemon, cid)
        assert code == "143", daemon.docker("logs", cid, check=False).stderr[-3000:]
    finally:
        daemon.docker("rm", "-f", cid, check=False)
    assert not (store / "bentoml" / "taxi-serve" / "champion.json").exists()
    assert not list((store / "bentoml" / "models").glob("taxi_trip/*/duration.txt"))
