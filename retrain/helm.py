"""Helm as the source of truth: every change the job makes is one ``helm upgrade
--reuse-values`` with a description saying why, so ``helm history`` tells the whole story."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from common.paths import ROOT
from retrain.audit import log_json
from retrain.settings import RetrainSettings


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""


def chart_path(chart: str) -> str:
    """TAXI_HELM_CHART is a path, or ``<name>-<version>`` naming the chart shipped in the image
    (helm/<name>, whose Chart.yaml must carry that version)."""
    if Path(chart).exists():
        return chart
    name, _, version = chart.rpartition("-")
    local = ROOT / "helm" / name
    meta = local / "Chart.yaml"
    if meta.exists() and f"version: {version}" in meta.read_text():
        return str(local)
    raise FileNotFoundError(f"chart {chart!r} is neither a path nor helm/{name} at {version}")


class Helm:
    """One release in one namespace."""

    def __init__(self, cfg: RetrainSettings, namespace: str):
        self.cfg, self.ns, self.release = cfg, namespace, cfg.helm_release
        self.env = dict(os.environ)
        if cfg.kubeconfig:
            self.env["KUBECONFIG"] = str(cfg.kubeconfig)

    def _run(self, *args: str, timeout: float = 900) -> str:
        cmd = [self.cfg.helm_bin, *args, "-n", self.ns]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)
        if proc.returncode != 0:
            raise HelmError(f"{' '.join(cmd[:3])} exited {proc.returncode}: "
                            f"{proc.stderr.strip()[-1500:]}")
        return proc.stdout

    def values(self) -> dict:
        """The release's effective values (chart defaults merged with everything set)."""
        return json.loads(self._run("get", "values", self.release, "--all", "-o", "json"))

    def revision(self) -> int:
        return int(json.loads(self._run("status", self.release, "-o", "json"))["version"])

    def history(self) -> list[dict]:
        return json.loads(self._run("history", self.release, "-o", "json", "--max", "50"))

    def upgrade(self, sets: dict[str, object], description: str, dry_run: bool = False) -> int:
        """``helm upgrade --reuse-values --set ...`` and wait; returns the new revision (the
        current one on a dry run, which the API server still validates)."""
        args = ["upgrade", self.release, chart_path(self.cfg.helm_chart), "--reuse-values",
                "--wait", "--timeout", self.cfg.helm_timeout,
                "--description", description[:240]]
        for key, value in sets.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["--set-string" if isinstance(value, str) else "--set", f"{key}={text}"]
        if dry_run:
            args.append("--dry-run")
        log_json("helm-upgrade", sets=sets, description=description, dry_run=dry_run)
        self._run(*args)
        return self.revision()


def strategy_values(values: dict) -> tuple[str, dict]:
    """The rollout strategy and its block of values."""
    rollout = values["rollout"]
    strategy = rollout["strategy"]
    return strategy, rollout.get(strategy, {}) if strategy != "standard" else {}
