// SPDX-License-Identifier: GPL-2.0
/*
 * Ranges: IOVA windows backed by a process's memory, their iopf_mapped
 * bitmaps, and their removal from the IO page table when the CPU's page
 * tables change (the mmu_interval_notifier callback).
 *
 * The bitmaps never run ahead of the IO page table: a bit is set only
 * after the map call succeeded, and cleared from the size the unmap call
 * reports. Huge (2 MiB) entries are always unmapped whole, at their own
 * address, so the IO page table never has to split one.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/error-injection.h>
#include <linux/hmm.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "iopfmap_private.h"
#include "iopfmap_trace.h"

/* Every context's counters since load, per CPU: no shared cache line. */
struct iopfmap_pcpu_stats {
	u64 stats[IOPFMAP_STAT_NR];
};

static DEFINE_PER_CPU(struct iopfmap_pcpu_stats, iopfmap_pcpu_stats);

void iopfmap_global_stats(u64 *stats)
{
	unsigned int cpu, i;

	memset(stats, 0, sizeof(u64) * IOPFMAP_STAT_NR);
	for_each_possible_cpu(cpu)
		for (i = 0; i < IOPFMAP_STAT_NR; i++)
			stats[i] += per_cpu(iopfmap_pcpu_stats, cpu).stats[i];
}

void iopfmap_ctx_stat_add(struct iopfmap_ctx *ctx, enum iopfmap_stat stat,
			  s64 n)
{
	atomic64_add(n, &ctx->stats[stat]);
	this_cpu_add(iopfmap_pcpu_stats.stats[stat], n);
}

void iopfmap_stat_add(struct iopfmap_range *range, enum iopfmap_stat stat,
		      s64 n)
{
	atomic64_add(n, &range->stats[stat]);
	iopfmap_ctx_stat_add(range->ctx, stat, n);
}

static unsigned long iopfmap_range_iova(struct iopfmap_range *range,
					unsigned long index)
{
	return range->node.start + (index << PAGE_SHIFT);
}

static unsigned long iopfmap_range_block(struct iopfmap_range *range,
					 unsigned long index)
{
	return (iopfmap_range_iova(range, index) - range->huge_base) /
	       IOPFMAP_HUGE_SIZE;
}

/* Base pages from @iova to the next huge block edge. */
static unsigned long iopfmap_block_left(unsigned long iova)
{
	return IOPFMAP_HUGE_PAGES -
	       ((iova >> PAGE_SHIFT) & (IOPFMAP_HUGE_PAGES - 1));
}

/*
 * Whether the page at @index may sit in a huge entry: the IO page table
 * has them, IOVA and VA are equally aligned within a block, and the block
 * around the page lies inside the range.
 */
bool iopfmap_range_huge_capable(struct iopfmap_range *range,
				unsigned long index)
{
	unsigned long iova = iopfmap_range_iova(range, index);
	unsigned long block = ALIGN_DOWN(iova, IOPFMAP_HUGE_SIZE);

	return (range->iopt->pgsize_bitmap & IOPFMAP_HUGE_SIZE) &&
	       IS_ALIGNED(range->node.start - range->uaddr,
			  IOPFMAP_HUGE_SIZE) &&
	       block >= range->node.start &&
	       block + IOPFMAP_HUGE_SIZE - 1 <= range->node.last;
}

/*
 * The device may have written any page it could write: mark them dirty
 * before they leave the IO page table, while the CPU still maps them (an
 * invalidation runs before the CPU lets go of a page). Writeback and
 * reclaim then see the device's data. Pinned pages are dirtied when they
 * are unpinned, with the folio lock.
 */
static void iopfmap_range_dirty(struct iopfmap_range *range,
				unsigned long first, unsigned long last)
{
	struct folio *prev = NULL;
	unsigned long index = first;

	if (range->pinned)
		return;

	for_each_set_bit_from(index, range->iopf_writable, last + 1) {
		unsigned long iova, pfn, end;
		phys_addr_t phys;
		struct folio *folio;

		iova = iopfmap_range_iova(range, index);
		phys = range->iopt->ops->iova_to_phys(range->iopt, iova);
		if (!phys)
			continue;
		pfn = PHYS_PFN(phys);
		folio = page_folio(pfn_to_page(pfn));
		if (folio != prev)
			folio_mark_dirty(folio);
		prev = folio;
		if (!test_bit(iopfmap_range_block(range, index),
			      range->iopf_huge))
			continue;
		/*
		 * A huge entry maps 512 contiguous pages, which may be several
		 * folios (pages that happen to be contiguous, a split THP):
		 * dirty each folio of the rest of the block once.
		 */
		end = min(index + iopfmap_block_left(iova), last + 1);
		pfn -= index;
		for (index++; index < end;
		     index = folio_pfn(folio) + folio_nr_pages(folio) - pfn) {
			folio = page_folio(pfn_to_page(pfn + index));
			if (folio != prev)
				folio_mark_dirty(folio);
			prev = folio;
		}
		index--;	/* for_each_set_bit_from() goes on after it */
	}
}

/* Page indexes [*first, *last] of the IOVA span, clipped to the range. */
static void iopfmap_range_clip(struct iopfmap_range *range,
			       unsigned long iova, unsigned long bytes,
			       unsigned long *first, unsigned long *last)
{
	*first = (max(iova, range->node.start) - range->node.start) >>
		 PAGE_SHIFT;
	*last = (min(iova + bytes - 1, range->node.last) -
		 range->node.start) >> PAGE_SHIFT;
}

