// SPDX-License-Identifier: GPL-2.0
/*
 * Fault queues: page request groups that the kernel does not resolve by
 * itself (FORWARD ranges, the simulated device's stage-1 misses) go to
 * userspace through a file descriptor, served with read()/write()/poll()
 * or with io_uring commands (FETCH arms a slot, COMMIT_AND_FETCH answers
 * a group and re-arms). The uapi DOC block "Fault queues" is the contract.
 *
 * Every group has exactly one way out of the queue: answered by userspace,
 * by the timeout, by the queue's close, by its source's close, or
 * withdrawn by its waiter. Each of them takes the group out under
 * queue->lock, so only one can; completing the group happens after the
 * lock is dropped.
 *
 * A cookie is (sequence << IOPFMAP_COOKIE_INDEX_BITS) | index: the index
 * finds the group in a table of @depth entries, and the sequence, which
 * never repeats, makes stale and forged cookies miss.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/bitmap.h>
#include <linux/completion.h>
#include <linux/error-injection.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kref.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "iopfmap_private.h"
#include "iopfmap_trace.h"

#define IOPFMAP_COOKIE_INDEX_BITS	12
#define IOPFMAP_COOKIE_INDEX_MASK	(BIT(IOPFMAP_COOKIE_INDEX_BITS) - 1)
static_assert(BIT(IOPFMAP_COOKIE_INDEX_BITS) >= IOPFMAP_QUEUE_DEPTH_MAX);
/* A device group is its held requests plus the last one. */
static_assert(IOPFMAP_PRQ_GROUP_MAX + 1 <= IOPFMAP_FAULT_GROUP_MAX);

/* How long a waiting fault sleeps between checks (hung task detector). */
#define IOPFMAP_QUEUE_WAIT_SLICE	(30 * HZ)

#define IOPFMAP_QUEUE_RECORD_SIZE	sizeof(struct iopfmap_fault_record)
#define IOPFMAP_QUEUE_BUFFER_SIZE	(IOPFMAP_FAULT_GROUP_MAX * \
					 IOPFMAP_QUEUE_RECORD_SIZE)

enum iopfmap_qgroup_state {
	IOPFMAP_QG_QUEUED,		/* waits for delivery */
	IOPFMAP_QG_DELIVERED,		/* userspace has it: may answer */
	IOPFMAP_QG_DONE,		/* out of the queue */
};

struct iopfmap_qgroup {
	struct list_head pending;	/* in queue->pending while QUEUED */
	struct list_head age;		/* in queue->age, oldest first */
	struct list_head done_node;	/* on a local list once DONE */
	struct iopfmap_fault_source *src;
	u64 cookie;
	unsigned long deadline;		/* jiffies; with a timeout only */
	enum iopfmap_qgroup_state state;
	u32 response;
	struct completion done;
	u32 nr;
	struct iopfmap_fault_record rec[];
};

/* An io_uring slot: a record buffer and, while armed, a parked command. */
struct iopfmap_qslot {
	struct list_head armed;		/* in queue->armed while parked */
	bool parked;
	struct io_uring_cmd *cmd;	/* parked or being completed */
	fl_owner_t owner;		/* the submitter's files, for ->flush */
	u64 records;			/* the user buffer */
	/* What the command completes with: records in @buf, or -errno. */
	int result;
	struct iopfmap_fault_record *buf;
};

struct iopfmap_queue {
	struct kref ref;		/* the file and ctx->queue */
	u32 ctx_id;
	u32 depth;
	u32 timeout_ms;
	struct rcu_head rcu;
	struct delayed_work expire;

	spinlock_t lock;		/* see iopfmap_private.h */
	bool released;			/* the file is gone */
	bool ctx_gone;
	u64 seq;
	struct iopfmap_qgroup **groups;	/* by cookie index */
	struct list_head pending;
	struct list_head age;
	u32 nr_pending;
	u32 nr_inflight;
	struct iopfmap_qslot *slots;
	struct list_head armed;
	u64 stats[IOPFMAP_QSTAT_NR];
	/* queue-full-ntf: at most one a second, with what it missed. */
	unsigned long full_notify_next;	/* jiffies */
	u32 full_unreported;
	wait_queue_head_t wait;
};

/* What an io_uring command of a queue carries in its pdu. */
struct iopfmap_qcmd_pdu {
	struct iopfmap_queue *queue;
	u32 slot;
};

static struct iopfmap_qcmd_pdu *iopfmap_qcmd_pdu(struct io_uring_cmd *cmd)
{
	BUILD_BUG_ON(sizeof(struct iopfmap_qcmd_pdu) >
		     sizeof_field(struct io_uring_cmd, pdu));
	return (struct iopfmap_qcmd_pdu *)cmd->pdu;
}

static u32 iopfmap_queue_features(void)
{
	return IOPFMAP_QUEUE_FEAT_RW |
	       (IS_ENABLED(CONFIG_IO_URING) ?
		IOPFMAP_QUEUE_FEAT_URING_CMD |
		(IOPFMAP_URING_CANCEL ? IOPFMAP_QUEUE_FEAT_URING_CANCEL : 0) :
		0);
}

static void iopfmap_queue_free_rcu(struct rcu_head *head)
{
	struct iopfmap_queue *q = container_of(head, struct iopfmap_queue, rcu);
	u32 i;

	for (i = 0; i < q->depth; i++)
		kfree(q->slots[i].buf);
	kvfree(q->slots);
	kvfree(q->groups);
	kfree(q);
}

