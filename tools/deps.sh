#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs, from Debian's archive, everything iopfmap needs to build and to
# test in QEMU: the toolchain bits, QEMU, busybox, liburing, libnl, json-c,
# sparse, Python with PyYAML and jsonschema (the netlink spec generator),
# gnuplot (make bench's plots), Debian's 6.1 kernel (bookworm) and 6.12
# kernel (bookworm-backports) with their headers, and both kernels' source
# packages (for the kselftest harness, checkpatch.pl and extract-vmlinux).
#
# Idempotent: when everything is present it only says so. Must run as root
# when something is missing. Usage: deps.sh [--check]  (--check: exit 1 if
# something is missing, install nothing)

set -euo pipefail
trap 'echo "deps: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

packages=(
	build-essential bc bison flex cpio gzip xz-utils zstd kmod file
	qemu-system-x86 busybox-static sparse pkg-config gnuplot-nox
	liburing-dev libnl-3-dev libnl-genl-3-dev libjson-c-dev
	python3 python3-yaml python3-jsonschema
	linux-image-amd64 linux-headers-amd64
	linux-source-6.1 linux-source-6.12
)

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null |
		grep -q '^install ok installed$'
}

have_612() {
	kver_of 6.12 > /dev/null && [ -e "/boot/vmlinuz-$(kver_of 6.12)" ]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
have_612 || missing+=("kernel 6.12")

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: everything is installed"
	exit 0
fi
echo "deps: missing: ${missing[*]}"
[ "${1:-}" = --check ] && exit 1
[ "$(id -u)" -eq 0 ] || die "run as root to install them (make deps)"

# bookworm-backports carries 6.12 and its source. Reuse the mirror that
# apt already uses for bookworm rather than naming one here.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	mirror=$(grep -rhs -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		 grep -v -E 'security|updates' |
		 grep -o -E 'https?://[^ ]+/debian/?' | head -n 1 || true)
	[ -n "$mirror" ] || die "no Debian mirror found in apt's sources"
	cat > /etc/apt/sources.list.d/iopfmap-bookworm-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	echo "deps: added bookworm-backports ($mirror)"
fi

export DEBIAN_FRONTEND=noninteractive
# Kernels are booted only by QEMU here: skip building initrds for them.
export INITRD=No
apt-get update -q || echo "deps: apt-get update reported errors; trying anyway"

install=("${packages[@]}")
if ! have_612; then
	img=$(apt-cache search --names-only \
		'^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
	      awk '{ print $1 }' | sort -V | tail -n 1)
	[ -n "$img" ] || die "no 6.12 kernel image found in bookworm-backports"
	kver=${img#linux-image-}
	kver=${kver%-unsigned}
	install+=("$img" "linux-headers-$kver")
fi
apt-get install -y -q --no-install-recommends "${install[@]}"
have_612 || die "the 6.12 kernel did not install"
echo "deps: done"
