// SPDX-License-Identifier: GPL-2.0
/*
 * Fault resolution: a page request for an IOVA becomes IO page table
 * entries for the CPU pages behind it, following the HMM protocol
 * (Documentation/mm/hmm.rst): snapshot the CPU page tables with
 * hmm_range_fault() under a notifier sequence, then, under the same lock
 * the invalidate callback takes, map only if no invalidation ran since.
 * No page reference is held: the notifier, not a pin, keeps the mapping
 * honest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/error-injection.h>
#include <linux/hmm.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "iopfmap_private.h"
#include "iopfmap_trace.h"

/* Page indexes of one fault: what to snapshot, fault in, and may map. */
struct iopfmap_fault_span {
	unsigned long fault;		/* the page the device asked for */
	unsigned long first, last;	/* hmm_range_fault() span */
	unsigned long win_first, win_last;	/* pages to fault in */
	unsigned long block_first;	/* huge block, or ULONG_MAX */
};

static void iopfmap_fault_span(struct iopfmap_range *range,
			       unsigned long index,
			       struct iopfmap_fault_span *span)
{
	unsigned long iova = range->node.start + (index << PAGE_SHIFT);
	/* Netlink may change it meanwhile: one value for the whole fault. */
	unsigned long prefetch = READ_ONCE(range->prefetch);
	unsigned long win = ALIGN_DOWN(iova, prefetch << PAGE_SHIFT);

	/* The window is aligned in IOVA space, then clipped to the range. */
	span->fault = index;
	span->win_first = win < range->node.start ? 0 :
			  (win - range->node.start) >> PAGE_SHIFT;
	span->win_last = min((win + (prefetch << PAGE_SHIFT) - 1 -
			      range->node.start) >> PAGE_SHIFT,
			     range->npages - 1);
	span->first = span->win_first;
	span->last = span->win_last;
	span->block_first = ULONG_MAX;

	/*
	 * Snapshot the whole huge block too: if the CPU maps it with one
	 * PMD, the IO page table can map it with one entry.
	 */
	if (iopfmap_range_huge_capable(range, index)) {
		span->block_first = (ALIGN_DOWN(iova, IOPFMAP_HUGE_SIZE) -
				     range->node.start) >> PAGE_SHIFT;
		span->first = min(span->first, span->block_first);
		span->last = max(span->last,
				 span->block_first + IOPFMAP_HUGE_PAGES - 1);
	}
}

/*
 * hugetlb's walk reads the request flags of the first page of each huge
 * page it meets (or of the span's first page, inside one): give that page
 * the faulting page's flags, or a window that does not cover it faults
 * nothing in for an empty or read-only huge page. Under mmap_lock.
 */
static void iopfmap_fault_hugetlb_flags(struct mm_struct *mm,
					const struct hmm_range *hrange,
					unsigned long fault_uaddr)
{
	unsigned long head;
	struct vm_area_struct *vma = vma_lookup(mm, fault_uaddr);

	if (!vma || !is_vm_hugetlb_page(vma))
		return;
	head = max(hrange->start,
		   ALIGN_DOWN(fault_uaddr, huge_page_size(hstate_vma(vma))));
	hrange->hmm_pfns[(head - hrange->start) >> PAGE_SHIFT] |=
		hrange->hmm_pfns[(fault_uaddr - hrange->start) >> PAGE_SHIFT];
}

/*
 * Resolves a fault on @range at page @index. Returns 0 when the page is
 * mapped with the access asked for, -EFAULT when the CPU has no such page
 * (no VMA, no permission), -EBUSY when invalidations kept racing for
 * IOPFMAP_FAULT_RETRIES_MAX attempts, or another errno from the IO page
 * table. A fault-injection point (fail_function): every fault path, the
 * device workqueue's included, must answer INVALID when it fails.
 */
