#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds kmod/ for one kernel, out of tree, in build/KVER/kmod (a tree of
# symlinks to the sources, so several kernels build side by side), then
# the selftests' edu driver kmod/testdev in build/KVER/kmod/testdev (also
# reachable as build/KVER/testdev) against iopfmap's Module.symvers.
#
# Usage: kbuild.sh build|sparse|clean KVER [KDIR]
#   build   W=1; fails on any compiler or modpost warning
#   sparse  runs sparse over every file (C=2); fails on any sparse report

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

what=${1:?usage: kbuild.sh build|sparse|clean KVER [KDIR]}
kver=${2:?usage: kbuild.sh build|sparse|clean KVER [KDIR]}
kdir=${3:-$(kdir_of "$kver")}
# A kernel of the trixie root builds there, with the compiler it was built
# with (tools/troot.sh); the paths are the same inside.
[ -n "$kdir" ] || die "kernel $kver is not installed (make deps)"
[ -f "$(khost_of "$kdir" "$kver")/Makefile" ] ||
	die "no kernel build tree at $kdir (make deps)"

dir=$build/$kver
mkdir -p "$dir"
# Mirror the module sources as symlinks; generated files stay in build/.
find "$dir/kmod" -xtype l -delete 2>/dev/null || true
cp -rsf "$top/kmod" "$dir/"
ln -sfn "$top/include" "$dir/include"
ln -sfn "$top/VERSION" "$dir/VERSION"
# testdev builds inside the kmod mirror, where its includes of
# ../iopfmap_driver.h and ../../include resolve as in the repository.
ln -sfn kmod/testdev "$dir/testdev"

case $what in
build) args=(W=1 modules) ;;
sparse) args=(C=2 "CHECK=sparse" modules) ;;
clean) args=(clean) ;;
*) die "unknown action $what" ;;
esac

# kbuild_dir DIR LOG [MAKE-ARGS...]: make in build/KVER/DIR, log to LOG.
kbuild_dir() {
	local sub=$1 log=$2 rc
	shift 2

	set +e
	in_kernel_root "$kver" make -C "$kdir" M="$dir/$sub" "${args[@]}" "$@" \
		> "$log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		cat "$log" >&2
		echo "kbuild: $what of $sub for $kver failed (log: $log)" >&2
		exit 1
	fi
	# pahole's note that it cannot add BTF out of tree is not about our
	# code.
	if grep -v 'Skipping BTF generation' "$log" |
	   grep -i -E 'warning|error:|^[^ ]+:[0-9]+:[0-9]+: ' >&2; then
		echo "kbuild: $what of $sub for $kver reported the lines above (log: $log)" >&2
		exit 1
	fi
}

kbuild_dir kmod "$dir/$what.log"
# After kmod: modpost resolves iopfmap's exports from its Module.symvers.
kbuild_dir kmod/testdev "$dir/$what-testdev.log" \
	KBUILD_EXTRA_SYMBOLS="$dir/kmod/Module.symvers"
