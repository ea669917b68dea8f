#!/usr/bin/env bash
# bench/cosmos.sh - leasering against the Cosmos DB emulator
# @vercel/cosmosdb-server 1.0.1 over HTTP with keep-alive.
#
#   bench/cosmos.sh [--leases N] [--seconds S] [--connections C] [--runs R] [--ttl MS]
# Starts the emulator (node_modules/, installed by scripts/setup) on a free
# loopback port with HTTP keep-alive on (its CLI always answers
# "connection: close", so it is started the way tests/cosmos.c does), creates
# the database and one container per run (partitioned on /id), runs
# `leasering bench --json` R times and prints medians: renewals/s, client CPU
# per renewal (process CPU over the hold / renewals), p99 renewal latency,
# lost, the most TCP connections to the emulator seen at once (ss, every
# second), and the emulator's own CPU per renewal. The emulator checks no
# signature and no TTL (docs/STORES.md); its figures are the emulator's, not
# Azure's.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=1000 SECS=30 CONNS=8 RUNS=3 TTL=15000
while [ $# -gt 0 ]; do
  case $1 in
    --leases) N=$2; shift 2 ;; --seconds) SECS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;; --runs) RUNS=$2; shift 2 ;;
    --ttl) TTL=$2; shift 2 ;;
    *) echo "usage: $0 [--leases N] [--seconds S] [--connections C] [--runs R] [--ttl MS]" >&2
       exit 2 ;;
  esac
done
TOOL=${TOOL:-build/release/tools/leasering}
PKG=node_modules/@vercel/cosmosdb-server
[ -x "$TOOL" ] || { echo "build it first: scripts/run (or TOOL=path/to/leasering)" >&2; exit 1; }
[ -x node_modules/.bin/cosmosdb-server ] || { echo "cosmosdb-server missing: run scripts/setup" >&2; exit 1; }
dir=$(mktemp -d /tmp/leasering-cosmos.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
# The emulator's public key (it checks none), percent-encoded for the URI.
KEY='C2y6yDjf5%2FR%2Bob0N8A7Cgv30VRDJIWEHLM%2B4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw%2FJw%3D%3D'

start() { # -> $port, $epid
  local script="const s = require(process.argv[1]).createHttpServer({keepAlive: true});
s.on('error', e => { console.log('listen error ' + e.code); process.exit(1); });
s.listen(+process.argv[2], '127.0.0.1', () => console.log('ready on ' + process.argv[2]));"
  for _ in $(seq 1 10); do
    port=$((20000 + RANDOM % 40000))
    node -e "$script" "$PWD/$PKG" "$port" >"$dir/emu.log" 2>&1 &
    epid=$!
    for _ in $(seq 1 100); do
      if grep -q "ready on $port" "$dir/emu.log" 2>/dev/null; then pids+=("$epid"); return 0; fi
      kill -0 $epid 2>/dev/null || break
      sleep 0.1
    done
    kill $epid 2>/dev/null || true
  done
  echo "cannot start cosmosdb-server" >&2; exit 1
}
post() { # post PATH JSON -> HTTP status (the emulator checks no signature)
  curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port$1" \
    -H 'x-ms-version: 2018-12-31' -H 'Content-Type: application/json' --data-binary "$2"
}
cpu_of() { # user+sys seconds of pid $1
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

start
[ "$(post /dbs '{"id":"bench"}')" = 201 ] || { echo "cannot create the database" >&2; exit 1; }
echo "machine: $(nproc) cpu, $(uname -r), @vercel/cosmosdb-server $(node -p "require('./$PKG/package.json').version"), node $(node --version); date: $(date -u +%F)"
echo "$N leases, TTL $TTL ms, hold $SECS s, $CONNS connections, $RUNS runs"
for r in $(seq 1 "$RUNS"); do
  [ "$(post /dbs/bench/colls "{\"id\":\"leases$r\",\"partitionKey\":{\"paths\":[\"/id\"],\"kind\":\"Hash\"}}")" = 201 ] ||
    { echo "cannot create container leases$r" >&2; exit 1; }
  cpu0=$(cpu_of "$epid")
  bench_ok "$TOOL" bench --backend "cosmos://$KEY@127.0.0.1:$port/bench/leases$r?tls=no" \
    --leases "$N" --ttl "$TTL" --seconds "$SECS" --connections "$CONNS" --json \
    >"$dir/run.$r.json" &
  bpid=$!
  # the most connections to the emulator seen at once, sampled every second
  most=0
  while kill -0 $bpid 2>/dev/null; do
    c=$(ss -tnH state established "( dport = :$port )" | wc -l)
    [ "$c" -gt "$most" ] && most=$c
    sleep 1
  done
  echo "$most" >"$dir/conns.$r"
  wait $bpid || { rc=$?; [ $rc -eq 3 ] || exit $rc; }
  cpu1=$(cpu_of "$epid")
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(round((float(sys.argv[3])-float(sys.argv[2]))*1e9/max(d['renewals'],1)))" \
    "$dir/run.$r.json" "$cpu0" "$cpu1" >"$dir/emu_ns.$r"
done
printf '%10s %12s %10s %6s %12s %12s %14s\n' renew/s client_ns/r p99_us lost connections \
  server_ns/r steady_allocs
col() { for r in $(seq 1 "$RUNS"); do field "$dir/run.$r.json" "$1"; done | median; }
allocs=$(for r in $(seq 1 "$RUNS"); do field "$dir/run.$r.json" "['steady_allocs']"; done | sort -g | tail -1)
printf '%10s %12s %10s %6s %12s %12s %14s\n' "$(col "['renewals_per_sec']")" \
  "$(col "['cpu_ns_per_renewal']")" "$(col "['renew_latency_us']['p99']")" "$(col "['lost']")" \
  "$(cat "$dir"/conns.* | median)" "$(cat "$dir"/emu_ns.* | median)" "$allocs (max)"