static noinline int iopfmap_range_fault(struct iopfmap_range *range,
					unsigned long index, bool write)
{
	unsigned int retries = 0, nomem = 0;
	struct mm_struct *mm = range->mm;
	unsigned long req = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
	struct iopfmap_fault_span span;
	struct hmm_range hrange = {
		.notifier = &range->notifier,
		.pfn_flags_mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
	};
	unsigned long *pfns, i, fault_pfn, map_first, map_last, block;
	unsigned long fault_uaddr = range->uaddr + (index << PAGE_SHIFT);
	bool whole_window = true;
	int ret;

	iopfmap_fault_span(range, index, &span);
	pfns = kvmalloc_array(span.last - span.first + 1, sizeof(*pfns),
			      GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	if (!mmget_not_zero(mm)) {
		ret = -EFAULT;		/* the process is gone */
		goto out_free;
	}
	ret = iopfmap_range_prepare(range, span.first, span.last);
	if (ret)
		goto out_mmput;
	hrange.start = range->uaddr + (span.first << PAGE_SHIFT);
	hrange.end = range->uaddr + ((span.last + 1) << PAGE_SHIFT);
	hrange.hmm_pfns = pfns;

again:
	for (;; retries++) {
		if (retries > IOPFMAP_FAULT_RETRIES_MAX) {
			ret = -EBUSY;
			goto out_mmput;
		}
		/* Fault in the window (or the page); snapshot the rest. */
		for (i = span.first; i <= span.last; i++) {
			bool in = whole_window ?
				  i >= span.win_first && i <= span.win_last :
				  i == span.fault;

			pfns[i - span.first] = in ? req : 0;
		}
		hrange.notifier_seq = mmu_interval_read_begin(&range->notifier);
		mmap_read_lock(mm);
		iopfmap_fault_hugetlb_flags(mm, &hrange, fault_uaddr);
		ret = hmm_range_fault(&hrange);
		mmap_read_unlock(mm);
		if (ret == -EBUSY) {
			iopfmap_stat_add(range, IOPFMAP_STAT_RETRIES, 1);
			continue;
		}
		if ((ret == -EFAULT || ret == -EPERM) && whole_window &&
		    span.win_first != span.win_last) {
			/*
			 * A prefetch page has no VMA or not the permission:
			 * the window is best effort, the faulting page is not.
			 */
			whole_window = false;
			retries--;
			continue;
		}
		if (ret)
			goto out_mmput;

		mutex_lock(&range->lock);
		if (mmu_interval_read_retry(&range->notifier,
					    hrange.notifier_seq)) {
			mutex_unlock(&range->lock);
			iopfmap_stat_add(range, IOPFMAP_STAT_RETRIES, 1);
			continue;
		}
		break;
	}

	/* range->lock is held and the snapshot is current. */
	if (range->mode != IOPFMAP_MODE_FAULT) {
		/* Switched to PIN meanwhile: everything is mapped. */
		ret = 0;
		goto out_unlock;
	}
	fault_pfn = pfns[span.fault - span.first];
	map_first = whole_window ? span.win_first : span.fault;
	map_last = whole_window ? span.win_last : span.fault;
	/*
	 * The whole block, when the CPU maps it with one PMD, or when the
	 * page sits in a huge entry: replacing that entry (a write upgrade)
	 * maps all of its pages again, not only the window.
	 */
	block = span.block_first == ULONG_MAX ? 0 :
		(range->node.start + (span.block_first << PAGE_SHIFT) -
		 range->huge_base) / IOPFMAP_HUGE_SIZE;
	if (span.block_first != ULONG_MAX &&
	    (hmm_pfn_to_map_order(fault_pfn) >= ilog2(IOPFMAP_HUGE_PAGES) ||
	     test_bit(block, range->iopf_huge))) {
		map_first = span.block_first;
		map_last = span.block_first + IOPFMAP_HUGE_PAGES - 1;
	}
	ret = iopfmap_range_map_pfns(range, map_first,
				     map_last - map_first + 1,
				     pfns + (map_first - span.first),
				     span.fault);
	if (ret == -ENOMEM && nomem++ < IOPFMAP_NOMEM_RETRIES &&
	    !test_bit(span.fault, range->iopf_mapped)) {
		/* No reclaim under range->lock: make room, then again. */
		mutex_unlock(&range->lock);
		if (iopfmap_make_room()) {
			iopfmap_stat_add(range, IOPFMAP_STAT_RETRIES, 1);
			goto again;
		}
		goto out_mmput;
	}
	if (!ret && (!test_bit(span.fault, range->iopf_mapped) ||
		     (write && !test_bit(span.fault, range->iopf_writable))))
		ret = -EFAULT;
	/* The faulting page is mapped: a prefetch page's ENOMEM is no error. */
	if (ret == -ENOMEM && test_bit(span.fault, range->iopf_mapped) &&
	    (!write || test_bit(span.fault, range->iopf_writable)))
		ret = 0;
out_unlock:
	mutex_unlock(&range->lock);
out_mmput:
	mmput(mm);
out_free:
	kvfree(pfns);
	return ret;
}
ALLOW_ERROR_INJECTION(iopfmap_range_fault, ERRNO);

/*
 * Answers one page request. Faults on different ranges share nothing
 * but ranges_rwsem, taken for read. @approved: userspace answered SUCCESS
 * for the page's group (a FORWARD range may be resolved; the fault was
 * counted when it was forwarded).
 */
static u32 iopfmap_handle_fault(struct iopfmap_ctx *ctx,
				const struct iopfmap_fault *fault,
				bool approved)
{
	bool write = fault->flags & IOPFMAP_FAULT_WRITE;
	struct interval_tree_node *node;
	struct iopfmap_range *range;
	u32 resp = IOPFMAP_PAGE_RESP_INVALID;
	enum iopfmap_stat outcome;
	u32 policy;
	u64 start = 0;
	int ret;

	trace_iopfmap_fault(ctx->id, fault->iova, fault->flags, fault->pasid,
			    fault->grpid);
	if (trace_iopfmap_fault_done_enabled())
		start = ktime_get_ns();
	down_read(&ctx->ranges_rwsem);
	node = interval_tree_iter_first(&ctx->ranges, fault->iova, fault->iova);
	if (!node) {
		if (!approved) {
			iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS, 1);
			iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS_INVALID,
					     1);
		}
		goto out_unlock;
	}
	range = container_of(node, struct iopfmap_range, node);
	if (!approved)
		iopfmap_stat_add(range, IOPFMAP_STAT_FAULTS, 1);

	outcome = IOPFMAP_STAT_FAULTS_INVALID;
	if ((write && !(range->flags & IOPFMAP_MAP_WRITE)) ||
	    ((fault->flags & IOPFMAP_FAULT_READ) &&
	     !(range->flags & IOPFMAP_MAP_READ)))
		goto out_count;
	/*
	 * A pinned range is wholly mapped: a device faulting on it is
	 * confused, and SUCCESS would make it retry for ever. (A fault that
	 * started before a switch to PIN finds the page mapped: SUCCESS.)
	 */
	if (READ_ONCE(range->mode) == IOPFMAP_MODE_PIN)
		goto out_count;
	/* Only userspace's SUCCESS lets a forwarded fault through. */
	policy = READ_ONCE(range->policy);
	if (policy == IOPFMAP_POLICY_REJECT ||
	    (policy == IOPFMAP_POLICY_FORWARD && !approved))
		goto out_count;

	ret = iopfmap_range_fault(range, (fault->iova - node->start) >>
				  PAGE_SHIFT, write);
	if (!ret) {
		resp = IOPFMAP_PAGE_RESP_SUCCESS;
		outcome = IOPFMAP_STAT_FAULTS_HANDLED;
	}
