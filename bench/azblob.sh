#!/usr/bin/env bash
# bench/azblob.sh - leasering against Azurite 3.35.0 over HTTP and HTTPS.
#
#   bench/azblob.sh [--leases N] [--seconds S] [--connections C] [--runs R]
# Starts Azurite (node_modules/, installed by scripts/setup) blob-only on a
# free loopback port, in memory, without telemetry; for HTTPS with a
# throwaway EC P-256 CA. Runs `leasering bench --json` with TTL 15 s (the
# shortest Azure lease) R times each, alternating, and prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=1000 SECS=30 CONNS=8 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --leases) N=$2; shift 2 ;; --seconds) SECS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;; --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--leases N] [--seconds S] [--connections C] [--runs R]" >&2; exit 2 ;;
  esac
done
TOOL=build/release/tools/leasering
[ -x $TOOL ] || { echo "build it first: scripts/run" >&2; exit 1; }
azurite_prepare leasering-az

start_azurite http; http=$port
start_azurite https; https=$port

echo "machine: $(nproc) cpu, $(uname -r), azurite $($AZ --version), node $(node --version); date: $(date -u +%F)"
echo "$N leases, TTL 15000 ms, hold $SECS s, $CONNS connections, $RUNS runs each, alternating"
for r in $(seq 1 "$RUNS"); do
  bench_ok $TOOL bench --backend "azblob://devstoreaccount1:$KEY@127.0.0.1:$http/bench$r?tls=no" \
    --leases "$N" --ttl 15000 --seconds "$SECS" --connections "$CONNS" --json >"$dir/http.$r.json"
  bench_ok $TOOL bench --backend "azblob://devstoreaccount1:$KEY@localhost:$https/bench$r?tls=yes&cacert=$dir/ca.pem" \
    --leases "$N" --ttl 15000 --seconds "$SECS" --connections "$CONNS" --json >"$dir/https.$r.json"
done
printf '%-6s %10s %12s %10s %6s %14s\n' scheme renew/s client_ns/r p99_us lost steady_allocs
for s in http https; do
  col() { for r in $(seq 1 "$RUNS"); do field "$dir/$s.$r.json" "$1"; done | median; }
  allocs=$(for r in $(seq 1 "$RUNS"); do field "$dir/$s.$r.json" "['steady_allocs']"; done | sort -g | tail -1)
  printf '%-6s %10s %12s %10s %6s %14s\n' "$s" "$(col "['renewals_per_sec']")" \
    "$(col "['cpu_ns_per_renewal']")" "$(col "['renew_latency_us']['p99']")" \
    "$(col "['lost']")" "$allocs (max)"
done
