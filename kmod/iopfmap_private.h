/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfmap internals: the objects, who owns them, and which lock protects
 * what. docs/design.md tells the same story for readers of the code.
 *
 * Objects and lifetimes
 *
 *   module       /dev/iopfmap is registered last in module init and
 *                deregistered first in exit, so no context can be opened
 *                on a half-initialized module. An open file pins the
 *                module through fops->owner.
 *   context      (struct iopfmap_ctx) one per open() of /dev/iopfmap,
 *                owned by the struct file: allocated in open(), freed in
 *                release(). ioctls run with the file referenced, so a
 *                context never disappears under a running command.
 *                Netlink finds it by id in iopfmap_ctxs and holds
 *                ctx->users; release() takes it out of iopfmap_ctxs,
 *                detaches its devices (the file's ctx->users reference
 *                outlives them: a device's removal notifier takes one), then
 *                waits for users to reach zero before tearing the rest down.
 *   IO page table (struct iopfmap_iopt) what translates the context's
 *                IOVAs: the simulated device's software table (sim.c), or
 *                the set of IOMMU domains of the attached devices
 *                (device.c). Set once per context and destroyed in
 *                release() after every range, so it outlives every user.
 *   domain       (struct iopfmap_domain) one iommu_domain of the set,
 *                shared by the devices attached to it. Published in a slot
 *                of the set after it is filled; when its last device goes
 *                it leaves the slot, and is freed only after every range
 *                lock has been taken once (no unmap/sync pair still holds
 *                it) with faults excluded (ranges_rwsem for write).
 *   device       (struct iopfmap_device) an attached PCI device: holds the
 *                device, its IOMMU group (DMA ownership claimed) and a
 *                reference on its domain. Found by the fault sources
 *                through the global iopfmap_devices xarray (RCU lookup plus
 *                a reference: no lock on the fault path). Since 6.9 it
 *                embeds the attach handle its group is attached with, by
 *                which the IOMMU core's groups name it (no reference: the
 *                device outlives every group it took). Destruction
 *                order: out of the xarray and marked dying (no new fault
 *                is queued; a group the core delivers now is answered at
 *                once), lookups waited for, fault queue flushed (every
 *                group in flight answered), IOMMU fault handler removed
 *                (6.1) or faults turned off (6.12), group detached (with
 *                its handle) and released, domain reference dropped,
 *                freed after an RCU grace period.
 *   range        (struct iopfmap_range) an IOVA window backed by one
 *                process's virtual memory. Created by MAP, destroyed by
 *                UNMAP or release(). It holds the mapping process's
 *                mm_struct (mmgrab(), not the address space) and its
 *                thread group leader for the range's whole life: a process
 *                that exits leaves a range whose faults fail, and pinned
 *                pages are charged to, and uncharged from, that mm's
 *                locked_vm against that leader's RLIMIT_MEMLOCK, whoever
 *                issues the command. Destruction order: out of the tree (no
 *                new fault can find it), every page out of the IO page
 *                table, notifier removed (no callback still runs), pages
 *                unpinned and uncharged (if the mm still has users), mm and
 *                task dropped, freed.
 *   simulated device (struct iopfmap_sim) owned by its context; created
 *                by SIM_CREATE, destroyed in release() after the ranges.
 *   fault queue  (struct iopfmap_queue, queue.c) hands page request groups
 *                to userspace. Referenced by its file and by the context
 *                (ctx->queue, RCU-published so fault sources can look it
 *                up without a lock). Releasing the file answers every
 *                group it holds and marks it released; the context keeps
 *                its reference until a new QUEUE_ALLOC replaces it or the
 *                context goes (which marks it ctx_gone). Freed after an
 *                RCU grace period once both references are gone. Armed
 *                io_uring commands hold the file, so the file cannot be
 *                released under them.
 *   queued group (struct iopfmap_qgroup) a page request group waiting for
 *                userspace. Allocated and freed by the fault source's
 *                thread, which sleeps until the group is answered (or
 *                withdraws it after a fatal signal). Whoever answers takes
 *                it out of the queue under queue->lock and then completes
 *                it: once, since only one can take it out.
 *   fault source (struct iopfmap_fault_source) what raises page requests:
 *                the simulated device or an attached device. Closing it
 *                (detach) answers its queued groups and refuses new ones.
 *
 * Locks, in the order they nest (outermost first)
 *
 *   PCI bus notifier    the core's rwsem; a device's removal notifier takes
 *                       ctx->lock under it to detach the device.
 *   ctx->lock           mutex; serializes commands that change the
 *                       context's configuration: the IO page table, adding
 *                       and removing ranges, mode switches, devices. Never
 *                       taken on the fault path.
 *   iopfmap_ctxs's xa_lock  spinlock; the open contexts by id. Held only
 *                       to find a context and take ctx->users (open,
 *                       release, netlink); nothing is taken under it.
 *   sim->prq_lock       mutex; the simulated device's pending page requests.
 *                       A group is resolved under it: ranges_rwsem and all
 *                       below nest inside.
 *   ctx->ranges_rwsem   rw_semaphore; protects ctx->ranges. Faults hold it
 *                       for read while they resolve, so faults run in
 *                       parallel and a range cannot be removed under one.
 *                       Writers also hold ctx->lock. Adding or removing a
 *                       domain holds it for write, so no fault maps while
 *                       a new domain is filled.
 *   mm->mmap_lock       taken for read by hmm_range_fault() and pinning,
 *                       never while holding range->lock.
 *   range->lock         mutex; protects the range's bitmaps, its mode, its
 *                       pinned pages and its entries in the IO page table.
 *                       The invalidate callback takes it (trylock when it
 *                       must not sleep); the fault path takes it after
 *                       hmm_range_fault() and checks the notifier sequence
 *                       under it. Mapping and unmapping happen under it.
 *   idev->fault_lock    spinlock; a device's dying flag and its partial
 *                       page request groups. Taken by the fault sources
 *                       (IOMMU fault handler in the IOMMU driver's thread,
 *                       software page requests) with no other iopfmap lock
 *                       held, and by detach under ctx->lock. Nothing is
 *                       taken under it (the core's fault_param->lock is
 *                       taken and dropped before it).
 *   queue->lock         spinlock; a fault queue's groups, slots, counters.
 *                       Taken by the fault sources and the queue's file
 *                       with no other iopfmap lock held, and under
 *                       ctx->lock when a source closes (detach, release);
 *                       never with fault_lock. The queue's wait queue lock
 *                       nests inside it. Groups are completed and io_uring
 *                       commands finished only after it is dropped.
 *   sim->lock           spinlock, innermost; the simulated device's tables
 *                       and IOTLB. Its DMA engine translates and copies each
 *                       page under it, so an unmap followed by an IOTLB sync
 *                       guarantees no access to the old page afterwards.
 *
 * The domain set's slots have no lock: readers (map, unmap, IOTLB sync,
 * iova_to_phys) run under a range->lock or ranges_rwsem, and a slot
 * changes only as described under "domain" above.
 *
 * A device's faults run on its own workqueue, with no iopfmap lock held
 * when they start; each takes ranges_rwsem for read like any fault.
 * Detach closes the device's fault source (its forwarded groups are
 * answered) and then flushes that workqueue, holding only ctx->lock,
 * which no fault takes. A fault waits for userspace holding no lock.
 *
 * No lock on the fault path is global: two contexts never contend, and
 * faults on different ranges of one context share only ranges_rwsem (for
 * read) and the IO page table's own lock (for the few instructions of an
 * update). The global device xarray is read locklessly; the global
 * counters are per CPU. Netlink events are sent with no iopfmap lock held,
 * except the detach event (ctx->lock) and the storm event (none, atomic).
 */
