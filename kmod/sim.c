// SPDX-License-Identifier: GPL-2.0
/*
 * The simulated device: a DMA engine with a software IO page table, an
 * IOTLB and page requests, so that every path of iopfmap runs without PRI
 * hardware. It is part of the module, behind the parameter sim=1, because
 * it is driven through the context's own ioctls and feeds the same fault
 * path a real IOMMU would: a separate module would need the context
 * internals exported for nothing.
 *
 * The software table covers [0, 1 GiB) with a two-level layout: one slot
 * per 2 MiB block holds either a huge entry or a leaf of 512 base entries.
 * Leaves are allocated before sim->lock is taken and kept until the device
 * goes, so updates under the spinlock never allocate.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "iopfmap_private.h"

#define SIM_IOVA_SIZE		SZ_1G
#define SIM_BLOCKS		(SIM_IOVA_SIZE / IOPFMAP_HUGE_SIZE)
#define SIM_TLB_ENTRIES		16
#define SIM_DMA_MAX		SZ_64M
/* Misses on one page after SUCCESS before the DMA gives up. */
#define SIM_MAX_TRIES		16
#define SIM_PASID_MAX		((1U << 20) - 1)
#define SIM_GRPID_MAX		511

/* An entry: the output page address and these bits. */
#define SIM_PTE_READ		BIT_ULL(0)
#define SIM_PTE_WRITE		BIT_ULL(1)
#define SIM_PTE_PERM		(SIM_PTE_READ | SIM_PTE_WRITE)

struct iopfmap_swpt {
	u64 huge[SIM_BLOCKS];
	u64 *leaf[SIM_BLOCKS];
	u16 leaf_used[SIM_BLOCKS];
};

struct iopfmap_sim_tlb_entry {
	unsigned long tag;		/* IOVA page number + 1; 0: empty */
	u64 pte;			/* of that base page */
};

/* The device's own view of its page requests: SIM_GET_STATS. */
enum sim_stat {
	SIM_STAT_PAGE_REQUESTS,
	SIM_STAT_RESPONSES,
	SIM_STAT_RESP_SUCCESS,
	SIM_STAT_RESP_INVALID,
	SIM_STAT_RESP_FAILURE,
	SIM_STAT_WITHDRAWN,
	SIM_STAT_NR,
};

struct iopfmap_sim {
	struct iopfmap_iopt iopt;	/* stage 2: the context's table */
	struct iopfmap_ctx *ctx;
	struct iopfmap_fault_source src;
	bool nested;
	atomic_t next_grpid;
	atomic64_t stats[SIM_STAT_NR];

	spinlock_t lock;		/* see iopfmap_private.h */
	struct iopfmap_swpt s2;
	struct iopfmap_swpt s1;		/* nested only; outputs are IOVAs */
	struct iopfmap_sim_tlb_entry tlb[SIM_TLB_ENTRIES];

	struct mutex prq_lock;		/* see iopfmap_private.h */
	unsigned int prq_count;
	struct iopfmap_fault prq_pending[IOPFMAP_PRQ_GROUP_MAX];
};

/* 0 or the errno for a page span outside the aperture. */
static int sim_check_span(u64 iova, u64 length)
{
	if (!length || !PAGE_ALIGNED(iova | length) ||
	    iova + length - 1 < iova)
		return -EINVAL;
	if (iova >= SIM_IOVA_SIZE || length > SIM_IOVA_SIZE - iova)
		return -ERANGE;
	return 0;
}

static u64 *swpt_base_entry(struct iopfmap_swpt *pt, unsigned long iova)
{
	u64 *leaf = pt->leaf[iova / IOPFMAP_HUGE_SIZE];

	return leaf ? &leaf[(iova % IOPFMAP_HUGE_SIZE) >> PAGE_SHIFT] : NULL;
}