static void iopfmap_queue_release_ref(struct kref *ref)
{
	struct iopfmap_queue *q = container_of(ref, struct iopfmap_queue, ref);

	/* Fault sources may still be looking it up under RCU. */
	call_rcu(&q->rcu, iopfmap_queue_free_rcu);
}

static void iopfmap_queue_put(struct iopfmap_queue *q)
{
	kref_put(&q->ref, iopfmap_queue_release_ref);
}

/*
 * What userspace may answer: SUCCESS or INVALID, as iommufd allows. A PRI
 * response FAILURE makes a PCIe function turn its page requests off (a
 * VF's are its PF's), which no queue server may decide for the device.
 */
static bool iopfmap_response_code_valid(u32 code)
{
	return code == IOPFMAP_PAGE_RESP_SUCCESS ||
	       code == IOPFMAP_PAGE_RESP_INVALID;
}

/* Who answered, as the queue_answer tracepoint says it. */
static u32 iopfmap_answer_how(enum iopfmap_queue_stat stat)
{
	switch (stat) {
	case IOPFMAP_QSTAT_TIMEOUTS:
		return 1;
	case IOPFMAP_QSTAT_CLOSED:
		return 2;
	case IOPFMAP_QSTAT_WITHDRAWN:
		return 3;
	default:
		return 0;
	}
}

/*
 * Takes @g out of the queue with @code as its answer, counted in @stat,
 * and puts it on @done for iopfmap_queue_complete(). Under queue->lock.
 */
static void iopfmap_queue_take(struct iopfmap_queue *q,
			       struct iopfmap_qgroup *g, u32 code,
			       enum iopfmap_queue_stat stat,
			       struct list_head *done)
{
	lockdep_assert_held(&q->lock);
	if (WARN_ON_ONCE(g->state == IOPFMAP_QG_DONE))
		return;
	q->groups[g->cookie & IOPFMAP_COOKIE_INDEX_MASK] = NULL;
	list_del(&g->age);
	if (g->state == IOPFMAP_QG_QUEUED) {
		list_del(&g->pending);
		q->nr_pending--;
	} else {
		q->nr_inflight--;
	}
	g->state = IOPFMAP_QG_DONE;
	g->response = code;
	q->stats[stat]++;
	if (trace_iopfmap_queue_answer_enabled())
		trace_iopfmap_queue_answer(q->ctx_id, g->cookie, code,
					   iopfmap_answer_how(stat),
					   ktime_get_ns() - g->rec[0].time_ns);
	list_add_tail(&g->done_node, done);
}

/* Wakes the waiters of groups taken out; without queue->lock. */
static void iopfmap_queue_complete(struct list_head *done)
{
	struct iopfmap_qgroup *g, *tmp;

	/* The waiter frees @g as soon as it is woken: read the next first. */
	list_for_each_entry_safe(g, tmp, done, done_node)
		complete(&g->done);
}

/*
 * Answers every group (!@src) or those of @src INVALID. Under the lock.
 * Returns how many.
 */
static u32 iopfmap_queue_take_all(struct iopfmap_queue *q,
				  struct iopfmap_fault_source *src,
				  struct list_head *done)
{
	struct iopfmap_qgroup *g, *tmp;
	u32 n = 0;

	list_for_each_entry_safe(g, tmp, &q->age, age) {
		if (!src || g->src == src) {
			iopfmap_queue_take(q, g, IOPFMAP_PAGE_RESP_INVALID,
					   IOPFMAP_QSTAT_CLOSED, done);
			n++;
		}
	}
	return n;
}

/* Finds the delivered group @cookie names, or NULL. Under the lock. */
static struct iopfmap_qgroup *iopfmap_queue_find(struct iopfmap_queue *q,
						 u64 cookie)
{
	u64 index = cookie & IOPFMAP_COOKIE_INDEX_MASK;
	struct iopfmap_qgroup *g;

	if (index >= q->depth)
		return NULL;
	g = q->groups[index];
	if (!g || g->cookie != cookie || g->state != IOPFMAP_QG_DELIVERED)
		return NULL;
	return g;
}

/*
 * Applies one response from userspace. Returns 0, -EINVAL for a bad code
 * or reserved field, -ENOENT for a cookie of no delivered group.
 */
static int iopfmap_queue_answer(struct iopfmap_queue *q, u64 cookie,
				u32 code, u32 reserved)
{
	static const enum iopfmap_queue_stat by_code[] = {
		[IOPFMAP_PAGE_RESP_SUCCESS] = IOPFMAP_QSTAT_RESP_SUCCESS,
		[IOPFMAP_PAGE_RESP_INVALID] = IOPFMAP_QSTAT_RESP_INVALID,
	};
	struct iopfmap_qgroup *g;
	LIST_HEAD(done);
	int ret = 0;

	spin_lock(&q->lock);
	if (!iopfmap_response_code_valid(code) || reserved) {
		ret = -EINVAL;
	} else {
		g = iopfmap_queue_find(q, cookie);
		if (g)
			iopfmap_queue_take(q, g, code, by_code[code], &done);
		else
			ret = -ENOENT;
	}
	if (ret)
		q->stats[IOPFMAP_QSTAT_REFUSED]++;
	spin_unlock(&q->lock);
	iopfmap_queue_complete(&done);
	return ret;
}

