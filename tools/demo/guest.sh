#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest's half of `make demo` (tools/demo.sh puts it in the guest):
# load iopfmap with the simulated device, run the demo, unload it.
# DEMO_ARGS, if set, go to iopfmap_demo.

set -e
ko=/lib/modules/$(uname -r)/extra/iopfmap.ko
echo "\$ insmod $ko sim=1"
insmod "$ko" sim=1
# The PRI device's driver, where the guest has the device (part 4).
if grep -qx 0x11e9 /sys/bus/pci/devices/*/device 2>/dev/null; then
	echo "\$ insmod iopfmap_pri.ko"
	insmod "${ko%/*}/iopfmap_pri.ko"
fi
# shellcheck disable=SC2086
iopfmap_demo --iopfd /iopfmap/bin/iopfd $DEMO_ARGS
rmmod iopfmap
