// SPDX-License-Identifier: GPL-2.0
/*
 * Serving one kernel fault queue (include/uapi/linux/iopfmap.h, "Fault
 * queues"), in one of two ways:
 *
 *  - uring: the queue's slots are io_uring commands on iopfd's ring. Each
 *    slot owns a buffer of IOPFMAP_FAULT_GROUP_MAX records; FETCH arms it,
 *    its completion brings one group, and the group's answer goes back
 *    with COMMIT_AND_FETCH, which re-arms the slot in the same trip.
 *  - rw: a poll on the ring says when groups wait; they are read() with
 *    the fd non-blocking and answered with write().
 *
 * serve = auto takes uring when the queue offers it and falls back to rw
 * when the first commands fail with EOPNOTSUPP or EINVAL.
 *
 * Dropping a queue (its context is gone, RELEASE, its owner left while
 * iopfd held the context, shutdown) must not free a slot buffer the
 * kernel may still write to. Closing the fd cancels the commands this
 * process armed on it (every kernel), so the fd is closed at once and the
 * cancellations are awaited: the object is freed by iopfd_reap() when no
 * command is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iopfd.h"

_Static_assert(sizeof(struct iopfmap_queue_fetch) == 16,
	       "FETCH payload must fit a 64-byte SQE");
_Static_assert(sizeof(struct iopfmap_queue_commit) == 16,
	       "COMMIT payload must fit a 64-byte SQE");
_Static_assert(sizeof(struct iopfmap_fault_record) == 56,
	       "fault record layout");

#define KQ_RETRIES	3	/* re-arms of a slot after transient errors */
#define KQ_RBUF_GROUPS	4	/* read() buffer, in largest groups */
#define KQ_READS	16	/* read() calls per poll wake-up */

static const char *mode_name(enum kq_mode m)
{
	return m == KQ_URING ? "uring" : "rw";
}

bool kq_busy(const struct kqueue *kq)
{
	return kq->armed || kq->poll_armed;
}

struct kqueue *kq_find(struct iopfd *d, uint32_t ctx_id)
{
	struct kqueue *kq;

	list_for_each_entry(kq, &d->queues, node)
		if (kq->ctx_id == ctx_id && !kq->draining)
			return kq;
	return NULL;
}

