#!/usr/bin/env bash
# bench/tuning.sh - the trade-offs docs/TUNING.md quotes, measured.
#
# Each sweep varies one setting of `leasering bench` against a fresh local
# redis-server per run, the variants of a sweep alternating round by round
# (so they meet the same machine load), and prints one Markdown row per
# variant with the medians over the rounds:
#   renew/s          renewals per second over the hold (the store's load)
#   client ns/r      the tool's process CPU over the hold / its renewals
#   client us/lease-s  the same CPU / (leases x hold seconds): what holding costs
#   Redis ns/r       redis-server's INFO cpu over the hold window / renewals
#   p99 us           renewal latency, send to reply
#   keys/req         leases per batched renewal request
#   lost, not acq    the largest over the rounds
#
#   bench/tuning.sh [--runs R] [--sweeps "batch fraction connections ttl latency"]
#                   [--seconds S] [--leases N] [--out DIR]
# --leases N: the lease count of the batch, connections and ttl sweeps
# (default 100000; the fraction and latency sweeps use 10000).
# Needs a release build (scripts/run builds build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3 SWEEPS="batch fraction connections ttl latency" SECS=20 OUT= BIG=100000
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --sweeps) SWEEPS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --leases) BIG=$2; shift 2 ;;
    *) echo "usage: $0 [--runs R] [--sweeps \"batch fraction connections ttl latency\"] [--seconds S] [--leases N] [--out DIR]" >&2
       exit 2 ;;
  esac
done
TOOL=build/release/tools/leasering
[ -x $TOOL ] || { echo "build it first: scripts/run (or meson setup build/release -Dbuildtype=release && ninja -C build/release)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install redis-server" >&2; exit 1; }

. bench/lib.sh
dir=$(mktemp -d /tmp/leasering-tuning.XXXXXX)
[ -n "$OUT" ] || OUT=$dir/out
mkdir -p "$OUT"
pid=
trap 'stop_server; rm -rf "$dir"' EXIT

echo "machine: $(nproc) cpu, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2); $(date -u '+%F %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg); main at $(git rev-parse --short HEAD)"

# one LABEL N TTL HOLD_S URI ARGS... -> one line of raw figures in $OUT/raw.tsv
# (@PORT@ in URI becomes the fresh server's port)
one() {
  local label=$1 n=$2 ttl=$3 hold=$4 uri=$5
  shift 5
  start_server
  local out=$OUT/${label//[^a-z0-9]/_}.$n.$ttl.$round.json
  $TOOL bench --backend "${uri//@PORT@/$port}" --leases "$n" \
    --seconds "$hold" --json "$@" >"$out" &
  local bpid=$! c0 c1 t0 t1 rc=0
  # The hold starts when all N are held (the lease hashes; fence counters are per slot).
  until [ "$(redis-cli -p "$port" dbsize)" -ge "$n" ] || ! kill -0 $bpid 2>/dev/null; do sleep 0.1; done
  local settle=$(( ttl / 1000 / 2 + 1 )) window=$(( hold - ttl / 1000 / 2 - 3 ))
  [ "$window" -ge 2 ] || window=2
  sleep "$settle"
  c0=$(server_cpu); t0=$(date +%s.%N)
  sleep "$window"
  c1=$(server_cpu); t1=$(date +%s.%N)
  wait $bpid || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "leasering bench failed ($rc) for $label" >&2; exit 1; }
  stop_server
  python3 - "$out" "$label" "$n" "$hold" "$c0" "$c1" "$t0" "$t1" >>"$OUT/raw.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
label, n, hold = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c0, c1, t0, t1 = map(float, sys.argv[5:9])
rps = d["renewals_per_sec"]
cpu = d["cpu_ns_per_renewal"] * rps * hold / 1e9  # process CPU over the hold, s
srv = (c1 - c0) * 1e9 / (rps * (t1 - t0)) if rps else 0
print("\t".join(str(x) for x in [label, n, rps, d["cpu_ns_per_renewal"],
      round(cpu * 1e6 / (n * hold), 3), round(srv, 1), d["renew_latency_us"]["p99"],
      d.get("renew_keys_per_request", 0), d["lost"], d["not_acquired"]]))
PY
}

# sweep NAME N "LABEL|TTL|HOLD|URI|ARGS" ... : empty TTL, HOLD or URI take
# 3000 ms, $SECS and a plain redis:// URI. Rounds alternate the variants.
sweep() {
  local name=$1 n=$2
  shift 2
  echo
  echo "### $name: $n leases, $RUNS rounds (medians)"
  echo
  for round in $(seq 1 "$RUNS"); do
    for v in "$@"; do
      IFS='|' read -r label ttl hold uri args <<<"$v"
      # shellcheck disable=SC2086
      one "$name:$label" "$n" "${ttl:-3000}" "${hold:-$SECS}" \
        "${uri:-redis://127.0.0.1:@PORT@}" --ttl "${ttl:-3000}" $args
    done
  done
  echo "| $name | renew/s | client ns/r | client us/lease-s | Redis ns/r | p99 us | keys/req | lost | not acq |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for v in "$@"; do
    IFS='|' read -r label _ <<<"$v"
    python3 - "$OUT/raw.tsv" "$name:$label" "$label" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.split("\t")[0] == sys.argv[2]]
med = lambda i: statistics.median(float(r[i]) for r in rows)
print("| %s | %.0f | %.0f | %.3f | %.0f | %.0f | %.1f | %d | %d |" % (sys.argv[3], med(2), med(3),
      med(4), med(5), med(6), med(7), max(int(r[8]) for r in rows), max(int(r[9]) for r in rows)))
PY
  done
}

R=redis://127.0.0.1:@PORT@
for s in $SWEEPS; do
  case $s in
    batch) sweep batch "$BIG" "1|||| --batch 1" "16|||| --batch 16" "64 (default)|||| --batch 64" \
             "256|||| --batch 256" ;;
    fraction) sweep renew-fraction 10000 "0.25|||| --renew-fraction 0.25" \
                "1/3 (default)|||| --renew-fraction 0.3333" "0.5|||| --renew-fraction 0.5" ;;
    connections) sweep connections "$BIG" "1 (default)|||| --connections 1" \
                   "2|||| --connections 2" "4|||| --connections 4" ;;
    ttl) sweep ttl "$BIG" "3 s|3000|$SECS||" "10 s|10000|$(( SECS + 10 ))||" \
           "30 s|30000|$(( SECS + 40 ))||" ;;
    latency) sweep store-latency 10000 "+0 ms|||chaos+$R?delay_ms=0|" \
               "+10 ms|||chaos+$R?delay_ms=10|" "+50 ms|||chaos+$R?delay_ms=50|" \
               "+50 ms, fraction 0.25|||chaos+$R?delay_ms=50| --renew-fraction 0.25" ;;
    *) echo "unknown sweep $s" >&2; exit 2 ;;
  esac
done
