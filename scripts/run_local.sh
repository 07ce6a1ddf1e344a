#!/usr/bin/env bash
# `make run`: openaimock on MOCK_PORT (4000) and the gateway on LISTEN_ADDR (0.0.0.0:8080) in front
# of it, in the foreground. Ctrl-C (or SIGTERM) stops both. Settings come from the environment and
# `.env` as usual; the upstream is always the local mock, so no real key is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
MOCK_PORT="${MOCK_PORT:-4000}"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

PORT="$MOCK_PORT" HOST=127.0.0.1 "$VENV/bin/openaimock" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$MOCK_PORT/v1/models" 2>/dev/null && break
  sleep 0.1
done
echo "openaimock listening on http://127.0.0.1:$MOCK_PORT"

OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT" \
OPENAI_API_KEY="${OPENAI_API_KEY:-sk-local-mock-key}" \
  "$VENV/bin/secure-llm-gateway" &
pids+=($!)

# Either process ending (or Ctrl-C) ends both.
wait -n "${pids[@]}"
