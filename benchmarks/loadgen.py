"""Load loops over loopback for benchmarks.grpcgen (HTTP goes through wrk): open loop (fixed
offered rate, latency measured from the scheduled send time, so a stalled server cannot hide
its queueing) and closed loop (N clients back to back, for saturation throughput)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    """Latencies (seconds) of answered requests, errors and wall time of one run."""

    offered: float | None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def row(self) -> dict:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return {"offered": "closed" if self.offered is None else f"{self.offered:.0f}/s",
                "achieved": len(self.latencies) / self.seconds if self.seconds else 0.0,
                "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                "errors": self.errors, "n": len(self.latencies)}


async def open_loop(call: Callable[[], Awaitable[bool]], rate: float, seconds: float) -> Result:
    """Send at ``rate`` per second for ``seconds``; latency counts from the scheduled time."""
    result, tasks = Result(offered=rate), []
    start = time.perf_counter()
    total = int(rate * seconds)

    async def one(scheduled: float):
        try:
            ok = await call()
        except (OSError, asyncio.IncompleteReadError, Exception):  # noqa: BLE001 - count it
            ok = False
        if ok:
            result.latencies.append(time.perf_counter() - scheduled)
        else:
            result.errors += 1

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    return result


async def closed_loop(call: Callable[[], Awaitable[bool]], clients: int,
                      seconds: float) -> Result:
    """``clients`` callers back to back for ``seconds``: saturation throughput."""
    result = Result(offered=None)
    stop = time.perf_counter() + seconds

    async def client():
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                ok = await call()
            except Exception:  # noqa: BLE001 - a failed call is counted, not raised
                ok = False
            if ok:
                result.latencies.append(time.perf_counter() - t0)
            else:
                result.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result