#ifndef IOPFMAP_PRIVATE_H
#define IOPFMAP_PRIVATE_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/interval_tree.h>
#include <linux/iommu.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/xarray.h>
#include <uapi/linux/iopfmap.h>
#include <uapi/linux/iopfmap_netlink.h>

/* The IOPFMAP_FEATURE_* bits this module implements, sim aside. */
/* compat-probe.sh fails the build of a kernel with no core fault route. */
#define IOPFMAP_FEATURES_BASE (IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_DEVICE | \
			       IOPFMAP_FEATURE_QUEUE | \
			       IOPFMAP_FEATURE_CORE_FAULTS)

extern bool iopfmap_sim_enabled;

/* Counters; the order is that of the out_ fields of struct iopfmap_stats. */
enum iopfmap_stat {
	IOPFMAP_STAT_FAULTS,
	IOPFMAP_STAT_FAULTS_HANDLED,
	IOPFMAP_STAT_FAULTS_INVALID,
	IOPFMAP_STAT_FAULTS_FORWARDED,
	IOPFMAP_STAT_PAGES_MAPPED,
	IOPFMAP_STAT_PAGES_PREFETCHED,
	IOPFMAP_STAT_HUGE_MAPPINGS,
	IOPFMAP_STAT_INVALIDATIONS,
	IOPFMAP_STAT_INVALIDATIONS_HANDLED,
	IOPFMAP_STAT_PAGES_UNMAPPED,
	IOPFMAP_STAT_RETRIES,
	IOPFMAP_STAT_PAGES_PINNED,
	IOPFMAP_STAT_NR,
};