/* Marks @g delivered and copies its records to @buf. Under the lock. */
static u32 iopfmap_queue_deliver(struct iopfmap_queue *q,
				 struct iopfmap_qgroup *g,
				 struct iopfmap_fault_record *buf)
{
	list_del(&g->pending);
	q->nr_pending--;
	q->nr_inflight++;
	g->state = IOPFMAP_QG_DELIVERED;
	q->stats[IOPFMAP_QSTAT_DELIVERED]++;
	memcpy(buf, g->rec, g->nr * IOPFMAP_QUEUE_RECORD_SIZE);
	return g->nr;
}

/*
 * Puts a group whose records never reached userspace back at the head,
 * if nobody answered it meanwhile. Under the lock.
 */
static void iopfmap_queue_undeliver(struct iopfmap_queue *q, u64 cookie)
{
	struct iopfmap_qgroup *g = iopfmap_queue_find(q, cookie);

	if (!g)
		return;
	g->state = IOPFMAP_QG_QUEUED;
	list_add(&g->pending, &q->pending);
	q->nr_inflight--;
	q->nr_pending++;
}

static void iopfmap_qslot_done_tw(iopfmap_tw_arg_t arg, iopfmap_tw_token_t tw);

/*
 * Hands waiting groups to armed slots. The commands are completed in
 * their submitter's task (which can write its buffer) by
 * iopfmap_queue_finish_slots() once the lock is dropped. Under the lock.
 */
static void iopfmap_queue_dispatch(struct iopfmap_queue *q,
				   struct list_head *ready)
{
	struct iopfmap_qgroup *g;
	struct iopfmap_qslot *slot;

	while (!list_empty(&q->pending) && !list_empty(&q->armed)) {
		g = list_first_entry(&q->pending, struct iopfmap_qgroup,
				     pending);
		slot = list_first_entry(&q->armed, struct iopfmap_qslot, armed);
		slot->result = iopfmap_queue_deliver(q, g, slot->buf);
		slot->parked = false;
		list_move_tail(&slot->armed, ready);
	}
}

/* Fails every armed slot (@owner NULL) or @owner's with @err. */
static void iopfmap_queue_unpark(struct iopfmap_queue *q, fl_owner_t owner,
				 int err, struct list_head *ready)
{
	struct iopfmap_qslot *slot, *tmp;

	list_for_each_entry_safe(slot, tmp, &q->armed, armed) {
		if (owner && slot->owner != owner)
			continue;
		slot->result = err;
		slot->parked = false;
		list_move_tail(&slot->armed, ready);
	}
}

static void iopfmap_queue_finish_slots(struct list_head *ready)
{
	struct iopfmap_qslot *slot, *tmp;

	list_for_each_entry_safe(slot, tmp, ready, armed) {
		list_del_init(&slot->armed);
		io_uring_cmd_complete_in_task(slot->cmd, iopfmap_qslot_done_tw);
	}
}

/*
 * Writes a slot's @nr records into its command's buffer, in the
 * submitter's task: 0 or -EFAULT. A fault-injection point (fail_function)
 * for what follows a failed copy, a dying task's included: the group goes
 * back to the head of the queue and the command ends -EFAULT.
 */
static noinline int iopfmap_qslot_copy_records(struct iopfmap_qslot *slot,
					       u32 nr)
{
	if (copy_to_user(u64_to_user_ptr(slot->records), slot->buf,
			 nr * IOPFMAP_QUEUE_RECORD_SIZE))
		return -EFAULT;
	return 0;
}
ALLOW_ERROR_INJECTION(iopfmap_qslot_copy_records, ERRNO);

/*
 * Task work of a completed slot: writes the records into the submitter's
 * buffer. A task that is dying, or task work that runs only to be
 * cancelled, cannot take them: the group goes back.
 */
static void iopfmap_qslot_done(struct io_uring_cmd *cmd,
			       unsigned int issue_flags, bool cancel)
{
	struct iopfmap_qcmd_pdu *pdu = iopfmap_qcmd_pdu(cmd);
	struct iopfmap_queue *q = pdu->queue;
	struct iopfmap_qslot *slot = &q->slots[pdu->slot];
	int result = slot->result;
	LIST_HEAD(ready);

	if (result > 0 &&
	    (cancel || (current->flags & (PF_EXITING | PF_KTHREAD)) ||
	     iopfmap_qslot_copy_records(slot, result))) {
		spin_lock(&q->lock);
		iopfmap_queue_undeliver(q, slot->buf[0].cookie);
		slot->cmd = NULL;
		iopfmap_queue_dispatch(q, &ready);
		spin_unlock(&q->lock);
		iopfmap_queue_finish_slots(&ready);
		wake_up_interruptible_poll(&q->wait, EPOLLIN | EPOLLRDNORM);
		result = -EFAULT;
	} else {
		spin_lock(&q->lock);
		slot->cmd = NULL;
		spin_unlock(&q->lock);
	}
	iopfmap_uring_cmd_done(cmd, result, issue_flags);
}

static void iopfmap_qslot_done_tw(iopfmap_tw_arg_t arg, iopfmap_tw_token_t tw)
{
	iopfmap_qslot_done(iopfmap_tw_cmd(arg), iopfmap_tw_issue_flags(tw),
			   iopfmap_tw_cancel(tw));
}