/* Fills a uring_cmd SQE by hand: liburing 2.3 has no helper for it. */
static void kq_submit_cmd(struct kqueue *kq, unsigned int idx, __u32 cmd_op,
			  const void *payload)
{
	struct io_uring_sqe *sqe = iopfd_sqe(kq->d);
	struct kslot *s = &kq->slots[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = kq->fd;
	sqe->cmd_op = cmd_op;
	memcpy(sqe->cmd, payload, 16);
	io_uring_sqe_set_data(sqe, &s->op);
	s->state = SLOT_ARMED;
	kq->armed++;
}

static void kq_fetch(struct kqueue *kq, unsigned int idx)
{
	struct iopfmap_queue_fetch f = {
		.records = (uintptr_t)kq->slots[idx].buf,
		.slot = idx,
		.max_records = IOPFMAP_FAULT_GROUP_MAX,
	};

	kq_submit_cmd(kq, idx, IOPFMAP_QUEUE_FETCH, &f);
}

static void kq_commit(struct kqueue *kq, unsigned int idx, uint64_t cookie,
		      uint32_t code)
{
	struct iopfmap_queue_commit c = {
		.cookie = cookie,
		.slot = idx,
		.code = code,
	};

	kq_submit_cmd(kq, idx, IOPFMAP_QUEUE_COMMIT_AND_FETCH, &c);
}

static void kq_arm_poll(struct kqueue *kq)
{
	struct io_uring_sqe *sqe = iopfd_sqe(kq->d);

	/* EPOLLOUT is always set on a queue: ask for input only. */
	io_uring_prep_poll_add(sqe, kq->fd, POLLIN);
	io_uring_sqe_set_data(sqe, &kq->poll_op);
	kq->poll_armed = true;
}

/* The answer to the kernel, by write() unless a slot can be re-armed. */
static void kq_respond(struct kqueue *kq, int slot, uint64_t cookie,
		       uint32_t code)
{
	struct iopfmap_fault_response r = { .cookie = cookie, .code = code };
	ssize_t n;

	if (slot >= 0) {
		if (kq->mode == KQ_URING && !kq->draining) {
			kq_commit(kq, slot, cookie, code);
			return;
		}
		kq->slots[slot].state = SLOT_IDLE;
	}
	if (kq->fd < 0)
		return;
	n = write(kq->fd, &r, sizeof(r));
	if (n == sizeof(r))
		return;
	if (n < 0 && errno == ENOENT) {
		kq->d->stats.refused++;
		log_warn("refused", "queue=%u ctx=%u cookie=%#llx msg=\"the kernel had answered the group already\"",
			 kq->id, kq->ctx_id, (unsigned long long)cookie);
	} else if (n < 0 && errno != ENODEV) {
		log_err("respond", "queue=%u ctx=%u cookie=%#llx error=%s",
			kq->id, kq->ctx_id, (unsigned long long)cookie,
			log_strerror(errno));
	}
}

static void group_free(struct group *g)
{
	if (g->slot < 0)
		free(g->rec);
	free(g);
}

/* Takes @g off every list it is on. */
static void group_unlink(struct group *g)
{
	list_del_init(&g->qnode);
	list_del_init(&g->cnode);
	list_del_init(&g->tnode);
	g->client = NULL;
	g->kq->nheld--;
}

void group_answer(struct group *g, uint32_t code, enum decider who)
{
	struct kqueue *kq = g->kq;
	uint64_t t1 = now_ns();

	group_unlink(g);
	stats_answer(&kq->d->stats, kq->handler, who, code, g->t0_ns, t1);
	log_dbg("answer", "queue=%u ctx=%u cookie=%#llx code=%s by=%s latency_us=%llu",
		kq->id, kq->ctx_id, (unsigned long long)g->cookie,
		resp_name(code), decider_name(who),
		(unsigned long long)(t1 > g->t0_ns ? (t1 - g->t0_ns) / 1000 :
			0));
	kq_respond(kq, g->slot, g->cookie, code);
	group_free(g);
}

/* The end of the group starting at @rec: the first LAST record. */
static unsigned int group_len(const struct iopfmap_fault_record *rec,
			      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (rec[i].flags & IOPFMAP_RECORD_LAST)
			return i + 1;
	return n;
}

static struct group *group_new(struct kqueue *kq,
			       struct iopfmap_fault_record *rec,
			       unsigned int n, int slot)
{
	struct group *g = calloc(1, sizeof(*g));
	unsigned int i;

	if (!g)
		return NULL;
	if (slot < 0) {
		g->rec = malloc(n * sizeof(*rec));
		if (!g->rec) {
			free(g);
			return NULL;
		}
		memcpy(g->rec, rec, n * sizeof(*rec));
	} else {
		g->rec = rec;
	}
	INIT_LIST_HEAD(&g->qnode);
	INIT_LIST_HEAD(&g->cnode);
	INIT_LIST_HEAD(&g->tnode);
	g->kq = kq;
	g->slot = slot;
	g->nr = n;
	g->cookie = rec[0].cookie;
	g->t0_ns = rec[0].time_ns;
	for (i = 1; i < n; i++) {
		if (rec[i].time_ns && rec[i].time_ns < g->t0_ns)
			g->t0_ns = rec[i].time_ns;
		if (rec[i].cookie != g->cookie)
			log_warn("record", "queue=%u ctx=%u cookie=%#llx other=%#llx msg=\"records of one group with different cookies\"",
				 kq->id, kq->ctx_id,
				 (unsigned long long)g->cookie,
				 (unsigned long long)rec[i].cookie);
	}
	list_add_tail(&g->qnode, &kq->held);
	kq->nheld++;
	kq->d->stats.groups++;
	kq->d->stats.records += n;
	return g;
}

/*
 * Groups from the kernel: @n records, in the buffer of uring slot @slot
 * or (-1) in the read() buffer. A slot holds one group; should a buffer
 * ever hold more, each gets a copy and the slot is re-armed at once.
 */
static void kq_deliver(struct kqueue *kq, struct iopfmap_fault_record *rec,
		       unsigned int n, int slot)
{
	struct group *first = NULL, *g;
	unsigned int off, len;

	len = group_len(rec, n);
	if (slot >= 0 && len == n) {
		g = group_new(kq, rec, n, slot);
		if (!g) {
			log_err("deliver", "queue=%u ctx=%u msg=\"out of memory\"",
				kq->id, kq->ctx_id);
			kq_respond(kq, slot, rec[0].cookie,
				   IOPFMAP_PAGE_RESP_INVALID);
			return;
		}
		kq->slots[slot].state = SLOT_HELD;
		handle_group(kq, g);
		return;
	}
	if (slot >= 0)
		log_warn("deliver", "queue=%u ctx=%u slot=%d records=%u msg=\"several groups in one slot\"",
			 kq->id, kq->ctx_id, slot, n);
	/* Hold them all first: a drop while handling one answers the rest. */
	for (off = 0; off < n; off += len) {
		len = group_len(rec + off, n - off);
		g = group_new(kq, rec + off, len, -1);
		if (!g) {
			log_err("deliver", "queue=%u ctx=%u msg=\"out of memory\"",
				kq->id, kq->ctx_id);
			kq_respond(kq, -1, rec[off].cookie,
				   IOPFMAP_PAGE_RESP_INVALID);
			continue;
		}
		if (!first)
			first = g;
	}
	/* Only now: a full SQ ring submits at once, and the FETCH may land. */
	if (slot >= 0)
		kq_fetch(kq, slot);
	if (!first)
		return;
	/* The held list ends with the new groups, in order, from @first. */
	for (g = first; &g->qnode != &kq->held && !kq->draining;) {
		struct group *next = list_entry(g->qnode.next, struct group,
						qnode);
		bool last = &next->qnode == &kq->held;

		handle_group(kq, g);
		if (last)
			break;
		g = next;
	}
}

static void kq_read(struct kqueue *kq)
{
	unsigned int i;
	ssize_t n;

	for (i = 0; i < KQ_READS && !kq->draining; i++) {
		n = read(kq->fd, kq->rbuf, kq->rbuf_nr * sizeof(*kq->rbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			log_err("read", "queue=%u ctx=%u error=%s", kq->id,
				kq->ctx_id,
				log_strerror(errno));
			kq_drop(kq, DECIDER_RELEASE, false, "read failed");
			return;
		}
		if (n == 0) {
			kq_drop(kq, DECIDER_RELEASE, true, "context gone");
			return;
		}
		if (n % sizeof(*kq->rbuf))
			log_warn("read", "queue=%u ctx=%u bytes=%zd msg=\"not whole records\"",
				 kq->id, kq->ctx_id, n);
		if (n >= (ssize_t)sizeof(*kq->rbuf))
			kq_deliver(kq, kq->rbuf, n / sizeof(*kq->rbuf), -1);
	}
	if (!kq->draining)
		kq_arm_poll(kq);
}

static int kq_rw_start(struct kqueue *kq)
{
	if (!kq->rbuf) {
		kq->rbuf_nr = KQ_RBUF_GROUPS * IOPFMAP_FAULT_GROUP_MAX;
		kq->rbuf = calloc(kq->rbuf_nr, sizeof(*kq->rbuf));
		if (!kq->rbuf)
			return -ENOMEM;
	}
	kq->mode = KQ_RW;
	kq_arm_poll(kq);
	return 0;
}

/* A group that landed in a slot of a dropped queue: INVALID, no re-arm. */
static void kq_answer_late(struct kqueue *kq, unsigned int idx, int n)
{
	struct iopfmap_fault_record *rec = kq->slots[idx].buf;
	unsigned int off, len;
	uint64_t t1 = now_ns();

	for (off = 0; off < (unsigned int)n; off += len) {
		len = group_len(rec + off, n - off);
		kq->d->stats.groups++;
		kq->d->stats.records += len;
		stats_answer(&kq->d->stats, kq->handler, kq->d->stopping ?
			     DECIDER_SHUTDOWN : DECIDER_RELEASE,
			     IOPFMAP_PAGE_RESP_INVALID, rec[off].time_ns, t1);
		kq_respond(kq, -1, rec[off].cookie, IOPFMAP_PAGE_RESP_INVALID);
	}
}

static void kq_cmd_done(struct kqueue *kq, unsigned int idx, int res)
{
	struct kslot *s = &kq->slots[idx];
	int err = -res;

	s->state = SLOT_IDLE;
	kq->armed--;
	if (kq->draining) {
		if (res > 0)
			kq_answer_late(kq, idx, res);
		if (!kq->armed && kq->fd >= 0) {
			close(kq->fd);
			kq->fd = -1;
		}
		return;
	}
	if (res >= 0) {
		kq->uring_ok = true;
		s->retries = 0;
		if (res > IOPFMAP_FAULT_GROUP_MAX) {
			log_err("fetch", "queue=%u ctx=%u slot=%u records=%d msg=\"more than the buffer holds\"",
				kq->id, kq->ctx_id, idx, res);
			res = IOPFMAP_FAULT_GROUP_MAX;
		}
		if (res)
			kq_deliver(kq, s->buf, res, idx);
		else
			kq_fetch(kq, idx);
		return;
	}
	if ((err == EOPNOTSUPP || err == EINVAL) && !kq->uring_ok &&
	    kq->may_fall_back) {
		if (kq->mode == KQ_URING) {
			log_info("serve", "queue=%u ctx=%u serve=rw reason=%s",
				 kq->id, kq->ctx_id,
				 log_strerror(err));
			if (kq_rw_start(kq))
				kq_drop(kq, DECIDER_RELEASE, false,
					"out of memory");
		}
		return;
	}
	if (kq->mode != KQ_URING)
		return;
	switch (err) {
	case ENOENT:
		/* The answer was refused; the slot is not armed. */
		kq->d->stats.refused++;
		log_warn("refused", "queue=%u ctx=%u slot=%u msg=\"the kernel had answered the group already\"",
			 kq->id, kq->ctx_id, idx);
		kq_fetch(kq, idx);
		return;
	case ENODEV:
		kq_drop(kq, DECIDER_RELEASE, true, "context gone");
		return;
	case ECANCELED:
		/*
		 * While serving, only 6.1 cancels: this process closed another
		 * fd of the queue (a duplicate handover it refused).
		 */
		log_dbg("refetch", "queue=%u ctx=%u slot=%u error=%s",
			kq->id, kq->ctx_id, idx, log_strerror(err));
		kq_fetch(kq, idx);
		return;
	case EFAULT:
	case EINTR:
	case EAGAIN:
		/* EFAULT: the group went back to the queue. */
		if (++s->retries <= KQ_RETRIES) {
			log_dbg("refetch", "queue=%u ctx=%u slot=%u error=%s",
				kq->id, kq->ctx_id, idx, log_strerror(err));
			kq_fetch(kq, idx);
			return;
		}
		break;
	}
	log_err("uring_cmd", "queue=%u ctx=%u slot=%u error=%s", kq->id,
		kq->ctx_id, idx, log_strerror(err));
	if (!kq->armed && !kq->nheld)
		kq_drop(kq, DECIDER_RELEASE, false, "no slot left armed");
}

static void kq_poll_done(struct kqueue *kq, int res)
{
	kq->poll_armed = false;
	if (kq->draining) {
		if (kq->fd >= 0 && !kq->armed) {
			close(kq->fd);
			kq->fd = -1;
		}
		return;
	}
	if (res < 0) {
		log_err("poll", "queue=%u ctx=%u error=%s", kq->id, kq->ctx_id,
			log_strerror(-res));
		kq_drop(kq, DECIDER_RELEASE, false, "poll failed");
		return;
	}
	kq_read(kq);
}

void kq_complete(struct kqueue *kq, struct op *op, int res)
{
	if (op->type == OP_KQ_POLL)
		kq_poll_done(kq, res);
	else
		kq_cmd_done(kq, op->slot, res);
}

void kq_drop(struct kqueue *kq, enum decider who, bool ctx_gone,
	     const char *why)
{
	struct iopfd *d = kq->d;
	struct group *g, *n;
	unsigned int held = kq->nheld;
	char qw[64];

	if (kq->draining)
		return;
	kq->draining = true;
	d->nr_queues--;
	d->stats.queues_dropped++;
	/* With the context gone the kernel has answered them all. */
	list_for_each_entry_safe(g, n, &kq->held, qnode) {
		if (ctx_gone) {
			if (g->slot >= 0)
				kq->slots[g->slot].state = SLOT_IDLE;
			group_unlink(g);
			group_free(g);
		} else {
			group_answer(g, IOPFMAP_PAGE_RESP_INVALID, who);
		}
	}
	if (kq->ctx_fd >= 0) {
		close(kq->ctx_fd);
		kq->ctx_fd = -1;
	}
	if (kq->poll_armed) {
		struct io_uring_sqe *sqe = iopfd_sqe(d);

		io_uring_prep_poll_remove(sqe, (uintptr_t)&kq->poll_op);
		io_uring_sqe_set_data(sqe, NULL);
	}
	/* The kernel cancels our armed commands on it: they complete. */
	if (kq->fd >= 0) {
		close(kq->fd);
		kq->fd = -1;
	}
	log_info("drop", "queue=%u ctx=%u reason=%s by=%s held=%u armed=%u",
		 kq->id, kq->ctx_id, log_quote(qw, sizeof(qw), why),
		 ctx_gone ? "kernel" : decider_name(who), held, kq->armed);
}

void kq_close_all(struct iopfd *d)
{
	struct kqueue *kq;

	list_for_each_entry(kq, &d->queues, node) {
		if (kq->fd >= 0) {
			close(kq->fd);
			kq->fd = -1;
		}
	}
}

void kq_free(struct kqueue *kq)
{
	unsigned int i;

	if (kq->fd >= 0)
		close(kq->fd);
	if (kq->ctx_fd >= 0)
		close(kq->ctx_fd);
	for (i = 0; kq->slots && i < kq->nslots; i++)
		free(kq->slots[i].buf);
	free(kq->slots);
	free(kq->rbuf);
	free(kq);
}

/*
 * A queue fd is an anonymous inode: no file type on 6.1 and 6.12, maybe
 * S_IFREG later. Anything else (a device, socket, pipe) is not one, and
 * must not see an iopfmap ioctl.
 */
static bool queue_type_ok(mode_t mode)
{
	return (mode & S_IFMT) == 0 || S_ISREG(mode);
}

static int check_ctx_fd(struct iopfd *d, int cfd, uint32_t ctx_id,
			const char **why)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	struct stat st;

	if (fstat(cfd, &st) || !S_ISCHR(st.st_mode) ||
	    st.st_rdev != d->dev_rdev) {
		*why = "the second fd is not an iopfmap context";
		return -EINVAL;
	}
	if (ioctl(cfd, IOPFMAP_GET_INFO, &info)) {
		*why = "IOPFMAP_GET_INFO failed on the context fd";
		return -EINVAL;
	}
	if (info.out_ctx_id != ctx_id) {
		*why = "the context fd is not the queue's context";
		return -EINVAL;
	}
	return 0;
}

static int kq_pick_mode(struct iopfd *d, struct kqueue *kq, const char **why)
{
	bool uring = kq->features & IOPFMAP_QUEUE_FEAT_URING_CMD;
	bool rw = kq->features & IOPFMAP_QUEUE_FEAT_RW;

	switch (d->cfg.serve) {
	case SERVE_AUTO:
		kq->may_fall_back = true;
		kq->mode = uring ? KQ_URING : KQ_RW;
		return 0;
	case SERVE_URING:
		kq->mode = KQ_URING;
		if (!uring) {
			*why = "serve = uring and the queue has no uring_cmd";
			return -EOPNOTSUPP;
		}
		return 0;
	case SERVE_RW:
		kq->mode = KQ_RW;
		if (!rw) {
			*why = "serve = rw and the queue has no read/write";
			return -EOPNOTSUPP;
		}
		return 0;
	}
	return -EINVAL;
}

static int kq_start(struct kqueue *kq, unsigned int depth)
{
	unsigned int i;

	if (kq->mode == KQ_RW)
		return kq_rw_start(kq);
	kq->nslots = kq->d->cfg.slots < depth ? kq->d->cfg.slots : depth;
	if (!kq->nslots)
		kq->nslots = 1;
	kq->slots = calloc(kq->nslots, sizeof(*kq->slots));
	if (!kq->slots)
		return -ENOMEM;
	for (i = 0; i < kq->nslots; i++) {
		struct kslot *s = &kq->slots[i];

		s->op.type = OP_KQ_CMD;
		s->op.slot = i;
		s->op.owner = kq;
		s->buf = calloc(IOPFMAP_FAULT_GROUP_MAX, sizeof(*s->buf));
		if (!s->buf)
			return -ENOMEM;
	}
	for (i = 0; i < kq->nslots; i++)
		kq_fetch(kq, i);
	return 0;
}

int kq_create(struct iopfd *d, struct client *owner, int qfd, int cfd,
	      uint32_t handler, uint32_t *ctx_id, char *why, size_t whylen)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };
	const char *reason = NULL;
	struct kqueue *kq = NULL, *o;
	struct stat st;
	int err, fl;

	if (handler > IOPFD_HANDLER_REJECT) {
		err = -EINVAL;
		reason = "unknown handler";
		goto fail;
	}
	if (handler == IOPFD_HANDLER_DEFAULT)
		handler = d->cfg.default_handler;
	if (fstat(qfd, &st) || !queue_type_ok(st.st_mode) ||
	    ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi)) {
		err = -EINVAL;
		reason = "the first fd is not an iopfmap fault queue";
		goto fail;
	}
	if (qi.out_flags & IOPFMAP_QUEUE_CTX_GONE) {
		err = -ENODEV;
		reason = "the queue's context is closed";
		goto fail;
	}
	list_for_each_entry(o, &d->queues, node) {
		if (o->ctx_id != qi.out_ctx_id)
			continue;
		if (!o->draining) {
			err = -EEXIST;
			reason = "this context's queue is served already";
			goto fail;
		}
		if (o->fd >= 0) {
			err = -EBUSY;
			reason = "this context's queue is still draining";
			goto fail;
		}
	}
	if (d->nr_queues >= IOPFD_QUEUES_MAX) {
		err = -EMFILE;
		reason = "too many queues";
		goto fail;
	}
	if (cfd >= 0) {
		err = check_ctx_fd(d, cfd, qi.out_ctx_id, &reason);
		if (err)
			goto fail;
	}
	kq = calloc(1, sizeof(*kq));
	if (!kq) {
		err = -ENOMEM;
		goto fail;
	}
	INIT_LIST_HEAD(&kq->held);
	kq->d = d;
	kq->fd = qfd;
	kq->ctx_fd = -1;
	kq->ctx_id = qi.out_ctx_id;
	kq->owner = owner->id;
	kq->handler = handler;
	kq->features = qi.out_features;
	kq->depth = qi.out_depth;
	kq->poll_op.type = OP_KQ_POLL;
	kq->poll_op.owner = kq;
	err = kq_pick_mode(d, kq, &reason);
	if (err)
		goto fail;
	/* For read(); uring commands ignore it. */
	fl = fcntl(qfd, F_GETFL);
	if (fl < 0 || fcntl(qfd, F_SETFL, fl | O_NONBLOCK)) {
		err = -errno;
		reason = "cannot make the queue non-blocking";
		goto fail;
	}
	/* Least privilege: only resolve needs the context. */
	if (handler == IOPFD_HANDLER_RESOLVE) {
		kq->ctx_fd = cfd;
		cfd = -1;
	}
	kq->id = ++d->next_queue_id;
	err = kq_start(kq, qi.out_depth);
	if (err)
		goto fail_started;
	list_add_tail(&kq->node, &d->queues);
	d->nr_queues++;
	d->stats.queues_handed++;
	if (cfd >= 0)
		close(cfd);
	log_info("handover", "ctx=%u queue=%u queue_fd=%d ctx_fd=%d serve=%s handler=%s slots=%u depth=%u features=%#x client=%u",
		 kq->ctx_id, kq->id, kq->fd, kq->ctx_fd, mode_name(kq->mode),
		 handler_name(handler), kq->mode == KQ_URING ? kq->nslots : 0,
		 kq->depth, kq->features, owner->id);
	if (handler == IOPFD_HANDLER_RESOLVE && kq->ctx_fd < 0)
		log_warn("handover", "ctx=%u queue=%u msg=\"no context fd: stage-1 faults are answered invalid\"",
			 kq->ctx_id, kq->id);
	if (kq->depth < d->cfg.queue_depth)
		log_warn("handover", "ctx=%u queue=%u depth=%u queue_depth=%u msg=\"the queue is shallower than configured\"",
			 kq->ctx_id, kq->id, kq->depth, d->cfg.queue_depth);
	*ctx_id = kq->ctx_id;
	return 0;

fail_started:
	/* Nothing was submitted: kq_start fails before its first FETCH. */
	qfd = kq->fd;
	kq->fd = -1;
	kq_free(kq);
	kq = NULL;
fail:
	if (!reason)
		reason = strerror(-err);
	snprintf(why, whylen, "%s", reason);
	if (kq) {
		kq->fd = -1;
		kq_free(kq);
	}
	close(qfd);
	if (cfd >= 0)
		close(cfd);
	return err;
}
