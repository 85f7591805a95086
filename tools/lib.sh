# SPDX-License-Identifier: GPL-2.0
# Shared by the host-side scripts in tools/: paths and the kernel matrix.
# shellcheck shell=bash

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$top/build}

# The kernels every feature is tested on: Debian's 6.1 and 6.12 LTS.
KERNELS=${KERNELS:-6.1 6.12}

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# kver_of SERIES|KVER: the newest installed Debian amd64 kernel of a series
# ("6.1" -> "6.1.0-56-amd64"), or a full release name that is installed.
kver_of() {
	local want=$1 dir

	if [ -d "/usr/src/linux-headers-$want" ]; then
		echo "$want"
		return 0
	fi
	dir=$(ls -d /usr/src/linux-headers-"$want".*-amd64 2>/dev/null |
	      sort -V | tail -n 1)
	[ -n "$dir" ] || return 1
	echo "${dir#/usr/src/linux-headers-}"
}

# kdir_of KVER: the kbuild directory of an installed kernel.
kdir_of() {
	echo "/usr/src/linux-headers-$1"
}

# ksrc_dir SERIES: where tools/ksrc.sh puts the files taken from Debian's
# linux-source package of that series.
ksrc_dir() {
	echo "$build/ksrc/$1"
}