/* Set bits in [first, last]: a chunk, at most a huge block, in practice. */
static unsigned long iopfmap_bits_in(const unsigned long *bits,
				     unsigned long first, unsigned long last)
{
	unsigned long bit = first, n = 0;

	for_each_set_bit_from(bit, bits, last + 1)
		n++;
	return n;
}

/*
 * Unmaps every mapped page of [first, last] (page indexes) and gathers the
 * IOTLB flush in @gather; the caller syncs. Returns the pages unmapped.
 * Called with range->lock held; never sleeps.
 */
static unsigned long iopfmap_range_unmap(struct iopfmap_range *range,
					 unsigned long first,
					 unsigned long last,
					 struct iopfmap_gather *gather)
{
	const struct iopfmap_iopt_ops *ops = range->iopt->ops;
	unsigned long index, end, total = 0;

	lockdep_assert_held(&range->lock);
	index = find_next_bit(range->iopf_mapped, last + 1, first);
	while (index <= last) {
		unsigned long block = iopfmap_range_block(range, index);
		unsigned long iova, size, done, cleared, start;

		if (test_bit(block, range->iopf_huge)) {
			iova = range->huge_base + block * IOPFMAP_HUGE_SIZE;
			size = IOPFMAP_HUGE_SIZE;
		} else {
			/* A run of base pages, never across a block edge. */
			iova = iopfmap_range_iova(range, index);
			end = min(last + 1, index + iopfmap_block_left(iova));
			end = find_next_zero_bit(range->iopf_mapped, end,
						 index);
			size = (end - index) << PAGE_SHIFT;
		}

		iopfmap_range_clip(range, iova, size, &start, &end);
		iopfmap_range_dirty(range, start, end);

		done = ops->unmap(range->iopt, iova, size, gather);
		trace_iopfmap_unmap(range->ctx->id, iova, size, done, 0);
		if (WARN_ONCE(!done, "iopfmap: %#lx in bitmap, not mapped\n",
			      iova))
			done = PAGE_SIZE;
		/* Clear what really went, which may be more than asked. */
		iopfmap_range_clip(range, iova, done, &start, &end);
		cleared = iopfmap_bits_in(range->iopf_mapped, start, end);
		bitmap_clear(range->iopf_mapped, start, end - start + 1);
		bitmap_clear(range->iopf_writable, start, end - start + 1);
		if (done >= IOPFMAP_HUGE_SIZE)
			clear_bit(block, range->iopf_huge);
		total += cleared;
		index = find_next_bit(range->iopf_mapped, last + 1, end + 1);
	}
	if (total)
		iopfmap_stat_add(range, IOPFMAP_STAT_PAGES_UNMAPPED, total);
	return total;
}

/* Unmaps [first, last] and waits until the device cannot reach it. */
static unsigned long iopfmap_range_unmap_sync(struct iopfmap_range *range,
					      unsigned long first,
					      unsigned long last)
{
	struct iopfmap_gather gather;
	unsigned long n;

	iopfmap_gather_init(&gather);
	n = iopfmap_range_unmap(range, first, last, &gather);
	if (n)
		range->iopt->ops->iotlb_sync(range->iopt, &gather);
	return n;
}

/*
 * Maps one entry: the one call that can fail for want of memory under
 * range->lock (GFP_NOWAIT). A fault-injection point (fail_function): the
 * callers' retries outside the lock are tested through it.
 */
static noinline int iopfmap_iopt_map_entry(struct iopfmap_iopt *iopt,
					   unsigned long iova,
					   phys_addr_t paddr, size_t size,
					   int prot)
{
	return iopt->ops->map(iopt, iova, paddr, size, prot,
			      GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT);
}
ALLOW_ERROR_INJECTION(iopfmap_iopt_map_entry, ERRNO);

/*
 * What a map that failed with ENOMEM under range->lock (no reclaim there)
 * waits for before it is tried again, with the lock dropped: a sleeping
 * allocation lets reclaim make the room, in the caller's memory cgroup.
 * False when not even that succeeds.
 */
bool iopfmap_make_room(void)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_NOWARN |
				       __GFP_RETRY_MAYFAIL);

	if (!page)
		return false;
	__free_page(page);
	return true;
}

/*
 * Enters pages [first, first + npages) into the IO page table from
 * @hmm_pfns (hmm_range_fault() format: HMM_PFN_VALID, HMM_PFN_WRITE). Pages
 * without a valid PFN are skipped, and so are pages already mapped with
 * enough permission. The page at @fault_index (ULONG_MAX: none) is the one
 * the device asked for: if it is mapped read-only and may now be written,
 * its entry is replaced, and with a 2 MiB entry every page of the block in
 * the span is mapped again.
 *
 * Each map call creates one entry that the bitmaps describe: a 2 MiB
 * entry for a block whose 512 pages are physically contiguous and aligned
 * (when every domain has 2 MiB pages), else one 4 KiB entry per page. A
 * longer span in one call would let the IOMMU choose an entry the bitmaps
 * cannot describe (AMD's v1 table maps every power of two, virtio-iommu
 * makes one mapping per request), which unmapping one page of it then
 * breaks. Called with range->lock held. Returns 0 or the first map error;
 * what was mapped stays mapped.
 */
