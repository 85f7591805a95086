#!/usr/bin/awk -f
# SPDX-License-Identifier: GPL-2.0
#
# Turns rows.jsonl (one flat JSON object per result row, as tools/bench.sh
# collects them from iopfmap_bench) into the text report (stdout), one
# tab-separated data file per scenario and metric in PLOTDIR (-v plotdir=)
# and a gnuplot script that draws them (PLOTDIR/plots.gp).

# The value of "key" in the flat object $0: a string (unescaped) or a
# number; "" when absent.
function get(key,    re, v) {
	re = "\"" key "\":(\"([^\"\\\\]|\\\\.)*\"|[^,}]*)"
	if (!match($0, re))
		return ""
	v = substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
	if (v ~ /^"/) {
		v = substr(v, 2, length(v) - 2)
		gsub(/\\"/, "\"", v)
		gsub(/\\\\/, "\\", v)
	}
	return v
}

function num(v) {
	if (v == "")
		return "-"
	if (v + 0 >= 1000 || v + 0 <= -1000)
		return sprintf("%.0f", v)
	if (v + 0 >= 10 || v + 0 <= -10)
		return sprintf("%.1f", v)
	return sprintf("%.3g", v)
}

function slug(s) {
	gsub(/[^A-Za-z0-9]+/, "-", s)
	return s
}

function short(k) {
	sub(/-amd64$/, "", k)
	sub(/\+deb12$/, "", k)
	return k
}

BEGIN {
	title["setup"] = "1. Setup cost: time to make memory DMA-ready (lower is better)"
	title["cold"] = "2. Cold first pass: device throughput over CPU-populated memory (higher is better)"
	title["latency"] = "3. In-kernel fault service latency (lower is better)"
	title["forward"] = "4. Forwarded faults: round trip (lower is better) and throughput (higher is better)"
	title["inval"] = "5. Invalidation: munmap cost and IOTLB flushes (lower is better)"
	title["scale"] = "6. Scaling: faults per second, 2 vCPUs (higher is better)"
	title["memory"] = "7. Memory overhead of tracking ranges (lower is better)"
	title["sva"] = "8. A real PRI device: iopfmap's PASID route against the kernel's SVA"
}

{
	k = get("kernel")
	if (!(k in kseen)) {
		kseen[k] = 1
		kernels[++nk] = k
	}
	type = get("type")
	sc = get("scenario")
	if (type == "skip" || type == "fail") {
		problems[++np] = sprintf("%s: %s: %s%s", short(k), sc,
					 toupper(type),
					 get("note") != "" ? " (" get("note") ")" : "")
		next
	}
	if (sc == "")
		next
	if (!(sc in sseen)) {
		sseen[sc] = 1
		scs[++ns] = sc
	}
	metric = get("metric")
	c = get("case")
	key = sc SUBSEP metric SUBSEP c
	if (!(key in rseen)) {
		rseen[key] = 1
		nr[sc]++
		rmetric[sc, nr[sc]] = metric
		rcase[sc, nr[sc]] = c
		if (!((sc, metric) in mseen)) {
			mseen[sc, metric] = 1
			nm[sc]++
			metrics[sc, nm[sc]] = metric
		}
	}
	unit[sc, metric] = get("unit")
	med[key, k] = get("median")
	p99[key, k] = get("p99")
	n[key, k] = get("n")
	ratio[key, k] = get("ratio")
	ref[key] = get("ref")
	aim[key] = get("aim")
	if (get("note") != "")
		notes[key, k] = get("note")
}

