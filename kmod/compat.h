/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shims over kernel API differences between the kernels iopfmap supports
 * (Debian's 6.1 and 6.12 LTS). Each shim names the release that introduced
 * the API it covers. Whether an API exists is decided by compat-probe.sh,
 * which reads the target kernel's headers, not by LINUX_VERSION_CODE: a
 * distribution kernel may carry a backport.
 */
#ifndef IOPFMAP_COMPAT_H
#define IOPFMAP_COMPAT_H

#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/pci.h>

#include "compat_autoconf.h"

#ifdef IOPFMAP_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

/*
 * v6.3 added a gfp_t argument to iommu_map(); before it iommu_map() used
 * GFP_KERNEL and iommu_map_atomic() GFP_ATOMIC, the only way not to
 * reclaim.
 */
static inline int iopfmap_iommu_map(struct iommu_domain *domain,
				    unsigned long iova, phys_addr_t paddr,
				    size_t size, int prot, gfp_t gfp)
{
#ifdef IOPFMAP_HAVE_IOMMU_MAP_GFP
	return iommu_map(domain, iova, paddr, size, prot, gfp);
#else
	if (!gfpflags_allow_blocking(gfp))
		return iommu_map_atomic(domain, iova, paddr, size, prot);
	return iommu_map(domain, iova, paddr, size, prot);
#endif
}

/*
 * v6.11 added iommu_paging_domain_alloc(dev), which returns an ERR_PTR.
 * Before it a paging domain was allocated per bus and NULL meant failure.
 * Callers get the v6.11 convention on every kernel.
 */
static inline struct iommu_domain *
iopfmap_paging_domain_alloc(struct device *dev)
{
#ifdef IOPFMAP_HAVE_IOMMU_PAGING_DOMAIN_ALLOC
	return iommu_paging_domain_alloc(dev);
#else
	struct iommu_domain *domain = iommu_domain_alloc(dev->bus);

	return domain ?: ERR_PTR(-ENOMEM);
#endif
}

/*
 * v6.5 removed the vmas argument of the GUP calls. The caller holds
 * mmap_lock for read (locked == NULL).
 */
static inline long iopfmap_pin_user_pages_remote(struct mm_struct *mm,
						 unsigned long start,
						 unsigned long nr_pages,
						 unsigned int gup_flags,
						 struct page **pages)
{
#ifdef IOPFMAP_HAVE_GUP_NO_VMAS
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL);
#else
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL, NULL);
#endif
}

/*
 * v6.5 put the payload behind io_uring_sqe_cmd() and v6.7 moved the
 * uring_cmd interface to <linux/io_uring/cmd.h>; before, the command
 * pointed at the payload. Either way it lives only during ->uring_cmd().
 */
static inline const void *iopfmap_uring_cmd_payload(struct io_uring_cmd *cmd)
{
#ifdef IOPFMAP_HAVE_IO_URING_CMD_H
	return io_uring_sqe_cmd(cmd->sqe);
#else
	return cmd->cmd;
#endif
}

/*
 * v6.7 let a driver mark a parked command cancelable: io_uring then calls
 * ->uring_cmd() with IO_URING_F_CANCEL when the ring or the task goes.
 * Before it nothing cancels a parked command, and the driver must
 * complete it itself when its submitter closes the file (->flush).
 */
#ifdef IOPFMAP_HAVE_URING_CMD_CANCEL
#define IOPFMAP_URING_CANCEL		true
#define IOPFMAP_URING_F_CANCEL		IO_URING_F_CANCEL
#else
#define IOPFMAP_URING_CANCEL		false
#define IOPFMAP_URING_F_CANCEL		0
static inline void io_uring_cmd_mark_cancelable(struct io_uring_cmd *cmd,
						unsigned int issue_flags)
{
}
#endif

/* v6.10: task work that runs because its task is dying says so. */
#ifdef IOPFMAP_HAVE_URING_F_TASK_DEAD
#define IOPFMAP_URING_F_TASK_DEAD	IO_URING_F_TASK_DEAD
#else
#define IOPFMAP_URING_F_TASK_DEAD	0
#endif

#endif /* IOPFMAP_COMPAT_H */
