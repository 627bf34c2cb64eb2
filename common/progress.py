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

console = Console(stderr=True)


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


@contextmanager
def rounds(what: str, total: int) -> Iterator[Callable]:
    """A bar of boosting rounds; yields a LightGBM callback that advances it. Early stopping
    ends the bar before ``total``, which is then reported as the number of rounds kept."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with step(what), Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)

        def callback(env) -> None:
            bar.update(task, completed=env.iteration + 1)

        yield callback
