"""Progress output of long steps (common/progress.py): never a silent stretch."""

import io

import pytest
from rich.console import Console

from common import progress

pytestmark = pytest.mark.unit


@pytest.fixture()
def log(monkeypatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=out, width=200, log_time=False))
    return out


def test_a_step_logs_its_start_and_its_duration(log):
    with progress.step("validate 10 trips"):
        assert "validate 10 trips ..." in log.getvalue()  # before the work, not after
    assert "validate 10 trips: done in " in log.getvalue()


def test_a_failed_step_says_so_and_raises(log):
    with pytest.raises(ValueError), progress.step("compile"):
        raise ValueError("no linker")
    assert "compile: failed after" in log.getvalue() and "done" not in log.getvalue()


def test_rounds_without_a_terminal_log_the_round_reached(log, monkeypatch):
    import lightgbm as lgb
    import numpy as np

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    data = lgb.Dataset(x, label=x[:, 0], params={"verbose": -1})
    with progress.rounds("fit duration", 5) as callback:
        lgb.train({"verbose": -1, "num_threads": 1}, data, num_boost_round=5,
                  callbacks=[callback])
    text = log.getvalue()
    assert "fit duration: round 5" in text and "fit duration: done in" in text
