#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds, once, a debug kernel from Debian's linux-source package of a
# series (6.12 from bookworm-backports on the host, 7.x from
# trixie-backports in the trixie root) for make check-debug: KASAN
# (generic, inline), lockdep, kmemleak, DEBUG_VM, KFENCE, DEBUG_LIST,
# DEBUG_ATOMIC_SLEEP and the fault injection framework (failslab,
# fail_page_alloc, fail_function, fail_usercopy, with debugfs), plus what
# the selftests need. The result is cached outside the repository, keyed
# by the kernel version and a hash of the configuration fragment below,
# and laid out as a kernel "root" that tools/lib.sh finds:
#
#   IOPFMAP_CACHE/debug/KVER/boot/vmlinuz-KVER, System.map-KVER, config-KVER
#   IOPFMAP_CACHE/debug/KVER/usr/lib/modules/KVER/   (modules_install)
#   IOPFMAP_CACHE/debug/KVER/usr/src/linux-headers-KVER -> the build tree
#
# KVER is SERIES.SUBLEVEL-iopfmap-debug-HASH. Prints KVER on stdout; the
# build log goes to IOPFMAP_CACHE/debug/build-SERIES.log.
#
# Usage: debug-kernel.sh SERIES   (6.12 or 7.x)

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

series=${1:?usage: debug-kernel.sh SERIES}

# What the checkers and the selftests need, on x86_64_defconfig plus
# kvm_guest.config. HMM_MIRROR has no prompt: TEST_HMM selects it.
# DEBUG_INFO stays off (build time, size); lockdep's and KASAN's reports
# are symbolized with kallsyms.
fragment='
CONFIG_LOCALVERSION_AUTO=n
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MODULE_FORCE_UNLOAD=y
CONFIG_PCI=y
CONFIG_PCI_MSI=y
CONFIG_PCI_ATS=y
CONFIG_PCI_PRI=y
CONFIG_PCI_PASID=y
CONFIG_IOMMU_SUPPORT=y
CONFIG_IOMMU_DEFAULT_DMA_STRICT=y
CONFIG_IOMMU_SVA=y
CONFIG_INTEL_IOMMU=y
CONFIG_INTEL_IOMMU_SVM=y
CONFIG_AMD_IOMMU=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_IOMMU=y
CONFIG_IRQ_REMAP=y
CONFIG_X86_X2APIC=y
CONFIG_VFIO=m
CONFIG_VFIO_GROUP=y
CONFIG_VFIO_CONTAINER=y
CONFIG_VFIO_IOMMU_TYPE1=m
CONFIG_VFIO_PCI=m
CONFIG_MEMORY_HOTPLUG=y
CONFIG_MEMORY_HOTREMOVE=y
CONFIG_ZONE_DEVICE=y
CONFIG_DEVICE_PRIVATE=y
CONFIG_TEST_HMM=m
CONFIG_TRANSPARENT_HUGEPAGE=y
CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS=y
CONFIG_HUGETLBFS=y
CONFIG_KSM=y
CONFIG_NUMA=y
CONFIG_NUMA_BALANCING=y
CONFIG_MIGRATION=y
CONFIG_USERFAULTFD=y
CONFIG_IO_URING=y
CONFIG_MEMCG=y
CONFIG_CGROUPS=y
CONFIG_CGROUP_SCHED=y
CONFIG_FAIR_GROUP_SCHED=y
CONFIG_CFS_BANDWIDTH=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=y
CONFIG_DYNAMIC_FTRACE=y
CONFIG_FUNCTION_ERROR_INJECTION=y
CONFIG_DEBUG_FS=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_KALLSYMS=y
CONFIG_KALLSYMS_ALL=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=n
CONFIG_DEBUG_VM=y
CONFIG_KFENCE=y
CONFIG_DEBUG_LIST=y
CONFIG_DEBUG_OBJECTS=y
CONFIG_DEBUG_OBJECTS_RCU_HEAD=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_SOFTLOCKUP_DETECTOR=y
CONFIG_FAULT_INJECTION=y
CONFIG_FAULT_INJECTION_DEBUG_FS=y
CONFIG_FAILSLAB=y
CONFIG_FAIL_PAGE_ALLOC=y
CONFIG_FAIL_FUNCTION=y
CONFIG_FAULT_INJECTION_USERCOPY=y
CONFIG_DRM=n
CONFIG_SOUND=n
CONFIG_USB_SUPPORT=n
CONFIG_WLAN=n
CONFIG_WIRELESS=n
CONFIG_NET_VENDOR_INTEL=n
'
hash=$(printf '%s' "$fragment" | sha256sum | cut -c1-8)

