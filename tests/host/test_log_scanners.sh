#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Unit tests of the two scripts that decide whether a guest run passed:
# lib/dmesg-scan.awk (kernel splats) and lib/tap-summary.awk (counting).
# Runs on the host; prints TAP.

cd "$(dirname "$0")/.." || exit 1
scan=lib/dmesg-scan.awk
summary=lib/tap-summary.awk
n=0
failed=0

check() { # check NAME EXPECTED ACTUAL
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1"
		echo "#   expected: $(printf '%s' "$2" | tr '\n' '|')"
		echo "#   got:      $(printf '%s' "$3" | tr '\n' '|')"
		failed=1
	fi
}

boot='[    0.81] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug
[    1.19] AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.
[    1.26] RAS: Correctable Errors collector initialized.'
start='[    2.00] iopfmap-selftest: start 1 t'
end='[    2.90] iopfmap-selftest: end 1 t'
warn='[    2.50] WARNING: CPU: 1 PID: 80 at kmod/main.c:42 iopfmap_init+0x1/0x2 [iopfmap]'
slub='[    2.50] BUG kmalloc-64 (Tainted: G           OE     ): Redzone overwritten'
list='[    2.50] list_del corruption. prev->next should be ffff8880, but was dead000000000122'
rcu='[   22.50] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'
hung='[  122.50] INFO: task iopfmap_abi:81 blocked for more than 120 seconds.'
oops='[    2.50] BUG: kernel NULL pointer dereference, address: 0000000000000008'
gpf='[    2.50] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT SMP'
badpage='[    2.50] BUG: Bad page state in process iopfmap_abi  pfn:10a2b'
dmar='[    2.50] DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set'
amdvi='[    2.50] iopfmap_edu 0000:00:03.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0002 address=0x1000 flags=0x0020]'
viommu='[    2.50] virtio_iommu virtio0: page fault from EP 24 at 0x1000 [W]'

scan_test() { # scan_test LOG [AWK-ARGS...]
	local log=$1
	shift
	printf '%s\n' "$log" | awk "$@" -f "$scan"
}
m='iopfmap-selftest: start 1 t'

check "scan: a clean boot log has no splat" "" "$(scan_test "$boot" -v start="$m")"
check "scan: a clean test log has no splat" "" \
	"$(scan_test "$boot"$'\n'"$start"$'\n'"$end" -v start="$m")"
for kind in warn slub list rcu hung oops gpf badpage dmar amdvi viommu; do
	check "scan: $kind after the marker is reported" "${!kind}" \
		"$(scan_test "$boot"$'\n'"$start"$'\n'"${!kind}" -v start="$m")"
done
check "scan: a splat before the marker is not the test's" "" \
	"$(scan_test "$warn"$'\n'"$start" -v start="$m")"
check "scan: only the last run of a marker counts" "$oops" \
	"$(scan_test "$start"$'\n'"$warn"$'\n'"$start"$'\n'"$oops" -v start="$m")"
allow=$(mktemp)
echo 'DMAR: \[DMA Write NO_PASID\] .* fault addr' > "$allow"
check "scan: an allowed line is not reported" "" \
	"$(scan_test "$start"$'\n'"$dmar" -v start="$m" -v allow="$allow")"
check "scan: an allow list does not hide other splats" "$warn" \
	"$(scan_test "$start"$'\n'"$dmar"$'\n'"$warn" -v start="$m" -v allow="$allow")"
rm -f "$allow"
expect='[    2.40] iopfmap-selftest: expect Event logged \[IO_PAGE_FAULT domain=0x[0-9a-f]+ address=0x1000 '
check "scan: a line the test said it expects is not reported" "" \
	"$(scan_test "$start"$'\n'"$expect"$'\n'"$amdvi" -v start="$m")"
check "scan: an expectation covers only what it matches" "$viommu" \
	"$(scan_test "$start"$'\n'"$expect"$'\n'"$amdvi"$'\n'"$viommu" -v start="$m")"
check "scan: an expectation covers only later lines" "$amdvi" \
	"$(scan_test "$start"$'\n'"$amdvi"$'\n'"$expect" -v start="$m")"
check "scan: an expectation ends with its run" "$amdvi" \
	"$(scan_test "$start"$'\n'"$expect"$'\n'"$start"$'\n'"$amdvi" -v start="$m")"
check "scan: outside mode skips bracketed tests" "" \
	"$(scan_test "$start"$'\n'"$warn"$'\n'"$end" -v outside=1)"
check "scan: outside mode reports splats between tests" "$oops" \
	"$(scan_test "$start"$'\n'"$warn"$'\n'"$end"$'\n'"$oops" -v outside=1)"

sum_test() {
	printf '%s\n' "$1" | awk -f "$summary"
}
prog_a='# selftests: iopfmap: a
# TAP version 13
# 1..3
# ok 1 abi.get_info
# ok 2 abi.size # SKIP no module
# ok 3 abi.flags
ok 1 selftests: iopfmap: a'
prog_b_fail='# selftests: iopfmap: b
# 1..2
# ok 1 x
# not ok 2 y
not ok 2 selftests: iopfmap: b # exit=1'
prog_b_splat='# selftests: iopfmap: b
# 1..1
# ok 1 x
# kernel log since the start of b shows a kernel bug:
# [  2.5] WARNING: CPU: 0
not ok 2 selftests: iopfmap: b # kernel splat'

check "summary: a clean run" "2 0 1" \
	"$(sum_test $'TAP version 13\n1..1\n'"$prog_a")"
check "summary: a failing leaf counts once" $'3 1 1\nfailed: b: y' \
	"$(sum_test $'TAP version 13\n1..2\n'"$prog_a"$'\n'"$prog_b_fail")"
check "summary: a splat fails a program whose tests passed" \
	$'3 1 1\nfailed: b (kernel splat)' \
	"$(sum_test $'TAP version 13\n1..2\n'"$prog_a"$'\n'"$prog_b_splat")"
check "summary: a program cut off by a dead guest fails" \
	$'3 1 1\nfailed: b (did not finish)' \
	"$(sum_test $'TAP version 13\n1..2\n'"$prog_a"$'\n# selftests: iopfmap: b\n# ok 1 x')"
check "summary: programs that never started fail" \
	$'2 1 1\nfailed: 2 of 3 test programs did not start' \
	"$(sum_test $'TAP version 13\n1..3\n'"$prog_a")"
check "summary: no output at all is a failure" \
	$'0 1 0\nfailed: no test output (the guest did not boot or the runner did not start)' \
	"$(sum_test '')"

echo "1..$n"
exit $failed
