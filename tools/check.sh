#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check). For every kernel of the matrix (KERNELS)
# and trixie's gcc-14 6.12 (BUILD_KERNELS): build the module with W=1, run
# sparse; then checkpatch, the userspace build and the host tests; then,
# per kernel of KERNELS, boot a guest on VT-d (slub_debug on) and run every
# selftest in it, and one guest on each other IOMMU model (IOMMUS) that
# runs the device tests, and one guest with the emulated PRI device
# (tools/qemu, built first) that runs the end-to-end page request tests.
# Prints TAP as it goes and ends with one line
# "N passed, N failed, N skipped" over everything. Exits non-zero if
# anything failed, a guest did not boot or timed out, or a guest of the
# matrix was not run. A guest the kernel cannot use (no driver for that
# IOMMU in its configuration) is one skip that says so.
#
# Environment: KERNELS (default "6.1 6.12 7.x"), BUILD_KERNELS (default
# "6.12+deb13"), IOMMUS (default "vtd vtd-sm amd virtio"; the first runs
# the whole suite), CHECK_GUEST_TIMEOUT (seconds per guest, default 900),
# CHECK_APPEND (extra kernel command line).

set -uo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

guest_timeout=${CHECK_GUEST_TIMEOUT:-900}
npass=0 nfail=0 nskip=0 n=0
failures=()
started=$(date +%s)

result() { # result ok|fail NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		npass=$((npass + 1))
		echo "ok $n $2"
	else
		nfail=$((nfail + 1))
		failures+=("$2${3:+: $3}")
		echo "not ok $n $2${3:+ # $3}"
	fi
}

step() { # step NAME COMMAND...: one host-side result from a command
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		result ok "$name"
	else
		printf '%s\n' "$out" | tail -n 40 | sed 's/^/# /'
		result fail "$name"
	fi
}

section() {
	echo "# ===== $* ($(( $(date +%s) - started ))s)"
}

mkdir -p "$build/logs"
section "dependencies"
if ! "$top/tools/deps.sh" --check > /dev/null 2>&1; then
	"$top/tools/deps.sh" || die "installing dependencies failed"
fi

section "host: module builds, sparse, checkpatch, userspace"
declare -A kvers
for k in $KERNELS $BUILD_KERNELS; do
	if ! kv=$(kver_of "$k"); then
		result fail "kernel $k is installed"
		continue
	fi
	kvers[$k]=$kv
	step "module builds with W=1, no warnings: $kv" "$top/tools/kbuild.sh" build "$kv"
	step "sparse is clean: $kv" "$top/tools/kbuild.sh" sparse "$kv"
	# sparse rebuilt the objects: rebuild for the guest with W=1 again.
	"$top/tools/kbuild.sh" build "$kv" > /dev/null 2>&1
done
step "checkpatch --strict is clean" "$top/tools/checkpatch.sh"
step "the netlink spec is valid and generates the uapi header" "$top/tools/netlink-gen.sh" --check
step "userspace builds with -Wall -Wextra -Werror" make -s -C "$top" userspace

section "host tests"
host_log=$build/logs/host-tests.log
make -s -C "$top/tests" host_tests > "$host_log" 2>&1
host_rc=$?
while IFS= read -r line; do
	case $line in
	"not ok "*) result fail "host: ${line#not ok * }" ;;
	"ok "*"# SKIP"*) n=$((n + 1)); nskip=$((nskip + 1)); echo "ok $n host: ${line#ok * }" ;;
	"ok "*) result ok "host: ${line#ok * }" ;;
	"#"*) echo "$line" ;;
	esac
done < "$host_log"
if [ "$host_rc" -ne 0 ] && ! grep -q '^not ok' "$host_log"; then
	sed 's/^/# /' "$host_log"
	result fail "host tests ran" "exit status $host_rc"
fi

# The selftests that drive a device through the IOMMU: they run on every
# IOMMU model; the others need no IOMMU model of their own.
device_tests="iopfmap_device iopfmap_device_raw"
# The programs with end-to-end page request tests: one more guest per
# kernel runs them, with the emulated PRI device behind VT-d (tools/vm/run
# --iommu vtd-pri); iopfd's other tests run there too, and the benchmark
# smoke's scenario for that device (its others run on vtd).
pri_only="iopfmap_pri iopfmap_iopfd"
pri_tests="$pri_only iopfmap_bench_smoke.sh"

section "QEMU with the emulated PRI device"
if qemu_log=$("$top/tools/qemu/build.sh" 2>&1); then
	result ok "QEMU with iopfmap-pri builds"
	pri_qemu=1
