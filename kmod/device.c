// SPDX-License-Identifier: GPL-2.0
/*
 * Devices: PCI devices attached to a context through the kernel's IOMMU
 * layer, the set of IOMMU domains that becomes the context's IO page
 * table, and the delivery of the devices' page requests.
 *
 * Page requests come from two sources and meet on one workqueue per
 * device: the IOMMU core (before 6.9 a per-device fault handler, answered
 * with iommu_page_response(); since, the iopf_handler of a domain
 * attached with an attach handle, answered with iopf_group_response()),
 * and software page requests from a driver that emulates PRI
 * (iopfmap_driver.h). A group of requests is resolved on the device's
 * workqueue and answered once. docs/kernel-apis.md says which kernel API
 * is used where, and what each IOMMU driver delivers.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/error-injection.h>
#include <linux/interval_tree.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "compat.h"
#include "iopfmap_driver.h"
#include "iopfmap_private.h"
#include "iopfmap_trace.h"

struct iopfmap_domain {
	struct iommu_domain *domain;
	unsigned int users;		/* attached devices; under ctx->lock */
	unsigned int slot;
	bool faults;			/* has iopfmap's iopf_handler */
};

/* The context's IO page table when it drives devices. */
struct iopfmap_domains {
	struct iopfmap_iopt iopt;
	/* Published with smp_store_release(): see iopfmap_private.h. */
	struct iopfmap_domain *slots[IOPFMAP_DOMAINS_MAX];
};

struct iopfmap_device {
	struct iopfmap_ctx *ctx;
	struct pci_dev *pdev;		/* referenced */
	struct iommu_group *group;	/* referenced, DMA ownership claimed */
	struct iopfmap_domain *domain;
	u32 id;				/* in ctx->devices */
	u32 flags;			/* IOPFMAP_DEVICE_* */
	/*
	 * A PASID attachment (@pasid not IOMMU_NO_PASID) shares its
	 * requester-ID attachment @rid's group ownership and domain, and
	 * goes before it.
	 */
	u32 pasid;
	struct iopfmap_device *rid;
	bool own_domain;		/* IOPFMAP_ATTACH_OWN_DOMAIN */
	/*
	 * On a requester-ID attachment without IOPFMAP_DEVICE_HW_IOPF: its
	 * PASID attachments that turned I/O page faults on for the device
	 * (6.12 x86, see iopfmap_device_get_pasid_iopf()). Under ctx->lock.
	 */
	unsigned int nr_pasid_iopf;
	struct iopfmap_fault_source src;	/* dev_id is @id */
	bool fault_handler;		/* registered with the IOMMU core */
#ifdef IOPFMAP_HAVE_IOPF_HANDLER
	/* Names the device's groups' attachment to the core's fault path. */
	struct iommu_attach_handle handle;
#endif
	bool in_lookup;			/* in iopfmap_devices */
	struct interval_tree_node *resv;	/* in ctx->reserved */
	unsigned int nr_resv;

	struct workqueue_struct *fault_wq;
	spinlock_t fault_lock;		/* see iopfmap_private.h */
	bool dying;
	struct list_head partial;	/* requests before their group's last */
	unsigned int nr_partial;

	refcount_t users;		/* the attachment plus lookups */
	struct completion unused;	/* users reached zero */
	struct rcu_head rcu;
};

struct iopfmap_queued_fault {
	struct list_head node;
	struct iopfmap_fault fault;
};

struct iopfmap_sw_waiter {
	struct completion done;
	u32 response;
};

struct iopfmap_fault_group {
	struct work_struct work;
	struct iopfmap_device *idev;
	struct list_head faults;	/* the group's earlier requests */
	struct iopfmap_fault last;
	struct iopfmap_sw_waiter *waiter;	/* software request or NULL */
};

#ifdef IOPFMAP_HAVE_ATTACH_GROUP_HANDLE
/* iommu_attach_group_handle() and iommu_detach_group_handle() */
MODULE_IMPORT_NS(IOPFMAP_IOMMUFD_NS);
#endif

static bool iopfmap_allow_unsafe_interrupts;
module_param_named(allow_unsafe_interrupts, iopfmap_allow_unsafe_interrupts,
		   bool, 0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Attach devices whose IOMMU does not isolate their MSIs (no interrupt remapping)");

/*
 * Attached devices by PCI segment and requester id, for the fault sources
 * that only know the struct device. Read under RCU, without a lock.
 */
static DEFINE_XARRAY(iopfmap_devices);

static unsigned long iopfmap_device_key(struct pci_dev *pdev)
{
	return ((unsigned long)pci_domain_nr(pdev->bus) << 16) |
	       pci_dev_id(pdev);
}

/* The domain set: an IO page table that keeps every domain identical. */

static struct iopfmap_domains *iopt_to_domains(struct iopfmap_iopt *iopt)
{
	return container_of(iopt, struct iopfmap_domains, iopt);
}

static struct iopfmap_domain *iopfmap_slot(struct iopfmap_domains *set,
					   unsigned int i)
{
	/* Pairs with the release in iopfmap_domains_publish(). */
	return smp_load_acquire(&set->slots[i]);
}

static void iopfmap_domains_publish(struct iopfmap_domains *set,
				    struct iopfmap_domain *d)
{
	/* Readers see the domain initialized and, for ranges, filled. */
	smp_store_release(&set->slots[d->slot], d);
}

static int domains_map(struct iopfmap_iopt *iopt, unsigned long iova,
		       phys_addr_t paddr, size_t size, int prot, gfp_t gfp)
{
	struct iopfmap_domains *set = iopt_to_domains(iopt);
	struct iopfmap_domain *d;
	unsigned int i, j;
	int ret;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		d = iopfmap_slot(set, i);
		if (!d)
			continue;
		ret = iopfmap_iommu_map(d->domain, iova, paddr, size, prot,
					gfp);
		if (ret)
			goto undo;
	}
	return 0;

undo:
	for (j = 0; j < i; j++) {
		d = iopfmap_slot(set, j);
		if (d)
			iommu_unmap(d->domain, iova, size);
	}
	return ret;
}

/*
 * Unmaps from every domain. They hold the same entries, except a domain
 * that is being filled: the largest size unmapped is the answer. With no
 * domain at all nothing translates the span: it is unmapped.
 *
 * A domain that does not map @iova is skipped: VT-d's unmap widens the
 * span to the level where the walk stops, so on a missing table it would
 * clear up to 1 GiB around @iova, including entries already replayed.
 */
static size_t domains_unmap(struct iopfmap_iopt *iopt, unsigned long iova,
			    size_t size, struct iopfmap_gather *gather)
{
	struct iopfmap_domains *set = iopt_to_domains(iopt);
	size_t done = 0, n;
	bool any = false;
	unsigned int i;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		struct iopfmap_domain *d = iopfmap_slot(set, i);

		if (!d)
			continue;
		any = true;
		if (!iommu_iova_to_phys(d->domain, iova))
			continue;
		gather->domain[i] = d->domain;
		n = iommu_unmap_fast(d->domain, iova, size, &gather->iotlb[i]);
		done = max(done, n);
	}
	return any ? done : size;
}

