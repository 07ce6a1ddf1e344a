#!/usr/bin/env bash
# Load shedding: PARALLEL slow requests at once against a gateway with a low MAX_CONCURRENCY (e.g. 5):
# those beyond it get 503 at once. The slowness comes from MODEL: with the bundled mock (make run,
# or the k8s/dev/openaimock chart) `mock:latency-ms=1000` holds each request for a second; with a real
# upstream pick a slow model. 429s may appear too when the key's rate limit is lower than PARALLEL.
# Knobs: see smoke_lib.sh.
MODEL="${MODEL:-mock:latency-ms=1000}"
# shellcheck source=scripts/smoke_lib.sh
source "$(dirname "$0")/smoke_lib.sh"
KEY="${KEY:-stress}"
REQUESTS="${REQUESTS:-80}"
PARALLEL="${PARALLEL:-40}"

reset quota ratelimit tokens
fire "$REQUESTS" "$PARALLEL"
summary
shed=$(count 503) other=$(($(wc -l <"$RESULTS") - $(count 200) - $(count 429) - $(count 503)))
((other == 0)) || fail "statuses other than 200, 429 and 503"
expect_code 503 server_overloaded  # not an upstream or Redis outage
((shed > 0)) || fail "no 503: is MAX_CONCURRENCY below PARALLEL=$PARALLEL, and is the upstream slow?"
pass "$shed requests shed with 503"
