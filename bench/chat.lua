-- wrk script for the proxy benchmark: POST a chat completion and check every answer.
-- STREAM=1 in the environment asks for an SSE stream; a stream counts as good only when it
-- ends with `data: [DONE]`, a JSON answer only when it is a 200.
local stream = os.getenv("STREAM") == "1"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "bench"
if stream then
  wrk.body = '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"ping"}]}'
else
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ping"}]}'
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 or (stream and not string.find(body, "data: [DONE]", 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d bad=%d errors=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
