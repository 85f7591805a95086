#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A seconds-long pass of every benchmark scenario (iopfmap_bench --smoke,
# tools/bench/), to prove that `make bench` works. TAP, one test per
# scenario; a scenario that cannot run here says SKIP and why. No timing
# is checked: under TCG, and at these sizes, times mean nothing.

here=$(cd "$(dirname "$0")" && pwd)
bench=$(command -v iopfmap_bench 2>/dev/null) || bench=$here/../bin/iopfmap_bench
if [ ! -x "$bench" ]; then
	echo "TAP version 13"
	echo "1..0 # SKIP iopfmap_bench is not built (make tools)"
	exit 4
fi
exec "$bench" --smoke