/* Gives every block of the span a leaf; may sleep as @gfp allows. */
static int swpt_prepare(struct iopfmap_sim *sim, struct iopfmap_swpt *pt,
			unsigned long iova, size_t size, gfp_t gfp)
{
	unsigned long b;

	for (b = iova / IOPFMAP_HUGE_SIZE;
	     b <= (iova + size - 1) / IOPFMAP_HUGE_SIZE; b++) {
		u64 *leaf;

		if (READ_ONCE(pt->leaf[b]))
			continue;
		leaf = kcalloc(IOPFMAP_HUGE_PAGES, sizeof(*leaf), gfp);
		if (!leaf)
			return -ENOMEM;
		spin_lock(&sim->lock);
		if (!pt->leaf[b]) {
			WRITE_ONCE(pt->leaf[b], leaf);
			leaf = NULL;
		}
		spin_unlock(&sim->lock);
		kfree(leaf);
	}
	return 0;
}

/* The entry translating the base page at @iova, or 0. Under sim->lock. */
static u64 swpt_lookup(struct iopfmap_swpt *pt, unsigned long iova)
{
	unsigned long b = iova / IOPFMAP_HUGE_SIZE;
	u64 *pte;

	if (b >= SIM_BLOCKS)
		return 0;
	if (pt->huge[b])
		return pt->huge[b] + (iova & (IOPFMAP_HUGE_SIZE - PAGE_SIZE));
	pte = swpt_base_entry(pt, iova);
	return pte ? *pte : 0;
}

/* Whether any page of the span has an entry. Under sim->lock. */
static bool swpt_busy(struct iopfmap_swpt *pt, unsigned long iova,
		      size_t size)
{
	unsigned long a;

	for (a = iova; a < iova + size; a += PAGE_SIZE)
		if (swpt_lookup(pt, a))
			return true;
	return false;
}

/*
 * Fills entries for the span, huge where @huge_ok and the alignment
 * allow, as the IOMMU core picks page sizes. Leaves must be prepared and
 * the span free. Under sim->lock.
 */
static void swpt_fill(struct iopfmap_swpt *pt, unsigned long iova,
		      u64 out, size_t size, u64 perm, bool huge_ok)
{
	while (size) {
		if (huge_ok && size >= IOPFMAP_HUGE_SIZE &&
		    IS_ALIGNED(iova | out, IOPFMAP_HUGE_SIZE)) {
			pt->huge[iova / IOPFMAP_HUGE_SIZE] = out | perm;
			iova += IOPFMAP_HUGE_SIZE;
			out += IOPFMAP_HUGE_SIZE;
			size -= IOPFMAP_HUGE_SIZE;
			continue;
		}
		*swpt_base_entry(pt, iova) = out | perm;
		pt->leaf_used[iova / IOPFMAP_HUGE_SIZE]++;
		iova += PAGE_SIZE;
		out += PAGE_SIZE;
		size -= PAGE_SIZE;
	}
}

/*
 * Clears entries from @iova on, as the IOMMU API unmaps: a huge entry
 * goes whole even when less was asked, and it stops at the first hole.
 * Returns the bytes cleared. Under sim->lock.
 */
static size_t swpt_clear(struct iopfmap_swpt *pt, unsigned long iova,
			 size_t size)
{
	size_t done = 0;

	while (done < size) {
		unsigned long a = iova + done, b = a / IOPFMAP_HUGE_SIZE;
		u64 *pte;

		if (b >= SIM_BLOCKS)
			break;
		if (pt->huge[b]) {
			pt->huge[b] = 0;
			done += IOPFMAP_HUGE_SIZE - (a % IOPFMAP_HUGE_SIZE);
			continue;
		}
		pte = swpt_base_entry(pt, a);
		if (!pte || !*pte)
			break;
		*pte = 0;
		pt->leaf_used[b]--;
		done += PAGE_SIZE;
	}
	return done;
}

static void swpt_free(struct iopfmap_swpt *pt)
{
	unsigned long b;

	for (b = 0; b < SIM_BLOCKS; b++)
		kfree(pt->leaf[b]);
}

static struct iopfmap_sim *iopt_to_sim(struct iopfmap_iopt *iopt)
{
	return container_of(iopt, struct iopfmap_sim, iopt);
}