static void domains_iotlb_sync(struct iopfmap_iopt *iopt,
			       struct iopfmap_gather *gather)
{
	unsigned int i;

	/* The domains the unmaps used: a slot may have changed since. */
	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		if (!gather->domain[i])
			continue;
		iommu_iotlb_sync(gather->domain[i], &gather->iotlb[i]);
		iommu_iotlb_gather_init(&gather->iotlb[i]);
		gather->domain[i] = NULL;
	}
}

static phys_addr_t domains_iova_to_phys(struct iopfmap_iopt *iopt,
					unsigned long iova)
{
	struct iopfmap_domains *set = iopt_to_domains(iopt);
	phys_addr_t phys;
	unsigned int i;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		struct iopfmap_domain *d = iopfmap_slot(set, i);

		if (!d)
			continue;
		phys = iommu_iova_to_phys(d->domain, iova);
		if (phys)
			return phys;
	}
	return 0;
}

static const struct iopfmap_iopt_ops iopfmap_domains_ops = {
	.map = domains_map,
	.unmap = domains_unmap,
	.iotlb_sync = domains_iotlb_sync,
	.iova_to_phys = domains_iova_to_phys,
};

/*
 * Replay target: one domain, not yet attached to any device. An
 * injection point too (fail_function), for the retry of a failed fill.
 */
static noinline int iopfmap_domain_replay_map(void *arg, unsigned long iova,
					      phys_addr_t paddr, size_t size,
					      int prot)
{
	/* Under range->lock: no reclaim (see struct iopfmap_iopt_ops). */
	return iopfmap_iommu_map(arg, iova, paddr, size, prot,
				 GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT);
}
ALLOW_ERROR_INJECTION(iopfmap_domain_replay_map, ERRNO);

/* Takes @d out of the set and frees it; its devices are detached. */
static void iopfmap_domain_remove(struct iopfmap_ctx *ctx,
				  struct iopfmap_domain *d)
{
	struct iopfmap_domains *set = ctx->domains;
	unsigned int i, others = 0;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++)
		others += set->slots[i] && set->slots[i] != d;

	down_write(&ctx->ranges_rwsem);
	/* Nothing could replay FAULT ranges into a later domain. */
	if (!others)
		iopfmap_ctx_unmap_fault_ranges(ctx);
	WRITE_ONCE(set->slots[d->slot], NULL);
	iopfmap_ctx_ranges_barrier(ctx);
	up_write(&ctx->ranges_rwsem);

	iommu_domain_free(d->domain);
	kfree(d);
}

#ifdef IOPFMAP_HAVE_IOPF_HANDLER
static int iopfmap_iopf_handler(struct iopf_group *group);

/*
 * Since 6.9 the core delivers faults only to a domain attached with a
 * handle (the requester-ID route, IOMMUFD_INTERNAL): every attachment is
 * made so, with or without a fault handler in the domain.
 */
static int iopfmap_group_attach(struct iopfmap_device *idev,
				struct iommu_domain *domain)
{
	return iommu_attach_group_handle(domain, idev->group, &idev->handle);
}

static void iopfmap_group_detach(struct iopfmap_device *idev,
				 struct iommu_domain *domain)
{
	iommu_detach_group_handle(domain, idev->group);
}

/*
 * Whether @idev's domain gets the fault handler. 6.12's IOMMU drivers
 * ignore it at attach (faults are turned on later, by
 * iommu_dev_enable_feature()). 7.x's turn faults on at attach of a domain
 * with a handler, and VT-d refuses that attach (ENODEV) for a device
 * without PRI enabled, which it enables at probe where it can.
 */
static bool iopfmap_device_wants_faults(struct iopfmap_device *idev)
{
#ifdef IOPFMAP_HAVE_IOMMU_DEV_FEAT_IOPF
	return true;
#elif defined(CONFIG_PCI_PRI)
	return idev->pdev->pri_enabled;
#else
	return false;
#endif
}

static void iopfmap_domain_set_faults(struct iopfmap_domain *d,
				      struct iopfmap_device *idev)
{
	if (iopfmap_device_wants_faults(idev))
		d->domain->iopf_handler = iopfmap_iopf_handler;
	d->faults = !!d->domain->iopf_handler;
}
#else
static int iopfmap_group_attach(struct iopfmap_device *idev,
				struct iommu_domain *domain)
{
	return iommu_attach_group(domain, idev->group);
}

static void iopfmap_group_detach(struct iopfmap_device *idev,
				 struct iommu_domain *domain)
{
	iommu_detach_group(domain, idev->group);
}

static bool iopfmap_device_wants_faults(struct iopfmap_device *idev)
{
	return false;
}

static void iopfmap_domain_set_faults(struct iopfmap_domain *d,
				      struct iopfmap_device *idev)
{
}
#endif

/*
 * Whether @domain is set up only when it is first attached: its aperture
 * (and, for some drivers, what it may map) is known then. virtio-iommu
 * without domain_alloc_paging (6.12) finalises a domain at its first
 * attach and refuses mappings before it.
 */
static bool iopfmap_domain_unfinalised(struct iommu_domain *domain)
{
	return !domain->geometry.force_aperture &&
	       !domain->geometry.aperture_end;
}

/*
 * A new domain for @idev: allocated, filled with every range, published,
 * and only then attached, so the device never sees it half filled. A
 * domain that its driver finalises at attach is attached first, before
 * any DMA of the device's new owner can be running: DEVICE_ATTACH has not
 * returned.
 */
