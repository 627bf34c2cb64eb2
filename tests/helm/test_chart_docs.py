"""Offline: every command block of docs/operations.md is run by a live test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from livelib import doc_steps

pytestmark = pytest.mark.helm
HERE = Path(__file__).resolve().parent


def test_operations_md_has_the_required_procedures():
    steps = doc_steps()
    for required in ("install", "canary-install", "canary-weight", "canary-promote",
                     "canary-rollback", "bluegreen-install", "bluegreen-promote",
                     "bluegreen-rollback", "rollout-status", "rollout-undo"):
        assert required in steps, required


def test_every_step_of_operations_md_is_run_by_a_live_test():
    used = set()
    for path in HERE.glob("test_live_*.py"):
        text = path.read_text()
        used |= set(re.findall(r'run_step\([^,]+,\s*"([a-z0-9-]+)"', text))
        used |= set(re.findall(r'step_script\("([a-z0-9-]+)"\)', text))
    missing = set(doc_steps()) - used - {"env"}  # "env" is run before every step
    assert not missing, f"operations.md steps no live test runs: {sorted(missing)}"
    unknown = used - set(doc_steps())
    assert not unknown, f"live tests run steps operations.md lacks: {sorted(unknown)}"


def test_operations_md_uses_the_chart_in_this_repository():
    for step_id, body in doc_steps().items():
        for line in body.splitlines():
            if line.startswith(("helm install", "helm upgrade")):
                assert 'helm/taxi-serve -n "$NS"' in line, (step_id, line)
