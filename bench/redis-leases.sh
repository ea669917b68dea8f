#!/usr/bin/env bash
# bench/redis-leases.sh - leasering against a local redis-server.
#
# For each lease count (default 1000 10000 100000) and each batch size
# (default 64 and 1), runs `leasering bench --json` against a fresh
# redis-server and reports client CPU per renewal (from the tool) and Redis
# server CPU per renewal (INFO cpu sampled inside the hold window, divided by
# the renewals in that window). Beside it, in the same run, redis-benchmark's
# ceiling for the single-key renew script (EVALSHA, -P 64 -c 50), so that
# renewals/s reads as a fraction of what the server can do.
#
#   bench/redis-leases.sh [--ttl MS] [--seconds S] [--leases "N N"] [--batches "B B"]
# Needs a release build: scripts/run builds one (build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
TTL=10000 SECONDS_=30 LEASES="1000 10000 100000" BATCHES="64 1"
while [ $# -gt 0 ]; do
  case $1 in
    --ttl) TTL=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --leases) LEASES=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    *) echo "usage: $0 [--ttl MS] [--seconds S] [--leases \"N ...\"] [--batches \"B ...\"]" >&2; exit 2 ;;
  esac
done
TOOL=build/release/tools/leasering
[ -x $TOOL ] || { echo "build it first: scripts/run (or meson setup build/release -Dbuildtype=release && ninja -C build/release)" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: apt-get install redis-tools" >&2; exit 1; }

. bench/lib.sh
dir=$(mktemp -d /tmp/leasering-bench.XXXXXX)
pid=
trap 'stop_server; rm -rf "$dir"' EXIT

json() { # json FIELD FILE -> value (flat or one level deep: a.b)
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[2]))
for k in sys.argv[1].split('.'):
    v = v[k]
print(v)
PY
}

echo "machine: $(nproc) cpu, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(redis-server --version | awk '{print $3}'); date: $(date -u +%F)"

# The server's ceiling for one renewal script call.
start_server
sha=$(redis-cli -p "$port" script load "$(sed -n '/^static const char renew_lua\[\] =/,/;$/p' backends/redis_scripts.h | sed -e '1d' -e 's/^ *"//' -e 's/\\n";*$//' -e 's/\\n"$//')")
redis-cli -p "$port" hset 'lr:{ceiling}' owner 0123456789abcdef0123456789abcdef >/dev/null
ceiling=$(redis-benchmark -p "$port" -n 2000000 -P 64 -c 50 -q \
  evalsha "$sha" 1 'lr:{ceiling}' "$TTL" 0123456789abcdef0123456789abcdef 2>/dev/null \
  | tr '\r' '\n' | awk '/requests per second/{for(i=1;i<=NF;i++) if($i ~ /^[0-9.]+$/ && $(i+1)=="requests"){v=$i}} END{print v}')
stop_server
echo "redis-benchmark ceiling, renew script (EVALSHA, 1 key, -P 64 -c 50): ${ceiling} calls/s"
printf '%-8s %-6s %10s %10s %8s %6s %8s %12s %12s %14s %10s %8s\n' leases batch renew/s "%ceiling" p99_us lost not_acq client_ns/r server_ns/r steady_allocs B/lease cpu_s

for n in $LEASES; do
  for b in $BATCHES; do
    start_server
    out=$dir/out.json
    $TOOL bench --backend "redis://127.0.0.1:$port" --leases "$n" --ttl "$TTL" \
      --seconds "$SECONDS_" --batch "$b" --json >"$out" &
    bpid=$!
    # The hold starts once all N are acquired (2 keys each: hash + fence counter).
    until [ "$(redis-cli -p "$port" dbsize)" -ge $((2 * n)) ]; do sleep 0.1; done
    sleep $(( TTL / 2000 + 1 ))        # past the first renewal cycle
    c0=$(server_cpu); t0=$(date +%s.%N)
    sleep $(( SECONDS_ - TTL / 2000 - 4 ))
    c1=$(server_cpu); t1=$(date +%s.%N)
    wait $bpid || [ $? -eq 3 ]        # 3: not all acquired, or some lost (see the table)
    rps=$(json renewals_per_sec "$out")
    server_ns=$(python3 -c "print(round(($c1-$c0)*1e9/($rps*($t1-$t0)),1))")
    pct=$(python3 -c "print(round(100*$rps/$ceiling,1))")
    printf '%-8s %-6s %10s %10s %8s %6s %8s %12s %12s %14s %10s %8s\n' "$n" "$b" "$rps" "$pct" \
      "$(json renew_latency_us.p99 "$out")" "$(json lost "$out")" "$(json not_acquired "$out")" \
      "$(json cpu_ns_per_renewal "$out")" "$server_ns" "$(json steady_allocs "$out")" \
      "$(json rss_bytes_per_lease "$out")" \
      "$(python3 -c "print(round($(json cpu_user_s "$out")+$(json cpu_sys_s "$out"),2))")"
    stop_server
  done
done