static int iopfmap_domain_create(struct iopfmap_ctx *ctx,
				 struct iopfmap_device *idev)
{
	struct iopfmap_domains *set = ctx->domains;
	struct iommu_domain *domain;
	struct iopfmap_domain *d;
	bool first = true, attached = false;
	unsigned int i, slot = IOPFMAP_DOMAINS_MAX;
	int ret;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		if (set->slots[i])
			first = false;
		else if (slot == IOPFMAP_DOMAINS_MAX)
			slot = i;
	}
	if (slot == IOPFMAP_DOMAINS_MAX)
		return -ENOSPC;

	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return -ENOMEM;
	domain = iopfmap_paging_domain_alloc(&idev->pdev->dev);
	if (IS_ERR(domain)) {
		ret = PTR_ERR(domain);
		goto err_free;
	}
	d->domain = domain;
	d->slot = slot;
	/* Before any attach: 7.x's drivers read it there. */
	iopfmap_domain_set_faults(d, idev);
	if (iopfmap_domain_unfinalised(domain)) {
		ret = iopfmap_group_attach(idev, domain);
		if (ret)
			goto err_domain;
		attached = true;
	}
	ret = -EINVAL;
	if (!(domain->pgsize_bitmap & PAGE_SIZE))
		goto err_detach;
	ret = -ERANGE;
	if (!iopfmap_ctx_ranges_within(ctx, domain->geometry.aperture_start,
				       domain->geometry.aperture_end))
		goto err_detach;

	down_write(&ctx->ranges_rwsem);
	iopfmap_domains_publish(set, d);
	ret = iopfmap_ctx_replay(ctx, iopfmap_domain_replay_map, domain);
	if (ret)
		goto err_unpublish;
	up_write(&ctx->ranges_rwsem);

	if (!attached) {
		ret = iopfmap_group_attach(idev, domain);
		if (ret) {
			down_write(&ctx->ranges_rwsem);
			goto err_unpublish;
		}
	}

	/* The aperture is what every domain translates; it never grows. */
	if (first) {
		set->iopt.pgsize_bitmap = domain->pgsize_bitmap &
					  (PAGE_SIZE | IOPFMAP_HUGE_SIZE);
		WRITE_ONCE(set->iopt.iova_start,
			   domain->geometry.aperture_start);
		WRITE_ONCE(set->iopt.iova_last, domain->geometry.aperture_end);
	} else {
		/* Only entries every domain can hold: see map_pfns(). */
		set->iopt.pgsize_bitmap &= domain->pgsize_bitmap;
		WRITE_ONCE(set->iopt.iova_start,
			   max_t(unsigned long, set->iopt.iova_start,
				 domain->geometry.aperture_start));
		WRITE_ONCE(set->iopt.iova_last,
			   min_t(unsigned long, set->iopt.iova_last,
				 domain->geometry.aperture_end));
	}
	d->users = 1;
	idev->domain = d;
	return 0;

err_unpublish:
	WRITE_ONCE(set->slots[slot], NULL);
	iopfmap_ctx_ranges_barrier(ctx);
	up_write(&ctx->ranges_rwsem);
err_detach:
	if (attached)
		iopfmap_group_detach(idev, domain);
err_domain:
	iommu_domain_free(domain);
err_free:
	kfree(d);
	return ret;
}

/* Puts @idev's group in a domain of the set: a shared one if it fits. */
static int iopfmap_device_join_domain(struct iopfmap_ctx *ctx,
				      struct iopfmap_device *idev,
				      bool own_domain)
{
	struct iopfmap_domains *set = ctx->domains;
	unsigned int i, tries;
	int ret;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX && !own_domain; i++) {
		struct iopfmap_domain *d = set->slots[i];
		struct iommu_domain_geometry *geo;

		/*
		 * The IOMMU driver refuses a domain the device cannot use;
		 * one with or without a fault handler must match the device.
		 */
		if (!d || d->faults != iopfmap_device_wants_faults(idev) ||
		    iopfmap_group_attach(idev, d->domain))
			continue;
		/* Its aperture, read again: a driver may set it at attach. */
		geo = &d->domain->geometry;
		if (!iopfmap_ctx_ranges_within(ctx, geo->aperture_start,
					       geo->aperture_end)) {
			iopfmap_group_detach(idev, d->domain);
			return -ERANGE;
		}
		WRITE_ONCE(set->iopt.iova_start,
			   max_t(unsigned long, set->iopt.iova_start,
				 geo->aperture_start));
		WRITE_ONCE(set->iopt.iova_last,
			   min_t(unsigned long, set->iopt.iova_last,
				 geo->aperture_end));
		d->users++;
		idev->domain = d;
		return 0;
	}
	/*
	 * Filling a new domain maps under range->lock, without reclaim: on
	 * ENOMEM the half-filled domain goes, room is made, and a new one is
	 * filled.
	 */
	for (tries = 0;; tries++) {
		ret = iopfmap_domain_create(ctx, idev);
		if (ret != -ENOMEM || tries == IOPFMAP_NOMEM_RETRIES ||
		    !iopfmap_make_room())
			return ret;
	}
}

static void iopfmap_device_leave_domain(struct iopfmap_ctx *ctx,
					struct iopfmap_device *idev)
{
	struct iopfmap_domain *d = idev->domain;

#ifdef IOPFMAP_PASID_ROUTE
	/* The domain is the requester ID's, which holds the reference. */
	if (idev->rid) {
		iommu_detach_device_pasid(d->domain, &idev->pdev->dev,
					  idev->pasid);
		idev->domain = NULL;
		return;
	}
#endif
	iopfmap_group_detach(idev, d->domain);
	idev->domain = NULL;
	if (!--d->users)
		iopfmap_domain_remove(ctx, d);
}

static struct iopfmap_domains *iopfmap_domains_alloc(void)
{
	struct iopfmap_domains *set;

	set = kzalloc(sizeof(*set), GFP_KERNEL_ACCOUNT);
	if (!set)
		return NULL;
	set->iopt.ops = &iopfmap_domains_ops;
	set->iopt.type = IOPFMAP_IOPT_DOMAIN;
	set->iopt.pgsize_bitmap = PAGE_SIZE;
	return set;
}

/* Reserved regions */

int iopfmap_ctx_check_reserved(struct iopfmap_ctx *ctx, unsigned long first,
			       unsigned long last)
{
	lockdep_assert_held(&ctx->lock);
	if (interval_tree_iter_first(&ctx->reserved, first, last))
		return -EADDRINUSE;
	return 0;
}

/*
 * Reads the group's reserved regions. Relaxable direct mappings (RMRRs
 * for USB and graphics) are not needed by a device that userspace owns,
 * as iommufd and VFIO also decide.
 */
static int iopfmap_device_read_resv(struct iopfmap_ctx *ctx,
				    struct iopfmap_device *idev)
{
	struct iommu_resv_region *region, *tmp;
	LIST_HEAD(regions);
	unsigned int n = 0;
	int ret;

	ret = iommu_get_group_resv_regions(idev->group, &regions);
	if (ret)
		goto out_free;
	list_for_each_entry(region, &regions, list)
		n += region->type != IOMMU_RESV_DIRECT_RELAXABLE &&
		     region->length;
	idev->resv = kcalloc(n, sizeof(*idev->resv), GFP_KERNEL_ACCOUNT);
	if (!idev->resv) {
		ret = -ENOMEM;
		goto out_free;
	}
	list_for_each_entry(region, &regions, list) {
		struct interval_tree_node *node = &idev->resv[idev->nr_resv];

		if (region->type == IOMMU_RESV_DIRECT_RELAXABLE ||
		    !region->length)
			continue;
		node->start = region->start;
		node->last = region->start + region->length - 1;
		idev->nr_resv++;
		if (interval_tree_iter_first(&ctx->ranges, node->start,
					     node->last))
			ret = -EADDRINUSE;
	}
out_free:
	list_for_each_entry_safe(region, tmp, &regions, list)
		kfree(region);
	return ret;
}

/* Fault delivery */

static void iopfmap_device_put(struct iopfmap_device *idev)
{
	if (refcount_dec_and_test(&idev->users))
		complete(&idev->unused);
}

/* The attached device behind @pdev, referenced, or NULL. */
static struct iopfmap_device *iopfmap_device_get(struct pci_dev *pdev)
{
	struct iopfmap_device *idev;

