/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctls of iopfmap_edu.ko, the selftests' driver for QEMU's edu
 * device. A test tool, never installed: it makes edu behave like a device
 * with ATS and PRI in front of iopfmap (see kmod/testdev/iopfmap_edu.c).
 *
 * edu has a 4 KiB internal buffer that only its DMA engine reaches. A DMA
 * moves @length bytes between that buffer, at @offset, and @iova: to move
 * data from one IOVA to another, DMA it into the buffer, then out again.
 */
#ifndef IOPFMAP_EDU_H
#define IOPFMAP_EDU_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IOPFMAP_EDU_NAME_MAX	32
/*
 * QEMU 7.2's edu aborts on a transfer that reaches the end of its 4 KiB
 * buffer (the bounds check is off by one), and masks DMA addresses to 28
 * bits.
 */
#define IOPFMAP_EDU_DMA_MAX	4095
#define IOPFMAP_EDU_IOVA_LIMIT	(1ULL << 28)

/* iopfmap_edu_dma.flags */
#define IOPFMAP_EDU_TO_RAM	(1U << 0)	/* buffer to @iova */
#define IOPFMAP_EDU_RAW		(1U << 1)	/* no ATS check, no PRQ */

/* iopfmap_edu_dma.out_status */
#define IOPFMAP_EDU_DONE	0	/* the DMA ran (raw: it was fired) */
#define IOPFMAP_EDU_INVALID	1	/* a page request got INVALID: no DMA */
#define IOPFMAP_EDU_NO_PROGRESS	2	/* SUCCESS, still no translation */
#define IOPFMAP_EDU_DETACHED	3	/* not attached to iopfmap: no DMA */

/**
 * struct iopfmap_edu_dma - ioctl(IOPFMAP_EDU_DMA)
 * @name: PCI address of the edu device, NUL-terminated
 * @flags: IOPFMAP_EDU_*
 * @length: bytes, 1 to IOPFMAP_EDU_DMA_MAX
 * @iova: device address; @iova + @length <= IOPFMAP_EDU_IOVA_LIMIT
 * @offset: where in the buffer; @offset + @length <= IOPFMAP_EDU_DMA_MAX
 * @out_status: IOPFMAP_EDU_DONE, _INVALID, _NO_PROGRESS or _DETACHED
 * @out_faults: software page requests raised for this DMA
 *
 * Without IOPFMAP_EDU_RAW the driver first asks the device's IOMMU domain
 * for each page's translation (iommu_iova_to_phys(), as an ATS request
 * would); for each miss it raises a page request through iopfmap and waits
 * for the answer, then asks again (up to 4 times per page). Only when every
 * page translates does it start edu's DMA engine, whose accesses go through
 * the emulated IOMMU. With IOPFMAP_EDU_RAW it starts the engine at once.
 * The call returns when the engine reports completion. A DMA the IOMMU
 * blocks still "completes": the IOMMU logs a DMAR fault and the target is
 * untouched, which is what a test checks.
 */
struct iopfmap_edu_dma {
	char name[IOPFMAP_EDU_NAME_MAX];
	__u32 flags;
	__u32 length;
	__aligned_u64 iova;
	__u32 offset;
	__u32 out_status;
	__u32 out_faults;
	__u32 __reserved;
};

/**
 * struct iopfmap_edu_fault - ioctl(IOPFMAP_EDU_FAULT)
 * @name: PCI address of the edu device
 * @flags: IOPFMAP_EDU_TO_RAM: ask for write access, else read
 * @__reserved: must be 0
 * @iova: first page (page aligned)
 * @length: bytes (page aligned)
 * @out_status: as for iopfmap_edu_dma: IOPFMAP_EDU_DONE if every page got
 *              SUCCESS, else the first failure
 * @out_faults: page requests raised
 *
 * Raises one software page request per page of the span, each waiting for
 * its answer, without checking translations and without DMA: a stream of
 * faults for tests that race them against DETACH and close().
 */
struct iopfmap_edu_fault {
	char name[IOPFMAP_EDU_NAME_MAX];
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__u32 out_status;
	__u32 out_faults;
};

/* iopfmap_edu_report.flags */
#define IOPFMAP_EDU_REPORT_WRITE	(1U << 0)
#define IOPFMAP_EDU_REPORT_PASID	(1U << 1)

/**
 * struct iopfmap_edu_report - ioctl(IOPFMAP_EDU_REPORT)
 * @name: PCI address of the edu device
 * @flags: IOPFMAP_EDU_REPORT_*
 * @pasid: with IOPFMAP_EDU_REPORT_PASID, the PASID of the requests
 * @iova: first page of the group
 * @grpid: page request group index (0-511)
 * @npages: requests in the group, one per page from @iova (1-32); the
 *          last carries the "last page in group" flag
 * @out_report_ret: what the last iommu_report_device_fault() returned
 * @out_pending: page requests of this group the IOMMU core still holds
 *               unanswered after waiting up to 5 s for the response (0:
 *               answered)
 *
 * Synthesizes a page request group through the kernel's own fault path,
 * iommu_report_device_fault(), as the IOMMU driver would for a PRI
 * message, and waits for the response to reach the IOMMU core. From 6.9
 * on the device first joins an iopf queue of the driver's own (no IOMMU
 * driver adds a device without PRI to its queue), and the core delivers
 * the group to the iopf_handler of the domain attached with a handle. An
 * IOMMU driver that cannot send page responses (no page_response op:
 * AMD-Vi on 6.1, virtio-iommu) fails it with ENXIO.
 */
struct iopfmap_edu_report {
	char name[IOPFMAP_EDU_NAME_MAX];
	__u32 flags;
	__u32 pasid;
	__aligned_u64 iova;
	__u32 grpid;
	__u32 npages;
	__s32 out_report_ret;
	__u32 out_pending;
};

#define IOPFMAP_EDU_TYPE	0xE7
#define IOPFMAP_EDU_DMA \
	_IOWR(IOPFMAP_EDU_TYPE, 0xC0, struct iopfmap_edu_dma)
#define IOPFMAP_EDU_FAULT \
	_IOWR(IOPFMAP_EDU_TYPE, 0xC1, struct iopfmap_edu_fault)
#define IOPFMAP_EDU_REPORT \
	_IOWR(IOPFMAP_EDU_TYPE, 0xC2, struct iopfmap_edu_report)

#endif /* IOPFMAP_EDU_H */
