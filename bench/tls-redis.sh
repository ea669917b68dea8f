#!/usr/bin/env bash
# bench/tls-redis.sh - rediss:// (TLS) against plain redis:// with the same
# lease load, alternating runs, medians reported.
#
#   bench/tls-redis.sh [--leases N] [--ttl MS] [--seconds S] [--runs R]
# Makes a throwaway CA and server certificate (openssl, EC P-256), starts one
# TLS-only and one plain redis-server on free loopback ports, and runs
# `leasering bench --json` against each. Needs build/release (scripts/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=10000 TTL=3000 SECS=15 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --leases) N=$2; shift 2 ;; --ttl) TTL=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;; --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--leases N] [--ttl MS] [--seconds S] [--runs R]" >&2; exit 2 ;;
  esac
done
TOOL=build/release/tools/leasering
[ -x $TOOL ] || { echo "build it first: scripts/run" >&2; exit 1; }
dir=$(mktemp -d /tmp/leasering-tls.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

make_certs "$dir"

start() { # start tls|plain -> sets port
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if [ "$1" = tls ]; then
      redis-server --port 0 --tls-port "$port" --tls-cert-file "$dir/srv.pem" \
        --tls-key-file "$dir/srv.key" --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/$1.log" &
      cli=(redis-cli --tls --cacert "$dir/ca.pem" -h localhost -p "$port")
    else
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/$1.log" &
      cli=(redis-cli -p "$port")
    fi
    local p=$!
    for _ in $(seq 1 100); do
      if [ "$("${cli[@]}" ping 2>/dev/null)" = PONG ]; then pids+=("$p"); return 0; fi
      kill -0 $p 2>/dev/null || break
      sleep 0.05
    done
    kill $p 2>/dev/null || true
  done
  echo "cannot start redis-server ($1)" >&2; exit 1
}
start plain; plain=$port
start tls; tls=$port


echo "machine: $(nproc) cpu, $(uname -r), $(redis-server --version | awk '{print $3}'); date: $(date -u +%F)"
echo "$N leases, TTL $TTL ms, hold $SECS s, $RUNS runs each, alternating"
for r in $(seq 1 "$RUNS"); do
  bench_ok $TOOL bench --backend "redis://127.0.0.1:$plain?prefix=p$r:" --leases "$N" --ttl "$TTL" \
    --seconds "$SECS" --json >"$dir/plain.$r.json"
  bench_ok $TOOL bench --backend "rediss://localhost:$tls?cacert=$dir/ca.pem&prefix=t$r:" --leases "$N" \
    --ttl "$TTL" --seconds "$SECS" --json >"$dir/tls.$r.json"
done
printf '%-8s %10s %12s %10s %6s %14s %10s\n' scheme renew/s client_ns/r p99_us lost steady_allocs B/lease
for s in plain tls; do
  col() { for r in $(seq 1 "$RUNS"); do field "$dir/$s.$r.json" "$1"; done | median; }
  allocs=$(for r in $(seq 1 "$RUNS"); do field "$dir/$s.$r.json" "['steady_allocs']"; done | sort -g | tail -1)
  printf '%-8s %10s %12s %10s %6s %14s %10s\n' "$([ $s = tls ] && echo rediss || echo redis)" \
    "$(col "['renewals_per_sec']")" "$(col "['cpu_ns_per_renewal']")" \
    "$(col "['renew_latency_us']['p99']")" "$(col "['lost']")" "$allocs (max)" \
    "$(col "['rss_bytes_per_lease']")"
done
