#!/usr/bin/env bash
# bench/density.sh - lease density: 10k / 100k / 1M leases held by
# `leasering bench` in per-lease mode (redis://) and in session mode
# (redis://...?mode=session), beside the baseline peer
# (bench/baseline_holder.c: hiredis + libevent, one timer and one EVALSHA per
# renewal), each run on a fresh redis-server, all measured the same way.
#
#   bench/density.sh [--leases "10000 100000 1000000"] [--modes "lease session"]
#                    [--ttl MS] [--big-ttl MS] [--big-from N] [--seconds S]
#                    [--big-seconds S] [--runs R] [--out DIR]
#   bench/density.sh --soak SECONDS [--soak-leases N] [--big-ttl MS] [--out DIR]
#
# Density: for each N and round, the baseline and then each mode hold N leases
# (TTL --ttl, default 3000 ms, hold --seconds, default 20; from --big-from
# leases on, default 1000000: --big-ttl, default 30000 ms, and --big-seconds,
# default 70). Per N and kind, medians over the rounds (lost, not acquired and
# renew failures: the largest):
#   client ns/renewal    process CPU over the hold / renewals in it
#   Redis ns/renewal     redis-server INFO cpu (user+sys) over a window from
#                        TTL/2 + 1 s into the hold (past the first renewal
#                        cycle) to 1 s before its end, / renewals in it
#   Redis ns/lease-s     the same CPU / (leases acquired x window seconds)
#   B/lease              client RSS growth from before the leases were made / N
#   acquire s            first acquire until the last lease acquired or gave up
#   renew p99 / late p99 renew latency (send to reply) and renewal-timer
#                        lateness, p99, in microseconds
#   keys/EVALSHA         leases per batched renewal request (the baseline: 1)
# plus a ratio row per mode against the baseline (below 1: leasering spends
# less). The Markdown table goes to stdout; DIR (default a new
# /tmp/leasering-density.XXXXXX, kept) gets runs.jsonl (each run's JSON with
# kind, round and the Redis figures added), runs.tsv (a row per run),
# density.tsv (the medians: bench/plot-density.sh reads it), table.md,
# machine.txt, and per run hist.KIND.N.R.txt (renew-latency histogram,
# "upper_bound_us count"), redis.KIND.N.R.tsv (the Redis samples: time, CPU
# seconds, used_memory, keys with a TTL) and stderr.KIND.N.R.txt.
#
# Soak (--soak SECONDS): one per-lease run of --soak-leases (default
# 1000000) at --big-ttl for SECONDS; prints lost, renew failures, steady
# allocations, renew latency p99, keys per renewal EVALSHA, and CPU per
# renewal, with the leases lost during the hold, those held at its end and the
# fewest lease keys alive in Redis over the sampled window (keys with a TTL);
# exits 3 when a lease was lost or a renewal failed.
#
# A mode the binary rejects (session mode needs a build that has it) stops the
# script with exit 1 before anything is measured. Builds build/release
# (tools/leasering, bench/bench-baseline-holder) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

usage() {
  { printf "usage:\n"; sed -n "8,11p" "$0" | sed "s/^#//"; } >&2
  exit 2
}
die() { echo "density.sh: $*" >&2; exit 1; }
num() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "density.sh: $1 needs a positive whole number" >&2; exit 2; }; }

LEASES="10000 100000 1000000" MODES="lease session"
TTL=3000 BIG_TTL=30000 BIG_FROM=1000000 SECS=20 BIG_SECS=70 RUNS=1 OUT= SOAK= SOAK_N=1000000
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --leases) LEASES=$2 ;;
    --modes) MODES=$2 ;;
    --ttl) num "$1" "$2"; TTL=$2 ;;
    --big-ttl) num "$1" "$2"; BIG_TTL=$2 ;;
    --big-from) num "$1" "$2"; BIG_FROM=$2 ;;
    --seconds) num "$1" "$2"; SECS=$2 ;;
    --big-seconds) num "$1" "$2"; BIG_SECS=$2 ;;
    --runs) num "$1" "$2"; RUNS=$2 ;;
    --out) OUT=$2 ;;
    --soak) num "$1" "$2"; SOAK=$2 ;;
    --soak-leases) num "$1" "$2"; SOAK_N=$2 ;;
    *) usage ;;
  esac
  shift 2
