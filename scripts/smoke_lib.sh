# shellcheck shell=bash
# Shared by the smoke_test_*.sh scripts (sourced, not run). Knobs, all optional:
#   HOST        gateway base URL                                   (http://localhost:8080)
#   KEY         API key (the tenant in the open auth mode)         (per script)
#   REQUESTS    how many requests                                  (per script)
#   PARALLEL    how many at once                                   (per script)
#   MODEL       model name sent                                    (gpt-4o-mini, or per script)
#   REDIS_CLI   command that runs redis-cli against the gateways' Redis, used to reset counters;
#               empty: no reset (the embedded store of `make run` without REDIS_URL). Examples:
#                 REDIS_CLI="redis-cli -p 6379"
#                 REDIS_CLI="kubectl -n llm exec -i llm-secure-llm-gateway-redis-0 -- sh -c 'redis-cli -a \"\$REDIS_PASSWORD\" --no-auth-warning \"\$@\"' redis-cli"
#   TENANT_HASH_KEY  set it (the chart's tenant-hash-key) when the gateways run PRIVACY_MODE=strict:
#               their Redis keys are then HMAC pseudonyms of the key, not the key.
set -euo pipefail

HOST="${HOST:-http://localhost:8080}"
MODEL="${MODEL:-gpt-4o-mini}"
REDIS_CLI="${REDIS_CLI-}"
RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT

# The id the gateway stores a key under in Redis (see PRIVACY_MODE).
redis_id() {
  if [[ -n "${TENANT_HASH_KEY:-}" ]]; then
    printf %s "$1" | openssl dgst -sha256 -hmac "$TENANT_HASH_KEY" -r | cut -c1-12
  else
    printf %s "$1"
  fi
}

# Delete Redis keys (names given without the id, which goes in the key's hash tag:
# `quota:{demo}`), e.g. `reset quota ratelimit tokens`.
reset() {
  if [[ -z "$REDIS_CLI" ]]; then
    echo "no REDIS_CLI: counters not reset (use a fresh KEY if an earlier run left some)"
    return
  fi
  local id keys=()
  id="$(redis_id "$KEY")"
  for prefix in "$@"; do keys+=("'$prefix:{$id}'"); done
  eval "$REDIS_CLI DEL ${keys[*]}" >/dev/null
  echo "reset: ${keys[*]}"
}

# One chat request; appends "<status> <error code> <seconds>" to $RESULTS. The error code is the
# body's `error.code` (`quota_exceeded`, `rate_limit_exceeded`, ...), or `-` for an answer without one.
chat() {
  local body status seconds code
  body="$(mktemp)"
  read -r status seconds < <(curl -s -o "$body" -w '%{http_code} %{time_total}\n' --max-time 60 \
    -H 'Content-Type: application/json' -H "X-Api-Key: $KEY" \
    -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}],\"stream\":false}" \
    "$HOST/v1/chat/completions")
  code="$(grep -o '"code" *: *"[^"]*"' "$body" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')"
  rm -f "$body"
  echo "$status ${code:--} $seconds" >>"$RESULTS"
}

# `fire N P`: N requests, P at a time.
fire() {
  export -f chat
  export HOST KEY MODEL RESULTS
  seq "$1" | xargs -P "$2" -I{} bash -c chat
}

# How many results had status $1 (and, given, error code $2).
count() { awk -v s="$1" -v c="${2-}" '$1 == s && (c == "" || $2 == c)' "$RESULTS" | wc -l; }

# Fail unless every answer with status $1 carries error code $2: a refusal of another kind (a quota
# 429 where the rate limit was meant) means the scenario is not the one the script claims.
expect_code() {
  local wrong
  wrong="$(awk -v s="$1" -v c="$2" '$1 == s && $2 != c {print $2}' "$RESULTS" | sort | uniq -c |
    awk '{printf "%s x%s ", $2, $1}')"
  [[ -z "$wrong" ]] || fail "expected every $1 to be $2, got: $wrong"
}

summary() {
  echo "statuses: $(cut -d' ' -f1,2 "$RESULTS" | sort | uniq -c | awk '{printf "%s%s x%s  ", $2, ($3 == "-" ? "" : " " $3), $1}')"
}

pass() { echo "PASS: $*"; exit 0; }
fail() { echo "FAIL: $*" >&2; exit 1; }
