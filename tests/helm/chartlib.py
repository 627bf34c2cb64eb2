"""Shared helpers for the chart tests: run helm, render the chart, load YAML strictly."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "taxi-serve"
VALUES_DIR = Path(__file__).resolve().parent / "values"
TOOLS_BIN = REPO / ".tools" / "bin"

# Scenario values files (tests/helm/values/*.yaml) plus one render per strategy with defaults.
STRATEGIES = ["standard", "canary", "blueGreen"]

# Offline renders that take the modern apiVersion branches (what a current cluster reports).
MODERN_API_VERSIONS = [
    "batch/v1/CronJob",
    "policy/v1/PodDisruptionBudget",
    "autoscaling/v2/HorizontalPodAutoscaler",
    "gateway.networking.k8s.io/v1/HTTPRoute",
]


def tool(name: str) -> str:
    """Path of a required binary: .tools/bin first (make k8s-tools), then PATH."""
    local = TOOLS_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found in .tools/bin or PATH: run `make k8s-tools`")
    return found


def tool_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS_BIN}:{env.get('PATH', '')}"
    # Keep helm's caches and config out of the user's home.
    for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                     ("HELM_DATA_HOME", "data")):
        env.setdefault(var, str(REPO / ".tools" / "helm" / sub))
    env.update(extra or {})
    return env


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, timeout: float = 300,
        cwd: Path = REPO) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or tool_env(),
                          timeout=timeout, cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (the API server would keep the last)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {sorted(map(str, dupes))}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d]


def render_args(values_files=(), sets=(), kube_version: str | None = None,
                modern: bool = False) -> list[str]:
    args = []
    for f in values_files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    if kube_version:
        args += ["--kube-version", kube_version]
    if modern:
        for api in MODERN_API_VERSIONS:
            args += ["--api-versions", api]
    return args


@lru_cache(maxsize=256)
def _render(args: tuple, release: str, namespace: str) -> str:
    proc = run([tool("helm"), "template", release, str(CHART), "--namespace", namespace,
                *args])
    return proc.stdout


def render(values_files=(), sets=(), kube_version=None, modern=False, release="taxi-serve",
           namespace="taxi", include_tests=True) -> list[dict]:
    """Rendered objects of the chart (helm template), hooks included unless asked not to."""
    args = tuple(render_args([str(f) for f in values_files], sets, kube_version, modern))
    docs = load_docs(_render(args, release, namespace))
    if not include_tests:
        docs = [d for d in docs if "helm.sh/hook" not in
                (d.get("metadata", {}).get("annotations") or {})]
    return docs


def render_fails(values_files=(), sets=(), kube_version=None) -> str:
    """stderr of a render that must fail (schema or template `fail`)."""
    args = render_args([str(f) for f in values_files], sets, kube_version)
    proc = run([tool("helm"), "template", "t", str(CHART), *args], check=False)
    assert proc.returncode != 0, f"render with {args} unexpectedly succeeded"
    return proc.stderr


def scenario_files() -> list[Path]:
    return sorted(VALUES_DIR.glob("*.yaml"))


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(object id, pod spec) of every workload and pod the chart renders."""
    specs = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Pod":
            specs.append((f"Pod/{name}", d["spec"]))
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            specs.append((f"{kind}/{name}", d["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            specs.append((f"CronJob/{name}",
                          d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return specs