static int sim_iopt_prepare(struct iopfmap_iopt *iopt, unsigned long iova,
			    size_t size, gfp_t gfp)
{
	struct iopfmap_sim *sim = iopt_to_sim(iopt);

	if (!size || sim_check_span(iova, size))
		return -EINVAL;
	return swpt_prepare(sim, &sim->s2, iova, size, gfp);
}

static int sim_iopt_map(struct iopfmap_iopt *iopt, unsigned long iova,
			phys_addr_t paddr, size_t size, int prot, gfp_t gfp)
{
	struct iopfmap_sim *sim = iopt_to_sim(iopt);
	u64 perm = (prot & IOMMU_READ ? SIM_PTE_READ : 0) |
		   (prot & IOMMU_WRITE ? SIM_PTE_WRITE : 0);
	int ret;

	if (!perm || !PAGE_ALIGNED(iova | paddr | size) ||
	    sim_check_span(iova, size))
		return -EINVAL;
	ret = swpt_prepare(sim, &sim->s2, iova, size, gfp);
	if (ret)
		return ret;
	spin_lock(&sim->lock);
	if (swpt_busy(&sim->s2, iova, size))
		ret = -EEXIST;
	else
		swpt_fill(&sim->s2, iova, paddr, size, perm,
			  iopt->pgsize_bitmap & IOPFMAP_HUGE_SIZE);
	spin_unlock(&sim->lock);
	return ret;
}

static size_t sim_iopt_unmap(struct iopfmap_iopt *iopt, unsigned long iova,
			     size_t size, struct iopfmap_gather *gather)
{
	struct iommu_iotlb_gather *g = &gather->iotlb[0];
	struct iopfmap_sim *sim = iopt_to_sim(iopt);
	unsigned long start;
	size_t done;

	if (iova >= SIM_IOVA_SIZE)
		return 0;
	spin_lock(&sim->lock);
	/* A huge entry is cleared from its start. */
	start = sim->s2.huge[iova / IOPFMAP_HUGE_SIZE] ?
		ALIGN_DOWN(iova, IOPFMAP_HUGE_SIZE) : iova;
	done = swpt_clear(&sim->s2, iova, size);
	spin_unlock(&sim->lock);
	if (done) {
		g->start = min(g->start, start);
		g->end = max(g->end, iova + done - 1);
	}
	return done;
}

/* Drops the IOTLB entries in the gathered span: the flush the device sees. */
static void sim_iopt_iotlb_sync(struct iopfmap_iopt *iopt,
				struct iopfmap_gather *gather)
{
	struct iommu_iotlb_gather *g = &gather->iotlb[0];
	struct iopfmap_sim *sim = iopt_to_sim(iopt);
	unsigned int i;

	spin_lock(&sim->lock);
	for (i = 0; i < SIM_TLB_ENTRIES; i++) {
		unsigned long iova = (sim->tlb[i].tag - 1) << PAGE_SHIFT;

		if (sim->tlb[i].tag && iova >= g->start && iova <= g->end)
			sim->tlb[i].tag = 0;
	}
	spin_unlock(&sim->lock);
	iommu_iotlb_gather_init(g);
}

static phys_addr_t sim_iopt_iova_to_phys(struct iopfmap_iopt *iopt,
					 unsigned long iova)
{
	struct iopfmap_sim *sim = iopt_to_sim(iopt);
	u64 pte;

	spin_lock(&sim->lock);
	pte = swpt_lookup(&sim->s2, iova);
	spin_unlock(&sim->lock);
	return pte ? (pte & PAGE_MASK) + offset_in_page(iova) : 0;
}

static const struct iopfmap_iopt_ops iopfmap_sim_iopt_ops = {
	.prepare = sim_iopt_prepare,
	.map = sim_iopt_map,
	.unmap = sim_iopt_unmap,
	.iotlb_sync = sim_iopt_iotlb_sync,
	.iova_to_phys = sim_iopt_iova_to_phys,
};

