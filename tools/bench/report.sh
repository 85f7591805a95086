#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The report of a benchmark run, on the host: DIR/rows.jsonl (what
# tools/bench.sh collected from the guests) becomes DIR/results.json (one
# JSON document), DIR/report.txt (the tables) and DIR/plots/*.png
# (gnuplot). Usage: report.sh DIR

set -euo pipefail
dir=${1:?usage: report.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
rows=$dir/rows.jsonl
[ -f "$rows" ] || { echo "report.sh: no $rows" >&2; exit 1; }

{
	printf '{"generated":"%s","host":"%s","rows":[\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)"
	sed '$!s/$/,/' "$rows"
	printf ']}\n'
} > "$dir/results.json"

mkdir -p "$dir/plots"
rm -f "$dir/plots/"*.dat "$dir/plots/"*.png "$dir/plots/plots.gp"
awk -v plotdir="$dir/plots" -f "$here/report.awk" "$rows" > "$dir/report.txt"

if [ -s "$dir/plots/plots.gp" ]; then
	{
		cat <<'GP'
set terminal pngcairo size 1000,560 noenhanced font ',10'
set datafile separator '\t'
set datafile missing '?'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -20 nomirror
set key top left
set grid ytics
set bmargin 8
GP
		cat "$dir/plots/plots.gp"
	} | gnuplot 2> "$dir/plots/gnuplot.log"
fi