int iopfmap_range_map_pfns(struct iopfmap_range *range, unsigned long first,
			   unsigned long npages, const unsigned long *hmm_pfns,
			   unsigned long fault_index)
{
	unsigned long i = 0, mapped = 0, prefetched = 0, huge = 0;
	int base_prot = (range->flags & IOPFMAP_MAP_READ ? IOMMU_READ : 0) |
			IOMMU_CACHE;
	int ret = 0;

	lockdep_assert_held(&range->lock);
	/* A write upgrade: the read-only entry goes, whatever its size. */
	if (fault_index >= first && fault_index - first < npages &&
	    test_bit(fault_index, range->iopf_mapped) &&
	    !test_bit(fault_index, range->iopf_writable) &&
	    (range->flags & IOPFMAP_MAP_WRITE)) {
		unsigned long f = hmm_pfns[fault_index - first];

		if ((f & HMM_PFN_VALID) && !(f & HMM_PFN_ERROR) &&
		    (f & HMM_PFN_WRITE))
			iopfmap_range_unmap_sync(range, fault_index,
						 fault_index);
	}

	while (i < npages) {
		unsigned long index = first + i, pfn, n, iova, block_left, k;
		bool writable, as_huge;
		int prot;

		if (!(hmm_pfns[i] & HMM_PFN_VALID) ||
		    (hmm_pfns[i] & HMM_PFN_ERROR) ||
		    test_bit(index, range->iopf_mapped)) {
			i++;
			continue;
		}
		writable = (range->flags & IOPFMAP_MAP_WRITE) &&
			   (hmm_pfns[i] & HMM_PFN_WRITE);
		iova = iopfmap_range_iova(range, index);
		pfn = hmm_pfns[i] & ~HMM_PFN_FLAGS;
		block_left = iopfmap_block_left(iova);
		/* A run: contiguous, same permission, never across a block. */
		for (n = 1; n < block_left && i + n < npages; n++) {
			unsigned long next = hmm_pfns[i + n];

			if (!(next & HMM_PFN_VALID) || (next & HMM_PFN_ERROR) ||
			    (next & ~HMM_PFN_FLAGS) != pfn + n ||
			    writable != ((range->flags & IOPFMAP_MAP_WRITE) &&
					 (next & HMM_PFN_WRITE)) ||
			    test_bit(index + n, range->iopf_mapped))
				break;
		}

		prot = base_prot | (writable ? IOMMU_WRITE : 0);
		as_huge = n == IOPFMAP_HUGE_PAGES &&
			  (range->iopt->pgsize_bitmap & IOPFMAP_HUGE_SIZE) &&
			  IS_ALIGNED(PFN_PHYS(pfn), IOPFMAP_HUGE_SIZE);
		/* No reclaim under range->lock: see struct iopfmap_iopt_ops. */
		for (k = 0; k < n; k += as_huge ? n : 1) {
			size_t size = as_huge ? IOPFMAP_HUGE_SIZE : PAGE_SIZE;

			ret = iopfmap_iopt_map_entry(range->iopt,
						     iova + (k << PAGE_SHIFT),
						     PFN_PHYS(pfn + k), size,
						     prot);
			trace_iopfmap_map(range->ctx->id,
					  iova + (k << PAGE_SHIFT), size,
					  ret ? 0 : size, prot);
			if (ret)
				break;
		}
		/* What was mapped of the run, k pages, is in the table. */
		n = k;
		bitmap_set(range->iopf_mapped, index, n);
		if (writable)
			bitmap_set(range->iopf_writable, index, n);
		if (as_huge && n) {
			set_bit(iopfmap_range_block(range, index),
				range->iopf_huge);
			huge++;
		} else if (fault_index != ULONG_MAX) {
			prefetched += n - (fault_index >= index &&
					   fault_index < index + n);
		}
		mapped += n;
		i += n;
		if (ret)
			break;
	}
	if (mapped)
		iopfmap_stat_add(range, IOPFMAP_STAT_PAGES_MAPPED, mapped);
	if (prefetched)
		iopfmap_stat_add(range, IOPFMAP_STAT_PAGES_PREFETCHED,
				 prefetched);
	if (huge)
		iopfmap_stat_add(range, IOPFMAP_STAT_HUGE_MAPPINGS, huge);
	return ret;
}

/*
 * Lets the IO page table allocate, ahead of range->lock, what mapping
 * pages [first, last] will need.
 */
int iopfmap_range_prepare(struct iopfmap_range *range, unsigned long first,
			  unsigned long last)
{
	const struct iopfmap_iopt_ops *ops = range->iopt->ops;

	if (!ops->prepare)
		return 0;
	return ops->prepare(range->iopt, iopfmap_range_iova(range, first),
			    (last - first + 1) << PAGE_SHIFT,
			    GFP_KERNEL_ACCOUNT);
}

/*
 * The invalidate callback: the CPU's page tables change in [nrange->start,
 * nrange->end). Pages of a FAULT range in there leave the IO page table,
 * with one IOTLB sync, before the callback returns. A PIN range keeps its
 * pinned pages, as VFIO does.
 */
