#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A seconds-long pass of every benchmark scenario (iopfmap_bench --smoke,
# tools/bench/), to prove that `make bench` works. TAP, one test per
# scenario; a scenario that cannot run here says SKIP and why. No timing
# is checked: under TCG, and at these sizes, times mean nothing.
#
# The guests split the scenarios as make bench does: one with the
# emulated PRI device (tools/vm/run --iommu vtd-pri) runs its scenario,
# sva, and only that; any other runs all the others.

here=$(cd "$(dirname "$0")" && pwd)
bench=$(command -v iopfmap_bench 2>/dev/null) || bench=$here/../bin/iopfmap_bench
if [ ! -x "$bench" ]; then
	echo "TAP version 13"
	echo "1..0 # SKIP iopfmap_bench is not built (make tools)"
	exit 4
fi
pri=0
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor" 2>/dev/null):$(cat "$d/device" 2>/dev/null)" = \
		0x1234:0x11e9 ] && pri=1
done
all=$("$bench" --list 2>&1 | awk '/^  [a-z]/ { print $1 }')
if [ "$pri" = 1 ]; then
	only=sva
else
	only=$(printf '%s\n' "$all" | grep -vx sva | tr '\n' , | sed 's/,$//')
fi
exec "$bench" --smoke --only "$only"
