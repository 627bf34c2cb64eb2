"""Offline: what the chart puts in the serving container's environment is what the service's
settings accept. Settings refuse unknown TAXI_* variables, so a variable the chart adds and
the service does not know stops every pod at start (first seen on the real node)."""

from __future__ import annotations

import pytest
from chartlib import by_kind, render

from common.settings import Settings

pytestmark = pytest.mark.helm


@pytest.mark.parametrize("strategy", ["standard", "canary", "blueGreen"])
def test_the_serving_environment_is_accepted_by_the_settings(strategy, monkeypatch):
    docs = render(sets=[f"rollout.strategy={strategy}", "rollout.canary.weight=50"])
    config = next(c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith(
        "-config"))
    deployment = next(d for d in by_kind(docs, "Deployment")
                      if d["spec"]["template"]["metadata"]["labels"].get(
                          "app.kubernetes.io/component") == "server")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = dict(config["data"])
    for item in container.get("env", []):
        # valueFrom (the Secret's URL, the downward API's pod name) becomes a stand-in value
        env[item["name"]] = item.get("value", "redis://r:6379/0" if item["name"] == "REDIS_URL"
                                     else "from-the-api")
    for name in [k for k in __import__("os").environ if k.startswith("TAXI_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.rollout_strategy == strategy
    assert settings.model_tag == env["TAXI_MODEL_TAG"]