static bool iopfmap_range_invalidate(struct mmu_interval_notifier *mni,
				     const struct mmu_notifier_range *nrange,
				     unsigned long cur_seq)
{
	struct iopfmap_range *range =
		container_of(mni, struct iopfmap_range, notifier);
	unsigned long start, end, first, last, unmapped = 0;

	if (mmu_notifier_range_blockable(nrange))
		mutex_lock(&range->lock);
	else if (!mutex_trylock(&range->lock))
		return false;	/* the caller retries in a blockable context */

	mmu_interval_set_seq(mni, cur_seq);
	iopfmap_stat_add(range, IOPFMAP_STAT_INVALIDATIONS, 1);
	if (range->mode == IOPFMAP_MODE_FAULT) {
		start = max(nrange->start, range->uaddr);
		end = min(nrange->end, range->uaddr +
			  (range->npages << PAGE_SHIFT));
		first = (start - range->uaddr) >> PAGE_SHIFT;
		last = (end - 1 - range->uaddr) >> PAGE_SHIFT;
		if (start < end)
			unmapped = iopfmap_range_unmap_sync(range, first, last);
		if (unmapped)
			iopfmap_stat_add(range,
					 IOPFMAP_STAT_INVALIDATIONS_HANDLED, 1);
	}
	mutex_unlock(&range->lock);
	trace_iopfmap_invalidate(range->ctx->id, nrange->start, nrange->end,
				 nrange->event, unmapped);
	iopfmap_count_invalidation(range->ctx);
	return true;
}

static const struct mmu_interval_notifier_ops iopfmap_range_mn_ops = {
	.invalidate = iopfmap_range_invalidate,
};

/*
 * Charges (@inc) or uncharges the range's pages to its mm's locked_vm,
 * against the limit of the process that mapped it, as VFIO does: the
 * command may come from another process sharing the context. Caller
 * holds a user of the mm (mmget).
 */
static int iopfmap_range_account(struct iopfmap_range *range, bool inc)
{
	int ret;

	mmap_write_lock(range->mm);
	ret = __account_locked_vm(range->mm, range->npages, inc, range->task,
				  range->lock_cap);
	mmap_write_unlock(range->mm);
	return ret;
}

/* Pins every page of @range in its mm and charges them to locked_vm. */
static struct page **iopfmap_range_pin(struct iopfmap_range *range)
{
	struct mm_struct *mm = range->mm;
	unsigned int gup_flags = FOLL_LONGTERM;
	unsigned long pinned = 0;
	struct page **pages;
	long ret;

	if (range->flags & IOPFMAP_MAP_WRITE)
		gup_flags |= FOLL_WRITE;
	if (!mmget_not_zero(mm))
		return ERR_PTR(-EFAULT);
	ret = iopfmap_range_account(range, true);
	if (ret)
		goto out_mmput;
	pages = kvcalloc(range->npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages) {
		ret = -ENOMEM;
		goto out_unaccount;
	}

	mmap_read_lock(mm);
	while (pinned < range->npages) {
		ret = iopfmap_pin_user_pages_remote(mm, range->uaddr +
						    (pinned << PAGE_SHIFT),
						    range->npages - pinned,
						    gup_flags, pages + pinned);
		if (ret <= 0) {
			ret = ret ?: -EFAULT;
			break;
		}
		pinned += ret;
		ret = 0;
	}
	mmap_read_unlock(mm);
	if (ret)
		goto out_unpin;
	mmput(mm);
	iopfmap_stat_add(range, IOPFMAP_STAT_PAGES_PINNED, range->npages);
	return pages;

out_unpin:
	unpin_user_pages(pages, pinned);
	kvfree(pages);
out_unaccount:
	iopfmap_range_account(range, false);
out_mmput:
	mmput(mm);
	return ERR_PTR(ret);
}

static void iopfmap_range_unpin(struct iopfmap_range *range,
				struct page **pages)
{
	unpin_user_pages_dirty_lock(pages, range->npages,
				    range->flags & IOPFMAP_MAP_WRITE);
	kvfree(pages);
	/* An mm without users has no locked_vm left to uncharge. */
	if (mmget_not_zero(range->mm)) {
		iopfmap_range_account(range, false);
		mmput(range->mm);
	}
	iopfmap_stat_add(range, IOPFMAP_STAT_PAGES_PINNED, -range->npages);
}

/* Maps every pinned page; called with range->lock held. */
static int iopfmap_range_map_pinned(struct iopfmap_range *range,
				    struct page **pages, unsigned long *pfns)
{
	unsigned long i, j, n;
	int ret = 0;

	for (i = 0; i < range->npages && !ret; i += n) {
		n = min_t(unsigned long, range->npages - i, IOPFMAP_HUGE_PAGES);
		for (j = 0; j < n; j++)
			pfns[j] = page_to_pfn(pages[i + j]) | HMM_PFN_VALID |
				  HMM_PFN_WRITE;
		ret = iopfmap_range_map_pfns(range, i, n, pfns, ULONG_MAX);
	}
	return ret;
}

/*
 * Switches @range to @mode. Pinning happens before range->lock is taken:
 * pinning can fault pages in, whose invalidations take that lock.
 */