/* Answers the groups whose timeout passed, then waits for the next. */
static void iopfmap_queue_expire(struct work_struct *work)
{
	struct iopfmap_queue *q = container_of(to_delayed_work(work),
					       struct iopfmap_queue, expire);
	struct iopfmap_qgroup *g, *tmp;
	u32 expired = 0;
	LIST_HEAD(done);

	spin_lock(&q->lock);
	list_for_each_entry_safe(g, tmp, &q->age, age) {
		if (time_before(jiffies, g->deadline)) {
			mod_delayed_work(system_wq, &q->expire,
					 g->deadline - jiffies);
			break;
		}
		iopfmap_queue_take(q, g, IOPFMAP_PAGE_RESP_INVALID,
				   IOPFMAP_QSTAT_TIMEOUTS, &done);
		expired++;
	}
	spin_unlock(&q->lock);
	iopfmap_queue_complete(&done);
	if (expired)
		iopfmap_notify_queue(IOPFMAP_NL_CMD_QUEUE_TIMEOUT_NTF,
				     q->ctx_id, expired);
}

/* The context's live queue, referenced, or NULL. */
static struct iopfmap_queue *iopfmap_ctx_queue_get(struct iopfmap_ctx *ctx)
{
	struct iopfmap_queue *q;

	rcu_read_lock();
	q = rcu_dereference(ctx->queue);
	if (q && !kref_get_unless_zero(&q->ref))
		q = NULL;
	rcu_read_unlock();
	return q;
}

static struct iopfmap_qgroup *
iopfmap_qgroup_alloc(struct iopfmap_ctx *ctx, struct iopfmap_fault_source *src,
		     const struct iopfmap_fault *faults, unsigned int nr,
		     const u32 *range_ids, u32 record_flags)
{
	u64 now = ktime_get_ns();
	struct iopfmap_qgroup *g;
	unsigned int i;

	g = kzalloc(struct_size(g, rec, nr), GFP_KERNEL_ACCOUNT);
	if (!g)
		return NULL;
	g->src = src;
	g->nr = nr;
	init_completion(&g->done);
	for (i = 0; i < nr; i++) {
		const struct iopfmap_fault *f = &faults[i];
		struct iopfmap_fault_record *rec = &g->rec[i];

		rec->addr = f->iova;
		rec->time_ns = now;
		rec->flags = record_flags |
			     (f->flags & IOPFMAP_FAULT_PASID ?
			      IOPFMAP_RECORD_PASID : 0);
		rec->perm = (f->flags & IOPFMAP_FAULT_READ ?
			     IOPFMAP_PRQ_READ : 0) |
			    (f->flags & IOPFMAP_FAULT_WRITE ?
			     IOPFMAP_PRQ_WRITE : 0);
		rec->pasid = f->flags & IOPFMAP_FAULT_PASID ? f->pasid : 0;
		rec->grpid = f->grpid;
		rec->ctx_id = ctx->id;
		rec->dev_id = src->dev_id;
		rec->range_id = range_ids ? range_ids[i] : 0;
	}
	/* A group ends with its last request, whatever order it came in. */
	g->rec[nr - 1].flags |= IOPFMAP_RECORD_LAST;
	return g;
}

/*
 * Queues @g. Returns 0, or -ENODEV (the queue is closed, or @g's source
 * is) or -ENOSPC (full): then @g was never queued.
 */
static int iopfmap_queue_push(struct iopfmap_queue *q, struct iopfmap_qgroup *g)
{
	struct iopfmap_fault_source *src = g->src;
	u32 index, i, full_report = 0;
	LIST_HEAD(ready);
	int ret = 0;

	spin_lock(&q->lock);
	q->stats[IOPFMAP_QSTAT_GROUPS]++;
	q->stats[IOPFMAP_QSTAT_RECORDS] += g->nr;
	if (q->released || q->ctx_gone || READ_ONCE(src->closed)) {
		q->stats[IOPFMAP_QSTAT_CLOSED]++;
		ret = -ENODEV;
		goto out_unlock;
	}
	if (q->nr_pending + q->nr_inflight == q->depth) {
		q->stats[IOPFMAP_QSTAT_OVERFLOWS]++;
		q->full_unreported++;
		if (time_after_eq(jiffies, q->full_notify_next)) {
			full_report = q->full_unreported;
			q->full_unreported = 0;
			q->full_notify_next = jiffies + HZ;
		}
		ret = -ENOSPC;
		goto out_unlock;
	}
	/* Below the depth, a free index exists; find it from a moving start. */
	index = q->seq % q->depth;
	while (q->groups[index])
		index = (index + 1) % q->depth;
	g->cookie = (++q->seq << IOPFMAP_COOKIE_INDEX_BITS) | index;
	for (i = 0; i < g->nr; i++)
		g->rec[i].cookie = g->cookie;
	q->groups[index] = g;
	g->state = IOPFMAP_QG_QUEUED;
	if (q->timeout_ms) {
		g->deadline = jiffies + msecs_to_jiffies(q->timeout_ms);
		if (list_empty(&q->age))
			mod_delayed_work(system_wq, &q->expire,
					 msecs_to_jiffies(q->timeout_ms));
	}
	list_add_tail(&g->age, &q->age);
	list_add_tail(&g->pending, &q->pending);
	q->nr_pending++;
	iopfmap_queue_dispatch(q, &ready);
out_unlock:
	trace_iopfmap_queue_push(q->ctx_id, src->dev_id, g->rec[0].addr,
				 g->nr, g->rec[0].flags, g->cookie,
				 q->nr_pending, ret);
	spin_unlock(&q->lock);
	if (full_report)
		iopfmap_notify_queue(IOPFMAP_NL_CMD_QUEUE_FULL_NTF, q->ctx_id,
				     full_report);
	if (ret)
		return ret;
	iopfmap_queue_finish_slots(&ready);
	wake_up_interruptible_poll(&q->wait, EPOLLIN | EPOLLRDNORM);
	return 0;
}

