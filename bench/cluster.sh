#!/usr/bin/env bash
# bench/cluster.sh - the same lease load against one redis-server and against
# a 3-master Redis Cluster (no replicas), all on loopback, in one run
# (issue 11's benchmark).
#
#   bench/cluster.sh [--leases N] [--ttl MS] [--hold S] [--reps R] [--out DIR]
#
# Each repetition starts a fresh single node (redis://) and a fresh cluster
# (redis+cluster://, built with redis-cli --cluster create) and runs
# `leasering bench --json` against each: --leases (default 100000) held for
# --hold seconds (default 20) at TTL --ttl (default 3000 ms). Per run:
#   renewals/s          the tool's renewals_per_sec over the hold
#   client ns/renewal   the tool's process CPU over the hold / renewals
#   server ns/renewal   redis-server INFO cpu (user+sys), summed over the
#                       nodes, over a window from TTL/2 + 1 s into the hold
#                       to 1 s before its end, / renewals in that window
#   lost                leases lost (also: renew failures, not acquired)
#   share per node      each node's part of the EVALSHA calls (renewal
#                       requests) and of keyspace_hits (keys the renewals
#                       touched) in the same window; dev is the largest
#                       distance of a share from an even 1/nodes, relative
#                       to it (target: within 10%)
# Medians over --reps (default 3; lost and failures: the largest), then the
# cluster / single ratios (target: client ns/renewal within 1.3x).
# DIR (default a new /tmp/leasering-cluster.XXXXXX, kept) gets runs.tsv (a row
# per run), runs.jsonl (the tool's JSON per run), samples.KIND.R.tsv (per
# node: time, CPU s, EVALSHA calls, keyspace_hits), summary.md and
# stderr.KIND.R.txt. Builds build/release (tools/leasering) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  { printf "usage:\n"; sed -n "6p" "$0" | sed "s/^#//"; } >&2
  exit 2
}
die() { echo "cluster.sh: $*" >&2; exit 1; }
num() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "cluster.sh: $1 needs a positive whole number" >&2; exit 2; }; }

LEASES=100000 TTL=3000 HOLD=20 REPS=3 OUT=
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --leases) num "$1" "$2"; LEASES=$2 ;;
    --ttl) num "$1" "$2"; TTL=$2 ;;
    --hold) num "$1" "$2"; HOLD=$2 ;;
    --reps) num "$1" "$2"; REPS=$2 ;;
    --out) OUT=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[ "$HOLD" -ge $((TTL / 2000 + 3)) ] ||
  { echo "cluster.sh: a $HOLD s hold at TTL $TTL ms leaves no sampling window; it needs TTL/2 + 3 s" >&2; exit 2; }

TOOL=build/release/tools/leasering
if [ ! -x $TOOL ]; then
  [ -d build/release ] || meson setup build/release -Dbuildtype=release >/dev/null
  ninja -C build/release tools/leasering >/dev/null
fi
command -v redis-server >/dev/null || die "redis-server not found (scripts/setup installs it)"
command -v redis-cli >/dev/null || die "redis-cli not found (scripts/setup installs it)"

if [ -z "$OUT" ]; then
  OUT=$(mktemp -d /tmp/leasering-cluster.XXXXXX)
else
  mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
dir=$(mktemp -d /tmp/leasering-cluster-srv.XXXXXX) # the servers' working dirs
holder='' sampler=''
ports=() pids=() # the nodes of the run in progress (one for single)
cleanup() {
  for p in $sampler $holder; do kill "$p" 2>/dev/null || true; done
  stop_nodes
  rm -rf "$dir"
}

# ---- nodes ----

# start_node I [WORDS...]: redis-server in $dir/nI on a free port (and a
# free cluster bus port: port + 10000 may not exist), with WORDS appended;
# sets ports[I], pids[I]. Retries with other ports.
start_node() {
  local i=$1 p bus np
  shift
  mkdir -p "$dir/n$i"
  for _ in $(seq 1 20); do
    p=$((20000 + RANDOM % 30000)) bus=$((20000 + RANDOM % 30000))
    [ "$p" != "$bus" ] || continue
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/n$i" \
      --logfile "$dir/n$i/redis.log" "$@" --cluster-port "$bus" >/dev/null 2>&1 &
    np=$!
    for _ in $(seq 1 100); do
      if [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ]; then
        ports[i]=$p pids[i]=$np
        return 0
      fi
      kill -0 "$np" 2>/dev/null || break
      sleep 0.05
    done
    kill "$np" 2>/dev/null || true
    wait "$np" 2>/dev/null || true
  done
  die "could not start redis-server node $i (log: $dir/n$i/redis.log)"
}

stop_nodes() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done
  ports=() pids=()
  rm -rf "${dir:?}"/n*
}

