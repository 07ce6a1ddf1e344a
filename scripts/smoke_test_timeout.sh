#!/usr/bin/env bash
# The first-byte timeout: one request to a slow upstream gets 504 after about TIMEOUT_SECS (the
# gateway's setting; tell the script with TIMEOUT_SECS, default 2). With the bundled mock the model
# `mock:latency-ms=5000` is slow enough; with a real upstream, a gateway with a very low TIMEOUT_SECS.
# Knobs: see smoke_lib.sh.
MODEL="${MODEL:-mock:latency-ms=5000}"
# shellcheck source=scripts/smoke_lib.sh
source "$(dirname "$0")/smoke_lib.sh"
KEY="${KEY:-timeout-test}"
TIMEOUT_SECS="${TIMEOUT_SECS:-2}"

fire 1 1
summary
read -r status _ seconds <"$RESULTS"
[[ "$status" == 504 ]] || fail "expected 504, got $status (is TIMEOUT_SECS set on the gateway?)"
expect_code 504 upstream_timeout
awk -v t="$seconds" -v limit="$TIMEOUT_SECS" 'BEGIN { exit !(t >= limit - 0.5 && t <= limit + 1.5) }' ||
  fail "504 after ${seconds}s, expected about ${TIMEOUT_SECS}s"
pass "504 after ${seconds}s (TIMEOUT_SECS=$TIMEOUT_SECS)"