static int iopfmap_range_switch_mode(struct iopfmap_range *range, u32 mode)
{
	unsigned long *pfns = NULL;
	struct page **pages = NULL;
	unsigned int tries = 0;
	int ret = 0;

	if (mode == IOPFMAP_MODE_PIN) {
		/* Everything that allocates happens before range->lock. */
		pfns = kmalloc_array(IOPFMAP_HUGE_PAGES, sizeof(*pfns),
				     GFP_KERNEL);
		if (!pfns)
			return -ENOMEM;
		ret = iopfmap_range_prepare(range, 0, range->npages - 1);
		if (!ret) {
			pages = iopfmap_range_pin(range);
			if (IS_ERR(pages))
				ret = PTR_ERR(pages);
		}
		if (ret) {
			kfree(pfns);
			return ret;
		}
	}

again:
	mutex_lock(&range->lock);
	iopfmap_range_unmap_sync(range, 0, range->npages - 1);
	if (mode == IOPFMAP_MODE_PIN) {
		ret = iopfmap_range_map_pinned(range, pages, pfns);
		if (ret) {
			iopfmap_range_unmap_sync(range, 0, range->npages - 1);
			/* No reclaim under range->lock: make room, again. */
			if (ret == -ENOMEM && tries++ < IOPFMAP_NOMEM_RETRIES) {
				mutex_unlock(&range->lock);
				if (iopfmap_make_room())
					goto again;
				mutex_lock(&range->lock);
			}
		} else {
			range->pinned = pages;
			pages = NULL;
		}
	} else {
		pages = range->pinned;
		range->pinned = NULL;
	}
	if (!ret)
		WRITE_ONCE(range->mode, mode);
	mutex_unlock(&range->lock);

	/* Out of the IO page table now: the device cannot reach them. */
	if (pages)
		iopfmap_range_unpin(range, pages);
	kfree(pfns);
	return ret;
}

static void iopfmap_range_free(struct iopfmap_range *range)
{
	if (range->mm)
		mmdrop(range->mm);
	if (range->task)
		put_task_struct(range->task);
	kvfree(range->iopf_mapped);
	kvfree(range->iopf_writable);
	kvfree(range->iopf_huge);
	mutex_destroy(&range->lock);
	kfree(range);
}

/* Ends a range that is out of the tree; see "Destruction order". */
static void iopfmap_range_destroy(struct iopfmap_range *range)
{
	struct page **pages;

	mutex_lock(&range->lock);
	iopfmap_range_unmap_sync(range, 0, range->npages - 1);
	pages = range->pinned;
	range->pinned = NULL;
	mutex_unlock(&range->lock);

	mmu_interval_notifier_remove(&range->notifier);
	if (pages)
		iopfmap_range_unpin(range, pages);
	iopfmap_range_free(range);
}

/* The range after @prev (NULL: the first) in IOVA order, or NULL. */
static struct iopfmap_range *iopfmap_ctx_next_range(struct iopfmap_ctx *ctx,
						    struct iopfmap_range *prev)
{
	struct interval_tree_node *node;

	node = prev ? interval_tree_iter_next(&prev->node, 0, ULONG_MAX) :
		      interval_tree_iter_first(&ctx->ranges, 0, ULONG_MAX);
	return node ? container_of(node, struct iopfmap_range, node) : NULL;
}

/*
 * Enters what @range maps into one more IO page table through @map: the
 * pinned pages of a PIN range, the mapped entries of a FAULT range (read
 * back from the context's IO page table), with the same permissions and
 * the same entries: one call per 2 MiB entry or per 4 KiB page (see
 * iopfmap_range_map_pfns()). Called with range->lock held.
 */
static int iopfmap_range_replay(struct iopfmap_range *range,
				iopfmap_replay_fn map, void *arg)
{
	struct iopfmap_iopt *iopt = range->iopt;
	unsigned long index = 0;
	int ret = 0;

	lockdep_assert_held(&range->lock);
	while (!ret) {
		int prot = (range->flags & IOPFMAP_MAP_READ ? IOMMU_READ : 0) |
			   IOMMU_CACHE;
		unsigned long iova, block;
		phys_addr_t paddr;
		size_t size = PAGE_SIZE;

		index = find_next_bit(range->iopf_mapped, range->npages, index);
		if (index >= range->npages)
			break;
		iova = iopfmap_range_iova(range, index);
		block = iopfmap_range_block(range, index);
		if (test_bit(index, range->iopf_writable))
			prot |= IOMMU_WRITE;
		if (test_bit(block, range->iopf_huge)) {
			/* A huge block lies wholly inside its range. */
			iova = range->huge_base + block * IOPFMAP_HUGE_SIZE;
			index = (iova - range->node.start) >> PAGE_SHIFT;
			size = IOPFMAP_HUGE_SIZE;
		}
		paddr = range->pinned ? page_to_phys(range->pinned[index]) :
			iopt->ops->iova_to_phys(iopt, iova);
		if (WARN_ON_ONCE(!paddr))
			return -EFAULT;
		ret = map(arg, iova, paddr, size, prot);
		index += size >> PAGE_SHIFT;
	}
	return ret;
}

/*
 * Replays every range into a new IO page table (a domain joining the
 * context's set). The caller holds ctx->lock and ranges_rwsem for write:
 * no fault maps meanwhile, and each range's lock keeps its invalidations
 * out while it is copied.
 */