struct iopfmap_iopt;

/*
 * IOTLB flushes gathered across unmap calls, one per domain slot: each
 * iommu_domain needs its own gather (its driver may keep freed page-table
 * pages on it until the flush). The simulated device uses slot 0.
 */
struct iopfmap_gather {
	struct iommu_iotlb_gather iotlb[IOPFMAP_DOMAINS_MAX];
	struct iommu_domain *domain[IOPFMAP_DOMAINS_MAX];
};

static inline void iopfmap_gather_init(struct iopfmap_gather *gather)
{
	unsigned int i;

	for (i = 0; i < IOPFMAP_DOMAINS_MAX; i++) {
		iommu_iotlb_gather_init(&gather->iotlb[i]);
		gather->domain[i] = NULL;
	}
}

/*
 * An IO page table implementation. The calls follow the IOMMU API's
 * contract, so that an iommu_domain implements them directly: map never
 * replaces an entry; unmap returns the bytes it really unmapped, which
 * can exceed @size when @iova falls in a larger entry, and stops at the
 * first hole; the device may use unmapped entries until iotlb_sync().
 * The ranges call map for one entry at a time, PAGE_SIZE or
 * IOPFMAP_HUGE_SIZE, and unmap only whole entries they mapped, so that
 * every entry is one the bitmaps describe (see iopfmap_range_map_pfns()).
 *
 * map runs under range->lock, which the invalidate callback takes, and
 * the callback can run from reclaim: map therefore must not enter direct
 * reclaim and gets GFP_NOWAIT. prepare (optional) runs before the lock is
 * taken and may sleep: it allocates whatever a later map of the span
 * needs. unmap, iotlb_sync and iova_to_phys never sleep (they run in
 * non-blockable invalidations).
 */
struct iopfmap_iopt_ops {
	int (*prepare)(struct iopfmap_iopt *iopt, unsigned long iova,
		       size_t size, gfp_t gfp);
	int (*map)(struct iopfmap_iopt *iopt, unsigned long iova,
		   phys_addr_t paddr, size_t size, int prot, gfp_t gfp);
	size_t (*unmap)(struct iopfmap_iopt *iopt, unsigned long iova,
			size_t size, struct iopfmap_gather *gather);
	void (*iotlb_sync)(struct iopfmap_iopt *iopt,
			   struct iopfmap_gather *gather);
	phys_addr_t (*iova_to_phys)(struct iopfmap_iopt *iopt,
				    unsigned long iova);
};

struct iopfmap_iopt {
	const struct iopfmap_iopt_ops *ops;
	u32 type;			/* IOPFMAP_IOPT_* */
	unsigned long pgsize_bitmap;
	unsigned long iova_start;
	unsigned long iova_last;	/* inclusive */
};

struct iopfmap_sim;
struct iopfmap_domains;
struct iopfmap_queue;

