#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs, from Debian's archive, everything iopfmap needs to build and to
# test in QEMU.
#
# On the host (bookworm): the toolchain bits, busybox, liburing, libnl,
# json-c, sparse, Python with PyYAML and jsonschema (the netlink spec
# generator), gnuplot (make bench's plots), debootstrap (bookworm-backports),
# Debian's 6.1 kernel (bookworm) and 6.12 kernel (bookworm-backports) with
# their headers, and both kernels' source packages (for the kselftest
# harness, checkpatch.pl and extract-vmlinux).
#
# In the trixie root (IOPFMAP_CACHE/trixie, made with debootstrap; see
# tools/troot.sh): gcc 14 and kbuild's tools, sparse, QEMU 11 from
# trixie-backports (it runs every guest), the newest 7.x kernel of
# trixie-backports (image, modules, headers) and trixie's newest 6.12
# headers (built with gcc 14, built but not booted). Debian's 7.x headers
# and their kbuild binaries need trixie's glibc and gcc 14.
#
# Idempotent: when everything is present it only says so. Must run as root
# when something is missing. A 7.x newer than the one installed is picked
# up by running this again (make deps), not by --check.
#
# Usage: deps.sh [--check]  (--check: exit 1 if something is missing,
#                            install nothing)

set -euo pipefail
trap 'echo "deps: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

check_only=0
[ "${1:-}" = --check ] && check_only=1

packages=(
	build-essential bc bison flex cpio gzip xz-utils zstd kmod file
	busybox-static sparse pkg-config gnuplot-nox util-linux
	liburing-dev libnl-3-dev libnl-genl-3-dev libjson-c-dev
	python3 python3-yaml python3-jsonschema
	linux-image-amd64 linux-headers-amd64
	linux-source-6.1 linux-source-6.12
)
# In the trixie root, beside a 7.x kernel and trixie's 6.12 headers.
root_packages=(
	build-essential gcc-14 make kmod bc bison flex cpio xz-utils zstd
	pahole sparse file
)
root_qemu=qemu-system-x86	# from trixie-backports

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null |
		grep -q '^install ok installed$'
}

root_installed() {
	dpkg-query --admindir="$troot/var/lib/dpkg" -W -f='${Status}\n' "$1" \
		2>/dev/null | grep -q '^install ok installed$'
}

have_612() {
	kver_of 6.12 > /dev/null && [ -e "/boot/vmlinuz-$(kver_of 6.12)" ]
}

have_root_kernels() {
	local kv

	kv=$(kver_of 7.x) && kimage_of "$kv" > /dev/null &&
		root_installed "linux-modules-$kv" &&
		kver_of 6.12+deb13 > /dev/null
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
have_612 || missing+=("kernel 6.12")
installed debootstrap || missing+=(debootstrap)
if [ -x "$troot/bin/sh" ]; then
	for p in "${root_packages[@]}" "$root_qemu"; do
		root_installed "$p" || missing+=("trixie root: $p")
	done
	have_root_kernels || missing+=("trixie root: kernels 7.x and 6.12")
else
	missing+=("the trixie root ($troot)")
fi

if [ ${#missing[@]} -eq 0 ] && [ "$check_only" = 1 ]; then
	echo "deps: everything is installed"
	exit 0
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: missing: ${missing[*]}"
	[ "$check_only" = 1 ] && exit 1
fi
[ "$(id -u)" -eq 0 ] || die "run as root to install them (make deps)"

# The Debian mirror apt already uses for bookworm, rather than one named
# here: bookworm-backports and the trixie root come from it too.
mirror=$(grep -rhs -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list |
	 grep -v -E 'security|updates' |
	 grep -o -E 'https?://[^ ]+/debian/?' | head -n 1 || true)
[ -n "$mirror" ] || die "no Debian mirror found in apt's sources"

export DEBIAN_FRONTEND=noninteractive
# Kernels are booted only by QEMU here: skip building initrds for them.
export INITRD=No

host_install() {
	local img kver install=()

	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list \
			/etc/apt/sources.list.d/; then
		cat > /etc/apt/sources.list.d/iopfmap-bookworm-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		echo "deps: added bookworm-backports ($mirror)"
	fi
	apt-get update -q ||
		echo "deps: apt-get update reported errors; trying anyway"
	for p in "${packages[@]}"; do
		installed "$p" || install+=("$p")
	done
	if ! have_612; then
		img=$(apt-cache search --names-only \
			'^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
		      awk '{ print $1 }' | sort -V | tail -n 1)
		[ -n "$img" ] ||
			die "no 6.12 kernel image found in bookworm-backports"
		kver=${img#linux-image-}
		kver=${kver%-unsigned}
		install+=("$img" "linux-headers-$kver")
	fi
	[ ${#install[@]} -eq 0 ] ||
		apt-get install -y -q --no-install-recommends "${install[@]}"
	installed debootstrap ||
		apt-get install -y -q --no-install-recommends \
			-t bookworm-backports debootstrap
	have_612 || die "the 6.12 kernel did not install"
}

# The newest package of trixie's archive whose name matches ERE $1.
root_newest() {
	"$top/tools/troot.sh" apt-cache search --names-only "$1" |
		awk '{ print $1 }' | sort -V | tail -n 1
}

root_install() {
	local tmp k7 k612

	if [ ! -x "$troot/bin/sh" ]; then
		tmp=$troot.new
		rm -rf "$tmp"
		mkdir -p "$cache"
		echo "deps: debootstrap trixie into $troot ($mirror)"
		debootstrap --variant=minbase trixie "$tmp" "$mirror" \
			> "$cache/debootstrap.log" 2>&1 ||
			die "debootstrap failed (log: $cache/debootstrap.log)"
		rm -f "$tmp/etc/apt/sources.list"
		cat > "$tmp/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb deb-src
URIs: $mirror
Suites: trixie trixie-updates trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		# No daemon may start in the root.
		printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
		chmod +x "$tmp/usr/sbin/policy-rc.d"
		mv "$tmp" "$troot"
	fi
	"$top/tools/troot.sh" env DEBIAN_FRONTEND=noninteractive \
		apt-get update -q ||
		echo "deps: apt-get update in the trixie root reported errors"
	k7=$(root_newest '^linux-binary-unsigned-7\.[0-9.]+\+deb13-amd64$')
	[ -n "$k7" ] || die "no 7.x kernel found in trixie-backports"
	k7=${k7#linux-binary-unsigned-}
	k612=$(root_newest '^linux-headers-6\.12\.[0-9]+\+deb13-amd64$')
	[ -n "$k612" ] || die "no 6.12 headers found in trixie"
	echo "deps: trixie root: kernel $k7, headers $k612"
	"$top/tools/troot.sh" env DEBIAN_FRONTEND=noninteractive INITRD=No \
		apt-get install -y -q --no-install-recommends \
		"${root_packages[@]}" "linux-binary-unsigned-$k7" \
		"linux-modules-$k7" "linux-headers-$k7" "$k612"
	"$top/tools/troot.sh" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends \
		-t trixie-backports "$root_qemu"
	have_root_kernels || die "the trixie root's kernels did not install"
}

host_install
root_install
echo "deps: done"
