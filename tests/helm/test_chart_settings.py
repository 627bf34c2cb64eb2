"""The environment the chart gives each container is one its process accepts: every settings
object rejects unknown ``TAXI_*`` keys, so a variable the chart sets and no code reads would stop
the pod at start-up. Each rendered container's env (ConfigMap + its own entries) is loaded
into the settings class of the command it runs."""

from __future__ import annotations

import os

import pytest
from chartlib import STRATEGIES, by_kind, pod_specs, render, scenario_files
from pydantic import ValidationError

from common.settings import Settings
from drift_monitor.settings import DriftSettings
from retrain.settings import RetrainSettings
from training.settings import TrainScaleSettings

pytestmark = pytest.mark.helm

# Stand-ins for what the kubelet fills in at run time (Secret keys, downward API fields).
SECRET_VALUE = "redis://redis.taxi:6379/0"
FIELD_VALUE = "from-the-downward-api"


def container_env(docs: list[dict], container: dict) -> dict[str, str]:
    """What the kubelet would put in the container's environment."""
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in by_kind(docs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {})
        env[entry["name"]] = entry.get("value", SECRET_VALUE if "secretKeyRef" in ref
                                       else FIELD_VALUE)
    return env


def run_by(container: dict) -> list[str]:
    """What the container runs: its command, or its args after the image's entrypoint (tini
    stays PID 1 when the chart sets only args)."""
    return container.get("command") or container.get("args") or []


def containers(docs: list[dict]) -> list[tuple[str, list[str], dict[str, str]]]:
    """(object/container, what it runs, env) for every container that runs taxi-serve code."""
    out = []
    for obj, spec in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            if run_by(c)[:2] == ["python", "-m"]:
                out.append((f"{obj}/{c['name']}", run_by(c), container_env(docs, c)))
    return out


def settings_for(command: list[str]) -> list[type]:
    """The settings classes the command builds at start-up."""
    module = command[2]
    return {"service": [Settings], "drift_monitor": [DriftSettings],
            "training": [TrainScaleSettings],
            "retrain": [RetrainSettings, TrainScaleSettings]}[module]


def load(monkeypatch, env: dict[str, str], cls: type):
    for key in list(os.environ):
        if key.startswith("TAXI_") or key in ("REDIS_URL", "BENTOML_HOME"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls()


RENDERS = [pytest.param((), (f"rollout.strategy={s}",), id=s) for s in STRATEGIES] + [
    pytest.param((f,), (), id=f.stem) for f in scenario_files()]


@pytest.mark.parametrize(("files", "sets"), RENDERS)
def test_every_container_accepts_the_environment_the_chart_gives_it(monkeypatch, files, sets):
    docs = render(files, sets)
    found = containers(docs)
    assert any(cmd[2] == "service" for _, cmd, _ in found)
    for where, cmd, env in found:
        for cls in settings_for(cmd):
            try:
                load(monkeypatch, env, cls)
            except ValidationError as exc:
                pytest.fail(f"{where}: {cls.__name__} rejects the chart's env: {exc}")


def test_serving_settings_carry_the_values_the_chart_sets(monkeypatch):
    docs = render((), ("ports.http=3100", "ports.grpc=50100", "logLevel=DEBUG"))
    (where, cmd, env), = [x for x in containers(docs) if x[1][2] == "service"]
    s = load(monkeypatch, env, Settings)
    assert (s.http_port, s.grpc_port, str(s.host)) == (3100, 50100, "0.0.0.0")
    assert s.log_level == "DEBUG"
    assert s.redis_url == SECRET_VALUE


def test_an_unknown_variable_from_values_env_is_rejected(monkeypatch):
    """The check can fail: a key no settings class knows stops the serving container."""
    docs = render((), ("env.TAXI_NOT_A_SETTING=1",))
    (where, cmd, env), = [x for x in containers(docs) if x[1][2] == "service"]
    with pytest.raises(ValidationError, match="TAXI_NOT_A_SETTING"):
        load(monkeypatch, env, Settings)