/* What raises page requests: the simulated device or an attached one. */
struct iopfmap_fault_source {
	u32 dev_id;			/* 0: the simulated device */
	bool closed;			/* no group may be forwarded any more */
};

struct iopfmap_ctx {
	u32 id;				/* for tracing and netlink; never 0 */
	/* Holders: the file, and netlink commands that found it by id. */
	refcount_t users;
	struct completion unused;	/* users reached zero */
	struct pid *owner;		/* the opener's thread group */
	kuid_t owner_uid;		/* its real uid: who may see it */
	char owner_comm[TASK_COMM_LEN];
	struct mutex lock;		/* see "Locks" above */
	struct rw_semaphore ranges_rwsem;
	struct rb_root_cached ranges;	/* of iopfmap_range, by IOVA */
	/*
	 * Set once under lock (smp_store_release), never changed after, but
	 * by the undo of the DEVICE_ATTACH that set it (before any range
	 * could use it); the domain set it points to lives until release().
	 */
	struct iopfmap_iopt *iopt;
	struct iopfmap_sim *sim;
	/* Under lock: */
	struct iopfmap_domains *domains;	/* with devices attached */
	struct xarray devices;		/* iopfmap_device by id */
	struct rb_root_cached reserved;	/* the devices' reserved IOVAs */
	u32 next_range_id;
	/* Changed under lock; fault sources read it under RCU. */
	struct iopfmap_queue __rcu *queue;
	atomic64_t stats[IOPFMAP_STAT_NR];	/* including removed ranges */
	/* Invalidation storm detection (netlink.c); races only blur it. */
	unsigned long storm_window_end;	/* jiffies */
	atomic_t storm_count;
};

/* Huge IO page table entries iopfmap creates: one PMD-sized block. */
#define IOPFMAP_HUGE_SIZE	SZ_2M
#define IOPFMAP_HUGE_PAGES	(IOPFMAP_HUGE_SIZE >> PAGE_SHIFT)

struct iopfmap_range {
	struct interval_tree_node node;	/* IOVA [start, last] */
	struct mmu_interval_notifier notifier;	/* VA window of @mm */
	/* The mapping process: see "range" above. Set at MAP, never changed. */
	struct mm_struct *mm;		/* mmgrab()ed */
	struct task_struct *task;	/* its group leader, referenced */
	bool lock_cap;			/* it had CAP_IPC_LOCK: no limit */
	struct iopfmap_ctx *ctx;
	struct iopfmap_iopt *iopt;
	u32 id;				/* in fault records; never 0 */
	unsigned long uaddr;
	unsigned long npages;
	u32 flags;			/* IOPFMAP_MAP_* given to MAP */
	/*
	 * Pages; 1 or a power of two. Changed by netlink at any time: a
	 * fault reads it once (READ_ONCE).
	 */
	u32 prefetch;
	/* IOPFMAP_POLICY_*; changed under ctx->lock, read with READ_ONCE. */
	u32 policy;
	/* Where huge blocks start: IOVA of block 0, below node.start. */
	unsigned long huge_base;

	struct mutex lock;		/* see "Locks" above */
	u32 mode;			/* IOPFMAP_MODE_*, under lock */
	/* One bit per page: in the IO page table. Never ahead of it. */
	unsigned long *iopf_mapped;
	/* One bit per page: mapped with IOMMU_WRITE. */
	unsigned long *iopf_writable;
	/* One bit per huge block: mapped as one huge entry. */
	unsigned long *iopf_huge;
	struct page **pinned;		/* PIN mode: every page, else NULL */
	struct list_head doomed;	/* UNMAP's list, under ctx->lock */

	atomic64_t stats[IOPFMAP_STAT_NR];
};

