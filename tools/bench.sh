#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: boots a one-vCPU guest per kernel of the matrix (a cross-vCPU
# wake-up is very slow under TCG and would dominate), loads iopfmap with
# the simulated device and runs iopfmap_bench. Results are ratios to
# references measured in the same run. Environment: BENCH_MIB (buffer
# size for the cold-start pass, default 64).

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

if ! "$top/tools/deps.sh" --check > /dev/null 2>&1; then
	"$top/tools/deps.sh"
fi
mib=${BENCH_MIB:-64}
rc=0
for k in $KERNELS; do
	kv=$(kver_of "$k") || die "kernel $k is not installed (make deps)"
	echo "=== iopfmap_bench on Linux $kv (TCG, 1 vCPU)"
	"$top/tools/vm/run" --kernel "$kv" --smp 1 --mem 1G --timeout 900 -- "
		set -e
		insmod /lib/modules/\$(uname -r)/extra/iopfmap.ko sim=1
		iopfmap_bench $mib" || rc=1
done
exit $rc
