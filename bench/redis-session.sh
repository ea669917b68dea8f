#!/usr/bin/env bash
# bench/redis-session.sh - Redis CPU per lease-second, session leases
# (redis://...?mode=session) against per-lease leases (the default).
#
# For each mode, runs `leasering bench --json` against a fresh redis-server
# and samples the server's used_cpu_user + used_cpu_sys (INFO cpu) inside the
# hold: from a first renewal cycle after every lease is acquired until 4 s
# before the hold ends. Reports that CPU divided by leases x seconds, the
# script calls Redis saw in the window (INFO commandstats), and the tool's
# own counts (lost must be 0).
#
#   bench/redis-session.sh [--ttl MS] [--seconds S] [--leases N] [--modes "session lease idle"]
# (idle: the same server with no client, for its own background CPU)
# Needs a release build (build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
TTL=3000 SECONDS_=20 LEASES=100000 MODES="session lease"
while [ $# -gt 0 ]; do
  case $1 in
    --ttl) TTL=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --leases) LEASES=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    *) echo "usage: $0 [--ttl MS] [--seconds S] [--leases N] [--modes \"session lease\"]" >&2; exit 2 ;;
  esac
done
TOOL=build/release/tools/leasering
[ -x $TOOL ] || { echo "build it first: meson setup build/release -Dbuildtype=release && ninja -C build/release" >&2; exit 1; }

. bench/lib.sh
dir=$(mktemp -d /tmp/leasering-session.XXXXXX)
pid=
trap 'stop_server; rm -rf "$dir"' EXIT
evalsha_calls() {
  redis-cli -p "$port" info commandstats | tr -d '\r' |
    awk -F'[=,:]' '/^cmdstat_evalsha:/{print $3; f=1} END{if(!f) print 0}'
}

echo "machine: $(nproc) cpu, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2); date: $(date -u '+%F %H:%M') UTC"
echo "leases $LEASES, TTL $TTL ms, hold $SECONDS_ s"
printf '%-8s %8s %12s %14s %12s %10s %6s %8s\n' mode window_s server_cpu_s ns/lease-second calls/s renew/s lost not_acq

for mode in $MODES; do
  start_server
  if [ "$mode" = idle ]; then # the server's own work with no client, same window
    sleep 2
    c0=$(server_cpu); t0=$(date +%s.%N); sleep $(( SECONDS_ - TTL / 1000 - 5 ))
    c1=$(server_cpu); t1=$(date +%s.%N)
    printf '%-8s %8s %12s %14s\n' idle "$(python3 -c "print(round($t1-$t0,2))")" \
      "$(python3 -c "print(round($c1-$c0,3))")" \
      "$(python3 -c "print(round(($c1-$c0)*1e9/($LEASES*($t1-$t0)),2))")"
    stop_server
    continue
  fi
  q=""; [ "$mode" = session ] && q="?mode=session"
  out=$dir/out.json
  $TOOL bench --backend "redis://127.0.0.1:$port$q" --leases "$LEASES" --ttl "$TTL" \
    --seconds "$SECONDS_" --acquire-timeout 120000 --json >"$out" &
  bpid=$!
  # Both modes keep 2 keys a lease (hash + fence counter) once acquired.
  # (or the bench gave up on some: then the window starts late, and lost says so)
  for _ in $(seq 1 1500); do
    [ "$(redis-cli -p "$port" dbsize)" -ge $((2 * LEASES)) ] && break
    kill -0 $bpid 2>/dev/null || break
    sleep 0.2
  done
  sleep $(( TTL / 1000 + 1 ))           # past the first renewal cycle
  c0=$(server_cpu); e0=$(evalsha_calls); t0=$(date +%s.%N)
  sleep $(( SECONDS_ - TTL / 1000 - 5 ))
  c1=$(server_cpu); e1=$(evalsha_calls); t1=$(date +%s.%N)
  bench_ok wait $bpid
  w=$(python3 -c "print(round($t1-$t0,2))")
  printf '%-8s %8s %12s %14s %12s %10s %6s %8s\n' "$mode" "$w" \
    "$(python3 -c "print(round($c1-$c0,3))")" \
    "$(python3 -c "print(round(($c1-$c0)*1e9/($LEASES*($t1-$t0)),2))")" \
    "$(python3 -c "print(round(($e1-$e0)/($t1-$t0),1))")" \
    "$(field "$out" "['renewals_per_sec']")" "$(field "$out" "['lost']")" \
    "$(field "$out" "['not_acquired']")"
  cp "$out" "$dir/../leasering-session-$mode.json" 2>/dev/null || true
  stop_server
done
