#!/usr/bin/env bash
# The rate limit (RPS/BURST): REQUESTS requests, PARALLEL at a time, with one KEY; about BURST get
# through at once and the rest of a burst gets 429. Resets the key's counters first (REDIS_CLI).
# Knobs: see smoke_lib.sh.
# shellcheck source=scripts/smoke_lib.sh
source "$(dirname "$0")/smoke_lib.sh"
KEY="${KEY:-ratelimit}"
REQUESTS="${REQUESTS:-100}"
PARALLEL="${PARALLEL:-50}"

reset quota ratelimit tokens
fire "$REQUESTS" "$PARALLEL"
summary
ok=$(count 200) limited=$(count 429)
((ok + limited == REQUESTS)) || fail "statuses other than 200 and 429"
expect_code 429 rate_limit_exceeded  # a quota 429 (quota below REQUESTS) is not the rate limit
((ok > 0 && limited > 0)) || fail "expected a mix of 200 and 429 (is RPS×duration + BURST below REQUESTS=$REQUESTS?)"
pass "$ok admitted, $limited rate-limited"
