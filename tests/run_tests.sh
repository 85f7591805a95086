#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the iopfmap selftests on this machine and prints TAP 13, like the
# kselftest runner: each program's own TAP is indented with "# ".
#
# Needs root and the iopfmap module (loaded, or loadable with modprobe or
# from $IOPFMAP_KO). Each program runs between two markers written to
# /dev/kmsg; afterwards the kernel log since its start marker is scanned
# (lib/dmesg-scan.awk) and any warning, BUG or other splat fails the
# program even if all its tests passed. Lines a program provokes on
# purpose are listed, as regexes, in NAME.dmesg-allow beside it. Where
# kmemleak is on, a leak found after a program fails it too.
#
# Usage: run_tests.sh [PROGRAM...]   (default: the programs in tests.list)
# Environment: IOPFMAP_TEST_TIMEOUT  seconds per program (default 600)
#              IOPFMAP_MODULE_PARAMS  parameters the module is loaded with
#                                     (default "sim=1 allow_unsafe_interrupts=1":
#                                     the simulated device, and devices
#                                     behind an IOMMU without interrupt
#                                     remapping, such as QEMU's
#                                     virtio-iommu; the test that checks
#                                     the refusal turns it off itself)
# Exit status: 0 if every program passed or skipped, 1 otherwise.

here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${IOPFMAP_TEST_TIMEOUT:-600}
scan="$here/lib/dmesg-scan.awk"
ksft_skip=4

if [ $# -gt 0 ]; then
	tests="$*"
else
	tests=$(cat "$here/tests.list") || exit 1
fi

export IOPFMAP_MODULE_PARAMS="${IOPFMAP_MODULE_PARAMS-sim=1 allow_unsafe_interrupts=1}"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

kmsg() {
	echo "$*" > /dev/kmsg 2>/dev/null
}

set -- $tests
echo "TAP version 13"
echo "1..$#"

# Loads the module unless it is loaded. Before each program: a program
# that unloads it and fails half-way must not turn the rest into skips.
load_module() {
	[ -e /dev/iopfmap ] && return 0
	# shellcheck disable=SC2086 # the parameters are words
	timeout 60 modprobe iopfmap $IOPFMAP_MODULE_PARAMS 2>/dev/null ||
		timeout 60 insmod \
			"${IOPFMAP_KO:-/lib/modules/$(uname -r)/extra/iopfmap.ko}" \
			$IOPFMAP_MODULE_PARAMS 2>/dev/null ||
		echo "# iopfmap module could not be loaded; tests will say why"
}
# On a kernel with kmemleak (make check-debug) each program is followed by
# a scan: any unreferenced object it left fails it. Objects younger than
# 5 s are not reported yet, hence the wait; what the boot leaked is
# cleared first.
kmemleak=/sys/kernel/debug/kmemleak
[ -w "$kmemleak" ] && echo clear > "$kmemleak" 2>/dev/null || kmemleak=
leak_scan() {
	sleep 6
	echo scan > "$kmemleak"
	cat "$kmemleak" > "$tmp/leaks"
	echo clear > "$kmemleak"
	[ ! -s "$tmp/leaks" ]
}

num=0
failed=0
for t in "$@"; do
	num=$((num + 1))
	load_module
	echo "# selftests: iopfmap: $t"
	kmsg "iopfmap-selftest: start $num $t"
	{
		timeout "$timeout_s" "$here/$t" 2>&1
		echo $? > "$tmp/rc"
	} | awk '{ print "# " $0; fflush() }'
	rc=$(cat "$tmp/rc")
	kmsg "iopfmap-selftest: end $num $t"

	allow=
	[ -f "$here/$t.dmesg-allow" ] && allow="$here/$t.dmesg-allow"
	dmesg | awk -v start="iopfmap-selftest: start $num $t" \
		-v allow="$allow" -f "$scan" > "$tmp/splat"

	if [ -s "$tmp/splat" ]; then
		echo "# kernel log since the start of $t shows a kernel bug:"
		sed 's/^/# /' "$tmp/splat"
		echo "not ok $num selftests: iopfmap: $t # kernel splat"
		failed=1
	elif [ -n "$kmemleak" ] && ! leak_scan; then
		echo "# kmemleak found objects $t left unreferenced:"
		sed 's/^/# /' "$tmp/leaks"
		echo "not ok $num selftests: iopfmap: $t # kmemleak"
		failed=1
	elif [ "$rc" -eq 0 ]; then
		echo "ok $num selftests: iopfmap: $t"
	elif [ "$rc" -eq "$ksft_skip" ]; then
		echo "ok $num selftests: iopfmap: $t # SKIP"
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 143 ]; then
		echo "not ok $num selftests: iopfmap: $t # TIMEOUT ${timeout_s}s"
		failed=1
	else
		echo "not ok $num selftests: iopfmap: $t # exit=$rc"
		failed=1
	fi
done
exit $failed