int iopfmap_sim_create(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_create *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	u64 supported = PAGE_SIZE | IOPFMAP_HUGE_SIZE;
	u64 pgsizes = cmd->pgsize_bitmap ?: supported;
	struct iopfmap_sim *sim;
	int ret = 0;

	if (!iopfmap_sim_enabled)
		return -ENODEV;
	if ((pgsizes & ~supported) || !(pgsizes & PAGE_SIZE))
		return -EINVAL;

	sim = kvzalloc(sizeof(*sim), GFP_KERNEL_ACCOUNT);
	if (!sim)
		return -ENOMEM;
	sim->iopt.ops = &iopfmap_sim_iopt_ops;
	sim->iopt.type = IOPFMAP_IOPT_SIM;
	sim->iopt.pgsize_bitmap = pgsizes;
	sim->iopt.iova_start = 0;
	sim->iopt.iova_last = SIM_IOVA_SIZE - 1;
	sim->ctx = ctx;
	sim->src.dev_id = 0;
	sim->nested = cmd->flags & IOPFMAP_SIM_NESTED;
	spin_lock_init(&sim->lock);
	mutex_init(&sim->prq_lock);

	/*
	 * The answer first: once the table is published, other threads may
	 * map into it, and it could not be taken back for a failed copy.
	 */
	cmd->out_pgsize_bitmap = pgsizes;
	cmd->out_iova_last = sim->iopt.iova_last;
	ret = iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		goto err_free;

	mutex_lock(&ctx->lock);
	if (ctx->iopt) {
		ret = -EEXIST;
	} else {
		/* Readers use smp_load_acquire(): they see it set up. */
		smp_store_release(&ctx->sim, sim);
		/* After ctx->sim: whoever sees the table sees the device. */
		smp_store_release(&ctx->iopt, &sim->iopt);
	}
	mutex_unlock(&ctx->lock);
	if (ret)
		goto err_free;
	return 0;

err_free:
	mutex_destroy(&sim->prq_lock);
	kvfree(sim);
	return ret;
}

/* At release(), after every range: nothing uses the table any more. */
void iopfmap_sim_destroy(struct iopfmap_ctx *ctx)
{
	struct iopfmap_sim *sim = ctx->sim;

	if (!sim)
		return;
	swpt_free(&sim->s2);
	swpt_free(&sim->s1);
	mutex_destroy(&sim->prq_lock);
	kvfree(sim);
}

static struct iopfmap_sim *sim_of(struct iopfmap_ucmd *ucmd)
{
	/* Pairs with the release in iopfmap_sim_create(). */
	return smp_load_acquire(&ucmd->ctx->sim);
}

enum sim_xlate {
	SIM_XLATE_OK,
	SIM_XLATE_S1_FAULT,
	SIM_XLATE_S2_MISS,
};

/*
 * Translates @iova for an access, through stage 1 in nested mode, then
 * the IOTLB or the stage-2 table. Under sim->lock.
 */
static enum sim_xlate sim_translate(struct iopfmap_sim *sim, u64 iova,
				    bool write, u64 *s2_addr,
				    phys_addr_t *phys, u32 *misses)
{
	u64 need = write ? SIM_PTE_WRITE : SIM_PTE_READ;
	struct iopfmap_sim_tlb_entry *e;
	u64 addr = iova, pte;

	if (sim->nested) {
		pte = swpt_lookup(&sim->s1, iova);
		if (!(pte & need))
			return SIM_XLATE_S1_FAULT;
		addr = (pte & PAGE_MASK) + offset_in_page(iova);
	}
	*s2_addr = addr;

	e = &sim->tlb[(addr >> PAGE_SHIFT) % SIM_TLB_ENTRIES];
	if (e->tag == (addr >> PAGE_SHIFT) + 1) {
		pte = e->pte;
	} else {
		(*misses)++;
		pte = swpt_lookup(&sim->s2, addr);
		if (pte) {
			e->tag = (addr >> PAGE_SHIFT) + 1;
			e->pte = pte;
		}
	}
	if (!(pte & need))
		return SIM_XLATE_S2_MISS;
	*phys = (pte & PAGE_MASK) + offset_in_page(addr);
	return SIM_XLATE_OK;
}

