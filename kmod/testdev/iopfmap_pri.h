/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctls of iopfmap_pri.ko, the selftests' driver for iopfmap-pri, the
 * emulated PCIe device with ATS, PASID and PRI that tools/qemu builds into
 * QEMU. A test tool, never installed.
 *
 * The device has a 64 KiB buffer. A DMA moves @length bytes between the
 * buffer, at @offset, and device address @iova. Unless it is RAW, the
 * device first asks the IOMMU for each page's translation (ATS), sends a
 * page request group through the IOMMU for the pages that do not
 * translate, waits for the page response and tries again, up to 4 rounds.
 * RAW DMAs go untranslated through the IOMMU, tagged with the requester
 * ID only, with neither ATS nor page requests: the IOMMU blocks what is
 * not mapped.
 */
#ifndef IOPFMAP_PRI_H
#define IOPFMAP_PRI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IOPFMAP_PRI_NAME_MAX	32
#define IOPFMAP_PRI_BUF_SIZE	(64 * 1024)

/* iopfmap_pri_dma.flags */
#define IOPFMAP_PRI_TO_RAM	(1U << 0)	/* buffer to @iova */
#define IOPFMAP_PRI_RAW		(1U << 1)	/* no ATS, no page requests */
#define IOPFMAP_PRI_PASID	(1U << 2)	/* tag with @pasid */

/* iopfmap_pri_dma.out_status */
#define IOPFMAP_PRI_DONE	0	/* the data moved */
#define IOPFMAP_PRI_INVALID	1	/* a response said Invalid Request */
#define IOPFMAP_PRI_FAILURE	2	/* Response Failure: PRI stopped */
#define IOPFMAP_PRI_NO_PROGRESS	3	/* SUCCESS, and still no translation */
#define IOPFMAP_PRI_REFUSED	4	/* ATS/PRI/PASID off, or refused */
#define IOPFMAP_PRI_ABORTED	5
#define IOPFMAP_PRI_TIMEOUT	6	/* no response within 10 s */
#define IOPFMAP_PRI_DMA_FAULT	7	/* the IOMMU blocked the access */
#define IOPFMAP_PRI_BAD_ARGS	8

/**
 * struct iopfmap_pri_dma - ioctl(IOPFMAP_PRI_DMA)
 * @name: PCI address of the device, NUL-terminated
 * @flags: IOPFMAP_PRI_*
 * @pasid: with IOPFMAP_PRI_PASID, the PASID (0 to 2^20 - 1)
 * @iova: device address
 * @length: bytes, 1 to IOPFMAP_PRI_BUF_SIZE
 * @offset: where in the buffer; @offset + @length <= IOPFMAP_PRI_BUF_SIZE
 * @data: user address of @length bytes, or 0: with IOPFMAP_PRI_TO_RAM
 *        copied into the buffer before the DMA, else filled from it after
 * @out_status: IOPFMAP_PRI_DONE or the error the device reported
 * @out_page_requests: page requests the device sent for this DMA
 * @out_groups: page request groups sent (one per round that missed)
 * @out_responses: page responses that answered one of those groups
 * @out_stray: responses to no outstanding group (never answered twice)
 * @out_rounds: rounds that missed a translation
 * @out_last_code: the last response's code (0 SUCCESS, 1 INVALID, ...)
 * @out_ns: from start to completion, as the driver saw it
 */
struct iopfmap_pri_dma {
	char name[IOPFMAP_PRI_NAME_MAX];
	__u32 flags;
	__u32 pasid;
	__aligned_u64 iova;
	__u32 length;
	__u32 offset;
	__aligned_u64 data;
	__u32 out_status;
	__u32 out_page_requests;
	__u32 out_groups;
	__u32 out_responses;
	__u32 out_stray;
	__u32 out_rounds;
	__u32 out_last_code;
	__u32 __reserved;
	__aligned_u64 out_ns;
};

/* iopfmap_pri_info.out_caps: what the kernel turned on in config space */
#define IOPFMAP_PRI_CAP_ATS	(1U << 0)
#define IOPFMAP_PRI_CAP_PASID	(1U << 1)
#define IOPFMAP_PRI_CAP_PRI	(1U << 2)
#define IOPFMAP_PRI_CAP_PRI_RF	(1U << 3)	/* PRI: Response Failure */

/**
 * struct iopfmap_pri_info - ioctl(IOPFMAP_PRI_INFO)
 * @name: PCI address of the device
 * @out_caps: IOPFMAP_PRI_CAP_*
 * @out_page_requests: since the device was created, as the DMA's fields
 * @out_groups: as above
 * @out_responses: as above
 * @out_stray: as above
 * @out_dma_faults: accesses the IOMMU blocked
 */
struct iopfmap_pri_info {
	char name[IOPFMAP_PRI_NAME_MAX];
	__u32 out_caps;
	__u32 __reserved;
	__aligned_u64 out_page_requests;
	__aligned_u64 out_groups;
	__aligned_u64 out_responses;
	__aligned_u64 out_stray;
	__aligned_u64 out_dma_faults;
};

/**
 * struct iopfmap_pri_sva - ioctl(IOPFMAP_PRI_SVA_BIND, IOPFMAP_PRI_SVA_UNBIND)
 * @name: PCI address of the device
 * @flags: must be 0
 * @out_pasid: BIND: the PASID of the calling process's address space
 *
 * The kernel's own SVA, the peer of iopfmap's PASID attachments: BIND
 * binds the device to the caller's mm with iommu_sva_bind_device(), so
 * that the IOMMU walks the CPU page tables at @out_pasid and the IOMMU
 * core resolves the device's page requests itself (handle_mm_fault()).
 * DMAs tagged with @out_pasid then use the caller's virtual addresses.
 * The binding lasts until UNBIND or the file's release. EOPNOTSUPP on a
 * kernel without the two-argument bind (6.1), EEXIST if this file bound
 * the device already, ENOENT (UNBIND) if it did not; otherwise the bind's
 * own errno (ENODEV: the IOMMU has no SVA for this device).
 */
struct iopfmap_pri_sva {
	char name[IOPFMAP_PRI_NAME_MAX];
	__u32 flags;
	__u32 out_pasid;
};

#define IOPFMAP_PRI_TYPE	0xE8
#define IOPFMAP_PRI_DMA \
	_IOWR(IOPFMAP_PRI_TYPE, 0xC0, struct iopfmap_pri_dma)
#define IOPFMAP_PRI_INFO \
	_IOWR(IOPFMAP_PRI_TYPE, 0xC1, struct iopfmap_pri_info)
#define IOPFMAP_PRI_SVA_BIND \
	_IOWR(IOPFMAP_PRI_TYPE, 0xC2, struct iopfmap_pri_sva)
#define IOPFMAP_PRI_SVA_UNBIND \
	_IOWR(IOPFMAP_PRI_TYPE, 0xC3, struct iopfmap_pri_sva)

#endif /* IOPFMAP_PRI_H */
