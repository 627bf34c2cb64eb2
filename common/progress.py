"""Progress of the long steps (ingest, validate, features, train, compile, materialize).

Each step logs a line when it starts and one with its duration when it ends, so even a log
file shows where the time goes; boosting gets a live bar of its rounds in a terminal. Rich
writes to stderr, which keeps stdout for results (JSON, tables).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, log_path=False)  # the step names say where


@contextmanager
def step(what: str) -> Iterator[None]:
    """Log ``what`` now and ``what: done in N s`` when the block ends (or ``failed``)."""
    start = time.monotonic()
    console.log(f"{what} ...")
    try:
        yield
    except BaseException:
        console.log(f"{what}: failed after {time.monotonic() - start:.1f} s")
        raise
    console.log(f"{what}: done in {time.monotonic() - start:.1f} s")


LOG_EVERY_S = 30.0  # without a terminal (CI, a log file): one line this often


@contextmanager
def rounds(what: str, total: int) -> Iterator[Callable]:
    """Boosting rounds: yields a LightGBM callback that advances a bar in a terminal, or logs
    the round reached every ``LOG_EVERY_S`` seconds elsewhere. Early stopping may end it
    before ``total``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with step(what), Progress(*columns, console=console, transient=True,
                              disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=total)
        last = [time.monotonic()]

        def callback(env) -> None:
            bar.update(task, completed=env.iteration + 1)
            if not console.is_terminal and time.monotonic() - last[0] >= LOG_EVERY_S:
                last[0] = time.monotonic()
                console.log(f"{what}: round {env.iteration + 1}")

        yield callback