	rcu_read_lock();
	idev = xa_load(&iopfmap_devices, iopfmap_device_key(pdev));
	if (idev && (idev->pdev != pdev ||
		     !refcount_inc_not_zero(&idev->users)))
		idev = NULL;
	rcu_read_unlock();
	return idev;
}

static bool iopfmap_same_group(const struct iopfmap_fault *a,
			       const struct iopfmap_fault *b)
{
	return a->grpid == b->grpid &&
	       (a->flags & IOPFMAP_FAULT_PASID) ==
	       (b->flags & IOPFMAP_FAULT_PASID) &&
	       (!(a->flags & IOPFMAP_FAULT_PASID) || a->pasid == b->pasid);
}

#ifdef IOPFMAP_HAVE_DEVICE_FAULT_HANDLER
/* Answers a group the IOMMU core reported. */
static void iopfmap_hw_respond(struct iopfmap_device *idev,
			       const struct iopfmap_fault *last, u32 resp)
{
	struct iommu_page_response msg = {
		.version = IOMMU_PAGE_RESP_VERSION_1,
		.pasid = last->pasid,
		.grpid = last->grpid,
		.code = resp == IOPFMAP_PAGE_RESP_SUCCESS ?
			IOMMU_PAGE_RESP_SUCCESS :
			resp == IOPFMAP_PAGE_RESP_FAILURE ?
			IOMMU_PAGE_RESP_FAILURE : IOMMU_PAGE_RESP_INVALID,
	};
	int ret;

	if (last->flags & IOPFMAP_FAULT_PASID)
		msg.flags = IOMMU_PAGE_RESP_PASID_VALID;
	/*
	 * The core forgets the group even when the driver fails to send the
	 * response (VT-d refuses one without a PASID): it is answered once.
	 */
	ret = iommu_page_response(&idev->pdev->dev, &msg);
	if (ret)
		pci_dbg(idev->pdev, "page response for group %u: %d\n",
			last->grpid, ret);
}
#else
static void iopfmap_hw_respond(struct iopfmap_device *idev,
			       const struct iopfmap_fault *last, u32 resp)
{
	WARN_ON_ONCE(1);	/* no hardware fault was ever queued */
}
#endif

static void iopfmap_fault_group_work(struct work_struct *work)
{
	struct iopfmap_fault_group *group =
		container_of(work, struct iopfmap_fault_group, work);
	struct iopfmap_device *idev = group->idev;
	struct iopfmap_fault faults[IOPFMAP_PRQ_GROUP_MAX + 1];
	struct iopfmap_queued_fault *qf, *tmp;
	u32 resp = IOPFMAP_PAGE_RESP_INVALID;
	u32 nr_faults = 0;

	/* At most IOPFMAP_PRQ_GROUP_MAX are held per device. */
	list_for_each_entry_safe(qf, tmp, &group->faults, node) {
		faults[nr_faults++] = qf->fault;
		kfree(qf);
	}
	faults[nr_faults++] = group->last;
	/* Not killable: a worker; detach closes the source to end a wait. */
	iopfmap_handle_group(idev->ctx, &idev->src, faults, nr_faults, false,
			     &resp);

	trace_iopfmap_respond(idev->ctx->id, idev->pdev,
			      !group->waiter, group->last.grpid,
			      group->last.pasid, resp, nr_faults);
	if (group->waiter) {
		group->waiter->response = resp;
		complete(&group->waiter->done);
	} else {
		iopfmap_hw_respond(idev, &group->last, resp);
	}
	kfree(group);
}

/*
 * Takes one page request. A request that is not its group's last waits
 * for it; the last one sends the whole group to the device's workqueue.
 * Fails with -ENODEV once the device is being detached.
 */
static int iopfmap_device_queue(struct iopfmap_device *idev,
				const struct iopfmap_fault *fault,
				struct iopfmap_sw_waiter *waiter)
{
	struct iopfmap_queued_fault *qf = NULL, *pos, *tmp;
	struct iopfmap_fault_group *group = NULL;
	int ret = 0;

	if (fault->flags & IOPFMAP_FAULT_LAST) {
		group = kzalloc(sizeof(*group), GFP_KERNEL);
		if (!group)
			return -ENOMEM;
		INIT_WORK(&group->work, iopfmap_fault_group_work);
		INIT_LIST_HEAD(&group->faults);
		group->idev = idev;
		group->last = *fault;
		group->waiter = waiter;
	} else {
		qf = kmalloc(sizeof(*qf), GFP_KERNEL);
		if (!qf)
			return -ENOMEM;
		qf->fault = *fault;
	}

	spin_lock(&idev->fault_lock);
	if (idev->dying) {
		ret = -ENODEV;
	} else if (qf) {
		if (idev->nr_partial < IOPFMAP_PRQ_GROUP_MAX) {
			list_add_tail(&qf->node, &idev->partial);
			idev->nr_partial++;
			qf = NULL;
		} else {
			ret = -ENOSPC;
		}
	} else {
		list_for_each_entry_safe(pos, tmp, &idev->partial, node) {
			if (!iopfmap_same_group(&pos->fault, fault))
				continue;
			list_move_tail(&pos->node, &group->faults);
			idev->nr_partial--;
		}
		queue_work(idev->fault_wq, &group->work);
		group = NULL;
	}
	spin_unlock(&idev->fault_lock);
	kfree(qf);
	kfree(group);
	return ret;
}

/* One page request as the IOMMU core reports it. */
static void iopfmap_fault_from_prm(struct iopfmap_fault *fault,
				   const struct iommu_fault_page_request *prm)
{
	*fault = (struct iopfmap_fault){
		.iova = prm->addr & PAGE_MASK,
		.pasid = prm->pasid,
		.grpid = prm->grpid,
	};
	if (prm->perm & IOMMU_FAULT_PERM_READ)
		fault->flags |= IOPFMAP_FAULT_READ;
	if (prm->perm & IOMMU_FAULT_PERM_WRITE)
		fault->flags |= IOPFMAP_FAULT_WRITE;
	if (prm->flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID)
		fault->flags |= IOPFMAP_FAULT_PASID;
	if (prm->flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)
		fault->flags |= IOPFMAP_FAULT_LAST;
}

#if defined(IOPFMAP_HAVE_DEVICE_FAULT_HANDLER)
/*
 * The IOMMU core's per-device fault handler. It runs in the reporting
 * context (the IOMMU driver's page request thread) with the core's
 * per-device lock held: queue and return.
 */
static int iopfmap_iommu_fault(struct iommu_fault *evt, void *data)
{
	struct iopfmap_fault fault;

	if (evt->type != IOMMU_FAULT_PAGE_REQ)
		return -EOPNOTSUPP;	/* unrecoverable faults: not ours */
	iopfmap_fault_from_prm(&fault, &evt->prm);
	return iopfmap_device_queue(data, &fault, NULL);
}

