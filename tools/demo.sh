#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: boots a guest per kernel of the matrix, loads iopfmap and
# shows what the module reports about itself.

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

if ! "$top/tools/deps.sh" --check > /dev/null 2>&1; then
	"$top/tools/deps.sh"
fi
rc=0
for k in $KERNELS; do
	kv=$(kver_of "$k") || die "kernel $k is not installed (make deps)"
	echo "=== iopfmap on Linux $kv"
	"$top/tools/vm/run" --kernel "$kv" --timeout 300 -- '
		set -e
		insmod /lib/modules/$(uname -r)/extra/iopfmap.ko
		ls -l /dev/iopfmap
		iopfctl info
		iopfctl -j info
		rmmod iopfmap' || rc=1
done
exit $rc