END {
	printf "iopfmap benchmark report. Kernels:"
	for (i = 1; i <= nk; i++)
		printf " %s", kernels[i]
	printf "\nQEMU/TCG guests: absolute times mean nothing outside this setup;\n"
	printf "compare ratios, each to a reference measured in the same guest run.\n"
	printf "Columns per kernel: median, p99, and median/median of the reference row.\n"
	for (i = 1; i <= np; i++)
		printf "  %s\n", problems[i]

	# The scenarios in their numbered order, then any other.
	split("setup cold latency forward inval scale memory sva", order, " ")
	no = 0
	for (i = 1; i in order; i++)
		if (order[i] in sseen)
			sorted[++no] = order[i]
	for (s = 1; s <= ns; s++)
		if (!(scs[s] in title))
			sorted[++no] = scs[s]
	for (s = 1; s <= no; s++) {
		sc = sorted[s]
		printf "\n%s\n", (sc in title) ? title[sc] : sc
		printf "  %-36s %-18s %-8s", "case", "metric", "unit"
		for (i = 1; i <= nk; i++)
			printf " | %-28s", short(kernels[i])
		printf " | ratio vs / aim\n"
		printf "  %-36s %-18s %-8s", "", "", ""
		for (i = 1; i <= nk; i++)
			printf " | %9s %9s %8s", "median", "p99", "ratio"
		printf " |\n"
		for (r = 1; r <= nr[sc]; r++) {
			metric = rmetric[sc, r]
			c = rcase[sc, r]
			key = sc SUBSEP metric SUBSEP c
			printf "  %-36s %-18s %-8s", substr(c, 1, 36),
			       substr(metric, 1, 18), unit[sc, metric]
			for (i = 1; i <= nk; i++) {
				k = kernels[i]
				vm = ((key, k) in med) ? num(med[key, k]) : "-"
				vp = (((key, k) in p99) && n[key, k] > 1) ? num(p99[key, k]) : ""
				vr = (ratio[key, k] != "") ? sprintf("%.3f", ratio[key, k]) : ""
				printf " | %9s %9s %8s", vm, vp, vr
			}
			printf " |"
			if (ref[key] != "")
				printf " vs %s", ref[key]
			if (aim[key] != "")
				printf "; aim %s", aim[key]
			printf "\n"
		}
		# The notes: once, or per kernel when the kernels' differ.
		for (r = 1; r <= nr[sc]; r++) {
			key = sc SUBSEP rmetric[sc, r] SUBSEP rcase[sc, r]
			first = ""
			for (i = 1; i <= nk; i++) {
				k = kernels[i]
				if (!((key, k) in notes))
					continue
				if (first == "") {
					first = notes[key, k]
					printf "    %s, %s: %s\n", rcase[sc, r],
					       rmetric[sc, r], first
				} else if (notes[key, k] != first) {
					printf "    %s, %s (%s): %s\n",
					       rcase[sc, r], rmetric[sc, r],
					       short(k), notes[key, k]
				}
			}
		}

		# One plot per metric: cases on x, a bar per kernel.
		for (m = 1; m <= nm[sc]; m++) {
			metric = metrics[sc, m]
			base = sc "-" slug(metric)
			dat = plotdir "/" base ".dat"
			printf "case" > dat
			for (i = 1; i <= nk; i++)
				printf "\t%s", short(kernels[i]) > dat
			printf "\n" > dat
			lo = ""
			hi = ""
			for (r = 1; r <= nr[sc]; r++) {
				if (rmetric[sc, r] != metric)
					continue
				key = sc SUBSEP metric SUBSEP rcase[sc, r]
				printf "%s", rcase[sc, r] > dat
				for (i = 1; i <= nk; i++) {
					k = kernels[i]
					v = "?"
					if ((key, k) in med)
						v = med[key, k]
					printf "\t%s", v > dat
					if (v != "?" && v + 0 > 0) {
						if (lo == "" || v + 0 < lo)
							lo = v + 0
						if (hi == "" || v + 0 > hi)
							hi = v + 0
					}
				}
				printf "\n" > dat
			}
			close(dat)
			gp = plotdir "/plots.gp"
			printf "set output '%s/%s.png'\n", plotdir, base > gp
			printf "set title '%s: %s (median)'\n", sc, metric > gp
			printf "set ylabel '%s'\n", unit[sc, metric] > gp
			if (lo != "" && hi / lo > 100)
				printf "set logscale y\nset yrange [*:*]\n" > gp
			else
				printf "unset logscale y\nset yrange [0:*]\n" > gp
			printf "plot '%s'", dat > gp
			for (i = 1; i <= nk; i++) {
				sep = (i > 1) ? ", ''" : ""
				xt = (i == 1) ? ":xtic(1)" : ""
				printf "%s using %d%s title columnheader(%d)", sep,
				       i + 1, xt, i + 1 > gp
			}
			printf "\n" > gp
		}
	}
}
