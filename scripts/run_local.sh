#!/usr/bin/env bash
# `make run`: openaimock on MOCK_PORT (4000) and the gateway on LISTEN_ADDR (0.0.0.0:8080) in front
# of it, in the foreground. Ctrl-C (or SIGTERM) stops both. Settings come from the environment and
# `.env` as usual; the upstream is always the local mock, so no real key is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
MOCK_PORT="${MOCK_PORT:-4000}"
# Where the gateway will listen: the environment, else .env (as the gateway reads it), else its default.
listen="${LISTEN_ADDR:-}"
if [[ -z "$listen" && -f .env ]]; then
  listen="$(sed -n 's/^[[:space:]]*LISTEN_ADDR[[:space:]]*=[[:space:]]*//p' .env | tail -n 1 | tr -d "\"'")"
fi
listen="${listen:-0.0.0.0:8080}"

# Refuse at once, in one line, when a port is taken (rather than a traceback after a wait).
port_free() {
  "$VENV/bin/python" -c 'import socket, sys
host, port = sys.argv[1].strip("[]"), int(sys.argv[2])
try:
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
except OSError:
    sys.exit(1)' "$1" "$2"
}
port_free 127.0.0.1 "$MOCK_PORT" ||
  { echo "make run: port $MOCK_PORT (the mock) is busy; free it or pick another with MOCK_PORT=..." >&2; exit 1; }
port_free "${listen%:*}" "${listen##*:}" ||
  { echo "make run: port ${listen##*:} (the gateway) is busy; free it or pick another with LISTEN_ADDR=host:port" >&2; exit 1; }

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

PORT="$MOCK_PORT" HOST=127.0.0.1 "$VENV/bin/openaimock" &
mock=$!
pids+=("$mock")
for attempt in $(seq 1 101); do
  curl -fsS -o /dev/null "http://127.0.0.1:$MOCK_PORT/v1/models" 2>/dev/null && break
  kill -0 "$mock" 2>/dev/null || { echo "make run: openaimock exited before answering" >&2; exit 1; }
  ((attempt <= 100)) || { echo "make run: openaimock did not answer on :$MOCK_PORT within 10 s" >&2; exit 1; }
  sleep 0.1
done
echo "openaimock listening on http://127.0.0.1:$MOCK_PORT"

OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT" \
OPENAI_API_KEY="${OPENAI_API_KEY:-sk-local-mock-key}" \
  "$VENV/bin/secure-llm-gateway" &
pids+=($!)

# Either process ending (or Ctrl-C) ends both.
wait -n "${pids[@]}"