/* One ioctl call in flight: the caller's struct, copied in and checked. */
struct iopfmap_ucmd {
	struct iopfmap_ctx *ctx;	/* NULL on a queue fd */
	struct iopfmap_queue *queue;	/* NULL on a context fd */
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

/* The fields every command struct starts with (see the uapi DOC block). */
struct iopfmap_cmd_header {
	__u32 size;
	__u32 flags;
};

int iopfmap_ucmd_respond(struct iopfmap_ucmd *ucmd, size_t cmd_len);
/* main.c: the ioctls of a queue fd, with the table's checks. */
long iopfmap_queue_ioctl(struct iopfmap_queue *queue, unsigned int cmd,
			 unsigned long arg);

/*
 * A page request as a fault source (PRI, the simulated device) delivers
 * it: a page address, the access, and the PCIe identifiers the response
 * must echo.
 */
#define IOPFMAP_FAULT_READ	BIT(0)
#define IOPFMAP_FAULT_WRITE	BIT(1)
#define IOPFMAP_FAULT_PASID	BIT(2)
#define IOPFMAP_FAULT_LAST	BIT(3)

struct iopfmap_fault {
	u64 iova;
	u32 flags;		/* IOPFMAP_FAULT_* */
	u32 pasid;
	u32 grpid;
};

/*
 * fault.c: resolves a page request group from @src, asking userspace first
 * when it touches a FORWARD range. Returns 0 with *@resp set to an
 * IOPFMAP_PAGE_RESP_* code, or -EINTR when @killable and a fatal signal
 * made the device give up (no response is due).
 */
int iopfmap_handle_group(struct iopfmap_ctx *ctx,
			 struct iopfmap_fault_source *src,
			 const struct iopfmap_fault *faults, unsigned int nr,
			 bool killable, u32 *resp);

/* queue.c */
int iopfmap_queue_forward(struct iopfmap_ctx *ctx,
			  struct iopfmap_fault_source *src,
			  const struct iopfmap_fault *faults, unsigned int nr,
			  const u32 *range_ids, u32 record_flags,
			  bool killable, u32 *resp);
void iopfmap_queue_close_source(struct iopfmap_ctx *ctx,
				struct iopfmap_fault_source *src);
void iopfmap_ctx_destroy_queue(struct iopfmap_ctx *ctx);
int iopfmap_queue_alloc(struct iopfmap_ucmd *ucmd);
int iopfmap_queue_get_info(struct iopfmap_ucmd *ucmd);

/* device.c */
int iopfmap_devices_init(void);
void iopfmap_devices_exit(void);
void iopfmap_ctx_init_devices(struct iopfmap_ctx *ctx);
void iopfmap_ctx_destroy_devices(struct iopfmap_ctx *ctx);
void iopfmap_ctx_free_domains(struct iopfmap_ctx *ctx);
int iopfmap_device_attach(struct iopfmap_ucmd *ucmd);
int iopfmap_device_detach(struct iopfmap_ucmd *ucmd);
int iopfmap_ctx_check_reserved(struct iopfmap_ctx *ctx, unsigned long first,
			       unsigned long last);
bool iopfmap_hw_iopf_supported(void);
bool iopfmap_pasid_attach_supported(void);

/* range.c */
typedef int (*iopfmap_replay_fn)(void *arg, unsigned long iova,
				 phys_addr_t paddr, size_t size, int prot);
int iopfmap_ctx_replay(struct iopfmap_ctx *ctx, iopfmap_replay_fn map,
		       void *arg);
void iopfmap_ctx_unmap_fault_ranges(struct iopfmap_ctx *ctx);
void iopfmap_ctx_ranges_barrier(struct iopfmap_ctx *ctx);
bool iopfmap_ctx_ranges_within(struct iopfmap_ctx *ctx, unsigned long start,
			       unsigned long last);
void iopfmap_ctx_init_ranges(struct iopfmap_ctx *ctx);
void iopfmap_ctx_destroy_ranges(struct iopfmap_ctx *ctx);
void iopfmap_stat_add(struct iopfmap_range *range, enum iopfmap_stat stat,
		      s64 n);
void iopfmap_ctx_stat_add(struct iopfmap_ctx *ctx, enum iopfmap_stat stat,
			  s64 n);
/* Attempts after a map failed for want of memory (see iopfmap_make_room()). */
#define IOPFMAP_NOMEM_RETRIES	3
bool iopfmap_make_room(void);
int iopfmap_range_map_pfns(struct iopfmap_range *range, unsigned long first,
			   unsigned long npages, const unsigned long *hmm_pfns,
			   unsigned long fault_index);
bool iopfmap_range_huge_capable(struct iopfmap_range *range,
				unsigned long index);
int iopfmap_range_prepare(struct iopfmap_range *range, unsigned long first,
			  unsigned long last);
int iopfmap_map(struct iopfmap_ucmd *ucmd);
int iopfmap_unmap(struct iopfmap_ucmd *ucmd);
int iopfmap_set_mode(struct iopfmap_ucmd *ucmd);
int iopfmap_get_stats(struct iopfmap_ucmd *ucmd);
int iopfmap_query_mapped(struct iopfmap_ucmd *ucmd);

/* main.c: the contexts, found by id (netlink). */
struct iopfmap_ctx *iopfmap_ctx_get_next(unsigned long *id);
void iopfmap_ctx_put(struct iopfmap_ctx *ctx);
unsigned int iopfmap_nr_contexts(void);
void iopfmap_global_stats(u64 *stats);

/* What netlink shows of a device, a queue; taken under their locks. */
struct iopfmap_device_snapshot {
	u32 id;
	u32 flags;			/* IOPFMAP_DEVICE_* */
	bool own_domain;
	int iommu_group;
	char name[IOPFMAP_DEVICE_NAME_MAX];
};

/* A fault queue's counters, in the order of struct iopfmap_queue_info. */
enum iopfmap_queue_stat {
	IOPFMAP_QSTAT_GROUPS,
	IOPFMAP_QSTAT_RECORDS,
	IOPFMAP_QSTAT_DELIVERED,
	IOPFMAP_QSTAT_RESP_SUCCESS,
	IOPFMAP_QSTAT_RESP_INVALID,
	IOPFMAP_QSTAT_RESP_FAILURE,
	IOPFMAP_QSTAT_TIMEOUTS,
	IOPFMAP_QSTAT_CLOSED,
	IOPFMAP_QSTAT_OVERFLOWS,
	IOPFMAP_QSTAT_WITHDRAWN,
	IOPFMAP_QSTAT_REFUSED,
	IOPFMAP_QSTAT_NR,
};

struct iopfmap_queue_snapshot {
	u32 depth;
	u32 timeout_ms;
	u32 pending;
	u32 inflight;
	u32 armed;
	bool attached;
	u64 stats[IOPFMAP_QSTAT_NR];
};

/* device.c, under ctx->lock: the device at or after *@id. */
bool iopfmap_ctx_device_snapshot(struct iopfmap_ctx *ctx, unsigned long *id,
				 struct iopfmap_device_snapshot *snap);
unsigned int iopfmap_nr_devices(void);
/* queue.c */
bool iopfmap_ctx_queue_snapshot(struct iopfmap_ctx *ctx,
				struct iopfmap_queue_snapshot *snap);

/* netlink.c: the family, and its events (any context, GFP_ATOMIC). */
extern unsigned int iopfmap_storm_threshold;
int iopfmap_netlink_init(void);
void iopfmap_netlink_exit(void);
void iopfmap_notify_device(u8 cmd, u32 ctx_id, u32 dev_id, const char *name,
			   int reason);
void iopfmap_notify_queue(u8 cmd, u32 ctx_id, u32 count);
void iopfmap_count_invalidation(struct iopfmap_ctx *ctx);

/* sim.c */
void iopfmap_sim_destroy(struct iopfmap_ctx *ctx);
int iopfmap_sim_get_stats(struct iopfmap_ucmd *ucmd);
int iopfmap_sim_create(struct iopfmap_ucmd *ucmd);
int iopfmap_sim_dma(struct iopfmap_ucmd *ucmd);
int iopfmap_sim_page_request(struct iopfmap_ucmd *ucmd);
int iopfmap_sim_s1_map(struct iopfmap_ucmd *ucmd);
int iopfmap_sim_s1_unmap(struct iopfmap_ucmd *ucmd);

#endif /* IOPFMAP_PRIVATE_H */
