#!/usr/bin/env bash
# bench/etcd.sh - etcd leases (issue 14): session mode against per-name mode
# on one etcd, with Redis per-lease and session mode as the baseline, all in
# the same run and measured the same way.
#
#   bench/etcd.sh [--leases "10000 100000"] [--modes "session lease redis redis-session"]
#                 [--ttl MS] [--seconds S] [--runs R] [--etcd-connections C] [--out DIR]
#
# For each N, round and kind, a fresh store on free loopback ports (etcd
# 3.4 from Debian, default raft timings, its own data dir; or redis-server),
# `leasering bench --json` holding N leases for S seconds (default TTL
# 15000 ms, 40 s), and a sampler every 0.5 s of the server's CPU
# (/proc/PID/stat utime+stime) and, for etcd, the gRPC messages it received
# (the sum of grpc_server_msg_received_total on /metrics: every gateway
# request and every keep-alive is one). Figures over the window [hold start
# + TTL/3 + 1 s, hold end - 1 s] (past the first renewal cycle):
#   req/s           messages etcd received per second (etcd kinds)
#   client ns/ls    the holder's process CPU over the whole hold /
#                   (leases held at its end x hold seconds): cpu_ns_per_lease_second
#   server ns/ls    the server's CPU over the window / (N x window seconds)
#   lost, not acquired, acquire s, renew failures, steady allocs
# Medians over the rounds (lost and failures: the largest). DIR (default a new
# /tmp/leasering-etcd.XXXXXX, kept) gets runs.jsonl (each run's JSON with the
# server figures added), samples.KIND.N.R.tsv, stderr.KIND.N.R.txt, table.md.
# etcd runs use --connections C (default 16): the gateway answers each
# connection's requests one at a time, and etcd commits concurrent
# acquisitions together, so 100,000 acquisitions need many in flight.
# Builds build/release (tools/leasering) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

usage() {
  { printf "usage:\n"; sed -n "6,7p" "$0" | sed "s/^#//"; } >&2
  exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "etcd.sh: $1 needs a positive whole number" >&2; exit 2; }; }

LEASES="10000 100000" KINDS="session lease redis redis-session" TTL=15000 SECS=40 RUNS=1 OUT= ECONNS=16
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --leases) LEASES=$2 ;;
    --modes) KINDS=$2 ;;
    --ttl) num "$1" "$2"; TTL=$2 ;;
    --seconds) num "$1" "$2"; SECS=$2 ;;
    --runs) num "$1" "$2"; RUNS=$2 ;;
    --etcd-connections) num "$1" "$2"; ECONNS=$2 ;;
    --out) OUT=$2 ;;
    *) usage ;;
  esac
  shift 2
done
for n in $LEASES; do num --leases "$n"; done
for k in $KINDS; do
  case $k in session | lease | redis | redis-session) ;;
    *) echo "etcd.sh: --modes takes session, lease, redis, redis-session; not '$k'" >&2; exit 2 ;;
  esac
done
command -v etcd >/dev/null || { echo "etcd.sh: etcd missing: run scripts/setup (apt etcd-server)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "etcd.sh: redis-server missing: run scripts/setup" >&2; exit 1; }
TOOL=${TOOL:-build/release/tools/leasering}
if [ ! -x "$TOOL" ]; then
  [ -f build/release/build.ninja ] || meson setup build/release -Dbuildtype=release >/dev/null
  ninja -C build/release >/dev/null
fi
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/leasering-etcd.XXXXXX)
mkdir -p "$OUT"
dir=$(mktemp -d /tmp/leasering-etcd-run.XXXXXX)
pid= epid= holder= sampler=
cleanup() {
  for p in $sampler $holder $epid $pid; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
CLK_TCK=$(getconf CLK_TCK)
: >"$OUT/runs.jsonl"
{ uname -a; nproc; free -g | head -2; etcd --version | head -1; redis-server --version; date -u; } >"$OUT/machine.txt"

start_etcd() { # -> $eport, $epid
  for _ in $(seq 1 10); do
    eport=$((20000 + RANDOM % 40000)); local peer=$((eport + 1))
    rm -rf "$dir/etcd"
    etcd --name bench --data-dir "$dir/etcd" \
      --listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "bench=http://127.0.0.1:$peer" --quota-backend-bytes 8589934592 \
      --log-level error >"$dir/etcd.log" 2>&1 &
    epid=$!
    for _ in $(seq 1 100); do
      if curl -sf -X POST "http://127.0.0.1:$eport/v3/maintenance/status" -d '{}' >/dev/null 2>&1; then
        return 0
      fi
      kill -0 "$epid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$epid" 2>/dev/null || true; wait "$epid" 2>/dev/null || true
  done
  echo "etcd.sh: cannot start etcd: $(tail -3 "$dir/etcd.log")" >&2; exit 1
}
stop_etcd() {
  if [ -n "$epid" ]; then kill "$epid" 2>/dev/null || true; wait "$epid" 2>/dev/null || true; fi
  epid=
}
proc_cpu() { # CPU seconds (utime + stime) of pid $1
  awk -v t="$CLK_TCK" '{print ($14 + $15) / t}' "/proc/$1/stat"
}
etcd_msgs() { # gRPC messages etcd received so far
  curl -sf "http://127.0.0.1:$eport/metrics" |
    awk '/^grpc_server_msg_received_total/{s+=$NF} END{printf "%d", s}'
}

row() { # kind n round -> runs one bench, appends its JSON to runs.jsonl
  local kind=$1 n=$2 r=$3 uri spid tag="$1.$2.$3" conns=()
  case $kind in
    session) start_etcd; uri="etcd://127.0.0.1:$eport"; spid=$epid; conns=(--connections "$ECONNS") ;;
    lease) start_etcd; uri="etcd://127.0.0.1:$eport?mode=lease"; spid=$epid; conns=(--connections "$ECONNS") ;;
    redis) start_server; uri="redis://127.0.0.1:$port"; spid=$pid ;;
    redis-session) start_server; uri="redis://127.0.0.1:$port?mode=session"; spid=$pid ;;
  esac
  local t0; t0=$(date +%s.%N)
  "$TOOL" bench --backend "$uri" --leases "$n" --ttl "$TTL" --seconds "$SECS" \
    --acquire-timeout 120000 "${conns[@]}" --json >"$dir/out.json" 2>"$OUT/stderr.$tag.txt" &
  holder=$!
  ( while kill -0 "$holder" 2>/dev/null; do
      m=NA; case $kind in session | lease) m=$(etcd_msgs || echo NA) ;; esac
      echo "$(date +%s.%N) $(proc_cpu "$spid" 2>/dev/null || echo NA) $m"
      sleep 0.5
    done ) >"$OUT/samples.$tag.tsv" &
  sampler=$!
  local rc=0; wait "$holder" || rc=$?
  holder=
  wait "$sampler" 2>/dev/null || true
  sampler=
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "etcd.sh: $tag: leasering bench exit $rc: $(tail -3 "$OUT/stderr.$tag.txt")" >&2; exit 1; }
  case $kind in session | lease) stop_etcd ;; *) stop_server ;; esac
  python3 - "$dir/out.json" "$OUT/samples.$tag.tsv" "$t0" "$TTL" "$SECS" "$kind" "$r" >>"$OUT/runs.jsonl" <<'EOF'
