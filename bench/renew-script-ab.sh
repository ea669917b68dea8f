#!/usr/bin/env bash
# bench/renew-script-ab.sh - server CPU per key of renew-script variants, for
# deciding on the Redis renewal layout (docs/BENCHMARKS.md). Not the backend's
# code path: redis-benchmark calls each script with 64 keys per EVALSHA on a
# throwaway redis-server; the server's used_cpu_user+sys over the run is
# divided by the keys renewed. Variants:
#   current  - the backend's renew script: HGET owner, PEXPIRE, one integer per key
#   failed   - same checks, replies only the indexes that failed
#   string   - owner token as a plain string key (GET instead of HGET)
#   bench/renew-script-ab.sh [--rounds R] [--calls N]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=3 CALLS=20000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;; --calls) CALLS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--calls N]" >&2; exit 2 ;;
  esac
done
dir=$(mktemp -d /tmp/leasering-ab.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 40000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.05
done
cli() { redis-cli -p "$port" "$@"; }
loop_body() { # $1: the owner check
  printf '%s\n' "local call, ttl, r, n = redis.call, ARGV[1], {}, 0" \
    "for i = 1, #KEYS do" "  local k = KEYS[i]" \
    "  if $1 ~= ARGV[i + 1] or call('PEXPIRE', k, ttl) == 0 then" \
    "    n = n + 1" "    r[n] = i" "  end" "end" "return r"
}
current=$(cli SCRIPT LOAD "local call, ttl, r = redis.call, ARGV[1], {}
for i = 1, #KEYS do
  local k = KEYS[i]
  if call('HGET', k, 'owner') == ARGV[i + 1] then
    r[i] = call('PEXPIRE', k, ttl)
  else
    r[i] = 0
  end
end
return r")
failed=$(cli SCRIPT LOAD "$(loop_body "call('HGET', k, 'owner')")")
string=$(cli SCRIPT LOAD "$(loop_body "call('GET', k)")")
hkeys=() skeys=() toks=()
for i in $(seq 1 64); do
  cli HSET "lr:{n$i}" owner "tok$i" fence 1 >/dev/null
  cli PEXPIRE "lr:{n$i}" 100000000 >/dev/null
  cli SET "s:{n$i}" "tok$i" PX 100000000 >/dev/null
  hkeys+=("lr:{n$i}") skeys+=("s:{n$i}") toks+=("tok$i")
done
cpu() { cli INFO cpu | awk -F: '/used_cpu_(user|sys):/{s+=$2} END{printf "%.6f", s}'; }
echo "redis $(redis-server --version | awk '{print $3}'), $(nproc) cpu, $(date -u +%F); $CALLS calls x 64 keys, $ROUNDS rounds; server us per key"
for v in current failed string; do : >"$dir/$v"; done
for _ in $(seq 1 "$ROUNDS"); do
  for v in current failed string; do
    keys=("${hkeys[@]}"); [ $v = string ] && keys=("${skeys[@]}")
    a=$(cpu)
    redis-benchmark -p "$port" -n "$CALLS" -c 4 -P 4 -q EVALSHA "${!v}" 64 "${keys[@]}" 10000 \
      "${toks[@]}" >/dev/null 2>&1
    b=$(cpu)
    echo "($b - $a) * 1000000 / ($CALLS * 64)" | bc -l >>"$dir/$v"
  done
done
for v in current failed string; do
  printf '%-8s median %.3f us/key\n' $v "$(median <"$dir/$v")"
done
