#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check). For every kernel of the matrix: build the
# module with W=1, run sparse; then checkpatch, the userspace build and the
# host tests; then boot a guest per kernel (slub_debug on) and run the
# selftests in it. Prints TAP as it goes and ends with one line
# "N passed, N failed, N skipped" over everything. Exits non-zero if
# anything failed, a guest did not boot or timed out, or a kernel of the
# matrix was not tested.
#
# Environment: KERNELS (default "6.1 6.12"), CHECK_GUEST_TIMEOUT (seconds
# per guest, default 900), CHECK_APPEND (extra kernel command line).

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
for k in $KERNELS; do
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

tested=0
for k in $KERNELS; do
	kv=${kvers[$k]:-}
	[ -n "$kv" ] || continue
	section "guest: $kv"
	log=$build/logs/check-$kv.log
	# Two NUMA nodes so that pages can migrate; hugetlb pages reserved
	# at boot for the hugetlb memory kind.
	"$top/tools/vm/run" --kernel "$kv" --no-build --timeout "$guest_timeout" \
		--numa --append "slub_debug=FZPU hugepages=32 ${CHECK_APPEND:-}" \
		-- /iopfmap/tests/run_tests.sh | tee "$log"
	rc=${PIPESTATUS[0]}
	read -r p f s < <(awk -f "$top/tests/lib/tap-summary.awk" "$log" | head -n 1)
	npass=$((npass + p)) nfail=$((nfail + f)) nskip=$((nskip + s))
	while IFS= read -r line; do
		failures+=("$kv: ${line#failed: }")
	done < <(awk -f "$top/tests/lib/tap-summary.awk" "$log" | tail -n +2)
	case $rc in
	0) [ "$f" -eq 0 ] && tested=$((tested + 1)) ;;
	124) nfail=$((nfail + 1)); failures+=("$kv: the guest timed out after ${guest_timeout}s") ;;
	125) nfail=$((nfail + 1)); failures+=("$kv: the guest died or logged a kernel bug outside the tests") ;;
	*) if [ "$f" -eq 0 ]; then
		nfail=$((nfail + 1))
		failures+=("$kv: run_tests.sh exited $rc")
	   fi ;;
	esac
done

section "summary"
expected=$(echo $KERNELS | wc -w)
if [ "$tested" -ne "$expected" ] && [ "$nfail" -eq 0 ]; then
	nfail=$((nfail + 1))
	failures+=("only $tested of $expected kernels were tested")
fi
for f in "${failures[@]}"; do
	echo "# FAILED: $f"
done
echo "# kernels: ${kvers[*]:-none}; took $(( $(date +%s) - started ))s"
echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ]
