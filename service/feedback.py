"""Ground-truth feedback: validated, joined to the logged prediction, stored exactly once.

One Lua script does the whole acceptance atomically inside Redis: the idempotency check, the
join with ``taxi:pred:<request_id>``, the ``taxi:feedback`` stream entry and the per-minute
accuracy buckets. A retry after a lost reply therefore finds the idempotency marker and is
answered ``duplicate``; nothing is ever counted twice. Unknown or expired request ids are
kept in ``taxi:feedback:unmatched`` (nothing is lost) and reported, not treated as errors.
The service answers 202 only after the script has run, i.e. after Redis has the entry; with
Redis' append-only file on ``appendfsync always`` that means on disk (docs/monitoring.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from service import metrics
from service.schemas import RequestId

FEEDBACK_STREAM = "taxi:feedback"
UNMATCHED_STREAM = "taxi:feedback:unmatched"
BUCKET_TTL_S = 3 * 86_400  # longer than the longest rolling window

# KEYS: seen marker (holds 'version|track', answered again to a duplicate), prediction hash,
#       feedback stream, unmatched stream
# ARGV: request id, actual duration ('' = absent), actual fare, now (unix s), marker TTL,
#       stream max length, bucket TTL
_ACCEPT = """
local seen = redis.call('GET', KEYS[1])
if seen then
  local v, t = string.match(seen, '^([^|]*)|([^|]*)$')
  if v then return {'duplicate', v, t} end
  return {'duplicate'}
end
local raw = redis.call('GET', KEYS[2])
local p = {}
if raw then p = {string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|')} end
if not p[1] then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'rid', ARGV[1],
             'act_dur', ARGV[2], 'act_fare', ARGV[3], 'ts', ARGV[4])
  return {'unknown_request'}
end
local err_dur, err_fare = '', ''
if ARGV[2] ~= '' then err_dur = tostring(math.abs(tonumber(ARGV[2]) - tonumber(p[3]))) end
if ARGV[3] ~= '' then err_fare = tostring(math.abs(tonumber(ARGV[3]) - tonumber(p[4]))) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'rid', ARGV[1], 'v', p[1], 't', p[2],
           'ts', ARGV[4], 'pred_dur', p[3], 'pred_fare', p[4], 'act_dur', ARGV[2],
           'act_fare', ARGV[3], 'err_dur', err_dur, 'err_fare', err_fare)
redis.call('SET', KEYS[1], p[1] .. '|' .. p[2], 'EX', ARGV[5])
local minute = math.floor(tonumber(ARGV[4]) / 60)
local base = 'taxi:acc:' .. p[1] .. ':' .. p[2] .. ':'
for target, err in pairs({duration = err_dur, fare = err_fare}) do
  if err ~= '' then
    local key = base .. target .. ':' .. minute
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('HINCRBYFLOAT', key, 'sum', err)
    redis.call('EXPIRE', key, ARGV[7])
  end
end
return {'accepted', p[1], p[2]}
"""

Outcome = Literal["accepted", "duplicate", "unknown_request"]


class FeedbackRequest(BaseModel):
    """What actually happened on a trip the service predicted."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "request_id": "ride-42", "actual_duration_seconds": 912.0, "actual_fare_usd": 15.1}]})

    request_id: RequestId
    actual_duration_seconds: StrictFloat | None = Field(
        default=None, gt=0, le=6 * 3600, allow_inf_nan=False,
        description="seconds from pickup to dropoff (0 < x <= 6 h)")
    actual_fare_usd: StrictFloat | None = Field(
        default=None, ge=0, le=1000, allow_inf_nan=False,
        description="metered fare in USD (0 <= x <= 1000)")

    @model_validator(mode="after")
    def _some_truth(self) -> FeedbackRequest:
        if self.actual_duration_seconds is None and self.actual_fare_usd is None:
            raise ValueError("give actual_duration_seconds, actual_fare_usd or both")
        return self


class FeedbackReply(BaseModel):
    """``accepted``: stored and joined; ``duplicate``: stored before, not counted again;
    ``unknown_request``: no logged prediction (unknown or expired id), kept unmatched."""

    request_id: str
    status: Outcome
    model_version: str | None = None
    track: str | None = None


class FeedbackStore:
    """Accepts feedback into Redis (one atomic script per feedback)."""

    def __init__(self, redis_url: str, ttl_s: int = 21_600, stream_maxlen: int = 1_000_000,
                 timeout_s: float = 2.0):
        self.redis_url, self.ttl_s, self.stream_maxlen = redis_url, ttl_s, stream_maxlen
        self.timeout_s = timeout_s
        self._client, self._loop, self._script = None, None, None

    @property
    def client(self) -> aioredis.Redis:
        """This event loop's connection pool (asyncio connections cannot change loops)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._client, self._loop = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s), loop
            self._script = self._client.register_script(_ACCEPT)
        return self._client

    async def accept(self, fb: FeedbackRequest, now: float | None = None) -> FeedbackReply:
        """Store one feedback; raises redis errors (the caller answers 503, nothing stored)."""
        client = self.client
        rid = fb.request_id
        blank = ""
        args = [rid, blank if fb.actual_duration_seconds is None else repr(
                    float(fb.actual_duration_seconds)),
                blank if fb.actual_fare_usd is None else repr(float(fb.actual_fare_usd)),
                f"{time.time() if now is None else now:.3f}", 2 * self.ttl_s,
                self.stream_maxlen, BUCKET_TTL_S]
        keys = [f"taxi:feedback:seen:{rid}", f"taxi:pred:{rid}", FEEDBACK_STREAM,
                UNMATCHED_STREAM]
        reply = await self._script(keys=keys, args=args, client=client)
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        version = track = None
        if len(reply) >= 3:  # accepted, or a duplicate of an accepted one
            version, track = (v.decode() if isinstance(v, bytes) else v for v in reply[1:3])
        metrics.FEEDBACK.labels(status).inc()
        return FeedbackReply(request_id=rid, status=status, model_version=version, track=track)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