import json, sys
out, samples, t0, ttl, secs, kind, rnd = sys.argv[1:]
d = json.load(open(out))
t0, ttl, secs = float(t0), int(ttl), int(secs)
hold0 = t0 + d["acquire_seconds"]
lo, hi = hold0 + ttl / 3000.0 + 1.0, hold0 + secs - 1.0
rows = []
for line in open(samples):
    f = line.split()
    if len(f) == 3 and f[1] != "NA":
        rows.append((float(f[0]), float(f[1]), None if f[2] == "NA" else int(f[2])))
win = [x for x in rows if lo <= x[0] <= hi]
d["kind"], d["round"] = kind, int(rnd)
d["server_ns_per_lease_second"] = d["req_per_sec"] = None
if len(win) >= 2:
    span = win[-1][0] - win[0][0]
    cpu = win[-1][1] - win[0][1]
    d["window_s"] = round(span, 2)
    if span > 0 and d["acquired"]:
        d["server_ns_per_lease_second"] = round(cpu * 1e9 / (d["acquired"] * span), 2)
    if win[0][2] is not None and win[-1][2] is not None and span > 0:
        d["req_per_sec"] = round((win[-1][2] - win[0][2]) / span, 1)
print(json.dumps(d))
EOF
  echo "  $tag: $(tail -1 "$OUT/runs.jsonl" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("acquired", d["acquired"], "lost", d["lost"], "client ns/ls", d["cpu_ns_per_lease_second"], "server ns/ls", d["server_ns_per_lease_second"], "req/s", d["req_per_sec"])')" >&2
}

for n in $LEASES; do
  for r in $(seq 1 "$RUNS"); do
    for k in $KINDS; do row "$k" "$n" "$r"; done
  done
done

python3 - "$OUT/runs.jsonl" >"$OUT/table.md" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fmt(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"
print("| leases | kind | req/s to etcd | client ns/lease-s | server ns/lease-s | acquire s | renew failures | lost | not acquired | steady allocs |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
groups = {}
for d in runs:
    groups.setdefault((d["leases"], d["kind"]), []).append(d)
base = {}
for (n, k), ds in sorted(groups.items()):
    c = med([d["cpu_ns_per_lease_second"] for d in ds])
    base[(n, k)] = c
    print(f"| {n:,} | {k} | {fmt(med([d['req_per_sec'] for d in ds]))} | {fmt(c, 2)} | "
          f"{fmt(med([d['server_ns_per_lease_second'] for d in ds]), 2)} | "
          f"{fmt(med([d['acquire_seconds'] for d in ds]), 2)} | "
          f"{max(d['renew_failures'] for d in ds)} | {max(d['lost'] for d in ds)} | "
          f"{max(d['not_acquired'] for d in ds)} | {max(d['steady_allocs'] for d in ds)} |")
print()
for n in sorted({n for n, _ in groups}):
    s, r = base.get((n, "session")), base.get((n, "redis"))
    if s and r:
        print(f"- {n:,} leases: Redis per-lease client ns/lease-s / etcd session = {r / s:,.1f}x")
    l = base.get((n, "lease"))
    if s and l:
        print(f"- {n:,} leases: etcd per-name / etcd session client ns/lease-s = {l / s:,.1f}x")
EOF
cat "$OUT/table.md"
echo "data: $OUT" >&2
