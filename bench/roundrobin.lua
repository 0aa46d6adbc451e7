-- wrk script: GET a path for each id of a file in turn, then print one machine-readable line.
-- usage: wrk ... -s roundrobin.lua <base url> -- <ids file> <path with {id}> [bearer token]
-- A line of the ids file is an id, or an id, a tab and an ETag to send as If-None-Match.
-- Threads start at different offsets, so the connections spread over all ids.

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local requests = {}
local position = 0

function init(args)
  local prefix, suffix = args[2]:match("^(.-){id}(.*)$")
  local lines = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      lines[#lines + 1] = line
    end
  end
  if prefix == nil then -- a fixed path: the ids are not used
    prefix, suffix, lines = args[2], "", { "" }
  end
  local token = args[3]
  for _, line in ipairs(lines) do
    local id, etag = line:match("^([^\t]*)\t(.+)$")
    id = id or line
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    if token ~= nil and #token > 0 then
      headers["Authorization"] = "Bearer " .. token
    end
    if etag ~= nil then
      headers["If-None-Match"] = etag
    end
    requests[#requests + 1] = wrk.format("GET", prefix .. id .. suffix, headers)
  end
  position = ((thread_id or 0) * 7919) % #requests
end

function request()
  position = position % #requests + 1
  return requests[position]
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
