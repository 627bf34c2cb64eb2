"""Live: every scenario renders with the cluster's own capabilities and passes the API
server's validation and admission (server-side dry run, strict field validation)."""

from __future__ import annotations

import subprocess

import pytest
from chartlib import CHART, STRATEGIES, scenario_files, tool

pytestmark = pytest.mark.k8s
SCENARIOS = [pytest.param(("--set", f"rollout.strategy={s}"), id=s) for s in STRATEGIES] + [
    pytest.param(("-f", str(f)), id=f.stem) for f in scenario_files()]


@pytest.mark.parametrize("values", SCENARIOS)
def test_scenario_passes_server_side_dry_run(cluster, namespace, crd_stubs, values):
    # --validate: Helm takes .Capabilities from the cluster and checks its OpenAPI schema.
    manifest = cluster.helm("template", "taxi-serve", str(CHART), "-n", namespace,
                            "--validate", *values).stdout
    proc = subprocess.run([tool("kubectl"), "apply", "-n", namespace, "--dry-run=server",
                           "--validate=strict", "-f", "-"], input=manifest, text=True,
                          capture_output=True, env=cluster.env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(server dry run)" in proc.stdout
