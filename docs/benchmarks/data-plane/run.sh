#!/bin/sh
# The data-plane benchmark of issue 12 over HTTP against one prepared world
# (setup.sh), each load beside /healthz measured in the same run:
# `update` (2 pins) requests/s with p50/p99, `get`, `batch/update` of 1,000
# points, a one-day `data/get`, and — with SOAK_SECS — a soak at a fixed
# rate (SOAK_RATE requests/s over 64 connections) with memory and p99 at
# its start and end.
#   run.sh sqlite   sqlite:///work/bench/data.db  sqlite.env
#   run.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench pg.env
# Needs target/release/arbor and wrk.
set -eu
engine=$1 url=$2 env=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/../../../target/release/arbor}
port=${BENCH_PORT:-18099}
base=http://127.0.0.1:$port
conns=${CONNS:-64}
. "$env"

# The per-device limit (50/s) is left as configured: random devices over
# 100,000 send far below it. Logs at warn: the access log stays out of it.
ARBOR_DEVICE_TOKEN_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') \
ARBOR_LOG=warn "$bin" serve --bind 127.0.0.1:$port --database-url "$url" > /tmp/arbor-bench-data.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.1; done
for _ in $(seq 1 600); do grep -q "decision cache warm" /tmp/arbor-bench-data.log && break; sleep 0.1; done

rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024}' /proc/$pid/status; echo; }
load() { # label, mode, duration, extra env...
  label=$1 mode=$2 secs=$3; shift 3
  echo "== $engine: $label, $conns connections, ${secs}s (load $(cut -d' ' -f1 /proc/loadavg))"
  (cd "$here" && env MODE="$mode" "$@" wrk -t2 -c"$conns" -d"${secs}"s --latency -s device.lua "$base" 2>&1 \
    | grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|99)%')
}
d=${DURATION:-15}
echo "server after start: $(rss)"
load "baseline GET /healthz" healthz "$d"
load "update (V1, V2)" update "$d"
echo "server: $(rss)"
load "get (V1)" get "$d"
load "batch/update, 1,000 points" batch "$d"
load "data/get, one day of V1" history "$d"
load "baseline GET /healthz again" healthz "$d"
echo "server: $(rss)"
if [ -n "${SOAK_SECS:-}" ]; then
  rate=${SOAK_RATE:-5000}
  delay=$((conns * 1000 / rate))
  load "soak start: update at ~$rate/s" update 20 DELAY_MS=$delay
  echo "soak start: $(rss)"
  load "soak: update at ~$rate/s" update "$SOAK_SECS" DELAY_MS=$delay
  load "soak end: update at ~$rate/s" update 20 DELAY_MS=$delay
  echo "soak end: $(rss)"
fi
