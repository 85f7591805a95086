#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: the showcase. For each kernel of the matrix, one after the
# other, boots a QEMU guest (tools/vm/run builds the module and the
# userspace for that kernel first), loads iopfmap with the simulated
# device and runs tools/demo/iopfmap_demo, which starts iopfd, drives the
# device and prints what happened: faults and how each was served, what
# pinning would have cost, fault latencies, a two-stage run through iopfd,
# and, with the emulated PRI device (tools/qemu), real page requests.
#
# Exit status 0 only if the demo passed on every kernel. Environment:
# KERNELS (default "6.1 6.12"), DEMO_ARGS (options of iopfmap_demo, for
# example "--mib 64"; iopfmap_demo --help lists them).

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

demo_args=${DEMO_ARGS:-}
# It travels inside the guest's command line: keep it to plain words.
[[ $demo_args =~ ^[A-Za-z0-9\ ./=_-]*$ ]] ||
	die "DEMO_ARGS may hold only letters, digits, spaces and ./=_-"

if ! "$top/tools/deps.sh" --check > /dev/null 2>&1; then
	"$top/tools/deps.sh" ||
		die "installing the dependencies failed (see above; make deps needs root)"
fi

# Where QEMU with the emulated PRI device builds, the guests have it, and
# part 4 shows real page requests next to the simulated device.
iommu_args=()
if "$top/tools/qemu/build.sh" > /dev/null; then
	iommu_args=(--iommu vtd-pri)
else
	echo "demo: no QEMU with iopfmap-pri: part 4 will say so" >&2
fi

mkdir -p "$build/vm"
rc=0
summary=()
for k in $KERNELS; do
	if ! kv=$(kver_of "$k"); then
		echo "demo: kernel $k is not installed (make deps)" >&2
		summary+=("Linux $k: FAILED: not installed (make deps)")
		rc=1
		continue
	fi
	log=$build/vm/demo-$kv.log
	echo "=== iopfmap demo on Linux $kv (QEMU, TCG, 1 vCPU)"
	# One vCPU: a wake-up across vCPUs is very slow under TCG and would
	# dominate the tail latency of the faults iopfd answers.
	set +e
	"$top/tools/vm/run" --kernel "$kv" --smp 1 --timeout 900 "${iommu_args[@]}" \
		--add "$top/tools/demo/guest.sh=/iopfmap/demo.sh" \
		-- "DEMO_ARGS='$demo_args' sh /iopfmap/demo.sh" 2>&1 |
		tee "$log"
	r=${PIPESTATUS[0]}
	set -e
	echo
	case $r in
	0)
		summary+=("Linux $kv: ok")
		continue ;;
	124)
		why="the guest timed out" ;;
	125)
		why="the guest died, or its kernel log shows a bug" ;;
	*)
		why=$(grep -a -m 1 -E 'FAILED|failed|[Ee]rror' "$log" |
		      sed 's/^iopfmap_demo: FAILED: //' || true)
		why=${why:-exit status $r} ;;
	esac
	summary+=("Linux $kv: FAILED: $why (log: $log)")
	rc=1
done

echo "=== demo summary"
printf '  %s\n' "${summary[@]}"
exit $rc