out_count:
	if (!approved)
		iopfmap_stat_add(range, outcome, 1);
out_unlock:
	up_read(&ctx->ranges_rwsem);
	trace_iopfmap_fault_done(ctx->id, fault->iova, resp,
				 start ? ktime_get_ns() - start : 0);
	return resp;
}

/* A page of a group that failed before it: it arrived, and was refused. */
static void iopfmap_count_skipped(struct iopfmap_ctx *ctx,
				  const struct iopfmap_fault *fault)
{
	struct interval_tree_node *node;
	struct iopfmap_range *range;

	down_read(&ctx->ranges_rwsem);
	node = interval_tree_iter_first(&ctx->ranges, fault->iova, fault->iova);
	if (node) {
		range = container_of(node, struct iopfmap_range, node);
		iopfmap_stat_add(range, IOPFMAP_STAT_FAULTS, 1);
		iopfmap_stat_add(range, IOPFMAP_STAT_FAULTS_INVALID, 1);
	} else {
		iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS, 1);
		iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS_INVALID, 1);
	}
	up_read(&ctx->ranges_rwsem);
}

/*
 * Whether the group touches a FORWARD range; fills @range_ids and counts
 * the group's faults as forwarded if so.
 */
static bool iopfmap_group_forwarded(struct iopfmap_ctx *ctx,
				    const struct iopfmap_fault *faults,
				    unsigned int nr, u32 *range_ids)
{
	struct interval_tree_node *node;
	struct iopfmap_range *range;
	bool forward = false;
	unsigned int i;

	down_read(&ctx->ranges_rwsem);
	for (i = 0; i < nr; i++) {
		node = interval_tree_iter_first(&ctx->ranges, faults[i].iova,
						faults[i].iova);
		range = node ? container_of(node, struct iopfmap_range, node) :
			       NULL;
		range_ids[i] = range ? range->id : 0;
		if (range && READ_ONCE(range->policy) == IOPFMAP_POLICY_FORWARD)
			forward = true;
	}
	for (i = 0; forward && i < nr; i++) {
		trace_iopfmap_fault(ctx->id, faults[i].iova, faults[i].flags,
				    faults[i].pasid, faults[i].grpid);
		node = interval_tree_iter_first(&ctx->ranges, faults[i].iova,
						faults[i].iova);
		if (node) {
			range = container_of(node, struct iopfmap_range, node);
			iopfmap_stat_add(range, IOPFMAP_STAT_FAULTS, 1);
			iopfmap_stat_add(range, IOPFMAP_STAT_FAULTS_FORWARDED,
					 1);
		} else {
			iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS, 1);
			iopfmap_ctx_stat_add(ctx, IOPFMAP_STAT_FAULTS_FORWARDED,
					     1);
		}
	}
	up_read(&ctx->ranges_rwsem);
	return forward;
}

