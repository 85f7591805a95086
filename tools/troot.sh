#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs a command in the trixie root (tools/deps.sh makes it, under
# IOPFMAP_CACHE): the userland that Debian's 7.x kernel headers, their
# kbuild binaries and QEMU 11 need. The command runs as root in a private
# mount namespace that sees /proc, /dev, /sys, /tmp, this repository (and
# BUILD, if it lies elsewhere), the debug kernels' and QEMU's caches at the same
# paths as the host, in the current directory. Nothing stays mounted
# afterwards.
#
# Usage: troot.sh CMD [ARG...]

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -gt 0 ] || die "usage: troot.sh CMD [ARG...]"
[ -x "$troot/bin/sh" ] || die "no trixie root at $troot (make deps)"

binds=("$top")
case $build/ in
"$top"/*) ;;
*) mkdir -p "$build"; binds+=("$build") ;;
esac
# The debug kernels' sources and build trees (tools/debug-kernel.sh), and
# the QEMU that runs the emulated PRI device (tools/qemu/build.sh).
[ -d "$cache/debug" ] && binds+=("$cache/debug")
[ -d "$cache/qemu" ] && binds+=("$cache/qemu")

# The mounts, then chroot; the mount namespace dies with the command.
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private /bin/sh -c '
	set -e
	root=$1 cwd=$2 nbinds=$3
	shift 3
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount --rbind /sys "$root/sys"
	mount --bind /tmp "$root/tmp"
	while [ "$nbinds" -gt 0 ]; do
		mkdir -p "$root$1"
		mount --bind "$1" "$root$1"
		shift
		nbinds=$((nbinds - 1))
	done
	cd "$root$cwd" 2>/dev/null || cd "$root"
	exec chroot "$root" /bin/sh -c "cd \"\$0\" 2>/dev/null; exec \"\$@\"" \
		"$cwd" "$@"
' troot "$troot" "$PWD" "${#binds[@]}" "${binds[@]}" "$@"
