#!/usr/bin/env bash
# bench/fence-memory.sh - what N unique lease names leave behind in Redis
# after each was acquired once and released (issue 11, fence key lifecycle).
#
# Starts a redis-server on a unix socket in a temp dir (no persistence),
# reads INFO memory used_memory and DBSIZE, runs `leasering bench` over
# unix:// acquiring N names job-0..job-(N-1) under prefix fm:, holding them
# 1 s and releasing them, then reads used_memory and DBSIZE again, and the
# MEMORY USAGE of one leftover key. What is left is the fence counters, one
# per Redis Cluster slot the names fall in, "fm:{TAG}:fence" (no TTL; at most
# 16384): the lease hashes are deleted by release.
#
#   bench/fence-memory.sh [--leases N] [--build DIR]     (default 1000000, build/gcc)
set -euo pipefail
cd "$(dirname "$0")/.."
N=1000000 BUILD=build/gcc
while [ $# -gt 0 ]; do
  case $1 in
    --leases) N=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [--leases N] [--build DIR]" >&2; exit 2 ;;
  esac
done
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install redis-server" >&2; exit 1; }
D=$(mktemp -d /tmp/lr-fencemem.XXXXXX)
redis-server --port 0 --unixsocket "$D/r.sock" --save '' --appendonly no --dir "$D" \
  --logfile "$D/log" --daemonize no &
RP=$!
trap 'kill $RP 2>/dev/null; while kill -0 $RP 2>/dev/null; do sleep 0.05; done; rm -rf "$D"' EXIT
until redis-cli -s "$D/r.sock" ping >/dev/null 2>&1; do sleep 0.05; done
used() { redis-cli -s "$D/r.sock" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
B0=$(used) K0=$(redis-cli -s "$D/r.sock" dbsize)
"$BUILD/tools/leasering" bench --backend "unix://$D/r.sock?prefix=fm:" --leases "$N" \
  --ttl 30000 --seconds 1 --prefix job- | grep -E "acquired|released" || true
B1=$(used) K1=$(redis-cli -s "$D/r.sock" dbsize)
ONE=$(redis-cli -s "$D/r.sock" memory usage "$(redis-cli -s "$D/r.sock" --scan --pattern 'fm:{*}:fence' | head -n 1)")
echo "names $N: used_memory $B0 -> $B1 (+$((B1 - B0)) bytes, $(((B1 - B0) / N)) per name);" \
     "keys $K0 -> $K1; MEMORY USAGE of one fence key: $ONE bytes"
