#!/bin/sh
# Writes while a benchmark runs: every INTERVAL seconds (default 0.1), sets
# the User role's permission set in a random org of the generated world
# (alternating two sets), through the API, as the BENCH_TOKEN user. Each write
# is an authorization change the decision caches of every node must see.
#   BASE=http://127.0.0.1:18095 DURATION=20 writes.sh
set -eu
interval=${INTERVAL:-0.1}
end=$(($(date +%s) + ${DURATION:-20}))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
  org=$(( (n * 7919) % 10000 + 1 ))
  if [ $((n % 2)) -eq 0 ]; then set='["own_devices.view","own_devices.control"]'; else set='["own_devices.view"]'; fi
  curl -s -o /dev/null -w '%{http_code}\n' -X PUT "$BASE/api/v1/orgs/$org/roles/3/permissions" \
    -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' \
    -d "{\"permissions\":$set}"
  n=$((n + 1))
  sleep "$interval"
done | sort | uniq -c
