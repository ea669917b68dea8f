#!/usr/bin/env bash
# bench/hiredis.sh - hiredis async GET throughput and client CPU per command:
# leasering's adapter (lr_hiredis_attach) against hiredis's own libevent
# adapter, same process, alternating runs, medians and ratios.
#
#   bench/hiredis.sh [--commands N] [--runs R] [--windows "1 16 256"]
# Starts a throwaway redis-server on a free loopback port and runs
# build/release/bench/bench-hiredis once per window (GETs kept in flight).
# Builds build/release first if needed (as scripts/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=200000 RUNS=5 WINDOWS="1 16 256"
while [ $# -gt 0 ]; do
  case $1 in
    --commands) N=$2; shift 2 ;; --runs) RUNS=$2; shift 2 ;; --windows) WINDOWS=$2; shift 2 ;;
    *) echo "usage: $0 [--commands N] [--runs R] [--windows \"1 16 256\"]" >&2; exit 2 ;;
  esac
done
scripts/setup
if [ ! -f build/release/build.ninja ]; then
  meson setup build/release -Dbuildtype=release -Dtests=false >build/release.setup.log 2>&1 \
    || { cat build/release.setup.log; exit 1; }
fi
ninja -C build/release >build/release.build.log 2>&1 || { tail -50 build/release.build.log; exit 1; }
BENCH=build/release/bench/bench-hiredis
[ -x $BENCH ] || { echo "$BENCH was not built: needs libhiredis-dev and libevent-dev (scripts/setup)" >&2; exit 1; }

dir=$(mktemp -d /tmp/leasering-hiredis.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 20); do
  port=$((20000 + RANDOM % 40000))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break 2
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill $pid 2>/dev/null || true
  pid=
done
[ -n "$pid" ] || { echo "cannot start redis-server" >&2; exit 1; }

echo "machine: $(nproc) cpu, $(uname -r), redis $(redis-server --version | awk '{print $3}'), hiredis $(pkg-config --modversion hiredis), libevent $(pkg-config --modversion libevent); date: $(date -u +%F)"
echo "$N GETs per run, $RUNS runs per adapter, alternating; medians"
printf '%7s %16s %16s %9s %16s %16s %9s\n' window lr_gets/s libevent_gets/s ratio lr_cpu_ns/cmd libevent_cpu_ns ratio
for w in $WINDOWS; do
  $BENCH --port "$port" --commands "$N" --window "$w" --runs "$RUNS" >"$dir/w$w.json"
  f() { field "$dir/w$w.json" "$1"; }
  printf '%7s %16s %16s %9s %16s %16s %9s\n' "$w" \
    "$(f "['leasering']['gets_per_s']")" "$(f "['libevent']['gets_per_s']")" "$(f "['throughput_ratio']")" \
    "$(f "['leasering']['cpu_ns_per_cmd']")" "$(f "['libevent']['cpu_ns_per_cmd']")" "$(f "['cpu_ratio']")"
done