/*
 * Takes @g back because its waiter gives up (a fatal signal, or its
 * source closed), counted in @stat. Returns true if it was still queued
 * (no answer is due), false if somebody is answering it.
 */
static bool iopfmap_queue_withdraw(struct iopfmap_queue *q,
				   struct iopfmap_qgroup *g,
				   enum iopfmap_queue_stat stat)
{
	LIST_HEAD(done);
	bool taken = false;

	spin_lock(&q->lock);
	if (g->state != IOPFMAP_QG_DONE) {
		iopfmap_queue_take(q, g, IOPFMAP_PAGE_RESP_INVALID, stat,
				   &done);
		taken = true;
	}
	spin_unlock(&q->lock);
	return taken;
}

int iopfmap_queue_forward(struct iopfmap_ctx *ctx,
			  struct iopfmap_fault_source *src,
			  const struct iopfmap_fault *faults, unsigned int nr,
			  const u32 *range_ids, u32 record_flags,
			  bool killable, u32 *resp)
{
	struct iopfmap_queue *q;
	struct iopfmap_qgroup *g;
	int ret;

	*resp = IOPFMAP_PAGE_RESP_INVALID;
	if (WARN_ON_ONCE(!nr || nr > IOPFMAP_FAULT_GROUP_MAX))
		return 0;
	q = iopfmap_ctx_queue_get(ctx);
	if (!q)
		return 0;		/* nobody to ask */
	g = iopfmap_qgroup_alloc(ctx, src, faults, nr, range_ids,
				 record_flags);
	if (!g) {
		iopfmap_queue_put(q);
		return 0;
	}
	if (iopfmap_queue_push(q, g))
		goto out_free;

	/*
	 * Pairs with the barrier in iopfmap_queue_close_source(): either it
	 * saw @g queued and answers it, or we see the source closed.
	 */
	smp_mb();
	if (READ_ONCE(src->closed) &&
	    iopfmap_queue_withdraw(q, g, IOPFMAP_QSTAT_CLOSED))
		goto out_free;

	/* A device's group: bounded whatever the queue's timeout. */
	if (!killable &&
	    !wait_for_completion_timeout(&g->done,
			msecs_to_jiffies(IOPFMAP_QUEUE_DEVICE_TIMEOUT_MS))) {
		if (iopfmap_queue_withdraw(q, g, IOPFMAP_QSTAT_TIMEOUTS)) {
			iopfmap_notify_queue(IOPFMAP_NL_CMD_QUEUE_TIMEOUT_NTF,
					     q->ctx_id, 1);
			goto out_free;
		}
		/* Being answered: that takes no time. */
		wait_for_completion(&g->done);
	}
	/* The simulated device's caller: until answered, or killed. */
	while (killable) {
		long left = wait_for_completion_killable_timeout(&g->done,
						IOPFMAP_QUEUE_WAIT_SLICE);

		if (left > 0)
			break;
		if (left < 0) {
			if (iopfmap_queue_withdraw(q, g,
						   IOPFMAP_QSTAT_WITHDRAWN)) {
				ret = -EINTR;
				goto out_put;
			}
			/* Being answered: that takes no time. */
			wait_for_completion(&g->done);
			break;
		}
	}
	*resp = g->response;
out_free:
	ret = 0;
out_put:
	kfree(g);
	iopfmap_queue_put(q);
	return ret;
}

void iopfmap_queue_close_source(struct iopfmap_ctx *ctx,
				struct iopfmap_fault_source *src)
{
	struct iopfmap_queue *q;
	LIST_HEAD(done);

	WRITE_ONCE(src->closed, true);
	/* Pairs with the barrier in iopfmap_queue_forward(). */
	smp_mb();
	q = iopfmap_ctx_queue_get(ctx);
	if (!q)
		return;
	spin_lock(&q->lock);
	iopfmap_queue_take_all(q, src, &done);
	spin_unlock(&q->lock);
	iopfmap_queue_complete(&done);
	iopfmap_queue_put(q);
}

/* What a blocked reader waits for: a group, or the end. */
static bool iopfmap_queue_ready(struct iopfmap_queue *q)
{
	return !list_empty_careful(&q->pending) || READ_ONCE(q->ctx_gone);
}

