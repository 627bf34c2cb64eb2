"""`make` alone (the help) reads as prose: no make syntax leaks into it."""

import re
import shutil
import subprocess

import pytest

from common.paths import ROOT

pytestmark = pytest.mark.unit


def test_help_lists_the_targets_without_make_syntax():
    make = shutil.which("make")
    assert make, "make is a prerequisite of the project"
    out = subprocess.run([make, "-s", "-C", str(ROOT), "help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)
    targets = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert {"serve", "test", "train", "setup", "test-drift", "prometheus-tools"} <= targets
    assert "$(" not in text and "$$" not in text, text