# What a kernel build needs beyond make deps, installed where missing:
# on the host, or in the trixie root with the source of the matrix's 7.x.
install_missing() { # install_missing ROOT PACKAGE...
	local root=$1 p want=()
	shift
	for p in "$@"; do
		dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}\n' \
			"$p" 2>/dev/null | grep -q '^install ok installed$' ||
			want+=("$p")
	done
	[ ${#want[@]} -gt 0 ] || return 0
	echo "debug-kernel: installing ${want[*]}" >&2
	if [ -n "$root" ]; then
		"$top/tools/troot.sh" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends \
			"${want[@]}" >&2
	else
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${want[@]}" >&2
	fi
}

# A kernel build's tools: kconfig's parser (flex, bison), bc for the
# generated headers, depmod (kmod) for modules_install, objtool's libelf,
# the signing tools' libssl.
kbuild_deps=(bc bison flex kmod libelf-dev libssl-dev)

case $series in
6.12)
	kroot=''
	install_missing "" "${kbuild_deps[@]}" linux-source-6.12
	tarball=/usr/src/linux-source-6.12.tar.xz
	;;
7.x|7.*)
	kroot=$troot
	k7=$(kver_of 7.x) || die "no 7.x kernel in the trixie root (make deps)"
	k7=${k7%%.*}.$(echo "$k7" | cut -d. -f2)
	install_missing "$troot" "${kbuild_deps[@]}" "linux-source-$k7"
	tarball=/usr/src/linux-source-$k7.tar.xz
	;;
*) die "no debug kernel for series $series (6.12 or 7.x)" ;;
esac
[ -f "$kroot$tarball" ] || die "$kroot$tarball is missing after its install"

dir=$cache/debug
mkdir -p "$dir"
log=$dir/build-$series.log
src=$dir/src-$series

# The source tree: unpacked once per tarball.
if [ ! -f "$src/.unpacked" ] || [ "$kroot$tarball" -nt "$src/.unpacked" ]; then
	echo "debug-kernel: unpacking $tarball" >&2
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$kroot$tarball" -C "$src" --strip-components=1
	touch "$src/.unpacked"
fi
version=$(make -s -C "$src" kernelversion)
kver=$version-iopfmap-debug-$hash
out=$dir/$kver
if [ -f "$out/.built" ]; then
	echo "$kver"
	exit 0
fi

echo "debug-kernel: building $kver (log: $log); 15 to 30 minutes on 2 cores" >&2
# A build that was cut short goes on where it stopped (make is
# incremental); only what the install puts down is made again.
rm -rf "${out:?}/boot" "${out:?}/usr/lib" "${out:?}/lib"
obj=$out/usr/src/linux-headers-$kver
mkdir -p "$obj" "$out/boot"
printf '%s\n' "$fragment" > "$obj/iopfmap-debug.config"
build() { # build MAKE-ARGS...: in the kernel's root, out of the source tree
	local where=$src
	if [ -n "$kroot" ]; then
		# The trixie root sees the cache at the same path.
		"$top/tools/troot.sh" make -C "$where" O="$obj" "$@"
	else
		make -C "$where" O="$obj" "$@"
	fi
}
{
	build x86_64_defconfig kvm_guest.config
	"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
		"$obj/iopfmap-debug.config"
	build olddefconfig LOCALVERSION="-iopfmap-debug-$hash"
	build -j"$(nproc)" LOCALVERSION="-iopfmap-debug-$hash" bzImage modules
	build LOCALVERSION="-iopfmap-debug-$hash" \
		INSTALL_MOD_PATH="$out/usr" INSTALL_MOD_STRIP=1 \
		DEPMOD=/bin/true modules_install
} > "$log" 2>&1 || die "the build failed (log: $log)"

# Every option of the fragment must have survived olddefconfig.
missing=$(printf '%s\n' "$fragment" | grep '^CONFIG_' | while IFS= read -r opt; do
	case $opt in
	*=n) grep -q "^# ${opt%=n} is not set" "$obj/.config" ||
		! grep -q "^${opt%=n}=" "$obj/.config" || echo "$opt" ;;
	*) grep -qx "$opt" "$obj/.config" || echo "$opt" ;;
	esac
done)
[ -z "$missing" ] || die "options the configuration did not keep: $missing"

cp "$obj/arch/x86/boot/bzImage" "$out/boot/vmlinuz-$kver"
cp "$obj/System.map" "$out/boot/System.map-$kver"
cp "$obj/.config" "$out/boot/config-$kver"
rm -f "$out/usr/lib/modules/$kver/build" "$out/usr/lib/modules/$kver/source"
depmod -b "$out/usr" "$kver"
# As in a merged-/usr root: modinfo -b finds the modules there.
ln -sfn usr/lib "$out/lib"
[ -n "$kroot" ] && touch "$out/.troot"
touch "$out/.built"
echo "$kver"
