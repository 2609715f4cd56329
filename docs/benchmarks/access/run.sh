#!/bin/sh
# Runs every access benchmark against one engine and prints the wrk summaries.
#   run.sh sqlite sqlite:///work/bench-issue5/access.db     /work/bench-issue5/sqlite.env
#   run.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench_access /work/bench-issue5/pg.env
# Needs target/release/arbor (cargo build --release -p arbor) and wrk.
set -eu
engine=$1 url=$2 env=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/../../../target/release/arbor}
port=18097
base=http://127.0.0.1:$port
. "$env"
export BENCH_TOKEN USER_MIN USER_MAX DEVICE_MIN DEVICE_MAX ORG_MIN ORG_MAX

start() { # extra environment for the server, e.g. ARBOR_AUTHZ_CACHE__WARM=false
  env "$@" ARBOR_LOG=info "$bin" serve --bind 127.0.0.1:$port --database-url "$url" > /tmp/arbor-bench.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -sf "$base/readyz" > /dev/null && break
    sleep 0.1
  done
  # Let the warm-up finish (it logs when done) or give up after 30 s.
  for _ in $(seq 1 300); do
    grep -q "decision cache warm" /tmp/arbor-bench.log && break
    case "$*" in *WARM=false*|*ENABLED=false*) break ;; esac
    sleep 0.1
  done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
run() { echo "== $engine: $1 (load $(cut -d' ' -f1 /proc/loadavg))"; shift; (cd "$here" && "$@" 2>&1 | tail -2); }

start
grep "decision cache" /tmp/arbor-bench.log | sed 's/.*INFO //' || true
run "baseline: GET /healthz, 64 connections" wrk -t2 -c64 -d10s --latency $base/healthz
run "check, 1 question, 64 connections" env QUESTIONS=1 wrk -t2 -c64 -d20s --latency -s check.lua $base
run "check, 50 questions, 64 connections" env QUESTIONS=50 wrk -t2 -c64 -d20s --latency -s check.lua $base
run "check, 1 question, 1 connection" env QUESTIONS=1 wrk -t1 -c1 -d10s --latency -s check.lua $base
run "who-can device, 1 connection" wrk -t1 -c1 -d10s --latency -s who-can.lua $base
echo "== $engine: check, 1 question, 64 connections, with writes (load $(cut -d' ' -f1 /proc/loadavg))"
(cd "$here" && BASE=$base DURATION=20 ./writes.sh > /tmp/arbor-writes.out) &
writer=$!
(cd "$here" && QUESTIONS=1 wrk -t2 -c64 -d20s --latency -s check.lua $base 2>&1 | tail -2)
wait $writer; echo "writes (status count):"; cat /tmp/arbor-writes.out
# Write throughput last: each role write drops cached facts of its org.
run "org writes (PATCH settings), 8 connections" env KIND=org wrk -t2 -c8 -d15s --latency -s writes.lua $base
run "role writes (PUT a role's set), 8 connections" env KIND=role wrk -t2 -c8 -d15s --latency -s writes.lua $base
stop

start ARBOR_AUTHZ_CACHE__WARM=false
run "check, 1 question, 64 connections, cache not warmed" env QUESTIONS=1 wrk -t2 -c64 -d20s --latency -s check.lua $base
stop
start ARBOR_AUTHZ_CACHE__WARM=false
run "check, 50 questions, 64 connections, cache not warmed" env QUESTIONS=50 wrk -t2 -c64 -d20s --latency -s check.lua $base
stop

start ARBOR_AUTHZ_CACHE__ENABLED=false
run "check, 1 question, 64 connections, cache off" env QUESTIONS=1 wrk -t2 -c64 -d20s --latency -s check.lua $base
run "check, 50 questions, 64 connections, cache off" env QUESTIONS=50 wrk -t2 -c64 -d20s --latency -s check.lua $base
stop