else
	printf '%s\n' "$qemu_log" | tail -n 40 | sed 's/^/# /'
	result fail "QEMU with iopfmap-pri builds"
	pri_qemu=0
fi

# guest KVER IOMMU PROGRAMS...: one guest run, counted.
guest() {
	local kv=$1 iommu=$2 log rc
	shift 2

	section "guest: $kv, $iommu"
	log=$build/logs/check-$kv-$iommu.log
	# Two NUMA nodes so that pages can migrate; hugetlb pages reserved
	# at boot for the hugetlb memory kind.
	"$top/tools/vm/run" --kernel "$kv" --iommu "$iommu" --no-build \
		--timeout "$guest_timeout" --numa \
		--append "slub_debug=FZPU hugepages=32 rcu_nocbs=all ${CHECK_APPEND:-}" \
		-- /iopfmap/tests/run_tests.sh "$@" | tee "$log"
	rc=${PIPESTATUS[0]}
	if count_guest "$log" "$rc" "$kv $iommu" "$guest_timeout"; then
		tested=$((tested + 1))
	fi
}

# Why KVER cannot drive IOMMU model $2, or nothing: a driver its
# configuration leaves out.
no_driver() {
	local cfg opt

	cfg=$(kconfig_of "$1") || return 0
	case $2 in
	vtd|vtd-sm) opt=CONFIG_INTEL_IOMMU ;;
	amd) opt=CONFIG_AMD_IOMMU ;;
	virtio) opt=CONFIG_VIRTIO_IOMMU ;;
	*) return 0 ;;
	esac
	grep -Eq "^$opt=(y|m)$" "$cfg" ||
		echo "kernel $1 has no driver for this IOMMU ($opt is not set)"
}

# Why the device tests PROGRAM cannot run on KVER with IOMMU model $2,
# or nothing. QEMU's AMD-Vi keeps status register bits 9-10 (GA log
# overflow and interrupt) plain read-write rather than write-1-to-clear;
# 6.1's AMD-Vi interrupt thread clears every status bit it knows by
# writing them all as ones, so from the first event on (the first IO
# page fault) it sees a GA log overflow it has just set and spins on one
# vCPU for good (seen: "IOMMU GA Log overflow" over a million times in
# 5 s). 6.12's driver has one handler per log that writes only its own
# bits. The raw-DMA tests fault the device on purpose; the other device
# tests raise no IOMMU event on 6.1 and run.
emulation_breaks() { # emulation_breaks KVER IOMMU PROGRAM
	case $1/$2/$3 in
	6.1.*/amd/iopfmap_device_raw)
		echo "QEMU's AMD-Vi sets the GA log status bits 6.1's event-log interrupt thread writes, which then spins from the first IO page fault on" ;;
	esac
}

tested=0 expected=0
for k in $KERNELS; do
	kv=${kvers[$k]:-}
	[ -n "$kv" ] || continue
	first=1
	for iommu in $IOMMUS; do
		why=$(no_driver "$kv" "$iommu")
		if [ -n "$why" ]; then
			n=$((n + 1)) nskip=$((nskip + 1))
			echo "ok $n guest $kv $iommu # SKIP $why"
		elif [ "$first" = 1 ]; then
			expected=$((expected + 1))
			# Every program but those of the PRI guest.
			# shellcheck disable=SC2046,SC2086 # lists of programs
			guest "$kv" "$iommu" $(printf '%s\n' $pri_only |
				grep -vxF -f - "$build/tests/tests.list")
		else
			progs=
			for t in $device_tests; do
				why=$(emulation_breaks "$kv" "$iommu" "$t")
				if [ -n "$why" ]; then
					n=$((n + 1)) nskip=$((nskip + 1))
					echo "ok $n guest $kv $iommu $t # SKIP $why"
				else
					progs="$progs $t"
				fi
			done
			expected=$((expected + 1))
			# shellcheck disable=SC2086 # a list of programs
			guest "$kv" "$iommu" $progs
		fi
		first=0
	done
	if [ "$pri_qemu" = 1 ]; then
		expected=$((expected + 1))
		guest "$kv" vtd-pri $pri_tests
	fi
done

section "summary"
if [ "$tested" -ne "$expected" ] && [ "$nfail" -eq 0 ]; then
	nfail=$((nfail + 1))
	failures+=("only $tested of $expected guests ran their tests")
fi
for f in "${failures[@]}"; do
	echo "# FAILED: $f"
done
echo "# kernels: ${kvers[*]:-none}; IOMMUs: $IOMMUS; took $(( $(date +%s) - started ))s"
echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