done
for n in $LEASES; do num --leases "$n"; done
for m in $MODES; do
  case $m in lease | session) ;; *) echo "density.sh: --modes takes 'lease' and 'session', not '$m'" >&2; exit 2 ;; esac
done
[ -n "$MODES" ] || { echo "density.sh: --modes is empty" >&2; exit 2; }

ttl_for() { if [ "$1" -ge "$BIG_FROM" ]; then echo "$BIG_TTL"; else echo "$TTL"; fi; }
secs_for() { if [ "$1" -ge "$BIG_FROM" ]; then echo "$BIG_SECS"; else echo "$SECS"; fi; }
if [ -n "$SOAK" ]; then
  LEASES=$SOAK_N MODES=lease RUNS=1 BIG_FROM=1 BIG_SECS=$SOAK
fi
for n in $LEASES; do
  t=$(ttl_for "$n") s=$(secs_for "$n")
  [ "$s" -ge $((t / 2000 + 6)) ] ||
    { echo "density.sh: a $s s hold at TTL $t ms is too short to sample; it needs TTL/2 + 6 s" >&2; exit 2; }
done

TOOL=build/release/tools/leasering
BASE=build/release/bench/bench-baseline-holder
if [ ! -x $TOOL ] || [ ! -x $BASE ]; then
  [ -d build/release ] || meson setup build/release -Dbuildtype=release >/dev/null
  ninja -C build/release tools/leasering bench/bench-baseline-holder >/dev/null
fi
[ -x $BASE ] || die "$BASE not built: it needs hiredis and libevent (scripts/setup)"
command -v redis-server >/dev/null || die "redis-server not found (scripts/setup installs it)"

if [ -z "$OUT" ]; then
  OUT=$(mktemp -d /tmp/leasering-density.XXXXXX)
else
  mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
