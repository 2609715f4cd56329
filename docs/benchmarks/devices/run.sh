#!/bin/sh
# Device list / search / single GET over HTTP against one generated world,
# each beside /healthz and `check` measured in the same run.
#   run.sh sqlite   sqlite:///work/bench/gen.db  sqlite.env
#   run.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench pg.env
# (the .env file comes from setup.sh). Needs target/release/arbor and wrk.
# SEARCH overrides the filtered search's query (default: the template, and TAG if set).
set -eu
engine=$1 url=$2 env=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/../../../target/release/arbor}
port=${BENCH_PORT:-18098}
base=http://127.0.0.1:$port
. "$env"
search=${SEARCH:-"template_id=$TEMPLATE_ID${TAG:+&tag=$TAG}"}

# A key for device tokens of this run only (else the server creates a key
# file: beside the SQLite file, or in ./arbor-data with PostgreSQL).
ARBOR_DEVICE_TOKEN_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') \
ARBOR_LOG=warn "$bin" serve --bind 127.0.0.1:$port --database-url "$url" > /tmp/arbor-bench-devices.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.1; done
# Let the decision cache's warm-up finish (it logs when done), at most 60 s.
for _ in $(seq 1 600); do grep -q "decision cache warm" /tmp/arbor-bench-devices.log && break; sleep 0.1; done

rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024}' /proc/$pid/status; echo; }
run() { # label, connections, extra env...
  label=$1 conns=$2; shift 2
  echo "== $engine: $label, $conns connection(s) (load $(cut -d' ' -f1 /proc/loadavg))"
  (cd "$here" && env "$@" wrk -t1 -c"$conns" -d"${DURATION:-10}"s --latency -s get.lua "$base" 2>&1 | tail -2)
}
check() { # connections
  echo "== $engine: check, 1 question, $1 connection(s) (load $(cut -d' ' -f1 /proc/loadavg))"
  (cd "$here/../access" && BENCH_TOKEN=$TOKEN_ROOT QUESTIONS=1 \
    wrk -t1 -c"$1" -d"${DURATION:-10}"s --latency -s check.lua "$base" 2>&1 | tail -2)
}
echo "server after start: $(rss)"
for conns in 1 16; do
  run "baseline GET /healthz" $conns TOKEN=x PATH_Q=/healthz
  check $conns
  run "single device GET (root Admin, random device)" $conns TOKEN=$TOKEN_ROOT DEVICE_MIN=$DEVICE_MIN DEVICE_MAX=$DEVICE_MAX
  run "device list, first page, root Admin" $conns TOKEN=$TOKEN_ROOT PATH_Q=/api/v1/devices
  run "device list, first page, mid-level Admin" $conns TOKEN=$TOKEN_MID PATH_Q=/api/v1/devices
  run "device list, first page, leaf User" $conns TOKEN=$TOKEN_LEAF PATH_Q=/api/v1/devices
  run "device list, first page, root Admin narrowed to the mid-level subtree" $conns TOKEN=$TOKEN_ROOT \
    "PATH_Q=/api/v1/devices?org_id=$MID_ORG&include_suborgs=true"
  run "device search ($search), root Admin" $conns TOKEN=$TOKEN_ROOT "PATH_Q=/api/v1/devices?$search"
  run "user list, first page, mid-level Admin" $conns TOKEN=$TOKEN_MID PATH_Q=/api/v1/users
done
echo "server at the end: $(rss)"
