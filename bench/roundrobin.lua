-- wrk script: GET a path for each id of a file in turn, then print one machine-readable line.
-- usage: wrk ... -s roundrobin.lua <base url> -- <ids file> <path with {id}> [bearer token]
-- Threads start at different offsets, so the connections spread over all ids.

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local ids = {}
local prefix, suffix
local position = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
  prefix, suffix = args[2]:match("^(.-){id}(.*)$")
  if prefix == nil then -- a fixed path: the ids are not used
    prefix, suffix, ids = args[2], "", { "" }
  end
  if args[3] ~= nil and #args[3] > 0 then
    wrk.headers["Authorization"] = "Bearer " .. args[3]
  end
  position = ((thread_id or 0) * 7919) % #ids
end

function request()
  position = position % #ids + 1
  return wrk.format("GET", prefix .. ids[position] .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout))
end
