"""Rolling accuracy from ground-truth feedback, per model version, track and target.

Feedback acceptance (service/feedback.py) adds each absolute error to a per-minute bucket
``taxi:acc:<version>:<track>:<target>:<minute>`` (fields ``n`` and ``sum``). A rolling MAE over
a window is the sum of the window's buckets divided by their count: one pipelined read, however
much feedback arrived. The service refreshes ``taxi_rolling_mae`` from these buckets with a
Lua script that sums them inside Redis (a 24 h window is 1,440 buckets: read through an asyncio
pipeline, the 6 windows x targets held the serving event loop for 39-55 ms every refresh); the
retrain job reads them with :func:`rolling_mae`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from datetime import datetime

import redis

from service import metrics

log = logging.getLogger("taxi.accuracy")
TARGETS = ("duration", "fare")
_WINDOW = re.compile(r"^(\d+)([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86_400}
MODEL_ROW = "lightgbm+features"  # the served model's row in training's evaluation report


def parse_windows(spec: str) -> dict[str, int]:
    """``"15m,1h,24h"`` -> ``{"15m": 900, "1h": 3600, "24h": 86400}``; minutes at least."""
    out = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        m = _WINDOW.match(part)
        if not m or int(m.group(1)) == 0:
            raise ValueError(f"window {part!r} must look like 15m, 1h or 1d")
        out[part] = int(m.group(1)) * _UNIT_S[m.group(2)]
    if not out:
        raise ValueError("at least one accuracy window is needed")
    return out


def window_minutes(window_s: int, now: float | None = None) -> tuple[int, int]:
    """First and last minute (unix minutes) of the window ending now, the current minute
    included: every reader of the ``taxi:acc`` buckets uses this window."""
    minute = int((time.time() if now is None else now) // 60)
    return minute - max(window_s // 60, 1) + 1, minute


def bucket_keys(version: str, track: str, target: str, window_s: int,
                now: float | None = None) -> list[str]:
    """Keys of the minute buckets that make up the window ending now."""
    first, last = window_minutes(window_s, now)
    return [f"taxi:acc:{version}:{track}:{target}:{m}" for m in range(first, last + 1)]


def _reduce(replies) -> tuple[float | None, int]:
    n, total = 0, 0.0
    for count, summed in replies:
        if count is not None:
            n += int(count)
            total += float(summed or 0.0)
    return (total / n if n else None), n


def rolling_mae(client: redis.Redis, version: str, track: str, target: str, window_s: int,
                now: float | None = None) -> tuple[float | None, int]:
    """MAE (seconds for duration, USD for fare) and its sample count over the window;
    ``(None, 0)`` without feedback."""
    pipe = client.pipeline(transaction=False)
    for key in bucket_keys(version, track, target, window_s, now):
        pipe.hmget(key, "n", "sum")
    return _reduce(pipe.execute())


# ARGV: bucket key prefix (taxi:acc:<version>:<track>:<target>:), first and last minute.
# Reply: {n, sum as a 17-digit string}: the same buckets bucket_keys() names, summed in Redis.
SUM_BUCKETS = """
local n, total = 0, 0
for minute = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  local v = redis.call('HMGET', ARGV[1] .. minute, 'n', 'sum')
  if v[1] then
    n = n + tonumber(v[1])
    total = total + tonumber(v[2] or '0')
  end
end
return {n, string.format('%.17g', total)}
"""


async def rolling_mae_async(script, version: str, track: str, target: str, window_s: int,
                            now: float | None = None) -> tuple[float | None, int]:
    """:func:`rolling_mae` summed inside Redis; ``script`` is ``SUM_BUCKETS`` registered on
    an asyncio Redis client."""
    first, last = window_minutes(window_s, now)
    n, total = await script(args=[f"taxi:acc:{version}:{track}:{target}:", first, last])
    n = int(n)
    return (float(total) / n if n else None), n


def offline_mae(metadata: dict) -> dict[str, float]:
    """The model's MAE on its evaluation month, in seconds (duration) and USD (fare)."""
    out = {}
    for target, scale in (("duration", 60.0), ("fare", 1.0)):  # training reports minutes
        value = metadata.get("metrics", {}).get(target, {}).get(MODEL_ROW, {}).get("mae")
        if value is not None:
            out[target] = float(value) * scale
    return out


class AccuracyReporter:
    """Keeps this process's accuracy gauges and the ``taxi:model:<version>`` hash fresh."""

    def __init__(self, predictor, windows: dict[str, int], refresh_s: float = 10.0):
        self.predictor, self.windows, self.refresh_s = predictor, windows, refresh_s
        self._task: asyncio.Task | None = None
        labels = predictor.labels
        meta = predictor.bundle.metadata
        self.offline = offline_mae(meta)
        for target, value in self.offline.items():
            metrics.OFFLINE_MAE.labels(**labels, target=target).set(value)
        created = meta.get("created_at")
        self.created_at = datetime.fromisoformat(created).timestamp() if created else None
        if self.created_at is not None:
            metrics.MODEL_CREATED.labels(**labels).set(self.created_at)

    def model_hash(self) -> dict[str, str]:
        """What the drift monitor needs to decode this version's logged vectors."""
        p = self.predictor
        out = {"columns": json.dumps(p.log_columns), "categorical": json.dumps(p.categorical),
               "store_features": json.dumps(p.store_features), "track": p.track}
        for target, value in self.offline.items():
            out[f"offline_mae_{target}"] = f"{value:.4f}"
        if self.created_at is not None:
            out["created_at"] = f"{self.created_at:.0f}"
        return out

    async def refresh(self, client, script) -> None:
        """One round: publish the model hash, recompute every rolling gauge (``script``:
        ``SUM_BUCKETS`` registered on ``client``)."""
        p = self.predictor
        await client.hset(f"taxi:model:{p.version}", mapping=self.model_hash())
        for target in TARGETS:
            for name, seconds in self.windows.items():
                mae, n = await rolling_mae_async(script, p.version, p.track, target, seconds)
                labels = dict(p.labels, target=target, window=name)
                metrics.ROLLING_SAMPLES.labels(**labels).set(n)
                if mae is not None:
                    metrics.ROLLING_MAE.labels(**labels).set(mae)

    async def run(self, redis_url: str) -> None:
        """Refresh forever; Redis trouble only delays the next round."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        script = client.register_script(SUM_BUCKETS)
        try:
            while True:
                try:
                    await self.refresh(client, script)
                except (redis.RedisError, OSError, TimeoutError) as exc:
                    log.warning("accuracy refresh failed: %s", exc)
                await asyncio.sleep(self.refresh_s)
        finally:
            await client.aclose()

    def start(self, redis_url: str) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(redis_url))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
