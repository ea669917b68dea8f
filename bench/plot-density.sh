#!/usr/bin/env bash
# bench/plot-density.sh - the plots of a bench/density.sh run, as SVG.
#
#   bench/plot-density.sh DIR [--docs OUTDIR]
#
# DIR is bench/density.sh's --out directory (density.tsv, hist.*.txt).
# Writes into OUTDIR (default docs/):
#   density-cpu.svg      client and Redis CPU per renewal against the lease
#                        count (log x), per kind (baseline, lease, session)
#   density-rss.svg      client RSS per lease against the lease count
#   density-latency.svg  renew latency: fraction of renewals slower than x
#                        (from the histograms of round 1), per kind and count
#   density-quantiles.svg renew latency p50 / p99 / p99.9 against the count
# Needs gnuplot (scripts/setup installs gnuplot-nox).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 DIR [--docs OUTDIR]   (DIR: a bench/density.sh --out directory)" >&2; exit 2; }
[ $# -ge 1 ] || usage
IN=$1
shift
DOCS=docs
while [ $# -gt 0 ]; do
  case $1 in
    --docs) [ $# -ge 2 ] || usage; DOCS=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -s "$IN/density.tsv" ] || { echo "plot-density.sh: no $IN/density.tsv (run bench/density.sh --out $IN first)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot-density.sh: gnuplot not found (apt-get install gnuplot-nox, or scripts/setup)" >&2; exit 1; }
mkdir -p "$DOCS"

tmp=$(mktemp -d /tmp/plot-density.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# One data file per kind: n client_ns redis_ns b_lease p50 p99 p999, by n.
awk -F'\t' -v tmp="$tmp" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { f = tmp "/" $2 ".dat"
    if (!($2 in seen)) { seen[$2] = 1; print $2 > (tmp "/kinds") }
    print $1, $col["client_ns"], $col["redis_ns"], $col["b_lease"], $col["p50"], $col["p99"], $col["p999"] | ("sort -n > " f) }
' "$IN/density.tsv"
kinds=$(cat "$tmp/kinds")
machine=$(head -2 "$IN/machine.txt" 2>/dev/null | tr '\n' ' ' | sed 's/"/\\"/g')

# Renew-latency CCDF per histogram of round 1: "bound fraction_slower".
curves=()
for h in "$IN"/hist.*.*.1.txt; do
  [ -s "$h" ] || continue
  b=$(basename "$h" .1.txt)
  kind=${b#hist.}
  kind=${kind%%.*}
  n=${b##*.}
  awk '{ b[NR] = $1; c[NR] = $2; t += $2 }
       END { s = 0; for (i = 1; i <= NR; i++) { s += c[i]; f = 1 - s / t; if (f > 0) print b[i], f } }' \
    "$h" >"$tmp/ccdf.$kind.$n"
  [ -s "$tmp/ccdf.$kind.$n" ] && curves+=("$kind $n")
done

style() { # KIND -> gnuplot line style
  case $1 in
    baseline) echo "lc rgb '#999999'" ;;
    lease) echo "lc rgb '#1f77b4'" ;;
    session) echo "lc rgb '#d62728'" ;;
    *) echo "lc rgb '#2ca02c'" ;;
  esac
}

# plot_kinds COL:POINT:DASH:LABEL...: a plot command with, for each kind, a
# line per spec (column COL of the kind's data file against the lease count).
plot_kinds() {
  local sep= k spec col pt dt label
  printf 'plot '
  for k in $kinds; do
    for spec in "$@"; do
      IFS=: read -r col pt dt label <<<"$spec"
      printf "%s'%s' using 1:%s with linespoints pt %s %s dt %s title '%s%s'" "$sep" "$tmp/$k.dat" \
        "$col" "$pt" "$(style "$k")" "$dt" "$k" "${label:+ $label}"
      sep=', '
    done
  done
  echo
}

head="set terminal svg size 820,500 dynamic enhanced font 'sans,12' background rgb 'white'
set grid
set key inside right top box opaque
set logscale x
set format x '%.0f'
set label 1 \"$machine\" at screen 0.01,0.975 font 'sans,8'"

{
  echo "$head"
  echo "set output '$DOCS/density-cpu.svg'"
  echo "set title 'CPU per renewal against the lease count'"
  echo "set xlabel 'leases held'; set ylabel 'ns per renewal'; set logscale y"
  plot_kinds 2:7:1:client 3:5:2:Redis
  echo "unset logscale y"
  echo "set output '$DOCS/density-rss.svg'"
  echo "set title 'Client memory per lease (RSS growth / leases)'"
  echo "set xlabel 'leases held'; set ylabel 'bytes per lease'; set yrange [0:*]"
  plot_kinds 4:7:1:
  echo "set yrange [*:*]; set logscale y"
  echo "set output '$DOCS/density-quantiles.svg'"
  echo "set title 'Renew latency quantiles (send to reply)'"
  echo "set xlabel 'leases held'; set ylabel 'microseconds'"
  plot_kinds 5:6:3:p50 6:7:1:p99 7:5:2:p99.9
  if [ ${#curves[@]} -gt 0 ]; then
    echo "set output '$DOCS/density-latency.svg'"
    echo "set title 'Renew latency distribution: share of renewals slower than x'"
    echo "set xlabel 'renew latency, microseconds'; set ylabel 'fraction slower'"
    echo "set format x '%.0f'; set format y '%g'; set key inside right top"
    printf 'plot '
    sep=
    counts=$(printf '%s\n' "${curves[@]}" | awk '{print $2}' | sort -un)
    for c in "${curves[@]}"; do
      read -r k n <<<"$c"
      dt=$(grep -nx "$n" <<<"$counts" | cut -d: -f1) # one dash type per lease count
      printf "%s'%s' using 1:2 with steps %s dt %d lw 1.5 title '%s %s'" "$sep" "$tmp/ccdf.$k.$n" \
        "$(style "$k")" "$dt" "$k" "$n"
      sep=', '
    done
    echo
  else
    echo "plot-density.sh: no hist.*.txt in $IN: no latency-distribution plot" >&2
  fi
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
ls -1 "$DOCS"/density-*.svg
