-- wrk script: POSTs the JSON bodies of $BODIES (one per line) round-robin and prints one JSON
-- result line at the end (latencies in ms). Environment:
--   BODIES    file of bodies (required)
--   TOKEN     bearer token; sent as "Authorization: Bearer $TOKEN" when set and not empty
--   PURPOSE   sent as "Registry-Purpose" when set and not empty
-- Errors counted: socket errors (connect/read/write), timeouts, HTTP status >= 400 ("non2xx"),
-- and answers whose body holds a top-level GraphQL "errors" member ("gql_errors", e.g. a
-- FORBIDDEN field or a refused purpose: those come with HTTP 200).
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token, purpose = os.getenv("TOKEN"), os.getenv("PURPOSE")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if purpose and purpose ~= "" then wrk.headers["Registry-Purpose"] = purpose end

-- per-thread state; done() runs in another Lua state and reads it through thread:get()
local threads = {}
function setup(thread) threads[#threads + 1] = thread end

gql_errors = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

response = function(status, headers, body)
  -- plain find (no pattern): cheap even on Q1's 250 KB bodies. The generated texts never
  -- contain the quoted word, so only a real GraphQL error member matches.
  -- (HTTP >= 400 is counted by wrk itself as non2xx)
  if status < 400 and body and string.find(body, '"errors"', 1, true) then gql_errors = gql_errors + 1 end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local gql = 0
  for _, t in ipairs(threads) do gql = gql + (t:get("gql_errors") or 0) end
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.2f, "rps": %.1f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, '
      .. '"max_ms": %.2f, "errors": %d, "socket_errors": %d, "timeouts": %d, "non2xx": %d, "gql_errors": %d, '
      .. '"bytes": %d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    e.connect + e.read + e.write + e.status + e.timeout + gql,
    e.connect + e.read + e.write, e.timeout, e.status, gql, summary.bytes))
end
