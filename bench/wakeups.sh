#!/usr/bin/env bash
# bench/wakeups.sh - how often the loop wakes, and what a renewal costs the
# client, for two builds of `leasering bench` in one run (an A/B).
#
# For each lease count, RUNS rounds; in each round every tool holds N leases
# (TTL 3 s by default) on a fresh redis-server, the tools in turn. Reported
# per tool and N, medians over the rounds:
#   renew/s      renewals per second over the hold (the tool's JSON)
#   client_ns/r  process CPU over the hold / renewals (cpu_ns_per_renewal)
#   wakeups/s    voluntary context switches of the tool per second, sampled
#                from /proc/PID/status inside the hold (after the first
#                renewal cycle): each is one sleep in io_uring_enter that
#                something woke, a timer or a completion (single thread)
#   server_ns/r  redis-server's INFO cpu over the same window / renewals in it
#   p99_us, lost, not_acq
#
#   bench/wakeups.sh --a TOOL --b TOOL [--leases "N ..."] [--ttl MS] [--seconds S]
#                    [--runs R] [--a-args "..."] [--b-args "..."]
# e.g. main's tool against this branch's (both release builds):
#   bench/wakeups.sh --a ../base/build/release/tools/leasering --b build/release/tools/leasering
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
A= B= A_ARGS= B_ARGS= TTL=3000 SECS=20 RUNS=3 LEASES="10000 100000"
while [ $# -gt 0 ]; do
  case $1 in
    --a) A=$2; shift 2 ;;
    --b) B=$2; shift 2 ;;
    --a-args) A_ARGS=$2; shift 2 ;;
    --b-args) B_ARGS=$2; shift 2 ;;
    --leases) LEASES=$2; shift 2 ;;
    --ttl) TTL=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 --a TOOL --b TOOL [--leases \"N ...\"] [--ttl MS] [--seconds S] [--runs R] [--a-args ...] [--b-args ...]" >&2; exit 2 ;;
  esac
done
[ -x "$A" ] && [ -x "$B" ] || { echo "--a and --b must name built leasering tools" >&2; exit 2; }
[ "$SECS" -ge $(( TTL / 1000 + 6 )) ] || { echo "--seconds must be at least TTL + 6 s" >&2; exit 2; }

dir=$(mktemp -d /tmp/leasering-wakeups.XXXXXX)
pid=
trap 'stop_server; rm -rf "$dir"' EXIT

switches() { awk '/^voluntary_ctxt_switches:/{print $2}' "/proc/$1/status"; }

echo "machine: $(nproc) cpu, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), redis-server $(redis-server --version | awk '{print $3}'); date: $(date -u '+%F %H:%M') UTC"
echo "A: $A $A_ARGS"
echo "B: $B $B_ARGS"
echo "TTL $TTL ms, hold $SECS s, $RUNS rounds, A and B alternating on fresh servers"

# one TOOL ARGS N OUT: one run; OUT gets the tool's JSON plus the sampled
# wake-ups and server CPU as a second JSON line.
one() {
  local tool=$1 args=$2 n=$3 out=$4
  start_server
  # shellcheck disable=SC2086
  "$tool" bench --backend "redis://127.0.0.1:$port" --leases "$n" --ttl "$TTL" \
    --seconds "$SECS" --json $args >"$out" &
  local bpid=$!
  # the hold starts once all N are acquired (a hash and a fence counter each)
  until [ "$(redis-cli -p "$port" dbsize)" -ge $((2 * n)) ]; do sleep 0.1; done
  sleep $(( TTL / 2000 + 1 ))                  # past the first renewal cycle
  local w0 c0 t0 w1 c1 t1
  w0=$(switches $bpid); c0=$(server_cpu); t0=$(date +%s.%N)
  sleep $(( SECS - TTL / 2000 - 4 ))
  w1=$(switches $bpid); c1=$(server_cpu); t1=$(date +%s.%N)
  wait $bpid || [ $? -eq 3 ]
  python3 - "$out" "$w0" "$w1" "$c0" "$c1" "$t0" "$t1" <<'PY'
import json, sys
out, w0, w1, c0, c1, t0, t1 = sys.argv[1], *map(float, sys.argv[2:])
d = json.load(open(out))
dt = t1 - t0
d['wakeups_per_sec'] = round((w1 - w0) / dt, 1)
d['server_ns_per_renewal'] = round((c1 - c0) * 1e9 / (d['renewals_per_sec'] * dt), 1) if d['renewals_per_sec'] else 0
d.setdefault('not_acquired', d['leases'] - d['acquired'])
json.dump(d, open(out, 'w'))
PY
  stop_server
}

for n in $LEASES; do
  for r in $(seq 1 "$RUNS"); do
    one "$A" "$A_ARGS" "$n" "$dir/a.$n.$r.json"
    one "$B" "$B_ARGS" "$n" "$dir/b.$n.$r.json"
  done
done

printf '%-8s %-3s %10s %12s %10s %12s %8s %6s %8s\n' leases run renew/s client_ns/r wakeups/s server_ns/r p99_us lost not_acq
for n in $LEASES; do
  for s in a b; do
    col() { for r in $(seq 1 "$RUNS"); do field "$dir/$s.$n.$r.json" "$1"; done | median; }
    mx() { for r in $(seq 1 "$RUNS"); do field "$dir/$s.$n.$r.json" "$1"; done | sort -g | tail -1; }
    printf '%-8s %-3s %10s %12s %10s %12s %8s %6s %8s\n' "$n" "$(echo $s | tr ab AB)" \
      "$(col "['renewals_per_sec']")" "$(col "['cpu_ns_per_renewal']")" \
      "$(col "['wakeups_per_sec']")" "$(col "['server_ns_per_renewal']")" \
      "$(col "['renew_latency_us']['p99']")" "$(mx "['lost']")" "$(mx "['not_acquired']")"
  done
  for r in $(seq 1 "$RUNS"); do
    for s in a b; do
      printf '  %s %s round %s: client_ns/r %s wakeups/s %s\n' "$n" "$(echo $s | tr ab AB)" "$r" \
        "$(field "$dir/$s.$n.$r.json" "['cpu_ns_per_renewal']")" \
        "$(field "$dir/$s.$n.$r.json" "['wakeups_per_sec']")"
    done
  done
done
echo "(medians over the rounds; lost and not_acq: the largest)"