/*
 * Raises one page request group and waits for its response, counting
 * both as the device sees them. A stage-1 miss goes to the fault queue
 * (only userspace can fill stage 1); any other group is resolved like a
 * real device's. Returns 0 with *@resp set, or -EINTR if the caller got
 * a fatal signal while userspace held the group.
 */
static int sim_raise(struct iopfmap_sim *sim,
		     const struct iopfmap_fault *faults, unsigned int nr,
		     bool stage1, u32 *resp)
{
	int ret;

	atomic64_inc(&sim->stats[SIM_STAT_PAGE_REQUESTS]);
	if (stage1)
		ret = iopfmap_queue_forward(sim->ctx, &sim->src, faults, nr,
					    NULL, IOPFMAP_RECORD_STAGE1, true,
					    resp);
	else
		ret = iopfmap_handle_group(sim->ctx, &sim->src, faults, nr,
					   true, resp);
	if (ret) {
		atomic64_inc(&sim->stats[SIM_STAT_WITHDRAWN]);
		return ret;
	}
	atomic64_inc(&sim->stats[SIM_STAT_RESPONSES]);
	atomic64_inc(&sim->stats[*resp == IOPFMAP_PAGE_RESP_SUCCESS ?
				 SIM_STAT_RESP_SUCCESS :
				 *resp == IOPFMAP_PAGE_RESP_FAILURE ?
				 SIM_STAT_RESP_FAILURE :
				 SIM_STAT_RESP_INVALID]);
	return 0;
}

/* Not a status: the DMA's caller got a fatal signal. */
#define SIM_DMA_INTR	U32_MAX

/*
 * Moves @len bytes (within one page) between @buf and @iova, raising page
 * requests until the translation hits. Returns an IOPFMAP_SIM_DMA_*.
 */
static u32 sim_dma_page(struct iopfmap_sim *sim, struct iopfmap_sim_dma *cmd,
			u64 iova, void *buf, size_t len)
{
	bool write = cmd->flags & IOPFMAP_SIM_DMA_WRITE;
	struct iopfmap_fault fault;
	enum sim_xlate xlate;
	unsigned int tries;
	phys_addr_t phys;
	u64 s2_addr = 0;
	bool stage1;
	u32 resp;

	for (tries = 0;; tries++) {
		spin_lock(&sim->lock);
		xlate = sim_translate(sim, iova, write, &s2_addr, &phys,
				      &cmd->out_iotlb_misses);
		if (xlate == SIM_XLATE_OK) {
			/* Under the lock: an unmap + sync cannot pass us. */
			void *va = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));

			if (write)
				memcpy(va + offset_in_page(phys), buf, len);
			else
				memcpy(buf, va + offset_in_page(phys), len);
			kunmap_local(va);
		}
		spin_unlock(&sim->lock);

		if (xlate == SIM_XLATE_OK)
			return IOPFMAP_SIM_DMA_OK;
		if (tries == SIM_MAX_TRIES)
			return IOPFMAP_SIM_DMA_NO_PROGRESS;

		stage1 = xlate == SIM_XLATE_S1_FAULT;
		fault = (struct iopfmap_fault){
			.iova = (stage1 ? iova : s2_addr) & PAGE_MASK,
			.flags = (write ? IOPFMAP_FAULT_WRITE :
					  IOPFMAP_FAULT_READ) |
				 IOPFMAP_FAULT_LAST,
			.grpid = atomic_inc_return(&sim->next_grpid) &
				 SIM_GRPID_MAX,
		};
		if (cmd->flags & IOPFMAP_SIM_DMA_PASID) {
			fault.flags |= IOPFMAP_FAULT_PASID;
			fault.pasid = cmd->pasid;
		}
		cmd->out_faults++;
		if (sim_raise(sim, &fault, 1, stage1, &resp))
			return SIM_DMA_INTR;
		if (resp == IOPFMAP_PAGE_RESP_SUCCESS)
			continue;
		if (stage1)
			return IOPFMAP_SIM_DMA_S1_FAULT;
		return resp == IOPFMAP_PAGE_RESP_FAILURE ?
		       IOPFMAP_SIM_DMA_FAILURE : IOPFMAP_SIM_DMA_INVALID;
	}
}

