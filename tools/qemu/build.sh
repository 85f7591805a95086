#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the QEMU that emulates iopfmap-pri, the PCIe device with ATS,
# PASID and PRI of the end-to-end tests (tools/qemu/README.md), and prints
# the path of its qemu-system-x86_64.
#
# The source is Debian's qemu source package, unpacked with Debian's
# patches, in the trixie root. The version is the one named below, not
# trixie-backports' 11.1 that runs every other guest: the archive does not
# serve 11.1's source (404, see README.md). 10.2 emulates VT-d's page
# request queue and ATS but offers no way to turn page requests on;
# intel-iommu-svm.patch adds that switch (x-svm). Only x86_64-softmmu is
# built, with the few devices the tests use.
#
# Cached under IOPFMAP_CACHE/qemu; a change of the version, the patch or
# this script unpacks and configures afresh, a change of the device only
# recompiles it.
#
# Usage: build.sh [--check]  (--check: exit 1 if the build is not current)

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/../lib.sh"

version=1:10.2.2+ds-1	# sid's; the newest QEMU source the archive serves
suite=sid
here=$top/tools/qemu
qcache=$cache/qemu
upstream=${version#*:}
upstream=${upstream%-*}
upstream=${upstream%+ds}
src=$qcache/qemu-$upstream
bld=$qcache/build
bin=$bld/qemu-system-x86_64
# What the unpacked, configured tree depends on, and what the binary adds.
tree_key=$(cat "$here/intel-iommu-svm.patch" "$0" | sha256sum | cut -c1-16)
tree_key=$version-$tree_key
bin_key=$tree_key-$(sha256sum < "$here/iopfmap-pri.c" | cut -c1-16)

if [ "${1:-}" = --check ]; then
	[ -x "$bin" ] && [ "$(cat "$qcache/.bin-key" 2>/dev/null)" = "$bin_key" ]
	exit
fi
if [ -x "$bin" ] && [ "$(cat "$qcache/.bin-key" 2>/dev/null)" = "$bin_key" ]; then
	echo "$bin"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root to build QEMU in the trixie root"
log() { echo "qemu-build: $*" >&2; }
mkdir -p "$qcache"

build_deps=(ninja-build meson python3-venv libglib2.0-dev libpixman-1-dev
	    zlib1g-dev pkg-config dpkg-dev)
missing=()
for p in "${build_deps[@]}"; do
	dpkg-query --admindir="$troot/var/lib/dpkg" -W -f='${Status}\n' "$p" \
		2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} in the trixie root"
	"$top/tools/troot.sh" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if [ "$(cat "$qcache/.tree-key" 2>/dev/null)" != "$tree_key" ]; then
	# Source only: this suite's binaries never enter the root.
	list=$troot/etc/apt/sources.list.d/iopfmap-qemu-src.sources
	if [ ! -f "$list" ]; then
		cat > "$list" <<-END
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: $suite
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		Check-Valid-Until: no
		END
	fi
	# The mirror's sid Release may be past its Valid-Until: the signature
	# is still checked.
	"$top/tools/troot.sh" apt-get update -q >&2 || {
		rm -f "$list"
		die "apt-get update failed with $suite's sources"
	}
	log "fetching qemu $version source ($suite)"
	rm -rf "$qcache/dl" "$src" "$bld"
	mkdir -p "$qcache/dl"
	# apt checks the files against the signed Sources index.
	(cd "$qcache/dl" && "$top/tools/troot.sh" apt-get source -q \
		--download-only "qemu=$version") >&2
	(cd "$qcache" && "$top/tools/troot.sh" dpkg-source -x \
		"$qcache"/dl/qemu_*.dsc "$src") >&2
	rm -rf "$qcache/dl"
	patch -d "$src" -p1 -s < "$here/intel-iommu-svm.patch"
	# The device: a Kconfig symbol and a meson rule beside edu's.
	cat >> "$src/hw/misc/Kconfig" <<-END

	config IOPFMAP_PRI
	    bool
	    depends on PCI_EXPRESS
	END
	echo "system_ss.add(when: 'CONFIG_IOPFMAP_PRI', if_true: files('iopfmap-pri.c'))" \
		>> "$src/hw/misc/meson.build"
	cat > "$src/configs/devices/x86_64-softmmu/iopfmap.mak" <<-END
	# iopfmap's end-to-end guests: q35, VT-d, edu and iopfmap-pri.
	CONFIG_Q35=y
	CONFIG_VTD=y
	CONFIG_EDU=y
	CONFIG_IOPFMAP_PRI=y
	# The ACPI builder links against the CXL host code, which needs these.
	CONFIG_PCIE_PORT=y
	CONFIG_PXB=y
	CONFIG_CXL=y
	CONFIG_CXL_MEM_DEVICE=y
	END
	cp "$here/iopfmap-pri.c" "$src/hw/misc/iopfmap-pri.c"
	mkdir -p "$bld"
	log "configuring"
	(cd "$bld" && "$top/tools/troot.sh" "$src/configure" \
		--target-list=x86_64-softmmu --without-default-features \
		--without-default-devices --with-devices-x86_64=iopfmap \
		--disable-docs --disable-download --disable-werror \
		--disable-install-blobs \
		--enable-tcg) >&2
	echo "$tree_key" > "$qcache/.tree-key"
fi

cp "$here/iopfmap-pri.c" "$src/hw/misc/iopfmap-pri.c"
log "building (ninja, $(nproc) jobs)"
start=$(date +%s)
"$top/tools/troot.sh" ninja -C "$bld" qemu-system-x86_64 >&2
log "built in $(( $(date +%s) - start )) s"
echo "$bin_key" > "$qcache/.bin-key"
echo "$bin"