start_single() {
  start_node 0 --cluster-enabled no
}

# start_cluster: 3 masters, no replicas; waits until every node says
# cluster_state:ok.
start_cluster() {
  local i addrs=() ok
  for i in 0 1 2; do
    start_node "$i" --cluster-enabled yes --cluster-config-file nodes.conf
    addrs+=("127.0.0.1:${ports[i]}")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$dir/create.out" 2>&1 || { cat "$dir/create.out" >&2; die "redis-cli --cluster create failed"; }
  for _ in $(seq 1 200); do
    ok=0
    for i in 0 1 2; do
      redis-cli -p "${ports[i]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" -eq 3 ] && return 0
    sleep 0.1
  done
  die "the cluster did not reach cluster_state:ok"
}

uri() { # KIND
  if [ "$1" = single ]; then
    echo "redis://127.0.0.1:${ports[0]}"
  else
    echo "redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
  fi
}

# sample: one line per node, "time node cpu_s evalsha_calls keyspace_hits".
sample() {
  local i t
  t=$(date +%s.%N)
  for i in "${!ports[@]}"; do
    redis-cli -p "${ports[i]}" info all 2>/dev/null | tr -d '\r' |
      awk -F: -v t="$t" -v node="$i" '
        /^used_cpu_(sys|user):/ { c += $2 }
        /^cmdstat_evalsha:/ { if (match($2, /calls=[0-9]+/)) e = substr($2, RSTART + 6, RLENGTH - 6) }
        /^keyspace_hits:/ { h = $2 }
        END { if (h != "") printf "%s %d %.6f %d %d\n", t, node, c, e, h }'
  done
}

machine="$(nproc) cpu, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//')"
started="$(date -u '+%F %H:%M') UTC"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $machine; $started; loadavg $load0" >&2
echo "$LEASES leases, TTL $TTL ms, hold $HOLD s, $REPS rep(s); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2

trap cleanup EXIT
trap 'exit 130' INT TERM

COLS="kind rep renewals_s client_ns server_ns lost renew_failures not_acquired evalsha_share_dev hits_share_dev shares keys_per_req"
printf '%s\n' "$COLS" | tr ' ' '\t' >"$OUT/runs.tsv"
: >"$OUT/runs.jsonl"

# one KIND REP: a run on fresh servers; appends a row to runs.tsv.
one() {
  local kind=$1 r=$2 rc=0 t_launch out="$dir/run.json" tag="$1.$2"
  if [ "$kind" = single ]; then start_single; else start_cluster; fi
  local samples="$OUT/samples.$tag.tsv"
  : >"$samples"
  t_launch=$(date +%s.%N)
  $TOOL bench --backend "$(uri "$kind")" --leases "$LEASES" --ttl "$TTL" --seconds "$HOLD" \
    --prefix "c:" --json >"$out" 2>"$OUT/stderr.$tag.txt" &
  holder=$!
  (while kill -0 "$holder" 2>/dev/null; do sample || true; sleep 0.5; done) >>"$samples" &
  sampler=$!
  wait "$holder" || rc=$?
  holder=
  wait "$sampler" 2>/dev/null || true
  sampler=
  stop_nodes
  if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
    sed 's/^/  /' "$OUT/stderr.$tag.txt" >&2
    die "$kind run $r failed (exit $rc)"
  fi
  [ -s "$out" ] || die "$kind run $r printed no JSON"
  sed "s/}[[:space:]]*\$/,\"kind\":\"$kind\",\"rep\":$r}/" "$out" >>"$OUT/runs.jsonl"
  local acq_s rps client_ns lost fails notacq keys_req red
  read -r acq_s rps client_ns lost fails notacq keys_req <<<"$(
    python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["acquire_seconds"], d["renewals_per_sec"], d["cpu_ns_per_renewal"], d["lost"],
      d["renew_failures"], d["not_acquired"], d["renew_keys_per_request"])
