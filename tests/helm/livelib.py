"""Helpers for the live tests: kubectl/helm against one cluster, waits, timings."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from chartlib import REPO, run, tool, tool_env

# label -> seconds, printed in the terminal summary (see conftest.pytest_terminal_summary).
TIMINGS: dict[str, float] = {}
OPERATIONS_MD = REPO / "docs" / "operations.md"


class Kube:
    def __init__(self, kubeconfig: Path, managed: bool):
        self.kubeconfig, self.managed = kubeconfig, managed
        self.env = tool_env({"KUBECONFIG": str(kubeconfig)})
        self.timings = TIMINGS

    # -- commands -----------------------------------------------------------------------
    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                env: dict | None = None) -> subprocess.CompletedProcess:
        return run([tool("kubectl"), *args], env=env or self.env, check=check, timeout=timeout)

    def helm(self, *args: str, check: bool = True, timeout: float = 300,
             env: dict | None = None) -> subprocess.CompletedProcess:
        return run([tool("helm"), *args], env=env or self.env, check=check, timeout=timeout)

    def create(self, obj: dict, env: dict | None = None) -> None:
        """`kubectl create -f -` of one object (as the identity in `env`, by default admin)."""
        proc = subprocess.run([tool("kubectl"), "create", "-f", "-"], input=json.dumps(obj),
                              capture_output=True, text=True, env=env or self.env, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr

    def get(self, namespace: str, *what: str) -> dict:
        return json.loads(self.kubectl("-n", namespace, "get", *what, "-o", "json").stdout)

    def sh(self, script: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
        """Run a shell snippet (from docs/operations.md) exactly as an operator would."""
        return run(["bash", "-euo", "pipefail", "-c", script], env={**self.env, **env},
                   timeout=300, check=check)

    def timed(self, label: str, fn, *args, **kwargs):
        started = time.monotonic()
        result = fn(*args, **kwargs)
        self.timings[label] = time.monotonic() - started
        return result

    # -- state --------------------------------------------------------------------------
    def endpoint_ips(self, namespace: str, service: str) -> set[str]:
        ep = self.get(namespace, "endpoints", service)
        return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}

    def pod_ips(self, namespace: str, selector: str) -> set[str]:
        pods = self.get(namespace, "pods", "-l", selector)["items"]
        return {p["status"]["podIP"] for p in pods
                if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")}

    def ready_replicas(self, namespace: str, deployment: str) -> int:
        return self.get(namespace, "deployment", deployment)["status"].get("readyReplicas", 0)

    def container_env(self, namespace: str, deployment: str, var: str) -> str:
        dep = self.get(namespace, "deployment", deployment)
        env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
        return next(e["value"] for e in env if e["name"] == var)

    def wait_for(self, what: str, predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (AssertionError, KeyError, StopIteration) as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


def doc_steps() -> dict[str, str]:
    """Shell blocks of docs/operations.md keyed by their `<!-- step: id -->` marker."""
    text = OPERATIONS_MD.read_text()
    pattern = re.compile(r"<!-- step: ([a-z0-9-]+) -->\s*```sh\n(.*?)```", re.DOTALL)
    steps = {}
    for step_id, body in pattern.findall(text):
        assert step_id not in steps, f"duplicate step {step_id} in operations.md"
        steps[step_id] = body
    return steps


def step_script(step_id: str) -> str:
    steps = doc_steps()
    return steps["env"] + "\n" + steps[step_id]


def run_step(kube: Kube, step_id: str, namespace: str, release: str = "taxi-serve",
             label: str | None = None) -> str:
    """Run one block of operations.md verbatim (after the `env` block); time it."""
    started = time.monotonic()
    proc = kube.sh(step_script(step_id), {"NS": namespace, "RELEASE": release})
    kube.timings[label or step_id] = time.monotonic() - started
    return proc.stdout