/*
 * An attachment is by requester ID, so only page requests without a
 * PASID could reach us, and on x86 no IOMMU driver of this generation
 * delivers one: Intel's answers each INVALID itself (intel/svm.c, "Page
 * request without PASID"), AMD-Vi sends no page responses. SMMUv3
 * reports stalls. The handler still takes software page requests.
 */
bool iopfmap_hw_iopf_supported(void)
{
	return !IS_ENABLED(CONFIG_X86);
}

static int iopfmap_device_start_hw_faults(struct iopfmap_device *idev)
{
	struct device *dev = &idev->pdev->dev;
	int ret;

	/*
	 * iommu_page_response() fails before it retires the group when the
	 * IOMMU driver cannot send responses (AMD-Vi on 6.1): a group taken
	 * would stay pending for ever, and the handler could never go.
	 */
	if (!dev_iommu_ops(dev)->page_response)
		return -EOPNOTSUPP;
	ret = iommu_register_device_fault_handler(dev, iopfmap_iommu_fault,
						  idev);
	if (ret)
		return ret;
	idev->fault_handler = true;
	/* Fails (ENODEV) for a device without PRI or stall. */
	if (iopfmap_hw_iopf_supported() &&
	    !iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF))
		idev->flags |= IOPFMAP_DEVICE_HW_IOPF;
	return 0;
}

static void iopfmap_device_stop_hw_faults(struct iopfmap_device *idev)
{
	struct device *dev = &idev->pdev->dev;

	if (idev->flags & IOPFMAP_DEVICE_HW_IOPF)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	idev->flags &= ~IOPFMAP_DEVICE_HW_IOPF;
	/* Every group was answered: the core holds none (else -EBUSY). */
	if (idev->fault_handler)
		WARN_ON(iommu_unregister_device_fault_handler(dev));
	idev->fault_handler = false;
}
#elif defined(IOPFMAP_HAVE_IOPF_HANDLER)
static struct iopfmap_device *iopfmap_group_device(struct iopf_group *group)
{
	return container_of(group->attach_handle, struct iopfmap_device,
			    handle);
}

/* Resolves a group the core delivered, and answers it, once. */
static void iopfmap_iopf_work(struct work_struct *work)
{
	struct iopf_group *group = container_of(work, struct iopf_group, work);
	struct iopfmap_device *idev = iopfmap_group_device(group);
	struct iommu_fault_page_request *last = &group->last_fault.fault.prm;
	struct iopfmap_fault faults[IOPFMAP_PRQ_GROUP_MAX + 1];
	u32 resp = IOPFMAP_PAGE_RESP_INVALID;
	struct iopf_fault *iopf;
	unsigned int nr = 0;

	/* More requests than a group may hold: a confused device. */
	if (group->fault_count <= ARRAY_SIZE(faults)) {
		list_for_each_entry(iopf, &group->faults, list)
			iopfmap_fault_from_prm(&faults[nr++], &iopf->fault.prm);
		/* Not killable: a worker; detach closes the source. */
		iopfmap_handle_group(idev->ctx, &idev->src, faults, nr, false,
				     &resp);
	}
	trace_iopfmap_respond(idev->ctx->id, idev->pdev, true, last->grpid,
			      last->pasid, resp, nr);
	iopf_group_response(group, resp == IOPFMAP_PAGE_RESP_SUCCESS ?
			    IOMMU_PAGE_RESP_SUCCESS : IOMMU_PAGE_RESP_INVALID);
	iopf_free_group(group);
}

/*
 * The iopf_handler of iopfmap's domains. The core calls it with a whole
 * group, in the reporting thread (the IOMMU driver's page request thread,
 * its locks held): the group becomes ours and goes to the device's
 * workqueue, or, once the device is being detached, is answered INVALID
 * at once. It never fails: the core would answer FAILURE, which turns
 * the device's PRI off.
 */
static int iopfmap_iopf_handler(struct iopf_group *group)
{
	struct iopfmap_device *idev = iopfmap_group_device(group);
	bool queued = false;

	iopf_group_dequeue(group);
	spin_lock(&idev->fault_lock);
	if (!idev->dying) {
		INIT_WORK(&group->work, iopfmap_iopf_work);
		queued = queue_work(idev->fault_wq, &group->work);
	}
	spin_unlock(&idev->fault_lock);
	if (!queued) {
		iopf_group_response(group, IOMMU_PAGE_RESP_INVALID);
		iopf_free_group(group);
	}
	return 0;
}

/*
 * Which IOMMU drivers deliver requests by requester ID (no PASID), the
 * attachments iopfmap makes: 7.x's VT-d does; 6.12's answers each
 * INVALID itself (intel/prq.c) and AMD-Vi reports PASID-tagged requests
 * only, so x86 6.12 gets none. SMMUv3 reports stalls.
 */
bool iopfmap_hw_iopf_supported(void)
{
#ifdef IOPFMAP_HAVE_IOMMU_DEV_FEAT_IOPF
	return !IS_ENABLED(CONFIG_X86);
#else
	return true;
#endif
}

#ifdef IOPFMAP_HAVE_IOMMU_DEV_FEAT_IOPF
/*
 * 6.12 x86: the requester ID gets no faults (iopfmap_hw_iopf_supported()),
 * but VT-d reports PASID-tagged page requests to the core. The PASID
 * attachments turn the device's faults (PRI) on while any of them needs
 * them. Whether a page request with that PASID reaches iopfmap.
 */
static bool iopfmap_device_get_pasid_iopf(struct iopfmap_device *rid)
{
	if (rid->flags & IOPFMAP_DEVICE_HW_IOPF)
		return true;
	if (!rid->domain->faults)
		return false;
	if (rid->nr_pasid_iopf++)
		return true;
	/* ENODEV: no PRI, or the driver reports no PASID requests. */
	if (iommu_dev_enable_feature(&rid->pdev->dev, IOMMU_DEV_FEAT_IOPF)) {
		rid->nr_pasid_iopf = 0;
		return false;
	}
	return true;
}

static void iopfmap_device_put_pasid_iopf(struct iopfmap_device *rid)
{
	if (rid->flags & IOPFMAP_DEVICE_HW_IOPF)
		return;
	if (!WARN_ON(!rid->nr_pasid_iopf) && !--rid->nr_pasid_iopf)
		iommu_dev_disable_feature(&rid->pdev->dev,
					  IOMMU_DEV_FEAT_IOPF);
}
#else
/* 7.x: VT-d turned PRI on at probe; the requester ID's flag says it all. */
static bool iopfmap_device_get_pasid_iopf(struct iopfmap_device *rid)
{
	return rid->flags & IOPFMAP_DEVICE_HW_IOPF;
}

static void iopfmap_device_put_pasid_iopf(struct iopfmap_device *rid)
{
}
#endif

