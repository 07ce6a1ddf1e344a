-- wrk script for the proxy benchmark: POST one request of an API and check every answer.
-- API (chat, responses, completions, embeddings, messages; default chat) picks the body; STREAM=1
-- asks for an SSE stream, which counts as good only when it ends with the API's last event; a
-- JSON answer counts only when it is a 200.
local stream = os.getenv("STREAM") == "1"
local api = os.getenv("API") or "chat"
local bodies = {
  chat = '"messages":[{"role":"user","content":"ping"}]',
  responses = '"input":"ping"',
  completions = '"prompt":"ping"',
  embeddings = '"input":"ping"',
  messages = '"max_tokens":64,"messages":[{"role":"user","content":"ping"}]',
}
local models = {messages = "claude-bench", embeddings = "text-embedding-3-small"}
local last_events = {responses = "response.completed", messages = "message_stop"}
local last_event = last_events[api] or "data: [DONE]"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "bench"
wrk.body = '{"model":"' .. (models[api] or "gpt-4o-mini") .. '",' .. (stream and '"stream":true,' or "")
  .. bodies[api] .. '}'

local bad = 0
function response(status, headers, body)
  if status ~= 200 or (stream and not string.find(body, last_event, 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d bad=%d errors=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
