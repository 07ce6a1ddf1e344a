#!/usr/bin/env bash
# The quota rollover: REQUESTS requests in a row with one KEY get 200 until the tenant's quota is
# spent, then 429. Resets the key's counter first (REDIS_CLI). Needs a quota below REQUESTS, e.g. a
# gateway started with DEFAULT_QUOTA=5 (or TENANT_QUOTAS=tenantA=5). Knobs: see smoke_lib.sh.
# shellcheck source=scripts/smoke_lib.sh
source "$(dirname "$0")/smoke_lib.sh"
KEY="${KEY:-demo}"
REQUESTS="${REQUESTS:-7}"

reset quota ratelimit tokens
fire "$REQUESTS" 1
summary
sequence="$(cut -d' ' -f1 "$RESULTS" | tr '\n' ' ')"
echo "in order: $sequence"
expect_code 429 quota_exceeded
[[ "$sequence" =~ ^(200\ )+(429\ )+$ ]] ||
  fail "expected some 200s, then only 429s (is the quota for $KEY below REQUESTS=$REQUESTS?)"
pass "$(count 200) admitted, then 429 once the quota was spent"
