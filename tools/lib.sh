# SPDX-License-Identifier: GPL-2.0
# Shared by the host-side scripts in tools/: paths and the kernel matrix.
# shellcheck shell=bash

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$top/build}

# What make deps builds once and keeps outside the repository: the trixie
# root (7.x kernels, their headers, QEMU 11, gcc 14) and what is derived
# from it.
cache=${IOPFMAP_CACHE:-/var/cache/iopfmap}
troot=${IOPFMAP_TROOT:-$cache/trixie}

# The kernels every feature is tested on: Debian's 6.1 (bookworm), 6.12
# (bookworm-backports) and the newest 7.x of trixie-backports ("7.x").
KERNELS=${KERNELS:-6.1 6.12 7.x}
# Built (W=1, sparse) but not booted: trixie's own 6.12, built with gcc 14.
BUILD_KERNELS=${BUILD_KERNELS:-6.12+deb13}
# The IOMMU models tools/vm/run emulates; the device tests run on each.
IOMMUS=${IOMMUS:-vtd vtd-sm amd virtio}

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# Where kernels are installed: the host (""), the trixie root, and the
# debug kernels tools/debug-kernel.sh built (each its own small root).
kernel_roots() {
	local r

	echo ""
	echo "$troot"
	for r in "$cache"/debug/*/.built; do
		[ -f "$r" ] && dirname "$r"
	done
	return 0
}

# kernel_root KVER: "" for a kernel installed on the host, else the root
# it is installed in. Fails if it is installed nowhere.
kernel_root() {
	local r

	while IFS= read -r r; do
		if [ -d "$r/usr/src/linux-headers-$1" ]; then
			echo "$r"
			return 0
		fi
	done < <(kernel_roots)
	return 1
}

# needs_troot KVER: whether KVER builds in the trixie root (its headers,
# or the debug tree tools/debug-kernel.sh made there, need gcc 14 and
# trixie's glibc).
needs_troot() {
	local r

	r=$(kernel_root "$1") || return 1
	[ "$r" = "$troot" ] || [ -f "$r/.troot" ]
}

# kver_of SERIES|KVER: the newest installed Debian amd64 kernel of a series,
# on the host or in the trixie root, or a full release name that is
# installed. "6.1" -> 6.1.0-57-amd64, "6.12" -> 6.12.118+deb12-amd64 (the
# host's: bookworm-backports), "6.12+deb13" -> trixie's 6.12, "7.x" (or
# "7") -> the newest 7.*, "7.3" -> the newest 7.3.*.
kver_of() {
	local want=$1 glob dir r

	if kernel_root "$want" > /dev/null; then
		echo "$want"
		return 0
	fi
	case $want in
	*.x) glob="${want%.x}.*-amd64" ;;
	*+*) glob="${want%%+*}.*+${want#*+}-amd64" ;;
	*.*) glob="$want.*-amd64" ;;
	*) glob="$want.*-amd64" ;;
	esac
	# Debug kernels are named explicitly, never picked by a series.
	for r in "" "$troot"; do
		# shellcheck disable=SC2086 # the glob is the point
		dir=$(ls -d $r/usr/src/linux-headers-$glob 2>/dev/null |
		      sort -V | tail -n 1)
		if [ -n "$dir" ]; then
			echo "${dir##*/linux-headers-}"
			return 0
		fi
	done
	return 1
}

# kdir_of KVER: the kbuild directory of an installed kernel, as seen from
# where it builds (the host, or inside the trixie root, which sees the
# cache at the same path as the host).
kdir_of() {
	local r

	r=$(kernel_root "$1") || return 1
	if [ "$r" = "$troot" ]; then
		echo "/usr/src/linux-headers-$1"
	else
		echo "$r/usr/src/linux-headers-$1"
	fi
}

# khost_of PATH KVER: PATH (as kdir_of gives it) seen from the host.
khost_of() {
	if [ "$(kernel_root "$2")" = "$troot" ]; then
		echo "$troot$1"
	else
		echo "$1"
	fi
}

# kimage_of KVER: the host path of the kernel image to boot.
kimage_of() {
	local r

	r=$(kernel_root "$1") || return 1
	for f in "$r/boot/vmlinuz-$1" "$r/usr/lib/modules/$1/vmlinuz" \
		 "$r/usr/lib/modules/$1/vmlinuz.unsigned"; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# kconfig_of KVER: the host path of the kernel's configuration.
kconfig_of() {
	local r f

	r=$(kernel_root "$1") || return 1
	for f in "$r/boot/config-$1" "$r/usr/lib/modules/$1/config" \
		 "$r/usr/src/linux-headers-$1/.config"; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# in_kernel_root KVER CMD...: runs CMD where KVER builds.
in_kernel_root() {
	local kv=$1
	shift
	kernel_root "$kv" > /dev/null ||
		die "kernel $kv is not installed (make deps)"
	if needs_troot "$kv"; then
		"$top/tools/troot.sh" "$@"
	else
		"$@"
	fi
}

# ksrc_dir SERIES: where tools/ksrc.sh puts the files taken from Debian's
# linux-source package of that series.
ksrc_dir() {
	echo "$build/ksrc/$1"
}

# count_guest LOG RC LABEL TIMEOUT: adds one guest run, its TAP in LOG
# and tools/vm/run's exit status RC, to the caller's npass, nfail, nskip
# and failures (failures named after LABEL). Returns 0 when the guest
# ran its tests to the end and none failed.
count_guest() {
	local log=$1 rc=$2 label=$3 timeout=$4 p f s line

	read -r p f s < <(awk -f "$top/tests/lib/tap-summary.awk" "$log" | head -n 1)
	npass=$((npass + p)) nfail=$((nfail + f)) nskip=$((nskip + s))
	while IFS= read -r line; do
		failures+=("$label: ${line#failed: }")
	done < <(awk -f "$top/tests/lib/tap-summary.awk" "$log" | tail -n +2)
	case $rc in
	0) [ "$f" -eq 0 ] ;;
	124) nfail=$((nfail + 1))
	     failures+=("$label: the guest timed out after ${timeout}s")
	     return 1 ;;
	125) nfail=$((nfail + 1))
	     failures+=("$label: the guest died or logged a kernel bug outside the tests")
	     return 1 ;;
	*) if [ "$f" -eq 0 ]; then
		nfail=$((nfail + 1))
		failures+=("$label: run_tests.sh exited $rc")
	   fi
	   return 1 ;;
	esac
}
