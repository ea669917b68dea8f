#!/usr/bin/env bash
# bench/azblob-ab.sh - two leasering binaries against the same Azurite 3.35.0,
# alternating, so that a shared machine's load falls on both alike.
#
#   bench/azblob-ab.sh --base BIN [--new BIN] [--leases N] [--seconds S]
#                      [--connections "8 2"] [--schemes "http https"] [--runs R]
# BIN is a `leasering` tool (e.g. one built from an older commit:
#   git worktree add /tmp/base ef86ece && (cd /tmp/base && meson setup
#   build/release -Dbuildtype=release -Dtests=false && ninja -C build/release)).
# --new defaults to build/release/tools/leasering. Every run holds N leases
# (TTL 15 s, the shortest Azure lease) for S seconds per binary, scheme and
# connection count; the order of the two binaries flips every run. Prints
# medians of client CPU per renewal and their ratio new/base.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=1000 SECS=30 CONNS="8 2" SCHEMES="http https" RUNS=3 BASE= NEW=build/release/tools/leasering
while [ $# -gt 0 ]; do
  case $1 in
    --base) BASE=$2; shift 2 ;; --new) NEW=$2; shift 2 ;;
    --leases) N=$2; shift 2 ;; --seconds) SECS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;; --schemes) SCHEMES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 --base BIN [--new BIN] [--leases N] [--seconds S] [--connections \"C...\"] [--schemes \"http https\"] [--runs R]" >&2; exit 2 ;;
  esac
done
[ -n "$BASE" ] && [ -x "$BASE" ] || { echo "--base BIN: a leasering binary to compare with" >&2; exit 2; }
[ -x "$NEW" ] || { echo "build it first: scripts/run (or give --new BIN)" >&2; exit 1; }
azurite_prepare leasering-azab
declare -A ports
for s in $SCHEMES; do start_azurite "$s"; ports[$s]=$port; done

uri() { # uri SCHEME CONTAINER
  if [ "$1" = http ]; then
    echo "azblob://devstoreaccount1:$KEY@127.0.0.1:${ports[http]}/$2?tls=no"
  else
    echo "azblob://devstoreaccount1:$KEY@localhost:${ports[https]}/$2?tls=yes&cacert=$dir/ca.pem"
  fi
}
one() { # one base|new SCHEME CONNS RUN
  local bin=$BASE; [ "$1" = new ] && bin=$NEW
  bench_ok "$bin" bench --backend "$(uri "$2" "$1-$3-$4")" --leases "$N" --ttl 15000 \
    --seconds "$SECS" --connections "$3" --json >"$dir/$1.$2.$3.$4.json"
}

echo "machine: $(nproc) cpu, $(uname -r), azurite $($AZ --version), node $(node --version); date: $(date -u '+%F %H:%M UTC')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$N leases, TTL 15000 ms, hold $SECS s, connections: $CONNS, $RUNS runs each, alternating"
echo "base: $BASE"
echo "new:  $NEW"
for r in $(seq 1 "$RUNS"); do
  for c in $CONNS; do
    for s in $SCHEMES; do
      if [ $((r % 2)) -eq 1 ]; then one base "$s" "$c" "$r"; one new "$s" "$c" "$r"
      else one new "$s" "$c" "$r"; one base "$s" "$c" "$r"; fi
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %5s %9s %9s %13s %13s %7s %9s %9s %5s %5s\n' scheme conns base_r/s new_r/s \
  base_ns/ren new_ns/ren ratio base_p99 new_p99 lostB lostN
for s in $SCHEMES; do
  for c in $CONNS; do
    col() { for r in $(seq 1 "$RUNS"); do field "$dir/$1.$s.$c.$r.json" "$2"; done | median; }
    bn=$(col base "['cpu_ns_per_renewal']") nn=$(col new "['cpu_ns_per_renewal']")
    printf '%-6s %5s %9s %9s %13.0f %13.0f %7.2f %9s %9s %5s %5s\n' "$s" "$c" \
      "$(col base "['renewals_per_sec']")" "$(col new "['renewals_per_sec']")" "$bn" "$nn" \
      "$(python3 -c "print($nn/$bn)")" "$(col base "['renew_latency_us']['p99']")" \
      "$(col new "['renew_latency_us']['p99']")" "$(col base "['lost']")" "$(col new "['lost']")"
  done
done
