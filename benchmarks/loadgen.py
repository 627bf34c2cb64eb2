"""Load generators over loopback: open loop (fixed offered rate, latency measured from the
scheduled send time, so a stalled server cannot hide its queueing) and closed loop (N clients
back to back, for saturation throughput). HTTP uses a minimal keep-alive HTTP/1.1 client on
asyncio streams: the load generator shares the 2 cores with the server, so it must be cheap."""

from __future__ import annotations

import asyncio
import itertools
import json
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


def post_request(host: str, path: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 POST of a JSON body, as bytes on the wire."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class HttpConnection:
    """One keep-alive HTTP/1.1 connection sending prepared POSTs."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer:
            self.writer.close()


async def http_caller(url: str, path: str, payloads: list[dict], connections: int):
    """A pool of connections and a call() that borrows one and posts the next payload, in
    turn (status code -> ok?). Requests are encoded up front to keep the generator cheap."""
    host, port = url.split("//")[1].split(":")
    requests = [post_request(host, path, json.dumps(p).encode()) for p in payloads]
    turn = itertools.cycle(requests)
    pool: asyncio.Queue = asyncio.Queue()
    conns = [HttpConnection(host, int(port)) for _ in range(connections)]
    for c in conns:
        await c.open()
        pool.put_nowait(c)

    async def call() -> bool:
        conn = await pool.get()
        try:
            return await conn.call(next(turn)) == 200
        finally:
            pool.put_nowait(conn)
    return call, lambda: [c.close() for c in conns]


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