int iopfmap_ctx_replay(struct iopfmap_ctx *ctx, iopfmap_replay_fn map,
		       void *arg)
{
	struct iopfmap_range *range = NULL;
	int ret = 0;

	lockdep_assert_held(&ctx->lock);
	lockdep_assert_held_write(&ctx->ranges_rwsem);
	while ((range = iopfmap_ctx_next_range(ctx, range))) {
		mutex_lock(&range->lock);
		ret = iopfmap_range_replay(range, map, arg);
		mutex_unlock(&range->lock);
		if (ret)
			break;
	}
	return ret;
}

/*
 * Empties every FAULT range (the last domain is leaving: afterwards no IO
 * page table could be read back to replay them). PIN ranges keep their
 * pinned pages and their bits, and are replayed from the pins. Caller
 * holds ctx->lock and ranges_rwsem for write.
 */
void iopfmap_ctx_unmap_fault_ranges(struct iopfmap_ctx *ctx)
{
	struct iopfmap_range *range = NULL;

	lockdep_assert_held_write(&ctx->ranges_rwsem);
	while ((range = iopfmap_ctx_next_range(ctx, range))) {
		mutex_lock(&range->lock);
		if (range->mode == IOPFMAP_MODE_FAULT)
			iopfmap_range_unmap_sync(range, 0, range->npages - 1);
		mutex_unlock(&range->lock);
	}
}

/*
 * Waits until no range lock holder still uses what it read from the IO
 * page table before a change of the domain set: unmap and IOTLB sync pairs
 * and invalidations run under range->lock. Caller holds ranges_rwsem for
 * write (no fault or query runs).
 */
void iopfmap_ctx_ranges_barrier(struct iopfmap_ctx *ctx)
{
	struct iopfmap_range *range = NULL;

	lockdep_assert_held_write(&ctx->ranges_rwsem);
	while ((range = iopfmap_ctx_next_range(ctx, range))) {
		mutex_lock(&range->lock);
		mutex_unlock(&range->lock);
	}
}

/* Whether every range lies in [start, last]. Caller holds ctx->lock. */
bool iopfmap_ctx_ranges_within(struct iopfmap_ctx *ctx, unsigned long start,
			       unsigned long last)
{
	struct iopfmap_range *range = NULL;

	lockdep_assert_held(&ctx->lock);
	while ((range = iopfmap_ctx_next_range(ctx, range)))
		if (range->node.start < start || range->node.last > last)
			return false;
	return true;
}

void iopfmap_ctx_init_ranges(struct iopfmap_ctx *ctx)
{
	init_rwsem(&ctx->ranges_rwsem);
	ctx->ranges = RB_ROOT_CACHED;
}

/* At release(): no ioctl, no fault source is left. */
void iopfmap_ctx_destroy_ranges(struct iopfmap_ctx *ctx)
{
	struct interval_tree_node *node;

	while ((node = interval_tree_iter_first(&ctx->ranges, 0, ULONG_MAX))) {
		interval_tree_remove(node, &ctx->ranges);
		iopfmap_range_destroy(container_of(node, struct iopfmap_range,
						   node));
	}
}

/*
 * The context's IO page table, if [iova, iova + length) lies in its
 * aperture; else ERR_PTR(-ENODEV) (no table yet) or ERR_PTR(-ERANGE).
 */
static struct iopfmap_iopt *iopfmap_ctx_iopt_for(struct iopfmap_ctx *ctx,
						 u64 iova, u64 length)
{
	/* Pairs with smp_store_release() when the table is set. */
	struct iopfmap_iopt *iopt = smp_load_acquire(&ctx->iopt);

	if (!iopt)
		return ERR_PTR(-ENODEV);
	if (iova < iopt->iova_start || iova > iopt->iova_last ||
	    length - 1 > iopt->iova_last - iova)
		return ERR_PTR(-ERANGE);
	return iopt;
}