PY
  )"
  # The hold starts when acquisition ends; server figures over
  # [hold + TTL/2 + 1 s, hold + S - 1 s], from each node's first and last
  # sample inside it.
  red=$(awk -v t0="$t_launch" -v acq="$acq_s" -v ttl="$TTL" -v secs="$HOLD" -v rps="$rps" '
    BEGIN { ws = t0 + acq + ttl / 2000 + 1; we = t0 + acq + secs - 1 }
    $1 >= ws && $1 <= we {
      n = $2
      if (!(n in ta)) { ta[n] = $1; ca[n] = $3; ea[n] = $4; ha[n] = $5; nodes++ }
      tb[n] = $1; cb[n] = $3; eb[n] = $4; hb[n] = $5
    }
    END {
      if (!nodes) { print "NA NA NA NA"; exit }
      for (n in ta) {
        if (tb[n] <= ta[n]) { print "NA NA NA NA"; exit } # one sample: no delta
        cpu += cb[n] - ca[n]; dt += tb[n] - ta[n]
        e[n] = eb[n] - ea[n]; h[n] = hb[n] - ha[n]; es += e[n]; hs += h[n]
      }
      dt /= nodes
      de = 0; dh = 0; sh = ""
      for (n = 0; n < nodes; n++) {
        if (es > 0) { x = e[n] / es * nodes - 1; if (x < 0) x = -x; if (x > de) de = x }
        if (hs > 0) { x = h[n] / hs * nodes - 1; if (x < 0) x = -x; if (x > dh) dh = x }
        sh = sh (n ? "/" : "") sprintf("%.1f", hs > 0 ? 100 * h[n] / hs : 0)
      }
      printf "%.1f %.3f %.3f %s\n", (rps > 0 ? cpu * 1e9 / (rps * dt) : 0), de, dh, sh
    }' "$samples")
  local server_ns dev_e dev_h shares
  read -r server_ns dev_e dev_h shares <<<"$red"
  [ "$server_ns" != NA ] || echo "cluster.sh: $tag: no server samples inside the hold window" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$r" "$rps" "$client_ns" \
    "$server_ns" "$lost" "$fails" "$notacq" "$dev_e" "$dev_h" "$shares" "$keys_req" >>"$OUT/runs.tsv"
  printf '  %-10s %s renewals/s, client %s ns/r, server %s ns/r, lost %s, failures %s, not acquired %s, keyspace-hit shares %s%%, %s keys/EVALSHA\n' \
    "$tag" "$rps" "$client_ns" "$server_ns" "$lost" "$fails" "$notacq" "$shares" "$keys_req" >&2
}

for r in $(seq 1 "$REPS"); do
  one single "$r"
  one cluster "$r"
done

# Medians per kind (lost, failures, not acquired, share deviations: the
# largest), then cluster / single.
awk -F'\t' '
  NR == 1 { next }
  { k = $1; c = ++cnt[k]; for (i = 3; i <= 12; i++) v[k, i, c] = $i }
  function med(k, i,   a, j, m, t, l) {
    m = 0
    for (j = 1; j <= cnt[k]; j++) if (v[k, i, j] != "NA") a[++m] = v[k, i, j] + 0
    if (!m) return "NA"
    for (j = 2; j <= m; j++) { t = a[j]; for (l = j - 1; l >= 1 && a[l] > t; l--) a[l + 1] = a[l]; a[l + 1] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function most(k, i,   j, x) { x = "NA"; for (j = 1; j <= cnt[k]; j++) if (v[k, i, j] != "NA" && (x == "NA" || v[k, i, j] + 0 > x)) x = v[k, i, j] + 0; return x }
  function f(x, d) { return x == "NA" ? "n/a" : sprintf("%." d "f", x) }
  function ratio(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "n/a" : sprintf("%.2fx", a / b) }
  function pct(x) { return x == "NA" ? "n/a" : sprintf("%.1f%%", 100 * x) }
  END {
    print "| config | renewals/s | client ns/renewal | server ns/renewal (all nodes) | lost | renew failures | not acquired | keys/EVALSHA | per-node share: EVALSHA dev | keyspace-hits dev |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (o = 1; o <= 2; o++) {
      k = o == 1 ? "single" : "cluster"
      if (!(k in cnt)) continue
      rs[k] = med(k, 3); cn[k] = med(k, 4); sn[k] = med(k, 5)
      printf "| %s (%d rep) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k == "single" ? "1 node" : "3-master cluster",
        cnt[k], f(rs[k], 0), f(cn[k], 0), f(sn[k], 0), most(k, 6), most(k, 7), most(k, 8),
        f(med(k, 12), 1), k == "single" ? "-" : pct(most(k, 9)), k == "single" ? "-" : pct(most(k, 10))
    }
    if (("single" in cnt) && ("cluster" in cnt))
      printf "| cluster / single | %s | %s | %s | | | | | | |\n", ratio(rs["cluster"], rs["single"]),
        ratio(cn["cluster"], cn["single"]), ratio(sn["cluster"], sn["single"])
  }' "$OUT/runs.tsv" >"$OUT/table.md"

{
  echo "$machine; $started; loadavg at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$LEASES leases, TTL $TTL ms, hold $HOLD s; medians over $REPS rep(s); lost, failures, not acquired and share deviations: the largest"
  echo "command: bench/cluster.sh --leases $LEASES --ttl $TTL --hold $HOLD --reps $REPS"
  echo
  cat "$OUT/table.md"
} | tee "$OUT/summary.md"
echo
echo "data: $OUT"
