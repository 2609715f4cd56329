#!/bin/sh
# Login flood: the server's resident memory and `check` p99, unloaded and
# under 64 connections of failing logins for 20 s. Prints the figures.
#   run.sh            (needs target/release/arbor: cargo build --release -p arbor; wrk, curl, jq, sqlite3)
# Environment: BENCH_BIN (the binary), PORT (default 18098), and any ARBOR_*
# setting for the server (e.g. ARBOR_PASSWORD_HASHING__WORKERS=1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/../../../target/release/arbor}
port=${PORT:-18098}
base=http://127.0.0.1:$port
dir=$(mktemp -d)
url=sqlite://$dir/flood.db

# The demo data (seed 001) gives a user to log in as and devices to check.
ARBOR_LOG=info ARBOR_TRUSTED_PROXIES='["127.0.0.1"]' \
  "$bin" serve --demo --bind 127.0.0.1:$port --database-url "$url" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.1; done
BENCH_TOKEN=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"a@heatco.example","password":"heat-co-demo-2026"}' | jq -r .token)
db=$dir/flood.db
USER_MIN=$(sqlite3 "$db" "SELECT MIN(id) FROM users") USER_MAX=$(sqlite3 "$db" "SELECT MAX(id) FROM users")
DEVICE_MIN=$(sqlite3 "$db" "SELECT MIN(id) FROM devices") DEVICE_MAX=$(sqlite3 "$db" "SELECT MAX(id) FROM devices")
export BENCH_TOKEN USER_MIN USER_MAX DEVICE_MIN DEVICE_MAX QUESTIONS=1

kb() { awk -v f="$1:" '$1 == f { print $2 }' /proc/$pid/status; }
mem() { echo "VmRSS $(( $(kb VmRSS) / 1024 )) MiB, VmHWM (peak) $(( $(kb VmHWM) / 1024 )) MiB"; }
check() { (cd "$here/../access" && wrk -t1 -c4 -d20s --latency -s check.lua "$base" 2>&1 | tail -1); }
# The same at a fixed rate: 4 connections, each waiting DELAY_MS (default
# 10) before each request, so at most ~400 requests a second.
paced() {
  (cd "$here/../access" && DELAY_MS=${DELAY_MS:-10} wrk -t1 -c4 -d20s --latency -s check.lua "$base" 2>&1 | tail -2 | tr '\n' ' ')
}

echo "== $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); server at start: $(mem)"
echo "== check, 4 connections, unloaded: $(check)"
echo "== check at a fixed rate, unloaded: $(paced)"
for spread in 0 1; do
  case $spread in
    0) what="from one address (the per-client limit slows it)" ;;
    1) what="from random addresses via X-Forwarded-For (every attempt is hashed)" ;;
  esac
  (cd "$here" && SPREAD=$spread wrk -t2 -c64 -d20s --latency -s login-flood.lua "$base" > "$dir/flood.out" 2>&1) &
  flood=$!
  peak=0
  # Sample resident memory while the flood runs, alongside the check run.
  (while kill -0 $flood 2>/dev/null; do kb VmRSS; sleep 0.2; done > "$dir/rss.out") &
  sampler=$!
  result=$(check)
  wait $flood; wait $sampler || true
  # And a second flood of the same kind, measured at the fixed rate.
  (cd "$here" && SPREAD=$spread wrk -t2 -c64 -d20s --latency -s login-flood.lua "$base" > "$dir/flood2.out" 2>&1) &
  flood=$!
  (while kill -0 $flood 2>/dev/null; do kb VmRSS; sleep 0.2; done >> "$dir/rss.out") &
  sampler=$!
  result_paced=$(paced)
  wait $flood; wait $sampler || true
  peak=$(sort -n "$dir/rss.out" | tail -1)
  echo "== flood $what, 64 connections, 20 s"
  echo "   check, 4 connections, under the flood: $result"
  echo "   check at the fixed rate, under a second such flood: $result_paced"
  echo "   $(grep 'login flood' "$dir/flood.out")"
  echo "   resident during the flood: max VmRSS $(( peak / 1024 )) MiB; server now: $(mem)"
  login() {
    curl -s -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
      -d '{"email":"a@heatco.example","password":"heat-co-demo-2026"}' -o /dev/null -w "%{http_code}"
  }
  echo "   the real admin, from the flood's own address, logs in: right after $(login); 5 s later $(sleep 5; login)"
done
