#!/bin/bash
# Plots one migration's time series (dirty rate, copy rate, wire rate,
# remaining data) from ferryd's API into a PNG with gnuplot.
#   scripts/plot-migration.sh API_SOCKET MIGRATION_ID OUT.png [TITLE]
set -euo pipefail
SOCK=$1 ID=$2 OUT=$3 TITLE=${4:-"migration $2"}
command -v gnuplot >/dev/null || { echo "gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
T=$(mktemp -d /tmp/ferry-plot.XXXXXX)
trap 'rm -rf "$T"' EXIT
curl -sf --unix-socket "$SOCK" "http://ferryd/v1/migrations/$ID/samples" |
	jq -r '.[] | [(.tMs / 1000), (.dirtyBps / 1e6), (.copyBps / 1e6), (.wireBps / 1e6), (.remaining / 1048576)] | @tsv' \
	> "$T/series.tsv"
[ -s "$T/series.tsv" ] || { echo "no samples for $ID" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 900,480 font "sans,10"
set output "$OUT"
set title "$TITLE"
set xlabel "seconds since migrate"
set ylabel "MB/s"
set y2label "remaining (MiB)"
set ytics nomirror
set y2tics
set key top right
set grid
plot "$T/series.tsv" using 1:2 with lines lw 2 title "guest dirty rate", \
     "" using 1:3 with lines lw 2 title "copy rate (raw, into ferry)", \
     "" using 1:4 with lines lw 1 dt 2 title "wire rate", \
     "" using 1:5 axes x1y2 with lines lw 2 title "remaining"
GP
echo "$OUT"