static int iopfmap_device_start_hw_faults(struct iopfmap_device *idev)
{
	if (idev->rid) {
		if (iopfmap_device_get_pasid_iopf(idev->rid))
			idev->flags |= IOPFMAP_DEVICE_HW_IOPF;
		return 0;
	}
	if (!idev->domain->faults || !iopfmap_hw_iopf_supported())
		return 0;
#ifdef IOPFMAP_HAVE_IOMMU_DEV_FEAT_IOPF
	/* 6.12: after the paging attach; ENODEV without PRI or stall. */
	if (iommu_dev_enable_feature(&idev->pdev->dev, IOMMU_DEV_FEAT_IOPF))
		return 0;
#endif
	idev->flags |= IOPFMAP_DEVICE_HW_IOPF;
	return 0;
}

static void iopfmap_device_stop_hw_faults(struct iopfmap_device *idev)
{
	if (idev->rid) {
		if (idev->flags & IOPFMAP_DEVICE_HW_IOPF)
			iopfmap_device_put_pasid_iopf(idev->rid);
	}
#ifdef IOPFMAP_HAVE_IOMMU_DEV_FEAT_IOPF
	else if (idev->flags & IOPFMAP_DEVICE_HW_IOPF)
		iommu_dev_disable_feature(&idev->pdev->dev,
					  IOMMU_DEV_FEAT_IOPF);
#endif
	idev->flags &= ~IOPFMAP_DEVICE_HW_IOPF;
}
#endif

static int iopfmap_device_start_faults(struct iopfmap_device *idev,
				       bool require_iopf)
{
	struct iopfmap_device *old;
	int ret;

	ret = iopfmap_device_start_hw_faults(idev);
	if (ret)
		pci_info(idev->pdev, "no IOMMU fault handler: %d\n", ret);
	ret = 0;
	if (require_iopf && !(idev->flags & IOPFMAP_DEVICE_HW_IOPF)) {
		ret = -EOPNOTSUPP;
		goto err_stop;
	}
	/* Software page requests carry no PASID: the requester ID's. */
	if (idev->rid)
		return 0;
	/* Claimed DMA ownership makes the key unique. */
	old = xa_store(&iopfmap_devices, iopfmap_device_key(idev->pdev),
		       idev, GFP_KERNEL);
	if (xa_is_err(old)) {
		ret = xa_err(old);
		goto err_stop;
	}
	WARN_ON_ONCE(old);
	idev->in_lookup = true;
	return 0;

err_stop:
	iopfmap_device_stop_hw_faults(idev);
	return ret;
}

/*
 * Stops @idev's faults: no new request is queued, those in flight are
 * answered, and no fault source can reach @idev afterwards.
 */
static void iopfmap_device_stop_faults(struct iopfmap_device *idev)
{
	struct iopfmap_queued_fault *qf, *tmp;
	LIST_HEAD(partial);

	spin_lock(&idev->fault_lock);
	idev->dying = true;
	list_splice_init(&idev->partial, &partial);
	idev->nr_partial = 0;
	spin_unlock(&idev->fault_lock);

	if (idev->in_lookup)
		xa_erase(&iopfmap_devices, iopfmap_device_key(idev->pdev));
	idev->in_lookup = false;
	/* Software requesters between lookup and queue are done. */
	iopfmap_device_put(idev);
	wait_for_completion(&idev->unused);
	/* Groups waiting for userspace are answered, and no more wait. */
	iopfmap_queue_close_source(idev->ctx, &idev->src);
	flush_workqueue(idev->fault_wq);

	/* Groups whose last request never came expect no answer. */
	list_for_each_entry_safe(qf, tmp, &partial, node)
		kfree(qf);
	iopfmap_device_stop_hw_faults(idev);
}

int iopfmap_sw_page_request(struct device *dev, u64 iova, u32 access,
			    u32 *response)
{
	struct iopfmap_sw_waiter waiter = {
		.done = COMPLETION_INITIALIZER_ONSTACK(waiter.done),
	};
	struct iopfmap_fault fault = {
		.iova = iova & PAGE_MASK,
		.flags = IOPFMAP_FAULT_LAST,
	};
	struct iopfmap_device *idev;
	int ret;

	if (!access ||
	    (access & ~(IOPFMAP_SW_PRQ_READ | IOPFMAP_SW_PRQ_WRITE)))
		return -EINVAL;
	if (access & IOPFMAP_SW_PRQ_READ)
		fault.flags |= IOPFMAP_FAULT_READ;
	if (access & IOPFMAP_SW_PRQ_WRITE)
		fault.flags |= IOPFMAP_FAULT_WRITE;
	if (!dev_is_pci(dev))
		return -ENODEV;

	idev = iopfmap_device_get(to_pci_dev(dev));
	if (!idev)
		return -ENODEV;
	ret = iopfmap_device_queue(idev, &fault, &waiter);
	iopfmap_device_put(idev);
	if (ret)
		return ret;
	/* Bounded: a fault gives up after IOPFMAP_FAULT_TIMEOUT_MS. */
	wait_for_completion(&waiter.done);
	*response = waiter.response;
	return 0;
}
EXPORT_SYMBOL_NS_GPL(iopfmap_sw_page_request, IOPFMAP_NS);

/* Attach and detach */

static void iopfmap_device_free(struct iopfmap_device *idev)
{
	if (idev->fault_wq)
		destroy_workqueue(idev->fault_wq);
	if (idev->group)
		iommu_group_put(idev->group);
	kfree(idev->resv);
	pci_dev_put(idev->pdev);
	/* A lockless lookup may still read the reference count. */
	kfree_rcu(idev, rcu);
}

/* Takes over the reference on @pdev. */
static struct iopfmap_device *iopfmap_device_alloc(struct iopfmap_ctx *ctx,
						   struct pci_dev *pdev)
{
	struct iopfmap_device *idev;
	int ret = -ENOMEM;

	idev = kzalloc(sizeof(*idev), GFP_KERNEL_ACCOUNT);
	if (!idev) {
		pci_dev_put(pdev);
		return ERR_PTR(-ENOMEM);
	}
	idev->ctx = ctx;
	idev->pdev = pdev;
	spin_lock_init(&idev->fault_lock);
	INIT_LIST_HEAD(&idev->partial);
	refcount_set(&idev->users, 1);
	init_completion(&idev->unused);

	idev->group = iommu_group_get(&pdev->dev);
	if (!idev->group) {
		ret = -ENODEV;		/* not behind an IOMMU */
		goto err_free;
	}
	idev->fault_wq = alloc_workqueue("iopfmap-%s", WQ_UNBOUND, 0,
					 pci_name(pdev));
	if (!idev->fault_wq)
		goto err_free;
	return idev;

err_free:
	iopfmap_device_free(idev);
	return ERR_PTR(ret);
}

static void iopfmap_device_insert_resv(struct iopfmap_ctx *ctx,
				       struct iopfmap_device *idev)
{
	unsigned int i;

	for (i = 0; i < idev->nr_resv; i++)
		interval_tree_insert(&idev->resv[i], &ctx->reserved);
}

static void iopfmap_device_remove_resv(struct iopfmap_ctx *ctx,
				       struct iopfmap_device *idev)
{
	unsigned int i;

	for (i = 0; i < idev->nr_resv; i++)
		interval_tree_remove(&idev->resv[i], &ctx->reserved);
}

