-- wrk script for `make bench`: POSTs one JSON body a line of a file in turn (all requests
-- formatted up front), optionally paced to a fixed total rate, and prints one JSON line.
-- Argument after `--`: BODIES_FILE. Environment: WRK_RATE, total req/s (unset or 0: as fast
-- as the connections go). The rate is read when the script loads: wrk looks for delay()
-- before it calls init(), and a delay() returning 0 would still cost a timer per request.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local requests, turn, next_slot = {}, 0, nil
local rate = tonumber(os.getenv("WRK_RATE") or "0") or 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", wrk.path, headers, line)
  end
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

-- Absolute send slots 1/rate apart, shared by the thread's connections: a connection that is
-- free takes the next slot, so a slow answer delays one connection, not the offered rate.
-- wrk counts latency from the actual send (its timer is whole milliseconds).
if rate > 0 then
  local interval = 1000 / rate
  function delay()
    local t = now_ms()
    if next_slot == nil then next_slot = t end
    next_slot = next_slot + interval
    local d = next_slot - t
    return d > 0 and math.floor(d) or 0
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"n": %d, "us": %d, "errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