int iopfmap_sim_dma(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_dma *cmd = ucmd->cmd;
	bool write = cmd->flags & IOPFMAP_SIM_DMA_WRITE;
	u8 __user *ubuf = u64_to_user_ptr(cmd->buffer);
	struct iopfmap_sim *sim = sim_of(ucmd);
	u64 done = 0;
	void *bounce;
	int ret = 0;

	if (!sim)
		return -ENODEV;
	if (!cmd->length || cmd->length > SIM_DMA_MAX ||
	    cmd->iova + cmd->length - 1 < cmd->iova ||
	    (cmd->flags & IOPFMAP_SIM_DMA_PASID ? cmd->pasid > SIM_PASID_MAX :
						  cmd->pasid))
		return -EINVAL;
	if (!access_ok(ubuf, cmd->length))
		return -EFAULT;
	bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;

	cmd->out_status = IOPFMAP_SIM_DMA_OK;
	cmd->out_fault_iova = 0;
	cmd->out_faults = 0;
	cmd->out_iotlb_misses = 0;
	while (done < cmd->length) {
		u64 iova = cmd->iova + done;
		size_t len = min_t(u64, cmd->length - done,
				   PAGE_SIZE - offset_in_page(iova));
		u32 status;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		/* No lock is held across the user copies: they may fault. */
		if (write && copy_from_user(bounce, ubuf + done, len)) {
			ret = -EFAULT;
			break;
		}
		status = sim_dma_page(sim, cmd, iova, bounce, len);
		if (status == SIM_DMA_INTR) {
			ret = -EINTR;
			break;
		}
		if (status != IOPFMAP_SIM_DMA_OK) {
			cmd->out_status = status;
			cmd->out_fault_iova = iova;
			break;
		}
		if (!write && copy_to_user(ubuf + done, bounce, len)) {
			ret = -EFAULT;
			break;
		}
		done += len;
		cond_resched();
	}
	kfree(bounce);
	if (ret)
		return ret;
	cmd->out_done = done;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

static u32 sim_fault_flags(u32 prq_flags)
{
	return (prq_flags & IOPFMAP_PRQ_READ ? IOPFMAP_FAULT_READ : 0) |
	       (prq_flags & IOPFMAP_PRQ_WRITE ? IOPFMAP_FAULT_WRITE : 0) |
	       (prq_flags & IOPFMAP_PRQ_PASID ? IOPFMAP_FAULT_PASID : 0) |
	       (prq_flags & IOPFMAP_PRQ_LAST ? IOPFMAP_FAULT_LAST : 0);
}

static bool sim_same_group(const struct iopfmap_fault *a,
			   const struct iopfmap_fault *b)
{
	return a->grpid == b->grpid &&
	       (a->flags & IOPFMAP_FAULT_PASID) ==
	       (b->flags & IOPFMAP_FAULT_PASID) &&
	       a->pasid == b->pasid;
}

/*
 * A raw page request. As the IOMMU core does with a PRI group, requests
 * are held until the group's last one arrives; the group is then resolved
 * and answered once, SUCCESS only if every page was. It is resolved
 * without prq_lock: it may wait for userspace.
 */
int iopfmap_sim_page_request(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_page_request *cmd = ucmd->cmd;
	struct iopfmap_sim *sim = sim_of(ucmd);
	struct iopfmap_fault *group;
	struct iopfmap_fault fault;
	unsigned int i, kept, nr;
	int ret;
	u32 resp;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	if (!sim)
		return -ENODEV;
	if (!(cmd->flags & (IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE)) ||
	    cmd->grpid > SIM_GRPID_MAX ||
	    (cmd->flags & IOPFMAP_PRQ_PASID ? cmd->pasid > SIM_PASID_MAX :
					      cmd->pasid))
		return -EINVAL;
	fault = (struct iopfmap_fault){
		.iova = cmd->iova & PAGE_MASK,
		.flags = sim_fault_flags(cmd->flags),
		.pasid = cmd->pasid,
		.grpid = cmd->grpid,
	};

	mutex_lock(&sim->prq_lock);
	if (!(cmd->flags & IOPFMAP_PRQ_LAST)) {
		if (sim->prq_count == IOPFMAP_PRQ_GROUP_MAX) {
			mutex_unlock(&sim->prq_lock);
			return -EBUSY;
		}
		sim->prq_pending[sim->prq_count++] = fault;
		mutex_unlock(&sim->prq_lock);
		cmd->out_response = IOPFMAP_PAGE_RESP_PENDING;
		return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
	}

	group = kmalloc_array(IOPFMAP_PRQ_GROUP_MAX + 1, sizeof(*group),
			      GFP_KERNEL);
	if (!group) {
		mutex_unlock(&sim->prq_lock);
		return -ENOMEM;
	}
	/* The held requests in arrival order, then the last one. */
	for (i = 0, kept = 0, nr = 0; i < sim->prq_count; i++) {
		struct iopfmap_fault *f = &sim->prq_pending[i];

		if (sim_same_group(f, &fault))
			group[nr++] = *f;
		else
			sim->prq_pending[kept++] = *f;
	}
	sim->prq_count = kept;
	mutex_unlock(&sim->prq_lock);
	group[nr++] = fault;

	ret = sim_raise(sim, group, nr, false, &resp);
	kfree(group);
	if (ret)
		return ret;
	cmd->out_response = resp;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

int iopfmap_sim_get_stats(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_stats *cmd = ucmd->cmd;
	struct iopfmap_sim *sim = sim_of(ucmd);
	u64 *out = &cmd->out_page_requests;
	unsigned int i;

	if (!sim)
		return -ENODEV;
	BUILD_BUG_ON(sizeof(*cmd) != offsetof(typeof(*cmd),
					      out_page_requests) +
		     SIM_STAT_NR * sizeof(u64));
	for (i = 0; i < SIM_STAT_NR; i++)
		out[i] = atomic64_read(&sim->stats[i]);
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

int iopfmap_sim_s1_map(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_s1_map *cmd = ucmd->cmd;
	struct iopfmap_sim *sim = sim_of(ucmd);
	u64 perm = (cmd->flags & IOPFMAP_MAP_READ ? SIM_PTE_READ : 0) |
		   (cmd->flags & IOPFMAP_MAP_WRITE ? SIM_PTE_WRITE : 0);
	int ret;

	if (!sim || !sim->nested)
		return -ENODEV;
	if (!perm)
		return -EINVAL;
	ret = sim_check_span(cmd->iova, cmd->length);
	if (!ret)
		ret = sim_check_span(cmd->ipa, cmd->length);
	if (ret)
		return ret;
	ret = swpt_prepare(sim, &sim->s1, cmd->iova, cmd->length,
			   GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;

	spin_lock(&sim->lock);
	if (swpt_busy(&sim->s1, cmd->iova, cmd->length))
		ret = -EEXIST;
	else
		swpt_fill(&sim->s1, cmd->iova, cmd->ipa, cmd->length, perm,
			  false);
	spin_unlock(&sim->lock);
	return ret;
}

int iopfmap_sim_s1_unmap(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_sim_s1_unmap *cmd = ucmd->cmd;
	struct iopfmap_sim *sim = sim_of(ucmd);
	unsigned long a;
	u64 done = 0;
	int ret;

	if (!sim || !sim->nested)
		return -ENODEV;
	ret = sim_check_span(cmd->iova, cmd->length);
	if (ret)
		return ret;

	spin_lock(&sim->lock);
	for (a = cmd->iova; a < cmd->iova + cmd->length; a += PAGE_SIZE)
		done += swpt_clear(&sim->s1, a, PAGE_SIZE);
	memset(sim->tlb, 0, sizeof(sim->tlb));
	spin_unlock(&sim->lock);

	cmd->out_unmapped = done;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}