dir=$(mktemp -d /tmp/leasering-density-srv.XXXXXX) # the servers' working dir
pid= holder= sampler=
cleanup() {
  for p in $sampler $holder; do kill "$p" 2>/dev/null || true; done
  stop_server
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

uri_for() { # MODE PORT
  if [ "$1" = session ]; then echo "redis://127.0.0.1:$2?mode=session"; else echo "redis://127.0.0.1:$2"; fi
}

# Refuse up front a mode the binary does not know (say, session mode on a
# build without it): one lease for one second on a throwaway server.
for m in $MODES; do
  start_server
  rc=0
  $TOOL bench --backend "$(uri_for "$m" "$port")" --leases 1 --ttl 3000 --seconds 1 --json \
    --prefix probe: >"$dir/probe.out" 2>"$dir/probe.err" || rc=$?
  stop_server
  if [ $rc -ne 0 ]; then
    echo "density.sh: mode '$m' does not work with $TOOL (exit $rc):" >&2
    sed 's/^/  /' "$dir/probe.err" >&2
    [ "$m" = session ] && echo "  (session mode needs a build with ?mode=session for redis://; or leave it out: --modes lease)" >&2
    exit 1
  fi
done

machine="$(nproc) cpu, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//')"
started="$(date -u '+%F %H:%M') UTC"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "machine: $machine"
  echo "date: $started; loadavg at start: $load0"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$SOAK" ]; then
    echo "soak: $SOAK_N leases, per-lease mode, TTL $BIG_TTL ms, held $SOAK s"
  else
    echo "leases: $LEASES; modes: $MODES; ttl $TTL ms (from $BIG_FROM leases: $BIG_TTL ms); hold $SECS s (big: $BIG_SECS s); runs $RUNS"
  fi
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# json FILE KEY...: the values of KEYs (a.b for a nested field) in the
# one-line JSON object in FILE, space separated; NA for a missing one.
json() {
  local f=$1
  shift
  awk -v keys="$*" '
    function val(s, k,   n, i, m, part, v) {
      n = split(k, part, ".")
      for (i = 1; i < n; i++) {
        m = index(s, "\"" part[i] "\":{")
        if (!m) return "NA"
        s = substr(s, m + length(part[i]) + 4)
        s = substr(s, 1, index(s, "}"))
      }
      m = index(s, "\"" part[n] "\":")
      if (!m) return "NA"
      s = substr(s, m + length(part[n]) + 3)
      match(s, /^"[^"]*"|^[^,}]*/)
      v = substr(s, 1, RLENGTH)
      gsub(/"/, "", v)
      return v
    }
    { nk = split(keys, ks, " "); out = ""
      for (j = 1; j <= nk; j++) out = out (j > 1 ? " " : "") val($0, ks[j])
      print out }' "$f"
}

# redis_sample: "time_s cpu_s used_memory keys_with_ttl" of the server on
# $port (keys with a TTL: the lease keys alive; fence counters have none).
redis_sample() {
  local t
  t=$(date +%s.%N)
  redis-cli -p "$port" info cpu memory keyspace 2>/dev/null | tr -d '\r' |
    awk -F: -v t="$t" '/^used_cpu_(sys|user):/{c+=$2} /^used_memory:/{m=$2}
      /^db0:/{if (match($2, /expires=[0-9]+/)) e=substr($2, RSTART+8, RLENGTH-8)}
      END{if (m != "") printf "%s %.6f %s %d\n", t, c, m, e}'
}

COLS="n kind round ttl_ms acquired not_acquired acquire_s renewals renew_failures lost client_ns redis_ns redis_ns_lease_s b_lease p50 p99 p999 late_p50 late_p99 keys_req steady_allocs redis_b_lease lost_in_hold held_at_end ttl_keys_min"
[ -s "$OUT/runs.tsv" ] || printf '%s\n' "$COLS" | tr ' ' '\t' >"$OUT/runs.tsv"

# one KIND N ROUND: one run on a fresh server; appends to runs.jsonl/runs.tsv.
one() {
  local kind=$1 n=$2 r=$3 ttl secs rc=0 t_launch
  ttl=$(ttl_for "$n") secs=$(secs_for "$n")
  local tag="$kind.$n.$r" out="$dir/run.json"
  start_server
  : >"$OUT/redis.$tag.tsv"
  t_launch=$(date +%s.%N)
  if [ "$kind" = baseline ]; then
    $BASE --port "$port" --leases "$n" --ttl "$ttl" --seconds "$secs" --prefix "d:" \
      --latency-hist "$OUT/hist.$tag.txt" >"$out" 2>"$dir/run.err" &
  else
    $TOOL bench --backend "$(uri_for "$kind" "$port")" --leases "$n" --ttl "$ttl" \
      --seconds "$secs" --prefix "d:" --json --latency-hist "$OUT/hist.$tag.txt" \
      >"$out" 2>"$dir/run.err" &
  fi
  holder=$!
  # (a sample that fails, say a redis-cli that could not connect, is skipped:
  # set -e must not end the sampler with the run still going)
  (while kill -0 "$holder" 2>/dev/null; do redis_sample || true; sleep 0.5; done) >>"$OUT/redis.$tag.tsv" &
  sampler=$!
  wait "$holder" || rc=$?
  holder=
  wait "$sampler" 2>/dev/null || true
  sampler=
  stop_server
  cp "$dir/run.err" "$OUT/stderr.$tag.txt"
  if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
    sed 's/^/  /' "$dir/run.err" >&2
    die "$kind run with $n leases failed (exit $rc)"
  fi
  [ -s "$out" ] || die "$kind run with $n leases printed no JSON"
  read -r acq_s rps acquired <<<"$(json "$out" acquire_seconds renewals_per_sec acquired)"
  # The hold starts when acquisition ends (launch + acquire_seconds, the set-up
  # before the first acquire being milliseconds); Redis CPU is taken over
  # [hold + TTL/2 + 1 s, hold + S - 1 s], from the samples inside it.
  local red
  red=$(awk -v t0="$t_launch" -v acq="$acq_s" -v ttl="$ttl" -v secs="$secs" -v rps="$rps" \
    -v held="$acquired" -v n="$n" '
    BEGIN { ws = t0 + acq + ttl / 2000 + 1; we = t0 + acq + secs - 1 }
    $1 >= ws && $1 <= we {
      if (!got) { ta = $1; ca = $2; emin = $4; got = 1 }
      tb = $1; cb = $2; mb = $3; if ($4 < emin) emin = $4
    }
    END {
      if (!got || tb - ta < 1) { print "NA NA NA 0 NA"; exit }
      dt = tb - ta; cpu = cb - ca
      printf "%.1f %.1f %.1f %.3f %d\n", (rps > 0 ? cpu * 1e9 / (rps * dt) : 0),
        (held > 0 ? cpu * 1e9 / (held * dt) : 0), mb / n, dt, emin
    }' "$OUT/redis.$tag.tsv")
  read -r redis_ns redis_ns_lease_s redis_b_lease window ttl_keys_min <<<"$red"
  [ "$redis_ns" != NA ] || echo "density.sh: $tag: no Redis samples inside the hold window" >&2
  sed "s/}[[:space:]]*\$/,\"kind\":\"$kind\",\"round\":$r,\"redis_window_s\":$window,\"redis_ns_per_renewal\":$redis_ns,\"redis_ns_per_lease_second\":$redis_ns_lease_s,\"redis_used_memory_per_lease\":$redis_b_lease}/" \
    "$out" | sed 's/:NA,/:null,/g; s/:NA}/:null}/g' >>"$OUT/runs.jsonl"
  {
    printf '%s\t%s\t%s\t%s\t' "$n" "$kind" "$r" "$ttl"
    json "$out" acquired not_acquired acquire_seconds renewals renew_failures lost \
      cpu_ns_per_renewal | tr ' ' '\t' | tr -d '\n'
    printf '\t%s\t%s\t' "$redis_ns" "$redis_ns_lease_s"
    json "$out" rss_bytes_per_lease renew_latency_us.p50 renew_latency_us.p99 \
      renew_latency_us.p999 timer_lateness_us.p50 timer_lateness_us.p99 \
      renew_keys_per_request steady_allocs | tr ' ' '\t' | tr -d '\n'
    printf '\t%s\t' "$redis_b_lease"
    json "$out" lost_in_hold held_at_hold_end | tr ' ' '\t' | tr -d '\n'
    printf '\t%s\n' "$ttl_keys_min"
  } >>"$OUT/runs.tsv"
  tail -1 "$OUT/runs.tsv" | awk -F'\t' -v tag="$tag" '{printf "  %-22s acquired %s/%s in %s s, lost %s, client %s ns/r, redis %s ns/r, p99 %s us, %s keys/EVALSHA\n", tag, $5, $1, $7, $10, $11, $12, $16, $20}' >&2
  [ $rc -eq 0 ] || echo "  ($tag: $(tail -1 "$dir/run.err"))" >&2
}

if [ -n "$SOAK" ]; then
  echo "soak: $SOAK_N leases, per-lease mode, TTL $BIG_TTL ms, $SOAK s" >&2
  one lease "$SOAK_N" 1
  jq=$(tail -1 "$OUT/runs.jsonl")
  printf '%s\n' "$jq" >"$OUT/soak.json"
  tail -1 "$OUT/runs.tsv" | awk -F'\t' -v secs="$SOAK" -v machine="$machine" -v started="$started" '{
    printf "soak: %s leases, TTL %s ms, %s s held (per-lease mode); %s; %s\n", $1, $4, secs, machine, started
    printf "| acquired | acquire s | renewals | renew failures | lost | lost in hold | held at hold end | fewest lease keys in Redis | steady allocs | renew p50 us | renew p99 us | renew p99.9 us | timer late p99 us | keys/EVALSHA | client ns/renewal | Redis ns/renewal |\n"
    printf "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $5, $7, $8, $9, $10, $23, $24, $25, $21, $15, $16, $17, $19, $20, $11, $12
  }' | tee "$OUT/soak.md"
  echo "(loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); data in $OUT)"
  read -r lost fails <<<"$(tail -1 "$OUT/runs.tsv" | awk -F'\t' '{print $10, $9}')"
  [ "$lost" = 0 ] && [ "$fails" = 0 ] || { echo "density.sh: soak lost $lost leases, $fails renew failures" >&2; exit 3; }
  exit 0
fi

for n in $LEASES; do
  for r in $(seq 1 "$RUNS"); do
    one baseline "$n" "$r"
    for m in $MODES; do one "$m" "$n" "$r"; done
  done
done

# density.tsv: per N and kind, the median of each figure over the rounds
# (lost, not_acquired, renew_failures: the largest).
awk -F'\t' -v OFS='\t' '
  NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; nf = NF; print; next }
  {
    k = $1 SUBSEP $2
    if (!(k in cnt)) { order[++nk] = k }
    c = ++cnt[k]
    for (i = 4; i <= nf; i++) v[k, i, c] = $i
  }
  function med(k, i,   c, a, j, t, m) {
    c = cnt[k]; m = 0
    for (j = 1; j <= c; j++) { if (v[k, i, j] == "NA") continue; a[++m] = v[k, i, j] + 0 }
    if (!m) return "NA"
    for (j = 2; j <= m; j++) { t = a[j]; for (l = j - 1; l >= 1 && a[l] > t; l--) a[l + 1] = a[l]; a[l + 1] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  function most(k, i,   c, j, x) { x = 0; for (j = 1; j <= cnt[k]; j++) if (v[k, i, j] + 0 > x) x = v[k, i, j] + 0; return x }
  END {
    for (o = 1; o <= nk; o++) {
      k = order[o]; split(k, p, SUBSEP)
      line = p[1] OFS p[2] OFS cnt[k]
      for (i = 4; i <= nf; i++)
        line = line OFS ((name[i] == "lost" || name[i] == "not_acquired" || name[i] == "renew_failures") ? most(k, i) : med(k, i))
      print line
    }
  }' "$OUT/runs.tsv" | sed '1s/\tround\t/\trounds\t/' >"$OUT/density.tsv"

# The Markdown table, with a ratio row per mode against the baseline.
awk -F'\t' -v modes="$MODES" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { row[$1, $2] = $0; if (!($1 in seen)) { seen[$1] = 1; ns[++nn] = $1 } }
  function f(x, d) { return x == "NA" ? "n/a" : sprintf("%." d "f", x) }
  function r(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
  function pr(n, kind,   x) {
    if (!((n, kind) in row)) return
    split(row[n, kind], x, "\t")
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, kind,
      f(x[col["client_ns"]], 0), f(x[col["redis_ns"]], 0), f(x[col["redis_ns_lease_s"]], 1),
      f(x[col["b_lease"]], 0), f(x[col["acquire_s"]], 2), x[col["p99"]], x[col["late_p99"]],
      f(x[col["keys_req"]], 1), x[col["renew_failures"]], x[col["lost"]], x[col["not_acquired"]]
  }
  END {
    print "| leases | kind | client ns/renewal | Redis ns/renewal | Redis ns/lease-s | B/lease | acquire s | renew p99 us | timer late p99 us | keys/EVALSHA | renew failures | lost | not acquired |"
    print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    nm = split(modes, m, " ")
    for (i = 1; i <= nn; i++) {
      n = ns[i]
      pr(n, "baseline")
      for (j = 1; j <= nm; j++) pr(n, m[j])
      if (!((n, "baseline") in row)) continue
      split(row[n, "baseline"], b, "\t")
      for (j = 1; j <= nm; j++) {
        if (!((n, m[j]) in row)) continue
        split(row[n, m[j]], x, "\t")
        printf "| %s | %s / baseline | %s | %s | %s | %s | %s | %s | %s | | | | |\n", n, m[j],
          r(x[col["client_ns"]], b[col["client_ns"]]), r(x[col["redis_ns"]], b[col["redis_ns"]]),
          r(x[col["redis_ns_lease_s"]], b[col["redis_ns_lease_s"]]), r(x[col["b_lease"]], b[col["b_lease"]]),
          r(x[col["acquire_s"]], b[col["acquire_s"]]), r(x[col["p99"]], b[col["p99"]]),
          r(x[col["late_p99"]], b[col["late_p99"]])
      }
    }
  }' "$OUT/density.tsv" >"$OUT/table.md"

{
  echo "$machine; $started; loadavg at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "TTL $TTL ms (from $BIG_FROM leases: $BIG_TTL ms), hold $SECS s ($BIG_SECS s), medians over $RUNS round(s); lost, renew failures, not acquired: the largest"
  echo
  cat "$OUT/table.md"
} | tee "$OUT/summary.md"
echo
echo "data: $OUT (density.tsv for bench/plot-density.sh)"
