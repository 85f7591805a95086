#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: for each kernel of the matrix, boots a one-vCPU guest for
# the latency and cost scenarios (a cross-vCPU wake-up is very slow under
# TCG and would dominate) and a two-vCPU guest for the scaling scenario,
# loads iopfmap with the simulated device and runs iopfmap_bench. Every
# peer is measured in the same guest run; ratios are to those peers.
#
# Results go to $BUILD/bench/STAMP/ (and $BUILD/bench/latest): rows.jsonl
# (one JSON object per result row), results.json, report.txt, plots/*.png
# and each guest's raw log. Progress goes to stderr; the report to stdout.
# docs/benchmarks.md explains the scenarios.
#
# Environment: KERNELS (default "6.1 6.12"), BENCH_ARGS (extra arguments
# of iopfmap_bench in every guest, e.g. "--smoke --json" for a quick try
# of the pipeline), BENCH_MEM (memory of the one-vCPU guest, default 2G).

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

if ! "$top/tools/deps.sh" --check > /dev/null 2>&1; then
	"$top/tools/deps.sh"
fi
command -v gnuplot > /dev/null || die "gnuplot is missing (make deps)"

stamp=$(date +%Y%m%d-%H%M%S)
out=$build/bench/$stamp
mkdir -p "$out"
ln -sfn "$stamp" "$build/bench/latest"
started=$(date +%s)
rc=0

say() {
	printf '[bench %4ds] %s\n' $(( $(date +%s) - started )) "$*" >&2
}

# run_guest KVER SMP MEM SCENARIOS: one guest; its rows go to rows.jsonl
# tagged with the kernel and vCPU count the guest reported.
run_guest() {
	local kv=$1 smp=$2 mem=$3 only=$4 build_flag=$5 iommu=${6:-vtd}
	local raw=$out/raw-$kv-smp$smp${6:+-$6}.log tag="" line status

	say "guest $kv, $smp vCPU, $mem: $only"
	set +e
	# shellcheck disable=SC2086 # BENCH_ARGS are words
	"$top/tools/vm/run" --kernel "$kv" $build_flag --smp "$smp" \
		--mem "$mem" --iommu "$iommu" --timeout 1200 -- "
		set -e
		insmod /lib/modules/\$(uname -r)/extra/iopfmap.ko sim=1
		iopfmap_bench --only $only ${BENCH_ARGS:-}" 2>&1 |
	tee "$raw" | while IFS= read -r line; do
		line=${line%$'\r'}
		case $line in
		BENCH_JSON\ \{\"type\":\"run\"*)
			tag=$(sed -E 's/.*"kernel":("[^"]*").*"vcpus":([0-9]+).*/"kernel":\1,"vcpus":\2/' <<< "$line")
			;;
		BENCH_JSON\ \{*)
			printf '{%s,%s\n' "$tag" "${line#BENCH_JSON \{}" >> "$out/rows.jsonl"
			case $line in
			*'"type":"fail"'*) say "FAILED: ${line#BENCH_JSON }" ;;
			*'"type":"skip"'*) say "skipped: ${line#BENCH_JSON }" ;;
			esac
			;;
		"# ==== "*|"# ["*"] note:"*|*FAILED*|*SKIP*|"[vm "*)
			say "$kv/${smp}cpu ${line#\# }" ;;
		"# ["*"] "*" median "*)
			say "$kv/${smp}cpu ${line#\# }" ;;
		"# ["*)
			# Per-round progress: one line, overwritten.
			[ -t 2 ] && printf '\r\033[K  %s' "${line#\# }" >&2 ;;
		esac
	done
	status=${PIPESTATUS[0]}
	set -e
	[ -t 2 ] && printf '\r\033[K' >&2
	if [ "$status" -ne 0 ]; then
		say "guest $kv ($smp vCPU) exited with status $status (log: $raw)"
		rc=1
	fi
}

for k in $KERNELS; do
	kv=$(kver_of "$k") || die "kernel $k is not installed (make deps)"
	run_guest "$kv" 1 "${BENCH_MEM:-2G}" setup,cold,latency,forward,inval,memory ""
	run_guest "$kv" 2 1G scale --no-build
	# The PRI device's scenario, where QEMU with it builds.
	if "$top/tools/qemu/build.sh" > /dev/null; then
		run_guest "$kv" 1 1G sva --no-build vtd-pri
	else
		say "no QEMU with iopfmap-pri: the sva scenario is not run"
	fi
done
touch "$out/rows.jsonl"
grep -q '"type":"fail"' "$out/rows.jsonl" && rc=1

say "report"
"$top/tools/bench/report.sh" "$out"
cat "$out/report.txt"
say "results in $out (also $build/bench/latest)"
exit $rc
