#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The compat probes (kmod/compat-probe.sh) find, per kernel of the matrix,
# the API forms the module relies on: each kernel's compat_autoconf.h, as
# the module's build wrote it, holds exactly the expected IOPFMAP_HAVE_*
# set. A kernel whose headers changed makes this fail, so that someone
# reads them. And a header that has neither form of an API fails the
# build, naming the API. Runs on the host after the module builds;
# prints TAP.

cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tools/lib.sh
. tools/lib.sh
n=0
failed=0

ok() { # ok COND NAME [DETAIL...]
	local cond=$1 name=$2
	shift 2
	n=$((n + 1))
	if [ "$cond" = 0 ]; then
		echo "ok $n $name"
	else
		echo "not ok $n $name"
		printf '#   %s\n' "$@"
		failed=1
	fi
}

# The forms each kernel generation has (see kmod/compat.h).
expected() { # expected KVER
	case $1 in
	6.1.*|6.1.0-*)
		echo IOMMU_MAP_NOGFP IOMMU_DOMAIN_ALLOC_BUS \
		     DEVICE_FAULT_HANDLER IOMMU_DEV_FEAT_IOPF CAP_INTR_REMAP \
		     GUP_VMAS \
		     URING_CMD_PTR URING_CMD_DONE_RES2 URING_TW_CMD_FLAGS \
		     NS_TOKEN ;;
	6.12.*)
		echo IOMMU_MAP_GFP IOMMU_PAGING_DOMAIN_ALLOC \
		     IOMMU_DOMAIN_ALLOC_BUS IOMMU_DEV_FEAT_IOPF \
		     GROUP_ISOLATED_MSI GUP_NO_VMAS \
		     IOPF_HANDLER ATTACH_GROUP_HANDLE ATTACH_DEVICE_PASID \
		     IO_URING_CMD_H URING_SQE_CMD URING_CMD_DONE_RES2 \
		     URING_TW_CMD_FLAGS URING_CMD_CANCEL URING_F_TASK_DEAD \
		     NS_TOKEN GENL_SPLIT_OPS ;;
	7.*)
		echo IOMMU_MAP_GFP IOMMU_PAGING_DOMAIN_ALLOC \
		     GROUP_ISOLATED_MSI IOPF_HANDLER ATTACH_GROUP_HANDLE \
		     ATTACH_DEVICE_PASID GUP_NO_VMAS IO_URING_CMD_H \
		     URING_SQE_CMD_TYPED URING_CMD_DONE32 \
		     URING_TW_REQ URING_CMD_CANCEL NS_STRING GENL_SPLIT_OPS ;;
	*)
		return 1 ;;
	esac
}

for k in $KERNELS $BUILD_KERNELS; do
	kv=$(kver_of "$k") || { ok 1 "compat probes: kernel $k is installed"; continue; }
	file=$build/$kv/kmod/compat_autoconf.h
	if [ ! -f "$file" ]; then
		ok 1 "compat probes: $kv" "$file is missing: build the module first"
		continue
	fi
	want=$(expected "$kv" | tr ' ' '\n' | sed 's/^/IOPFMAP_HAVE_/' | sort)
	got=$(sed -n 's/^#define \(IOPFMAP_HAVE_[A-Z0-9_]*\) 1$/\1/p' "$file" | sort)
	[ "$want" = "$got" ]
	ok $? "compat probes: $kv finds the expected API forms" \
		"missing: $(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')" \
		"unexpected: $(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' ')"
done

# Headers with neither form of an API the module needs fail the probe.
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
mkdir -p "$fake/include/linux"
echo '/* nothing */' > "$fake/include/linux/iommu.h"
out=$(sh kmod/compat-probe.sh "$fake" 2>&1 > /dev/null)
rc=$?
[ "$rc" -ne 0 ] && [[ $out == *"no known form of iommu_map()"* ]]
ok $? "compat probes: headers without iommu_map() fail the build" \
	"exit $rc: $out"
printf '%s\n' 'int iommu_map(struct iommu_domain *domain, unsigned long iova,' \
	'phys_addr_t paddr, size_t size, int prot, gfp_t gfp);' \
	> "$fake/include/linux/iommu.h"
out=$(sh kmod/compat-probe.sh "$fake" 2>&1 > /dev/null)
rc=$?
[ "$rc" -ne 0 ] && [[ $out == *"no known form of a paging domain allocator"* ]]
ok $? "compat probes: a form found does not hide the next API missing" \
	"exit $rc: $out"

# A kernel with per-domain fault handlers but without the attach-handle
# exports in IOMMUFD_INTERNAL fails the build: never a silent loss of
# the fault route.
printf '%s\n' 'int iommu_map(struct iommu_domain *domain, unsigned long iova,' \
	'phys_addr_t paddr, size_t size, int prot, gfp_t gfp);' \
	'struct iommu_domain *iommu_paging_domain_alloc(struct device *dev)' \
	'bool iommu_group_has_isolated_msi(struct iommu_group *group);' \
	'	int (*iopf_handler)(struct iopf_group *group);' \
	'void iopf_group_response(struct iopf_group *group,' \
	'			 enum iommu_page_response_code status);' \
	'void iopf_group_dequeue(struct iopf_group *group);' \
	> "$fake/include/linux/iommu.h"
printf '0x00000000\t%s\tvmlinux\tEXPORT_SYMBOL_GPL\t%s\n' \
	iommu_attach_group_handle IOMMUFD_INTERNAL \
	iommu_detach_group_handle '' > "$fake/Module.symvers"
out=$(sh kmod/compat-probe.sh "$fake" 2>&1 > /dev/null)
rc=$?
[ "$rc" -ne 0 ] && [[ $out == *"no known form of iommu_attach_group_handle() in IOMMUFD_INTERNAL"* ]]
ok $? "compat probes: iopf_handler without the handle exports fails the build" \
	"exit $rc: $out"
printf '0x00000000\t%s\tvmlinux\tEXPORT_SYMBOL_GPL\tIOMMUFD_INTERNAL\n' \
	iommu_attach_group_handle iommu_detach_group_handle \
	> "$fake/Module.symvers"
out=$(sh kmod/compat-probe.sh "$fake" 2>&1 | grep -c 'define IOPFMAP_HAVE_ATTACH_GROUP_HANDLE 1')
ok $? "compat probes: the handle exports in Module.symvers are found" \
	"got: $out"

echo "1..$n"
exit $failed