/*
 * Gives an attached @idev its id in the context and starts its faults;
 * on failure it has neither.
 */
static int iopfmap_device_publish(struct iopfmap_ctx *ctx,
				  struct iopfmap_device *idev, u32 flags)
{
	int ret;

	ret = xa_alloc(&ctx->devices, &idev->id, idev, xa_limit_32b,
		       GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	idev->src.dev_id = idev->id;
	ret = iopfmap_device_start_faults(idev,
					  flags & IOPFMAP_ATTACH_REQUIRE_IOPF);
	if (ret)
		xa_erase(&ctx->devices, idev->id);
	return ret;
}

static int iopfmap_device_attach_locked(struct iopfmap_ctx *ctx,
					struct iopfmap_device *idev, u32 flags)
{
	int ret;

	lockdep_assert_held(&ctx->lock);
	if (ctx->sim)
		return -EEXIST;
	if ((flags & IOPFMAP_ATTACH_REQUIRE_IOPF) &&
	    !iopfmap_hw_iopf_supported())
		return -EOPNOTSUPP;
	if (!ctx->domains) {
		ctx->domains = iopfmap_domains_alloc();
		if (!ctx->domains)
			return -ENOMEM;
	}

	/*
	 * Every entry is mapped IOMMU_CACHE, as VFIO and iommufd map them: a
	 * device whose DMA the IOMMU cannot keep coherent is refused.
	 */
	if (!device_iommu_capable(&idev->pdev->dev,
				  IOMMU_CAP_CACHE_COHERENCY))
		return -EOPNOTSUPP;
	/* A device that can raise any interrupt: only if allowed. */
	if (iopfmap_group_msi_isolated(idev->group)) {
		idev->flags |= IOPFMAP_DEVICE_MSI_ISOLATED;
	} else if (!READ_ONCE(iopfmap_allow_unsafe_interrupts)) {
		pci_warn_once(idev->pdev,
			      "its IOMMU does not isolate its MSIs (no interrupt remapping): refused; allow_unsafe_interrupts=1 allows it\n");
		return -EPERM;
	}
	ret = iommu_group_claim_dma_owner(idev->group, ctx);
	if (ret)
		/* EPERM: a driver or another owner has the group. */
		return ret == -EPERM ? -EBUSY : ret;
	ret = iopfmap_device_read_resv(ctx, idev);
	if (ret)
		goto err_release;
	idev->own_domain = flags & IOPFMAP_ATTACH_OWN_DOMAIN;
	ret = iopfmap_device_join_domain(ctx, idev, idev->own_domain);
	if (ret)
		goto err_release;
	ret = iopfmap_device_publish(ctx, idev, flags);
	if (ret)
		goto err_leave;
	iopfmap_device_insert_resv(ctx, idev);

	if (!ctx->iopt)
		/* Pairs with smp_load_acquire() of ctx->iopt. */
		smp_store_release(&ctx->iopt, &ctx->domains->iopt);
	return 0;

err_leave:
	iopfmap_device_leave_domain(ctx, idev);
err_release:
	iommu_group_release_dma_owner(idev->group);
	return ret;
}

#ifdef IOPFMAP_PASID_ROUTE
/* The requester-ID attachment of @pdev in @ctx, or NULL. */
static struct iopfmap_device *iopfmap_ctx_rid_device(struct iopfmap_ctx *ctx,
						     struct pci_dev *pdev)
{
	struct iopfmap_device *idev;
	unsigned long id;

	xa_for_each(&ctx->devices, id, idev)
		if (idev->pdev == pdev && !idev->rid)
			return idev;
	return NULL;
}

/*
 * Attaches the domain of @pdev's requester-ID attachment at @pasid too:
 * its group stays claimed by that attachment, which outlives this one.
 */
static int iopfmap_device_attach_pasid_locked(struct iopfmap_ctx *ctx,
					      struct iopfmap_device *idev,
					      u32 flags, u32 pasid)
{
	struct iopfmap_device *rid, *pos;
	unsigned long id;
	int ret;

	lockdep_assert_held(&ctx->lock);
	if (flags & IOPFMAP_ATTACH_OWN_DOMAIN)
		return -EINVAL;
	rid = iopfmap_ctx_rid_device(ctx, idev->pdev);
	if (!rid)
		return -ENOENT;
	xa_for_each(&ctx->devices, id, pos)
		if (pos->rid == rid && pos->pasid == pasid)
			return -EBUSY;
	idev->rid = rid;
	idev->pasid = pasid;
	idev->domain = rid->domain;
	idev->flags = IOPFMAP_DEVICE_PASID |
		      (rid->flags & IOPFMAP_DEVICE_MSI_ISOLATED);
	ret = iommu_attach_device_pasid(idev->domain->domain, &idev->pdev->dev,
					pasid, &idev->handle);
	if (ret)
		/* ENODEV: a driver with no PASID support at all. */
		return ret == -ENODEV ? -EOPNOTSUPP : ret;
	ret = iopfmap_device_publish(ctx, idev, flags);
	if (ret)
		iopfmap_device_leave_domain(ctx, idev);
	return ret;
}
#else
static int iopfmap_device_attach_pasid_locked(struct iopfmap_ctx *ctx,
					      struct iopfmap_device *idev,
					      u32 flags, u32 pasid)
{
	return -EOPNOTSUPP;
}
#endif

bool iopfmap_pasid_attach_supported(void)
{
#ifdef IOPFMAP_PASID_ROUTE
	return true;
#else
	return false;
#endif
}

/* Attached devices of every context, for netlink's stats-get. */
static atomic_t iopfmap_nr_attached = ATOMIC_INIT(0);

unsigned int iopfmap_nr_devices(void)
{
	return atomic_read(&iopfmap_nr_attached);
}

/*
 * Detaches @idev in the order iopfmap_private.h gives, and says so on
 * netlink with @reason (IOPFMAP_DETACH_REASON_*), or silently if < 0: an
 * attach undone before anyone learnt of it.
 */
static void iopfmap_device_destroy(struct iopfmap_ctx *ctx,
				   struct iopfmap_device *idev, int reason)
{
	char name[IOPFMAP_DEVICE_NAME_MAX];
	u32 id = idev->id;

	lockdep_assert_held(&ctx->lock);
	strscpy(name, pci_name(idev->pdev), sizeof(name));
	/* The PASIDs first: they use the group's ownership and domain. */
	if (!idev->rid) {
		struct iopfmap_device *pos;
		unsigned long i;

		xa_for_each(&ctx->devices, i, pos)
			if (pos->rid == idev)
				iopfmap_device_destroy(ctx, pos, reason);
	}
	xa_erase(&ctx->devices, idev->id);
	iopfmap_device_stop_faults(idev);
	if (idev->rid) {
		/* The requester ID stays attached: so does bus mastering. */
		iopfmap_device_leave_domain(ctx, idev);
		goto out_free;
	}
	/*
	 * No DMA may outlive the attachment: the group goes back to its
	 * default domain, an identity map on many hosts. The owner turns
	 * bus mastering on again for its next DMA.
	 */
	pci_clear_master(idev->pdev);
	iopfmap_device_remove_resv(ctx, idev);
	iopfmap_device_leave_domain(ctx, idev);
	iommu_group_release_dma_owner(idev->group);
out_free:
	iopfmap_device_free(idev);
	atomic_dec(&iopfmap_nr_attached);
	if (reason >= 0)
		iopfmap_notify_device(IOPFMAP_NL_CMD_DEV_DETACH_NTF, ctx->id,
				      id, name, reason);
}

bool iopfmap_ctx_device_snapshot(struct iopfmap_ctx *ctx, unsigned long *id,
				 struct iopfmap_device_snapshot *snap)
{
	struct iopfmap_device *idev;

