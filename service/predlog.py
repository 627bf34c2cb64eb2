"""The prediction log: every answered trip goes to a Redis stream, off the critical path.

A request only appends a reference to its trips' columns to a bounded in-memory buffer (a few
microseconds); a background task in the same event loop builds the vectors and drains the
buffer in pipelined batches, ten times a second, into
``taxi:predlog`` (the drift monitor's input) and ``taxi:pred:<request_id>`` (what feedback
joins to; expires after the feedback TTL). When the buffer is full or Redis fails, the trips
that could not be logged are counted (``taxi_prediction_log_total``) and the answer is served
anyway: logging never blocks or fails a request. Key layout: docs/monitoring.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import redis.asyncio as aioredis

from service import metrics
from training.model import matrix

log = logging.getLogger("taxi.predlog")
STREAM = "taxi:predlog"
PRED_KEY = "taxi:pred:{}"


@dataclass
class Batch:
    """The trips of one request: ids, predictions and the model's input columns (the arrays
    the request computed anyway; the vectors are built from them off the request path)."""

    ids: list[str]
    ts: float
    duration: np.ndarray
    fare: np.ndarray
    columns: dict[str, np.ndarray]


def pred_value(version: str, track: str, dur: str, fare: str, ts: str) -> str:
    """``taxi:pred:<rid>``: one compact string (one SET per trip; feedback's script splits it)."""
    return f"{version}|{track}|{dur}|{fare}|{ts}"


@dataclass
class PredictionLog:
    """Bounded buffer + background flusher for one model version and track."""

    redis_url: str
    version: str
    track: str
    log_columns: list[str]  # the logged vector's order (taxi:model:<version> columns)
    capacity: int = 10_000  # trips held in memory at most
    stream_maxlen: int = 200_000
    ttl_s: int = 21_600
    batch_trips: int = 1024
    # Few, large flushes: each flush holds the event loop for a while, and requests that
    # arrive meanwhile wait; at 0.1 s almost no request meets one.
    interval_s: float = 0.1
    timeout_s: float = 1.0
    _buffer: deque = field(default_factory=deque, init=False)
    _held: int = field(default=0, init=False)
    _task: asyncio.Task | None = field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _client: aioredis.Redis | None = field(default=None, init=False)
    _wake: asyncio.Event | None = field(default=None, init=False)
    _writing: bool = field(default=False, init=False)

    def record(self, ids: list[str], duration: np.ndarray, fare: np.ndarray,
               columns: dict[str, np.ndarray]) -> None:
        """Queue one request's trips; never blocks. Full buffer -> counted as dropped.
        ``columns`` must not be modified afterwards (the flusher reads it later)."""
        n = len(ids)
        if self._held + n > self.capacity:
            metrics.PREDLOG.labels("dropped_buffer_full").inc(n)
            return
        self._buffer.append(Batch(ids, time.time(), duration, fare, columns))
        self._held += n
        self._ensure_flusher()
        if self._held >= self.batch_trips:
            self._wake.set()

    def _ensure_flusher(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            # asyncio objects belong to one loop; a new loop (tests, tools) gets its own.
            self._loop, self._wake = loop, asyncio.Event()
            self._client = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s)
            self._task = loop.create_task(self._run(), name="predlog-flusher")

    def _take(self) -> list[Batch]:
        out, n = [], 0
        while self._buffer and n < self.batch_trips:
            batch = self._buffer.popleft()
            out.append(batch)
            n += len(batch.ids)
        self._held -= n
        return out

    async def _run(self) -> None:
        backoff = self.interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            while self._buffer:
                batches = self._take()
                self._writing = True
                try:
                    ok = await self._write(batches)
                finally:
                    self._writing = False
                if not ok:
                    backoff = min(max(backoff * 2, 0.05), 1.0)  # Redis is down: do not spin
                    break
                backoff = self.interval_s

    async def _write(self, batches: list[Batch]) -> bool:
        n = sum(len(b.ids) for b in batches)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for b in batches:
                    ts = f"{b.ts:.3f}"
                    vectors = matrix(b.columns, self.log_columns, len(b.ids)).astype("<f4")
                    for i, rid in enumerate(b.ids):
                        dur, fare = f"{b.duration[i]:.1f}", f"{b.fare[i]:.2f}"
                        pipe.xadd(STREAM, {"rid": rid, "ts": ts, "v": self.version,
                                           "t": self.track, "dur": dur, "fare": fare,
                                           "x": vectors[i].tobytes()},
                                  maxlen=self.stream_maxlen, approximate=True)
                        pipe.set(PRED_KEY.format(rid),
                                 pred_value(self.version, self.track, dur, fare, ts),
                                 ex=self.ttl_s)
                await pipe.execute()
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            metrics.PREDLOG.labels("dropped_redis_error").inc(n)
            log.warning("prediction log: %d trips not logged (%s)", n, exc)
            return False
        metrics.PREDLOG.labels("written").inc(n)
        return True

    async def drain(self, timeout: float = 5.0) -> None:
        """Flush what is buffered (used at shutdown and by tests)."""
        deadline = time.monotonic() + timeout
        while (self._buffer or self._writing) and time.monotonic() < deadline:
            if self._wake is not None:
                self._wake.set()
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=2.0)  # never hang a shutdown
        if self._client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.aclose(), timeout=2.0)
