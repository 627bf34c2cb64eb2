"""Drive an HTTP endpoint with wrk (C, from Debian; `make bench` installs it) and the
benchmarks/wrk_post.lua script: one JSON body a line of a file, in turn, open loop at a fixed
rate (paced sends, latency from each send) or closed loop as fast as the connections go."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_post.lua")


def binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk not found: `make bench` installs it (apt-get install wrk)")
    return found


def run(url: str, bodies: Path, seconds: float, connections: int, rate: float = 0.0) -> dict:
    """One wrk run (1 thread) of ``seconds``; ``rate`` 0 means closed loop. A row with
    offered, achieved req/s, p50/p99 ms, errors and count."""
    cmd = [binary(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(SCRIPT), url, "--", str(bodies)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True,
                          env={**os.environ, "WRK_RATE": str(rate)})
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    got = json.loads(line)
    return {"offered": f"{rate:.0f}/s" if rate else f"closed ({connections})",
            "achieved": got["n"] / (got["us"] / 1e6), "p50_ms": got["p50_us"] / 1000,
            "p99_ms": got["p99_us"] / 1000, "errors": got["errors"], "n": got["n"]}
