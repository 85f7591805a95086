/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shims over kernel API differences between the kernels iopfmap supports
 * (Debian's 6.1 and 6.12 LTS and the 7.x of trixie-backports). Each shim
 * names the release that introduced the API it covers. Which form a kernel
 * has is decided by compat-probe.sh, which reads the target kernel's
 * headers, not by LINUX_VERSION_CODE (a distribution kernel may carry a
 * backport), and fails the build when it finds none of the forms below.
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
 * Whether the IOMMU isolates the MSIs of @group's devices: a device a
 * user drives could otherwise raise any interrupt by writing the MSI
 * doorbell. v6.3 added iommu_group_has_isolated_msi(); before it, VFIO's
 * test was an MSI irq domain that remaps, or every device's IOMMU
 * having IOMMU_CAP_INTR_REMAP.
 */
#ifdef IOPFMAP_HAVE_GROUP_ISOLATED_MSI
static inline bool iopfmap_group_msi_isolated(struct iommu_group *group)
{
	return iommu_group_has_isolated_msi(group);
}
#else
#include <linux/irqdomain.h>

static inline int iopfmap_dev_intr_remap(struct device *dev, void *unused)
{
	return !device_iommu_capable(dev, IOMMU_CAP_INTR_REMAP);
}

static inline bool iopfmap_group_msi_isolated(struct iommu_group *group)
{
	return irq_domain_check_msi_remap() ||
	       !iommu_group_for_each_dev(group, NULL, iopfmap_dev_intr_remap);
}
#endif

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
 * The uring_cmd payload (the SQE's cmd bytes), as a const @type pointer.
 * v7.1 made io_uring_sqe_cmd() a macro that takes the type and checks its
 * size; v6.5 added the one-argument io_uring_sqe_cmd(); before it the
 * command pointed at the payload. The payload lives only during
 * ->uring_cmd() and is shared with userspace: copy it out once, by
 * assignment (gcc 13+ with -fstrict-flex-arrays=3 takes a memcpy() from
 * the sqe->cmd flexible array for an overflow).
 */
#if defined(IOPFMAP_HAVE_URING_SQE_CMD_TYPED)
#define iopfmap_uring_cmd_payload(ioucmd, type)	\
	io_uring_sqe_cmd((ioucmd)->sqe, type)
#elif defined(IOPFMAP_HAVE_URING_SQE_CMD)
#define iopfmap_uring_cmd_payload(ioucmd, type)	\
	((const type *)io_uring_sqe_cmd((ioucmd)->sqe))
#else
#define iopfmap_uring_cmd_payload(ioucmd, type)	\
	((const type *)(ioucmd)->cmd)
#endif

/*
 * v6.18 dropped io_uring_cmd_done()'s res2 argument (a 32-byte CQE's
 * extra result moved to io_uring_cmd_done32()); iopfmap never sets it.
 */
static inline void iopfmap_uring_cmd_done(struct io_uring_cmd *cmd, int ret,
					  unsigned int issue_flags)
{
#ifdef IOPFMAP_HAVE_URING_CMD_DONE32
	io_uring_cmd_done(cmd, ret, issue_flags);
#else
	io_uring_cmd_done(cmd, ret, 0, issue_flags);
#endif
}

/*
 * A command completed in its submitter's task: the callback learns the
 * command, the issue flags to complete it with, and whether the task work
 * runs only to be cancelled (the task or ring is going, and userspace
 * memory must not be touched). v6.19 made the callback an io_uring task
 * work function (struct io_tw_req, io_tw_token_t) whose token says
 * "cancel"; from v6.10 to v6.18 the issue flags carried
 * IO_URING_F_TASK_DEAD; before v6.10 only the task's PF_EXITING told,
 * which the callback checks on every kernel. A callback is
 * void cb(iopfmap_tw_arg_t, iopfmap_tw_token_t) and asks the helpers.
 * (Macros, not typedefs: they name the kernel's own types.)
 */
#ifdef IOPFMAP_HAVE_URING_TW_REQ
#define iopfmap_tw_arg_t	struct io_tw_req
#define iopfmap_tw_token_t	io_tw_token_t

static inline struct io_uring_cmd *iopfmap_tw_cmd(iopfmap_tw_arg_t arg)
{
	return io_uring_cmd_from_tw(arg);
}

static inline unsigned int iopfmap_tw_issue_flags(iopfmap_tw_token_t tw)
{
	return IO_URING_CMD_TASK_WORK_ISSUE_FLAGS;
}

static inline bool iopfmap_tw_cancel(iopfmap_tw_token_t tw)
{
	return tw.cancel;
}
#else
#define iopfmap_tw_arg_t	struct io_uring_cmd *
#define iopfmap_tw_token_t	unsigned int	/* the issue flags */

static inline struct io_uring_cmd *iopfmap_tw_cmd(iopfmap_tw_arg_t arg)
{
	return arg;
}

static inline unsigned int iopfmap_tw_issue_flags(iopfmap_tw_token_t tw)
{
	return tw;
}

static inline bool iopfmap_tw_cancel(iopfmap_tw_token_t tw)
{
#ifdef IOPFMAP_HAVE_URING_F_TASK_DEAD
	return tw & IO_URING_F_TASK_DEAD;
#else
	return false;
#endif
}
#endif

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

/*
 * v6.9 (iommu_attach_group_handle(), v6.11 for its prototype's home):
 * faults reach the iopf_handler of a domain that was attached with a
 * handle. The requester-ID calls are exported in the IOMMUFD_INTERNAL
 * namespace and declared only in drivers/iommu/iommu-priv.h, which the
 * headers package lacks: the prototypes below are the same in 6.12 and
 * 7.3 (compat-probe.sh checks the exports in Module.symvers; see
 * docs/kernel-apis.md for what would break them).
 */
#ifdef IOPFMAP_HAVE_ATTACH_GROUP_HANDLE
int iommu_attach_group_handle(struct iommu_domain *domain,
			      struct iommu_group *group,
			      struct iommu_attach_handle *handle);
void iommu_detach_group_handle(struct iommu_domain *domain,
			       struct iommu_group *group);
#endif

/*
 * PASID attachments with a handle (v6.10) whose faults reach the domain's
 * iopf_handler (v6.9): both, or no PASID route.
 */
#if defined(IOPFMAP_HAVE_ATTACH_DEVICE_PASID) && \
	defined(IOPFMAP_HAVE_IOPF_HANDLER)
#define IOPFMAP_PASID_ROUTE	1
#endif

/*
 * The symbol namespaces of iopfmap_sw_page_request() and of the handle
 * calls, for EXPORT_SYMBOL_NS_GPL() and MODULE_IMPORT_NS(): a string
 * literal since v6.13, a bare token (stringified by the macros) before.
 */
#ifdef IOPFMAP_HAVE_NS_STRING
#define IOPFMAP_NS		"IOPFMAP"
#define IOPFMAP_IOMMUFD_NS	"IOMMUFD_INTERNAL"
#else
#define IOPFMAP_NS		IOPFMAP
#define IOPFMAP_IOMMUFD_NS	IOMMUFD_INTERNAL
#endif

#endif /* IOPFMAP_COMPAT_H */
