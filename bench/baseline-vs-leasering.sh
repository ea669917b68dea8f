#!/usr/bin/env bash
# bench/baseline-vs-leasering.sh - leasering against the hand-rolled baseline
# holder (bench/baseline_holder.c: hiredis async + libevent, one timer and one
# EVALSHA per renewal), same Redis scripts, same key layout.
#
# For each lease count, RUNS rounds; in each round the baseline and then
# `leasering bench --json` hold N leases for S seconds, each on a fresh
# redis-server. Reported per tool and N, medians over the rounds:
#   client_ns/r  process CPU over the hold / renewals in it (cpu_ns_per_renewal)
#   redis_ns/r   redis-server's INFO cpu (user+sys), sampled inside the hold
#                after the first renewal cycle, / renewals in that window
#   B/lease      RSS growth from before the leases were made / N
#   acquire_s    first acquire until the last answered (acquire_seconds)
#   p99_us       renew latency p99, send to reply
#   lost         the largest over the rounds
# and a ratio row, leasering / baseline (below 1: leasering spends less).
#
#   bench/baseline-vs-leasering.sh [--leases "10000 100000"] [--ttl 3000] [--seconds 20] [--runs 3]
# Builds build/release (tools/leasering and bench/bench-baseline-holder) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
LEASES="10000 100000" TTL=3000 SECS=20 RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --leases) LEASES=$2; shift 2 ;;
    --ttl) TTL=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--leases \"N ...\"] [--ttl MS] [--seconds S] [--runs R]" >&2; exit 2 ;;
  esac
done
[ "$SECS" -ge $(( TTL / 1000 + 6 )) ] || { echo "--seconds must be at least TTL + 6 s" >&2; exit 2; }

TOOL=build/release/tools/leasering
BASE=build/release/bench/bench-baseline-holder
if [ ! -x $TOOL ] || [ ! -x $BASE ]; then
  [ -d build/release ] || meson setup build/release -Dbuildtype=release >/dev/null
  ninja -C build/release tools/leasering bench/bench-baseline-holder >/dev/null
fi
[ -x $BASE ] || { echo "$BASE not built: it needs hiredis and libevent (apt-get install libhiredis-dev libevent-dev)" >&2; exit 1; }

dir=$(mktemp -d /tmp/leasering-baseline.XXXXXX)
pid=
trap 'stop_server; rm -rf "$dir"' EXIT

echo "machine: $(nproc) cpu, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), redis-server $(redis-server --version | awk '{print $3}'); date: $(date -u '+%F %H:%M') UTC; loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "TTL $TTL ms, hold $SECS s, $RUNS rounds, baseline and leasering alternating on fresh servers"

# one KIND N OUT: one run of the baseline (KIND=base) or leasering (KIND=lr);
# OUT gets its JSON with server_ns_per_renewal added.
one() {
  local kind=$1 n=$2 out=$3 rc=0
  start_server
  if [ "$kind" = base ]; then
    $BASE --port "$port" --leases "$n" --ttl "$TTL" --seconds "$SECS" >"$out" &
  else
    $TOOL bench --backend "redis://127.0.0.1:$port" --leases "$n" --ttl "$TTL" \
      --seconds "$SECS" --json >"$out" &
  fi
  local bpid=$!
  # the hold starts once all N are acquired (a hash and a fence counter each)
  until [ "$(redis-cli -p "$port" dbsize)" -ge $((2 * n)) ]; do
    kill -0 $bpid 2>/dev/null || break
    sleep 0.1
  done
  sleep $(( TTL / 2000 + 1 ))                  # past the first renewal cycle
  local c0 t0 c1 t1
  c0=$(server_cpu); t0=$(date +%s.%N)
  sleep $(( SECS - TTL / 2000 - 4 ))
  c1=$(server_cpu); t1=$(date +%s.%N)
  wait $bpid || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "$kind run with $n leases failed: exit $rc" >&2; exit 1; }
  python3 - "$out" "$c0" "$c1" "$t0" "$t1" <<'PY'
import json, sys
out, c0, c1, t0, t1 = sys.argv[1], *map(float, sys.argv[2:])
d = json.load(open(out))
rps = d['renewals_per_sec']
d['server_ns_per_renewal'] = round((c1 - c0) * 1e9 / (rps * (t1 - t0)), 1) if rps else 0
d.setdefault('not_acquired', d['leases'] - d['acquired'])
json.dump(d, open(out, 'w'))
PY
  stop_server
}

for n in $LEASES; do
  for r in $(seq 1 "$RUNS"); do
    one base "$n" "$dir/base.$n.$r.json"
    one lr "$n" "$dir/lr.$n.$r.json"
  done
done

cols="['cpu_ns_per_renewal'] ['server_ns_per_renewal'] ['rss_bytes_per_lease'] ['acquire_seconds'] ['renew_latency_us']['p99']"
med() { for r in $(seq 1 "$RUNS"); do field "$dir/$1.$2.$r.json" "$3"; done | median; }
mx() { for r in $(seq 1 "$RUNS"); do field "$dir/$1.$2.$r.json" "$3"; done | sort -g | tail -1; }
fmt='%-8s %-10s %12s %12s %10s %10s %10s %6s %8s\n'
printf "$fmt" leases tool client_ns/r redis_ns/r B/lease acquire_s p99_us lost not_acq
for n in $LEASES; do
  for s in base lr; do
    vals=()
    for c in $cols; do vals+=("$(med $s "$n" "$c")"); done
    printf "$fmt" "$n" "$([ $s = base ] && echo baseline || echo leasering)" "${vals[@]}" \
      "$(mx $s "$n" "['lost']")" "$(mx $s "$n" "['not_acquired']")"
  done
  ratios=()
  for c in $cols; do
    ratios+=("$(python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'{a/b:.2f}' if b else '-')" \
      "$(med lr "$n" "$c")" "$(med base "$n" "$c")")")
  done
  printf "$fmt" "$n" "lr/base" "${ratios[@]}" - -
done
echo "(medians over $RUNS rounds; lost and not_acq: the largest; loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg))"
for n in $LEASES; do
  for r in $(seq 1 "$RUNS"); do
    for s in base lr; do
      printf '  %s %-9s round %s: client_ns/r %s redis_ns/r %s renew/s %s p99_us %s\n' "$n" "$s" "$r" \
        "$(field "$dir/$s.$n.$r.json" "['cpu_ns_per_renewal']")" \
        "$(field "$dir/$s.$n.$r.json" "['server_ns_per_renewal']")" \
        "$(field "$dir/$s.$n.$r.json" "['renewals_per_sec']")" \
        "$(field "$dir/$s.$n.$r.json" "['renew_latency_us']['p99']")"
    done
  done
done
