#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug: the whole selftest suite, the fail_nth sweep included,
# on a debug kernel of each series of DEBUG_SERIES (default "6.12 7.x"),
# built once by tools/debug-kernel.sh (KASAN, lockdep, kmemleak, DEBUG_VM,
# KFENCE, DEBUG_LIST, fault injection). One guest per kernel on VT-d with
# two NUMA nodes. Any KASAN, lockdep, DEBUG_VM, WARN or other splat in the
# kernel log fails the program it happened in (tests/lib/dmesg-scan.awk),
# or the guest if it happened outside the programs; a kmemleak report
# after a program fails that program (tests/run_tests.sh). Prints TAP and
# "N passed, N failed, N skipped". Not part of make check: a cold build
# of a debug kernel takes 15 to 30 minutes on 2 cores.
#
# Environment: DEBUG_SERIES, CHECK_DEBUG_TIMEOUT (seconds per guest,
# default 5400), CHECK_APPEND (extra kernel command line).

set -uo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

guest_timeout=${CHECK_DEBUG_TIMEOUT:-5400}
npass=0 nfail=0 nskip=0
failures=()
started=$(date +%s)
mkdir -p "$build/logs"

section() {
	echo "# ===== $* ($(( $(date +%s) - started ))s)"
}

section "userspace"
make -s -C "$top" userspace > "$build/logs/check-debug-userspace.log" 2>&1 ||
	die "the userspace build failed ($build/logs/check-debug-userspace.log)"

for series in ${DEBUG_SERIES:-6.12 7.x}; do
	section "debug kernel $series"
	t0=$(date +%s)
	if ! kv=$("$top/tools/debug-kernel.sh" "$series"); then
		nfail=$((nfail + 1))
		failures+=("debug kernel $series: the build failed")
		continue
	fi
	echo "# $kv ready after $(( $(date +%s) - t0 ))s"
	if ! "$top/tools/kbuild.sh" build "$kv" > "$build/logs/check-debug-$kv-module.log" 2>&1; then
		sed 's/^/# /' "$build/logs/check-debug-$kv-module.log" | tail -n 20
		nfail=$((nfail + 1))
		failures+=("$kv: the module does not build")
		continue
	fi

	section "guest: $kv, vtd"
	log=$build/logs/check-debug-$kv.log
	# KASAN and lockdep make every step several times slower under TCG:
	# 3 GiB for KASAN's shadow and kmemleak's object pool.
	"$top/tools/vm/run" --kernel "$kv" --iommu vtd --no-build --numa \
		--mem 3G --timeout "$guest_timeout" \
		--append "hugepages=32 rcu_nocbs=all kmemleak=on ${CHECK_APPEND:-}" \
		-- 'IOPFMAP_TEST_TIMEOUT=3600 /iopfmap/tests/run_tests.sh' | tee "$log"
	rc=${PIPESTATUS[0]}
	count_guest "$log" "$rc" "$kv" "$guest_timeout" || true
	injected=$(sed -n 's/.*:\([0-9]*\) injected failures$/\1/p' "$log" |
		   awk '{ n += $1 } END { print n + 0 }')
	echo "# $kv: $injected failures injected by the fail_nth sweep"
done

section "summary"
for f in "${failures[@]}"; do
	echo "# FAILED: $f"
done
echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