int iopfmap_map(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_map *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	unsigned long nblocks, huge_base, last;
	struct iopfmap_range *range;
	struct iopfmap_iopt *iopt;
	int ret;

	if (cmd->__reserved || cmd->__reserved2)
		return -EOPNOTSUPP;
	if (!(cmd->flags & (IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)) ||
	    ((cmd->flags & IOPFMAP_MAP_PIN) &&
	     (cmd->flags & IOPFMAP_MAP_FORWARD)) ||
	    !cmd->length ||
	    !PAGE_ALIGNED(cmd->iova | cmd->vaddr | cmd->length) ||
	    cmd->iova + cmd->length - 1 < cmd->iova ||
	    cmd->vaddr + cmd->length - 1 < cmd->vaddr ||
	    cmd->length > IOPFMAP_MAP_LENGTH_MAX ||
	    cmd->prefetch_pages > IOPFMAP_PREFETCH_MAX ||
	    (cmd->prefetch_pages && !is_power_of_2(cmd->prefetch_pages)))
		return -EINVAL;

	iopt = iopfmap_ctx_iopt_for(ctx, cmd->iova, cmd->length);
	if (IS_ERR(iopt))
		return PTR_ERR(iopt);
	if (!access_ok(u64_to_user_ptr(cmd->vaddr), cmd->length))
		return -EFAULT;

	range = kzalloc(sizeof(*range), GFP_KERNEL_ACCOUNT);
	if (!range)
		return -ENOMEM;
	last = cmd->iova + cmd->length - 1;
	range->node.start = cmd->iova;
	range->node.last = last;
	range->ctx = ctx;
	range->iopt = iopt;
	range->uaddr = cmd->vaddr;
	range->npages = cmd->length >> PAGE_SHIFT;
	range->flags = cmd->flags;
	range->prefetch = max_t(u32, cmd->prefetch_pages, 1);
	range->policy = cmd->flags & IOPFMAP_MAP_FORWARD ?
			IOPFMAP_POLICY_FORWARD : IOPFMAP_POLICY_RESOLVE;
	range->mode = IOPFMAP_MODE_FAULT;
	mutex_init(&range->lock);
	range->mm = current->mm;
	mmgrab(range->mm);
	range->task = get_task_struct(current->group_leader);
	range->lock_cap = capable(CAP_IPC_LOCK);
	huge_base = ALIGN_DOWN(cmd->iova, IOPFMAP_HUGE_SIZE);
	range->huge_base = huge_base;
	nblocks = (ALIGN_DOWN(last, IOPFMAP_HUGE_SIZE) - huge_base) /
		  IOPFMAP_HUGE_SIZE + 1;

	ret = -ENOMEM;
	/* Up to 128 MiB each: ENOMEM, not a warning, when that fails. */
	range->iopf_mapped = kvcalloc(BITS_TO_LONGS(range->npages),
				      sizeof(long),
				      GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	range->iopf_writable = kvcalloc(BITS_TO_LONGS(range->npages),
					sizeof(long),
					GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	range->iopf_huge = kvcalloc(BITS_TO_LONGS(nblocks), sizeof(long),
				    GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!range->iopf_mapped || !range->iopf_writable || !range->iopf_huge)
		goto err_free;

	/*
	 * The notifier goes in first: a CPU page table change from here on
	 * is seen, and until the range is in the tree nothing is mapped.
	 */
	ret = mmu_interval_notifier_insert(&range->notifier, current->mm,
					   range->uaddr, cmd->length,
					   &iopfmap_range_mn_ops);
	if (ret)
		goto err_free;

	mutex_lock(&ctx->lock);
	/* The aperture can shrink and holes appear as devices attach. */
	iopt = iopfmap_ctx_iopt_for(ctx, cmd->iova, cmd->length);
	ret = PTR_ERR_OR_ZERO(iopt);
	if (!ret)
		ret = iopfmap_ctx_check_reserved(ctx, range->node.start,
						 range->node.last);
	if (ret)
		goto err_unlock;
	if (interval_tree_iter_first(&ctx->ranges, range->node.start,
				     range->node.last)) {
		ret = -EEXIST;
		goto err_unlock;
	}
	/* Ids are not reused: a stale fault record cannot name a new range. */
	range->id = ctx->next_range_id + 1 ?: 1;
	cmd->out_range_id = range->id;
	/* Before anything is pinned: failing here changes nothing. */
	ret = iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		goto err_unlock;
	ctx->next_range_id = range->id;
	if (cmd->flags & IOPFMAP_MAP_PIN) {
		ret = iopfmap_range_switch_mode(range, IOPFMAP_MODE_PIN);
		if (ret)
			goto err_unlock;
	}
	down_write(&ctx->ranges_rwsem);
	interval_tree_insert(&range->node, &ctx->ranges);
	up_write(&ctx->ranges_rwsem);
	mutex_unlock(&ctx->lock);
	return 0;

err_unlock:
	mutex_unlock(&ctx->lock);
	mmu_interval_notifier_remove(&range->notifier);
err_free:
	iopfmap_range_free(range);
	return ret;
}

int iopfmap_unmap(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_unmap *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	struct iopfmap_range *range, *tmp;
	struct interval_tree_node *node;
	unsigned long first, last;
	LIST_HEAD(doomed);
	u64 unmapped = 0;
	int ret = 0;

	if (cmd->flags & IOPFMAP_UNMAP_ALL) {
		if (cmd->iova || cmd->length)
			return -EINVAL;
		first = 0;
		last = ULONG_MAX;
	} else {
		if (!cmd->length || !PAGE_ALIGNED(cmd->iova | cmd->length) ||
		    cmd->iova + cmd->length - 1 < cmd->iova)
			return -EINVAL;
		first = cmd->iova;
		last = cmd->iova + cmd->length - 1;
	}

	mutex_lock(&ctx->lock);
	/* Ranges are never split: refuse before changing anything. */
	for (node = interval_tree_iter_first(&ctx->ranges, first, last); node;
	     node = interval_tree_iter_next(node, first, last)) {
		if (node->start < first || node->last > last) {
			ret = -EINVAL;
			goto out_unlock;
		}
		range = container_of(node, struct iopfmap_range, node);
		list_add_tail(&range->doomed, &doomed);
		unmapped += node->last - node->start + 1;
	}

	/* Waits for the faults in flight; none can find these ranges after. */
	down_write(&ctx->ranges_rwsem);
	list_for_each_entry(range, &doomed, doomed)
		interval_tree_remove(&range->node, &ctx->ranges);
	up_write(&ctx->ranges_rwsem);

	list_for_each_entry_safe(range, tmp, &doomed, doomed)
		iopfmap_range_destroy(range);
	if (!unmapped)
		ret = -ENOENT;
out_unlock:
	mutex_unlock(&ctx->lock);
	if (ret)
		return ret;
	cmd->out_unmapped = unmapped;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

int iopfmap_set_mode(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_set_mode *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	struct interval_tree_node *node;
	struct iopfmap_range *range;
	int ret = 0;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	if (cmd->mode != IOPFMAP_MODE_FAULT && cmd->mode != IOPFMAP_MODE_PIN)
		return -EINVAL;

	/* ctx->lock keeps the range in the tree. */
	mutex_lock(&ctx->lock);
	node = interval_tree_iter_first(&ctx->ranges, cmd->iova, cmd->iova);
	if (!node || node->start != cmd->iova) {
		ret = -ENOENT;
		goto out_unlock;
	}
	range = container_of(node, struct iopfmap_range, node);
	/* Netlink changes the policy under ctx->lock too. */
	if (cmd->mode == IOPFMAP_MODE_PIN &&
	    range->policy == IOPFMAP_POLICY_FORWARD) {
		ret = -EINVAL;
		goto out_unlock;
	}
	/* Only ctx->lock holders change the mode: reading it here is stable. */
	if (range->mode != cmd->mode)
		ret = iopfmap_range_switch_mode(range, cmd->mode);
out_unlock:
	mutex_unlock(&ctx->lock);
	return ret;
}

int iopfmap_get_stats(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_stats *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	struct interval_tree_node *node;
	atomic64_t *stats = ctx->stats;
	u64 *out = &cmd->out_faults;
	int i, ret = 0;

	BUILD_BUG_ON(offsetof(struct iopfmap_stats, out_pages_pinned) -
		     offsetof(struct iopfmap_stats, out_faults) !=
		     (IOPFMAP_STAT_NR - 1) * sizeof(u64));

	if (!(cmd->flags & IOPFMAP_STATS_RANGE) && cmd->iova)
		return -EINVAL;

	down_read(&ctx->ranges_rwsem);
	if (cmd->flags & IOPFMAP_STATS_RANGE) {
		node = interval_tree_iter_first(&ctx->ranges, cmd->iova,
						cmd->iova);
		if (!node) {
			ret = -ENOENT;
			goto out_unlock;
		}
		stats = container_of(node, struct iopfmap_range, node)->stats;
	}
	for (i = 0; i < IOPFMAP_STAT_NR; i++)
		out[i] = atomic64_read(&stats[i]);
out_unlock:
	up_read(&ctx->ranges_rwsem);
	if (ret)
		return ret;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

#define IOPFMAP_QUERY_MAX_LENGTH SZ_1G

/* Copies @nbits of @bits out as the ABI's array of u64 words. */
static int iopfmap_copy_bitmap_to_user(u64 __user *ubits,
				       const unsigned long *bits,
				       unsigned long nbits)
{
	size_t len = DIV_ROUND_UP(nbits, 64) * sizeof(u64);
	u64 *words;
	int ret;

	words = kvzalloc(len, GFP_KERNEL);
	if (!words)
		return -ENOMEM;
	bitmap_to_arr64(words, bits, nbits);
	ret = copy_to_user(ubits, words, len) ? -EFAULT : 0;
	kvfree(words);
	return ret;
}

int iopfmap_query_mapped(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_query_mapped *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	unsigned long npages, i, first, last;
	struct interval_tree_node *node;
	struct iopfmap_iopt *iopt;
	unsigned long *bits;
	int ret;

	if (!cmd->length || !PAGE_ALIGNED(cmd->iova | cmd->length) ||
	    cmd->length > IOPFMAP_QUERY_MAX_LENGTH ||
	    cmd->iova + cmd->length - 1 < cmd->iova)
		return -EINVAL;
	iopt = iopfmap_ctx_iopt_for(ctx, cmd->iova, cmd->length);
	if (IS_ERR(iopt))
		return PTR_ERR(iopt);

	npages = cmd->length >> PAGE_SHIFT;
	bits = kvcalloc(BITS_TO_LONGS(npages), sizeof(long), GFP_KERNEL);
	if (!bits)
		return -ENOMEM;
	first = cmd->iova;
	last = cmd->iova + cmd->length - 1;

	down_read(&ctx->ranges_rwsem);
	if (cmd->flags & IOPFMAP_QUERY_IOPT) {
		for (i = 0; i < npages; i++)
			if (iopt->ops->iova_to_phys(iopt, first +
						    (i << PAGE_SHIFT)))
				__set_bit(i, bits);
	} else {
		for (node = interval_tree_iter_first(&ctx->ranges, first, last);
		     node; node = interval_tree_iter_next(node, first, last)) {
			struct iopfmap_range *range =
				container_of(node, struct iopfmap_range, node);
			unsigned long from = max(first, node->start);
			unsigned long to = min(last, node->last);

			mutex_lock(&range->lock);
			for (i = from; i < to; i += PAGE_SIZE)
				if (test_bit((i - node->start) >> PAGE_SHIFT,
					     range->iopf_mapped))
					__set_bit((i - first) >> PAGE_SHIFT,
						  bits);
			mutex_unlock(&range->lock);
		}
	}
	up_read(&ctx->ranges_rwsem);

	cmd->out_mapped_pages = bitmap_weight(bits, npages);
	ret = iopfmap_copy_bitmap_to_user(u64_to_user_ptr(cmd->bitmap), bits,
					  npages);
	kvfree(bits);
	if (ret)
		return ret;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}
