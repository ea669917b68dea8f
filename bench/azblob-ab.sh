#!/usr/bin/env bash
# bench/azblob-ab.sh - two leasering binaries against the same Azurite 3.35.0,
# alternating, so that a shared machine's load falls on both alike.
#
#   bench/azblob-ab.sh --base BIN [--new BIN] [--leases N] [--seconds S]
#                      [--connections "8 2"] [--schemes "http https"] [--runs R]
#                      [--base-args "..."] [--new-args "..."] [--out DIR]
# Every run gets a fresh Azurite (in memory: a long-lived one slows down as
# containers and blobs pile up, and the later runs would lose leases to it).
# BIN is a `leasering` tool (e.g. one built from an older commit:
#   git worktree add /tmp/base ef86ece && (cd /tmp/base && meson setup
#   build/release -Dbuildtype=release -Dtests=false && ninja -C build/release)).
# --new defaults to build/release/tools/leasering; --*-args go to that
# binary's `leasering bench` (e.g. --new-args "--coalesce 100"); --out keeps
# every run's JSON in DIR. Every run holds N leases
# (TTL 15 s, the shortest Azure lease) for S seconds per binary, scheme and
# connection count; the order of the two binaries flips every run. Prints
# medians of:
#   r/s        renewals per second over the hold (the tool's JSON)
#   ns/ren     client CPU per renewal (cpu_ns_per_renewal) and the ratio new/base
#   wake/ren   the tool's voluntary context switches per renewal (each one
#              sleep in io_uring_enter that a timer or a completion ended),
#              sampled once a second, over the hold's last S-8 seconds
#   srv_ns/ren Azurite's CPU (utime+stime) per renewal over the same window
#   p99_us     renewal latency; lost, not_acq: leases lost, never acquired
#   runs       how many runs wrote a JSON (all of them, unless one failed)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=1000 SECS=30 CONNS="8 2" SCHEMES="http https" RUNS=3 BASE= NEW=build/release/tools/leasering
BASE_ARGS= NEW_ARGS= OUT=
while [ $# -gt 0 ]; do
  case $1 in
    --base) BASE=$2; shift 2 ;; --new) NEW=$2; shift 2 ;;
    --leases) N=$2; shift 2 ;; --seconds) SECS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;; --schemes) SCHEMES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --base-args) BASE_ARGS=$2; shift 2 ;; --new-args) NEW_ARGS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 --base BIN [--new BIN] [--leases N] [--seconds S] [--connections \"C...\"] [--schemes \"http https\"] [--runs R] [--base-args A] [--new-args A] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ -n "$BASE" ] && [ -x "$BASE" ] || { echo "--base BIN: a leasering binary to compare with" >&2; exit 2; }
[ -x "$NEW" ] || { echo "build it first: scripts/run (or give --new BIN)" >&2; exit 1; }
azurite_prepare leasering-azab
uri() { # uri SCHEME CONTAINER (Azurite on $port)
  if [ "$1" = http ]; then
    echo "azblob://devstoreaccount1:$KEY@127.0.0.1:$port/$2?tls=no"
  else
    echo "azblob://devstoreaccount1:$KEY@localhost:$port/$2?tls=yes&cacert=$dir/ca.pem"
  fi
}
# stat PID: "voluntary_context_switches utime+stime_ticks" of PID.
stat() {
  echo "$(awk '/^voluntary_ctxt_switches:/{print $2}' "/proc/$1/status" 2>/dev/null)" \
    "$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null)"
}
one() { # one base|new SCHEME CONNS RUN
  local bin=$BASE args=$BASE_ARGS
  [ "$1" = new ] && bin=$NEW args=$NEW_ARGS
  local out=$dir/$1.$2.$3.$4
  start_azurite "$2"
  local apid=${pids[-1]}
  # shellcheck disable=SC2086
  "$bin" bench --backend "$(uri "$2" "$1-$3-$4")" --leases "$N" --ttl 15000 \
    --seconds "$SECS" --connections "$3" --json $args >"$out.json" &
  local bpid=$!
  : >"$out.samples"
  while kill -0 $bpid 2>/dev/null; do # the tool and Azurite, once a second
    echo "$(date +%s.%N) $(stat $bpid) $(stat "$apid")" >>"$out.samples"
    sleep 1
  done
  local rc=0; wait $bpid || rc=$?
  kill "$apid"; while kill -0 "$apid" 2>/dev/null; do sleep 0.1; done
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || exit $rc
  python3 - "$out" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, secs, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [l.split() for l in open(out + '.samples')]
rows = [(float(r[0]), float(r[1]), float(r[4])) for r in rows if len(r) == 5]
if not rows:
    sys.exit(0)  # no sample: the table shows the rest of the run
end = rows[-1][0]
# the hold is the run's last SECS seconds: skip its first 6 (the first
# renewal cycle after the acquisitions) and the last 2 (release, exit)
win = [r for r in rows if end - secs + 6 <= r[0] <= end - 2]
d = json.load(open(out + '.json'))
ren = d['renewals_per_sec'] * (win[-1][0] - win[0][0]) if len(win) > 1 else 0
d['wakeups_per_renewal'] = (win[-1][1] - win[0][1]) / ren if ren else 0
d['server_ns_per_renewal'] = (win[-1][2] - win[0][2]) / hz * 1e9 / ren if ren else 0
json.dump(d, open(out + '.json', 'w'))
PY
}

echo "machine: $(nproc) cpu, $(uname -r), azurite $($AZ --version), node $(node --version); date: $(date -u '+%F %H:%M UTC')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$N leases, TTL 15000 ms, hold $SECS s, connections: $CONNS, $RUNS runs each, alternating"
echo "base: $BASE $BASE_ARGS"
echo "new:  $NEW $NEW_ARGS"
for r in $(seq 1 "$RUNS"); do
  for c in $CONNS; do
    for s in $SCHEMES; do
      if [ $((r % 2)) -eq 1 ]; then one base "$s" "$c" "$r"; one new "$s" "$c" "$r"
      else one new "$s" "$c" "$r"; one base "$s" "$c" "$r"; fi
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$OUT" ] || { mkdir -p "$OUT" && cp "$dir"/*.json "$OUT"/; }
python3 - "$dir" "$RUNS" "$SCHEMES" "$CONNS" <<'PY'
import json, statistics, sys
d, runs, schemes, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
def vals(b, s, c, key, sub=None):
    out = []
    for r in range(1, runs + 1):
        try:
            j = json.load(open(f"{d}/{b}.{s}.{c}.{r}.json"))
            out.append(j[key][sub] if sub else j[key])
        except (OSError, ValueError, KeyError):
            pass  # a run that wrote no JSON: left out, and counted below
    return out
med = lambda v: statistics.median(v) if v else float('nan')
print(f"{'scheme':6} {'conns':>5} {'bin':4} {'runs':>4} {'r/s':>7} {'ns/ren':>9} {'ratio':>6} "
      f"{'wake/ren':>9} {'srv_ns/ren':>11} {'p99_us':>9} {'lost':>5} {'not_acq':>7}")
for s in schemes:
    for c in conns:
        bn = med(vals('base', s, c, 'cpu_ns_per_renewal'))
        for b in ('base', 'new'):
            ns = vals(b, s, c, 'cpu_ns_per_renewal')
            print(f"{s:6} {c:>5} {b:4} {len(ns):>4} {med(vals(b, s, c, 'renewals_per_sec')):7.1f} "
                  f"{med(ns):9.0f} {med(ns) / bn:6.2f} "
                  f"{med(vals(b, s, c, 'wakeups_per_renewal')):9.2f} "
                  f"{med(vals(b, s, c, 'server_ns_per_renewal')):11.0f} "
                  f"{med(vals(b, s, c, 'renew_latency_us', 'p99')):9.0f} "
                  f"{med(vals(b, s, c, 'lost')):5.0f} {med(vals(b, s, c, 'not_acquired')):7.0f}")
PY