/* read(): whole groups only. */
static ssize_t iopfmap_queue_read(struct file *filp, char __user *ubuf,
				  size_t count, loff_t *ppos)
{
	struct iopfmap_queue *q = filp->private_data;
	struct iopfmap_fault_record *buf;
	struct iopfmap_qgroup *g;
	size_t done = 0, len;
	int ret = 0;
	u64 cookie;
	u32 nr;

	if (count < IOPFMAP_QUEUE_RECORD_SIZE)
		return -EINVAL;
	buf = kmalloc(IOPFMAP_QUEUE_BUFFER_SIZE, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;

	for (;;) {
		spin_lock(&q->lock);
		if (list_empty(&q->pending)) {
			bool gone = q->ctx_gone;

			spin_unlock(&q->lock);
			if (done || gone)
				break;
			if (filp->f_flags & O_NONBLOCK) {
				ret = -EAGAIN;
				break;
			}
			ret = wait_event_interruptible(q->wait,
						       iopfmap_queue_ready(q));
			if (ret)
				break;
			continue;
		}
		g = list_first_entry(&q->pending, struct iopfmap_qgroup,
				     pending);
		len = g->nr * IOPFMAP_QUEUE_RECORD_SIZE;
		if (len > count - done) {
			spin_unlock(&q->lock);
			if (!done)
				ret = -EINVAL;
			break;
		}
		cookie = g->cookie;
		nr = iopfmap_queue_deliver(q, g, buf);
		spin_unlock(&q->lock);

		if (copy_to_user(ubuf + done, buf,
				 nr * IOPFMAP_QUEUE_RECORD_SIZE)) {
			LIST_HEAD(ready);

			spin_lock(&q->lock);
			iopfmap_queue_undeliver(q, cookie);
			iopfmap_queue_dispatch(q, &ready);
			spin_unlock(&q->lock);
			iopfmap_queue_finish_slots(&ready);
			/* It waits again: another reader may take it. */
			wake_up_interruptible_poll(&q->wait,
						   EPOLLIN | EPOLLRDNORM);
			ret = -EFAULT;
			break;
		}
		done += len;
	}
	kfree(buf);
	return done ?: ret;
}

/* write(): whole responses, applied in order up to the first refused. */
static ssize_t iopfmap_queue_write(struct file *filp, const char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	struct iopfmap_queue *q = filp->private_data;
	struct iopfmap_fault_response r;
	size_t done;
	int ret = 0;

	if (!count || count % sizeof(r))
		return -EINVAL;
	for (done = 0; done < count; done += sizeof(r)) {
		if (copy_from_user(&r, ubuf + done, sizeof(r))) {
			ret = -EFAULT;
			break;
		}
		ret = iopfmap_queue_answer(q, r.cookie, r.code, r.__reserved);
		if (ret)
			break;
	}
	return done ?: ret;
}

static __poll_t iopfmap_queue_poll(struct file *filp, poll_table *wait)
{
	struct iopfmap_queue *q = filp->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(filp, &q->wait, wait);
	spin_lock(&q->lock);
	if (!list_empty(&q->pending))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (q->ctx_gone)
		mask |= EPOLLHUP;
	spin_unlock(&q->lock);
	return mask;
}

/*
 * Arms @slot with @cmd, or completes it at once with a waiting group.
 * Returns what ->uring_cmd() returns.
 */
static int iopfmap_qslot_arm(struct iopfmap_queue *q, struct io_uring_cmd *cmd,
			     u32 index, const struct iopfmap_queue_fetch *fetch,
			     unsigned int issue_flags)
{
	struct iopfmap_qslot *slot = &q->slots[index];
	struct iopfmap_fault_record *buf = NULL;
	struct iopfmap_qcmd_pdu *pdu;
	struct iopfmap_qgroup *g;
	u64 cookie = 0;
	int ret = 0;
	u32 nr = 0;

	if (fetch && !READ_ONCE(slot->buf)) {
		/* Lives as long as the queue: charged to its server. */
		buf = kmalloc(IOPFMAP_QUEUE_BUFFER_SIZE, GFP_KERNEL_ACCOUNT);
		if (!buf)
			return -ENOMEM;
	}
	pdu = iopfmap_qcmd_pdu(cmd);
	pdu->queue = q;
	pdu->slot = index;
	/*
	 * Cancelable before it can be parked: completing it from another
	 * task must find it on io_uring's list. From here on every outcome
	 * goes through io_uring_cmd_done().
	 */
	io_uring_cmd_mark_cancelable(cmd, issue_flags);

	spin_lock(&q->lock);
	if (q->ctx_gone) {
		ret = -ENODEV;
	} else if (slot->cmd) {
		ret = -EBUSY;
	} else if (!fetch && !slot->buf) {
		ret = -EINVAL;
	} else {
		/* Two racing FETCHes may both have allocated: keep one. */
		if (buf && !slot->buf) {
			slot->buf = buf;
			buf = NULL;
		}
		/* Stable while slot->cmd is ours: a second FETCH gets EBUSY. */
		if (fetch)
			slot->records = fetch->records;
		if (!list_empty(&q->pending)) {
			/* A group waits: no need to park. */
			g = list_first_entry(&q->pending,
					     struct iopfmap_qgroup, pending);
			cookie = g->cookie;
			nr = iopfmap_queue_deliver(q, g, slot->buf);
			slot->cmd = cmd;
		} else {
			slot->cmd = cmd;
			slot->owner = current->files;
			slot->parked = true;
			list_add_tail(&slot->armed, &q->armed);
			spin_unlock(&q->lock);
			kfree(buf);
			return -EIOCBQUEUED;
		}
	}
	spin_unlock(&q->lock);
	kfree(buf);

	if (nr) {
		/* We run in the submitter, which can take the records now. */
		ret = nr;
		if (iopfmap_qslot_copy_records(slot, nr)) {
			LIST_HEAD(ready);

			ret = -EFAULT;
			spin_lock(&q->lock);
			iopfmap_queue_undeliver(q, cookie);
			slot->cmd = NULL;
			iopfmap_queue_dispatch(q, &ready);
			spin_unlock(&q->lock);
			iopfmap_queue_finish_slots(&ready);
		} else {
			spin_lock(&q->lock);
			slot->cmd = NULL;
			spin_unlock(&q->lock);
		}
	}
	iopfmap_uring_cmd_done(cmd, ret, issue_flags);
	return -EIOCBQUEUED;
}

/* IO_URING_F_CANCEL: io_uring tears down the command's ring or task. */
static void iopfmap_qslot_cancel(struct io_uring_cmd *cmd,
				 unsigned int issue_flags)
{
	struct iopfmap_qcmd_pdu *pdu = iopfmap_qcmd_pdu(cmd);
	struct iopfmap_queue *q = pdu->queue;
	struct iopfmap_qslot *slot = &q->slots[pdu->slot];
	bool parked;

	spin_lock(&q->lock);
	parked = slot->cmd == cmd && slot->parked;
	if (parked) {
		slot->parked = false;
		list_del_init(&slot->armed);
		slot->cmd = NULL;
	}
	spin_unlock(&q->lock);
	/* Else it is being completed already. */
	if (parked)
		iopfmap_uring_cmd_done(cmd, -ECANCELED, issue_flags);
}

static int iopfmap_queue_uring_cmd(struct io_uring_cmd *cmd,
				   unsigned int issue_flags)
{
	struct iopfmap_queue *q = cmd->file->private_data;
	struct iopfmap_queue_commit commit;
	struct iopfmap_queue_fetch fetch;
	int ret;

	if (issue_flags & IOPFMAP_URING_F_CANCEL) {
		iopfmap_qslot_cancel(cmd, issue_flags);
		return 0;
	}
	BUILD_BUG_ON(sizeof(fetch) != 16 || sizeof(commit) != 16);
	/* The SQE is shared with userspace: each case reads it once. */

	switch (cmd->cmd_op) {
	case IOPFMAP_QUEUE_FETCH:
		fetch = *iopfmap_uring_cmd_payload(cmd, typeof(fetch));
		if (fetch.flags || fetch.slot >= q->depth ||
		    fetch.max_records < IOPFMAP_FAULT_GROUP_MAX ||
		    !access_ok(u64_to_user_ptr(fetch.records),
			       IOPFMAP_QUEUE_BUFFER_SIZE))
			return -EINVAL;
		return iopfmap_qslot_arm(q, cmd, fetch.slot, &fetch,
					 issue_flags);
	case IOPFMAP_QUEUE_COMMIT_AND_FETCH:
		commit = *iopfmap_uring_cmd_payload(cmd, typeof(commit));
		if (commit.flags || commit.slot >= q->depth ||
		    !iopfmap_response_code_valid(commit.code))
			return -EINVAL;
		/* A slot that never had a buffer cannot be re-armed. */
		if (!READ_ONCE(q->slots[commit.slot].buf))
			return -EINVAL;
		ret = iopfmap_queue_answer(q, commit.cookie, commit.code, 0);
		if (ret)
			return ret;
		return iopfmap_qslot_arm(q, cmd, commit.slot, NULL,
					 issue_flags);
	default:
		return -ENOTTY;
	}
}

/*
 * Every close() of the file by a process (exit included) finishes the
 * commands that process parked. Before v6.7 nothing else would: a process
 * exiting with one parked would wait for it for ever. Later, io_uring
 * cancels them when their ring goes, but a server that stops serving one
 * queue and keeps its ring needs its close to let the queue go.
 */
static int iopfmap_queue_flush(struct file *filp, fl_owner_t id)
{
	struct iopfmap_queue *q = filp->private_data;
	LIST_HEAD(ready);

	spin_lock(&q->lock);
	iopfmap_queue_unpark(q, id, -ECANCELED, &ready);
	spin_unlock(&q->lock);
	iopfmap_queue_finish_slots(&ready);
	return 0;
}

/* The last descriptor is gone: nobody can answer what the queue holds. */
static int iopfmap_queue_release(struct inode *inode, struct file *filp)
{
	struct iopfmap_queue *q = filp->private_data;
	LIST_HEAD(done);
	u32 answered;

	spin_lock(&q->lock);
	q->released = true;
	answered = iopfmap_queue_take_all(q, NULL, &done);
	spin_unlock(&q->lock);
	iopfmap_queue_complete(&done);
	if (answered)
		iopfmap_notify_queue(IOPFMAP_NL_CMD_QUEUE_CLOSE_NTF, q->ctx_id,
				     answered);
	cancel_delayed_work_sync(&q->expire);
	iopfmap_queue_put(q);
	return 0;
}

static long iopfmap_queue_fops_ioctl(struct file *filp, unsigned int cmd,
				     unsigned long arg)
{
	return iopfmap_queue_ioctl(filp->private_data, cmd, arg);
}

static const struct file_operations iopfmap_queue_fops = {
	.owner = THIS_MODULE,
	.read = iopfmap_queue_read,
	.write = iopfmap_queue_write,
	.poll = iopfmap_queue_poll,
	.flush = iopfmap_queue_flush,
	.release = iopfmap_queue_release,
	.uring_cmd = iopfmap_queue_uring_cmd,
	.unlocked_ioctl = iopfmap_queue_fops_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

int iopfmap_queue_get_info(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_queue_info *cmd = ucmd->cmd;
	struct iopfmap_queue *q = ucmd->queue;
	unsigned int i;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	cmd->out_ctx_id = q->ctx_id;
	cmd->out_features = iopfmap_queue_features();
	cmd->out_depth = q->depth;
	cmd->out_timeout_ms = q->timeout_ms;
	spin_lock(&q->lock);
	cmd->out_pending = q->nr_pending;
	cmd->out_inflight = q->nr_inflight;
	cmd->out_flags = q->ctx_gone ? IOPFMAP_QUEUE_CTX_GONE : 0;
	BUILD_BUG_ON(sizeof(*cmd) != offsetof(typeof(*cmd), out_groups) +
		     IOPFMAP_QSTAT_NR * sizeof(u64));
	for (i = 0; i < IOPFMAP_QSTAT_NR; i++)
		(&cmd->out_groups)[i] = q->stats[i];
	spin_unlock(&q->lock);
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

bool iopfmap_ctx_queue_snapshot(struct iopfmap_ctx *ctx,
				struct iopfmap_queue_snapshot *snap)
{
	struct iopfmap_queue *q = iopfmap_ctx_queue_get(ctx);
	struct iopfmap_qslot *slot;

	if (!q)
		return false;
	snap->depth = q->depth;
	snap->timeout_ms = q->timeout_ms;
	spin_lock(&q->lock);
	snap->pending = q->nr_pending;
	snap->inflight = q->nr_inflight;
	snap->attached = !q->released;
	snap->armed = 0;
	list_for_each_entry(slot, &q->armed, armed)
		snap->armed++;
	memcpy(snap->stats, q->stats, sizeof(snap->stats));
	spin_unlock(&q->lock);
	iopfmap_queue_put(q);
	return true;
}

static struct iopfmap_queue *iopfmap_queue_create(struct iopfmap_ctx *ctx,
						  u32 depth, u32 timeout_ms)
{
	struct iopfmap_queue *q;
	u32 i;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return NULL;
	q->groups = kvcalloc(depth, sizeof(*q->groups), GFP_KERNEL_ACCOUNT);
	q->slots = kvcalloc(depth, sizeof(*q->slots), GFP_KERNEL_ACCOUNT);
	if (!q->groups || !q->slots) {
		kvfree(q->groups);
		kvfree(q->slots);
		kfree(q);
		return NULL;
	}
	for (i = 0; i < depth; i++)
		INIT_LIST_HEAD(&q->slots[i].armed);
	kref_init(&q->ref);
	q->ctx_id = ctx->id;
	q->depth = depth;
	q->timeout_ms = timeout_ms;
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->pending);
	INIT_LIST_HEAD(&q->age);
	INIT_LIST_HEAD(&q->armed);
	init_waitqueue_head(&q->wait);
	q->full_notify_next = jiffies;
	INIT_DELAYED_WORK(&q->expire, iopfmap_queue_expire);
	return q;
}

int iopfmap_queue_alloc(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_queue_alloc *cmd = ucmd->cmd;
	struct iopfmap_ctx *ctx = ucmd->ctx;
	u32 depth = cmd->depth ?: IOPFMAP_QUEUE_DEPTH_DEFAULT;
	struct iopfmap_queue *q, *old;
	struct file *file;
	int fd, flags, ret;

	if (depth > IOPFMAP_QUEUE_DEPTH_MAX)
		return -EINVAL;
	q = iopfmap_queue_create(ctx, depth, cmd->timeout_ms);
	if (!q)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		iopfmap_queue_free_rcu(&q->rcu);
		return fd;
	}
	/* From here the file owns the queue: fput() undoes everything. */
	flags = O_RDWR |
		(cmd->flags & IOPFMAP_QUEUE_NONBLOCK ? O_NONBLOCK : 0);
	file = anon_inode_getfile("[iopfmap-queue]", &iopfmap_queue_fops, q,
				  flags);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		iopfmap_queue_free_rcu(&q->rcu);
		return PTR_ERR(file);
	}

	mutex_lock(&ctx->lock);
	old = rcu_dereference_protected(ctx->queue,
					lockdep_is_held(&ctx->lock));
	if (old && !READ_ONCE(old->released)) {
		mutex_unlock(&ctx->lock);
		ret = -EBUSY;
		goto err_put;
	}
	cmd->out_fd = fd;
	cmd->out_features = iopfmap_queue_features();
	ret = iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
	if (ret) {
		mutex_unlock(&ctx->lock);
		goto err_put;
	}
	/* The context's reference. */
	kref_get(&q->ref);
	rcu_assign_pointer(ctx->queue, q);
	mutex_unlock(&ctx->lock);
	if (old)
		iopfmap_queue_put(old);
	fd_install(fd, file);
	return 0;

err_put:
	put_unused_fd(fd);
	fput(file);
	return ret;
}

/* At release() of the context, after its devices: nothing faults now. */
void iopfmap_ctx_destroy_queue(struct iopfmap_ctx *ctx)
{
	struct iopfmap_queue *q = rcu_dereference_protected(ctx->queue, true);
	LIST_HEAD(ready);
	LIST_HEAD(done);

	if (!q)
		return;
	spin_lock(&q->lock);
	q->ctx_gone = true;
	iopfmap_queue_take_all(q, NULL, &done);
	iopfmap_queue_unpark(q, NULL, -ENODEV, &ready);
	spin_unlock(&q->lock);
	iopfmap_queue_complete(&done);
	iopfmap_queue_finish_slots(&ready);
	wake_up_interruptible_poll(&q->wait, EPOLLHUP);
	RCU_INIT_POINTER(ctx->queue, NULL);
	iopfmap_queue_put(q);
}