	mutex_lock(&ctx->lock);
	idev = xa_find(&ctx->devices, id, ULONG_MAX, XA_PRESENT);
	if (idev) {
		snap->id = idev->id;
		snap->flags = idev->flags;
		snap->own_domain = idev->own_domain;
		snap->iommu_group = iommu_group_id(idev->group);
		strscpy(snap->name, pci_name(idev->pdev), sizeof(snap->name));
	}
	mutex_unlock(&ctx->lock);
	return idev;
}

int iopfmap_device_attach(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_device_attach *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	struct iopfmap_device *idev;
	struct iommu_domain *domain;
	struct device *dev;
	bool first;
	int ret;

	if (!memchr(cmd->name, '\0', sizeof(cmd->name)))
		return -EINVAL;
	if (cmd->__reserved)
		return -EOPNOTSUPP;
	if (cmd->flags & IOPFMAP_ATTACH_PASID) {
		if (!iopfmap_pasid_attach_supported())
			return -EOPNOTSUPP;
		if (!cmd->pasid || cmd->pasid > IOPFMAP_PASID_MAX)
			return -EINVAL;
	} else if (cmd->pasid) {
		return -EINVAL;
	}
	dev = bus_find_device_by_name(&pci_bus_type, NULL, cmd->name);
	if (!dev)
		return -ENODEV;
	idev = iopfmap_device_alloc(ctx, to_pci_dev(dev));
	if (IS_ERR(idev))
		return PTR_ERR(idev);

	mutex_lock(&ctx->lock);
	first = !ctx->iopt;
	if (cmd->flags & IOPFMAP_ATTACH_PASID)
		ret = iopfmap_device_attach_pasid_locked(ctx, idev, cmd->flags,
							 cmd->pasid);
	else
		ret = iopfmap_device_attach_locked(ctx, idev, cmd->flags);
	if (ret) {
		mutex_unlock(&ctx->lock);
		iopfmap_device_free(idev);
		return ret;
	}
	domain = idev->domain->domain;
	cmd->out_dev_id = idev->id;
	cmd->out_flags = idev->flags;
	cmd->out_pgsize_bitmap = domain->pgsize_bitmap;
	cmd->out_iova_start = domain->geometry.aperture_start;
	cmd->out_iova_last = domain->geometry.aperture_end;
	atomic_inc(&iopfmap_nr_attached);
	ret = iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
	/*
	 * The caller never learnt the id (it made its struct read-only after
	 * the dispatcher's check): undo, back to a context without an IO page
	 * table if this attach gave it one. No range can use the table yet:
	 * MAP needs ctx->lock.
	 */
	if (ret) {
		iopfmap_device_destroy(ctx, idev, -1);
		/* No table: nothing for the readers' acquire to pair with. */
		if (first)
			WRITE_ONCE(ctx->iopt, NULL);
	}
	mutex_unlock(&ctx->lock);
	if (!ret)
		iopfmap_notify_device(IOPFMAP_NL_CMD_DEV_ATTACH_NTF, ctx->id,
				      cmd->out_dev_id, cmd->name, -1);
	return ret;
}

int iopfmap_device_detach(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_device_detach *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	struct iopfmap_device *idev;
	int ret = 0;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	mutex_lock(&ctx->lock);
	idev = xa_load(&ctx->devices, cmd->dev_id);
	if (idev)
		iopfmap_device_destroy(ctx, idev,
				       IOPFMAP_DETACH_REASON_REQUEST);
	else
		ret = -ENOENT;
	mutex_unlock(&ctx->lock);
	return ret;
}

void iopfmap_ctx_init_devices(struct iopfmap_ctx *ctx)
{
	xa_init_flags(&ctx->devices, XA_FLAGS_ALLOC1);
	ctx->reserved = RB_ROOT_CACHED;
}

/* At release(), before the ranges: devices stop faulting first. */
void iopfmap_ctx_destroy_devices(struct iopfmap_ctx *ctx)
{
	struct iopfmap_device *idev;
	unsigned long id;

	mutex_lock(&ctx->lock);
	xa_for_each(&ctx->devices, id, idev)
		iopfmap_device_destroy(ctx, idev,
				       IOPFMAP_DETACH_REASON_CTX_CLOSE);
	mutex_unlock(&ctx->lock);
	xa_destroy(&ctx->devices);
}

/* At release(), after the ranges: every domain is gone with its devices. */
void iopfmap_ctx_free_domains(struct iopfmap_ctx *ctx)
{
	kfree(ctx->domains);
}

/*
 * A device removed while attached (hot unplug, sysfs remove) is detached
 * before it goes: BUS_NOTIFY_DEL_DEVICE comes while it is still whole,
 * before its driver unbinds and the IOMMU core lets it go.
 */
static int iopfmap_pci_notify(struct notifier_block *nb, unsigned long action,
			      void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);
	struct iopfmap_device *idev, *found = NULL;
	struct iopfmap_ctx *ctx;
	unsigned long id;

	if (action != BUS_NOTIFY_DEL_DEVICE)
		return NOTIFY_DONE;
	idev = iopfmap_device_get(pdev);
	if (!idev)
		return NOTIFY_DONE;
	/*
	 * A device still in the lookup is still in its context, whose file
	 * holds ctx->users until release() has detached every device: the
	 * count is not zero.
	 */
	ctx = idev->ctx;
	refcount_inc(&ctx->users);
	/* ctx->lock keeps detach and release out: find it again under it. */
	iopfmap_device_put(idev);
	mutex_lock(&ctx->lock);
	xa_for_each(&ctx->devices, id, idev)
		if (idev->pdev == pdev && !idev->rid)
			found = idev;
	if (found)
		iopfmap_device_destroy(ctx, found,
				       IOPFMAP_DETACH_REASON_REMOVED);
	mutex_unlock(&ctx->lock);
	iopfmap_ctx_put(ctx);
	return NOTIFY_OK;
}

static struct notifier_block iopfmap_pci_nb = {
	.notifier_call = iopfmap_pci_notify,
};

int iopfmap_devices_init(void)
{
	return bus_register_notifier(&pci_bus_type, &iopfmap_pci_nb);
}

void iopfmap_devices_exit(void)
{
	bus_unregister_notifier(&pci_bus_type, &iopfmap_pci_nb);
}