int iopfmap_handle_group(struct iopfmap_ctx *ctx,
			 struct iopfmap_fault_source *src,
			 const struct iopfmap_fault *faults, unsigned int nr,
			 bool killable, u32 *resp)
{
	u32 range_ids[IOPFMAP_FAULT_GROUP_MAX];
	bool approved = false;
	unsigned int i;
	int ret;

	if (WARN_ON_ONCE(!nr || nr > IOPFMAP_FAULT_GROUP_MAX)) {
		*resp = IOPFMAP_PAGE_RESP_INVALID;
		return 0;
	}
	/*
	 * A group is forwarded whole, without a lock held while userspace
	 * thinks: the ranges may change meanwhile, and the pages are looked
	 * up again when it says SUCCESS.
	 */
	if (iopfmap_group_forwarded(ctx, faults, nr, range_ids)) {
		ret = iopfmap_queue_forward(ctx, src, faults, nr, range_ids,
					    0, killable, resp);
		if (ret || *resp != IOPFMAP_PAGE_RESP_SUCCESS)
			return ret;
		approved = true;
	}

	/*
	 * As the IOMMU core does: the first failure fails the group, and
	 * the pages after it are not resolved, only counted.
	 */
	*resp = IOPFMAP_PAGE_RESP_SUCCESS;
	for (i = 0; i < nr; i++) {
		if (*resp == IOPFMAP_PAGE_RESP_SUCCESS)
			*resp = iopfmap_handle_fault(ctx, &faults[i], approved);
		else if (!approved)
			iopfmap_count_skipped(ctx, &faults[i]);
	}
	return 0;
}
