"""Per-stage wall time, CPU time, rows/s and peak memory of the offline pipeline.

Peak memory is the process's resident set size sampled every 50 ms by a background thread
(psutil): that is what a cgroup or a Kubernetes memory limit counts, native buffers
(Arrow, DuckDB, LightGBM) included, which tracemalloc would not see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import psutil

_MB = 1024 * 1024


@dataclass
class Stage:
    name: str
    rows: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class Meter:
    """Collects one ``Stage`` per ``with meter.stage(name) as s:`` block."""

    stages: list[Stage] = field(default_factory=list)
    interval_s: float = 0.05
    log: Callable[[str], None] | None = None  # told of each stage as it ends

    @contextmanager
    def stage(self, name: str):
        proc = psutil.Process()
        stage = Stage(name)
        peak = [proc.memory_info().rss]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval_s):
                peak[0] = max(peak[0], proc.memory_info().rss)

        sampler = threading.Thread(target=sample, name=f"rss-{name}", daemon=True)
        sampler.start()
        wall, cpu = time.monotonic(), time.process_time()
        try:
            yield stage
        finally:
            stage.wall_s = time.monotonic() - wall
            stage.cpu_s = time.process_time() - cpu
            done.set()
            sampler.join()
            stage.peak_rss_mb = max(peak[0], proc.memory_info().rss) / _MB
            self.stages.append(stage)
            if self.log:
                self.log(f"{name}: {stage.rows:,} rows in {stage.wall_s:.1f} s "
                         f"(CPU {stage.cpu_s:.1f} s), peak RSS {stage.peak_rss_mb:,.0f} MB")

    @property
    def peak_rss_mb(self) -> float:
        return max((s.peak_rss_mb for s in self.stages), default=0.0)

    def as_dicts(self) -> list[dict]:
        return [asdict(s) | {"rows_per_s": round(s.rows_per_s, 1)} for s in self.stages]

    def markdown(self) -> str:
        lines = ["| stage | rows | wall s | CPU s | rows/s | peak RSS MB |",
                 "|---|---:|---:|---:|---:|---:|"]
        for s in self.stages:
            lines.append(f"| {s.name} | {s.rows:,} | {s.wall_s:.1f} | {s.cpu_s:.1f} | "
                         f"{s.rows_per_s:,.0f} | {s.peak_rss_mb:,.0f} |")
        total_wall = sum(s.wall_s for s in self.stages)
        total_cpu = sum(s.cpu_s for s in self.stages)
        lines.append(f"| total | | {total_wall:.1f} | {total_cpu:.1f} | | "
                     f"{self.peak_rss_mb:,.0f} |")
        return "\n".join(lines)
