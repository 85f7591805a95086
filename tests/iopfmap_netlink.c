// SPDX-License-Identifier: GPL-2.0
/*
 * The "iopfmap" generic netlink family (docs/netlink/specs/iopfmap.yaml),
 * driven directly with libnl-genl: what each dump says about this
 * program's own contexts, ranges, devices and queues, held against what
 * the ioctls say (GET_INFO, GET_STATS, QUERY_MAPPED, QUEUE_GET_INFO);
 * counters that move as the simulated device faults; range-set and every
 * refusal of it (errno, extended-ack message, nothing changed), also as
 * an unprivileged user; and the events of the "events" group, each with
 * its attributes.
 *
 * Needs root and the module loaded with sim=1. Devices (dev-get and the
 * attach/detach events) need QEMU's edu device and iopfmap_edu.ko, as
 * iopfmap_device does; without them those tests SKIP.
 */
#include <linux/capability.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <grp.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <linux/iopfmap_netlink.h>

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(); whether GCC warns depends on register
 * allocation, not on anything the tests do.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#include "iopfmap_edu_utils.h"
#include "iopfmap_fail_nth.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define DMA_READ	0
#define IOVA_A		0x100000ULL	/* a FAULT range */
#define IOVA_B		0x400000ULL	/* a read-only range, prefetch 8 */
#define IOVA_P		0x800000ULL	/* a PIN range */
#define IOVA_F		0xc00000ULL	/* a FORWARD range */
#define IOVA_NONE	0x4000000ULL	/* in no range */
#define A_PAGES		64
#define B_PAGES		32
#define P_PAGES		4
#define F_PAGES		16

#define STORM_PARAM	"/sys/module/iopfmap/parameters/storm_threshold"

/* Generous: the guests run under TCG. QUIET_MS: watching for nothing. */
#define WAIT_MS		20000
#define QUIET_MS	300

#define MAX_OBJS	64
#define NR_STATS	(IOPFMAP_A_STATS_MAX - IOPFMAP_A_STATS_FAULTS + 1)
#define NR_QSTATS	(IOPFMAP_A_QUEUE_STATS_MAX - \
			 IOPFMAP_A_QUEUE_STATS_GROUPS + 1)

static size_t psz;

static void __attribute__((constructor)) init_page_size(void)
{
	psz = sysconf(_SC_PAGESIZE);
}


/* ---- the family, through libnl ---------------------------------------- */

/* A socket of the family; @grp is the "events" group's id. */
struct nlc {
	struct nl_sock *sk;
	int family;
	int grp;
};

/* How a request ended: 0 or -errno, and the extended ack's message. */
struct nl_res {
	int err;
	char msg[256];
	bool has_offs;		/* NLMSGERR_ATTR_OFFS: which attribute */
};

/*
 * Connects, asks for extended acks, and resolves the family and its
 * group: 0, or -ENOENT when the family is not registered (-EPROTO when
 * it has no "events" group).
 */
static int nlc_open(struct nlc *n, bool events)
{
	int one = 1;

	memset(n, 0, sizeof(*n));
	n->sk = nl_socket_alloc();
	if (!n->sk)
		return -ENOMEM;
	if (genl_connect(n->sk))
		return -ENOTCONN;
	/* Without it the kernel says only the errno. */
	if (setsockopt(nl_socket_get_fd(n->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		       &one, sizeof(one)))
		return -errno;
	nl_socket_enable_msg_peek(n->sk);
	n->family = genl_ctrl_resolve(n->sk, IOPFMAP_FAMILY_NAME);
	if (n->family < 0)
		return -ENOENT;
	n->grp = genl_ctrl_resolve_grp(n->sk, IOPFMAP_FAMILY_NAME,
				       IOPFMAP_MCGRP_EVENTS);
	if (n->grp < 0)
		return -EPROTO;
	if (events) {
		/* Notifications carry sequence number 0. */
		nl_socket_disable_seq_check(n->sk);
		if (nl_socket_add_membership(n->sk, n->grp))
			return -EPROTO;
	}
	return 0;
}

static void nlc_close(struct nlc *n)
{
	if (n->sk)
		nl_socket_free(n->sk);
	n->sk = NULL;
}

/* A request of @cmd; a dump with @dump, else a do that asks for an ack. */
static struct nl_msg *nlc_msg(struct nlc *n, __u8 cmd, bool dump)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, n->family, 0,
				dump ? NLM_F_DUMP : NLM_F_ACK, cmd,
				IOPFMAP_FAMILY_VERSION)) {
		nlmsg_free(msg);
		msg = NULL;
	}
	return msg;
}

/* The message of an extended ack's TLVs at @tlv (@len bytes). */
static void parse_extack(struct nl_res *r, void *tlv, int len)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (len <= 0 || nla_parse(tb, NLMSGERR_ATTR_MAX, tlv, len, NULL))
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(r->msg, sizeof(r->msg), "%s",
			 (char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
	r->has_offs = tb[NLMSGERR_ATTR_OFFS] != NULL;
}

/* NLMSG_ERROR (an ack or an error) or NLMSG_DONE: the request's end. */
static void parse_end(struct nl_res *r, struct nlmsghdr *nlh)
{
	int hlen;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = nlmsg_data(nlh);

		if (nlmsg_datalen(nlh) < (int)sizeof(*e)) {
			r->err = -EBADMSG;
			return;
		}
		r->err = e->error;
		hlen = sizeof(*e);
		/* Uncapped, the request itself follows before the TLVs. */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			hlen += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	} else {
		if (nlmsg_datalen(nlh) < (int)sizeof(int)) {
			r->err = 0;
			return;
		}
		r->err = *(int *)nlmsg_data(nlh);
		hlen = sizeof(int);
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		parse_extack(r, (char *)nlmsg_data(nlh) + hlen,
			     nlmsg_datalen(nlh) - hlen);
}

typedef void (*nl_reply_fn)(struct nlmsghdr *nlh, void *arg);

/* Waits up to @ms for the socket to be readable: 0 or -ETIMEDOUT. */
static int nlc_wait(struct nlc *n, int ms)
{
	struct pollfd p = { .fd = nl_socket_get_fd(n->sk), .events = POLLIN };
	int ret;

	do {
		ret = poll(&p, 1, ms);
	} while (ret < 0 && errno == EINTR);
	return ret > 0 ? 0 : ret ? -errno : -ETIMEDOUT;
}

/*
 * Sends @msg (and frees it), hands every reply of the family to @fn, and
 * returns once the request ended (ack, error or end of dump): 0 when it
 * completed, the request's -errno, or another -errno when the exchange
 * itself failed. @r gets the errno and the extended ack's message.
 */
static int nlc_transact(struct nlc *n, struct nl_msg *msg, nl_reply_fn fn,
			void *arg, struct nl_res *r)
{
	struct sockaddr_nl peer;
	unsigned char *buf;
	struct nlmsghdr *nlh;
	__u32 seq;
	int len, ret;

	memset(r, 0, sizeof(*r));
	if (!msg)
		return r->err = -ENOMEM;
	ret = nl_send_auto(n->sk, msg);
	seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	if (ret < 0)
		return r->err = -EIO;
	for (;;) {
		/* A failed poll() (EFAULT, ENOMEM) failed the exchange. */
		ret = nlc_wait(n, WAIT_MS);
		if (ret)
			return r->err = ret == -ETIMEDOUT ? ret : -EIO;
		len = nl_recv(n->sk, &peer, &buf, NULL);
		if (len <= 0)
			return r->err = -EIO;
		for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR ||
			    nlh->nlmsg_type == NLMSG_DONE) {
				parse_end(r, nlh);
				free(buf);
				return r->err;
			}
			if (nlh->nlmsg_type == n->family && fn)
				fn(nlh, arg);
		}
		free(buf);
	}
}

/* ---- the objects, as the family describes them ------------------------ */

struct nl_stats {
	bool present;
	__u64 v[NR_STATS];	/* from IOPFMAP_A_STATS_FAULTS on */
	unsigned int nr;	/* counters given */
};

/* The counters of struct iopfmap_stats, in the attributes' order. */
static const __u64 *ioctl_counters(const struct iopfmap_stats *st)
{
	return &st->out_faults;
}

static const char *const stat_names[NR_STATS] = {
	"faults", "faults-handled", "faults-invalid", "faults-forwarded",
	"pages-mapped", "pages-prefetched", "huge-mappings", "invalidations",
	"invalidations-handled", "pages-unmapped", "retries", "pages-pinned",
};

#define ST_FAULTS	(IOPFMAP_A_STATS_FAULTS - IOPFMAP_A_STATS_FAULTS)
#define ST_HANDLED	(IOPFMAP_A_STATS_FAULTS_HANDLED - IOPFMAP_A_STATS_FAULTS)
#define ST_INVALID	(IOPFMAP_A_STATS_FAULTS_INVALID - IOPFMAP_A_STATS_FAULTS)
#define ST_FORWARDED	(IOPFMAP_A_STATS_FAULTS_FORWARDED - IOPFMAP_A_STATS_FAULTS)
#define ST_MAPPED	(IOPFMAP_A_STATS_PAGES_MAPPED - IOPFMAP_A_STATS_FAULTS)
#define ST_PREFETCHED	(IOPFMAP_A_STATS_PAGES_PREFETCHED - IOPFMAP_A_STATS_FAULTS)
#define ST_INVALS	(IOPFMAP_A_STATS_INVALIDATIONS - IOPFMAP_A_STATS_FAULTS)

_Static_assert(offsetof(struct iopfmap_stats, out_pages_pinned) -
	       offsetof(struct iopfmap_stats, out_faults) ==
	       (NR_STATS - 1) * sizeof(__u64),
	       "one netlink counter per GET_STATS counter, in order");

static void parse_stats(struct nl_stats *s, struct nlattr *nest)
{
	struct nlattr *tb[IOPFMAP_A_STATS_MAX + 1];
	int i;

	memset(s, 0, sizeof(*s));
	if (!nest || nla_parse_nested(tb, IOPFMAP_A_STATS_MAX, nest, NULL))
		return;
	s->present = true;
	for (i = 0; i < NR_STATS; i++) {
		if (!tb[IOPFMAP_A_STATS_FAULTS + i])
			continue;
		s->v[i] = nla_get_u64(tb[IOPFMAP_A_STATS_FAULTS + i]);
		s->nr++;
	}
}

struct nl_ctx {
	__u32 id, pid, iopt_type, nr_ranges, nr_devices;
	bool sim, queue, has_iopt;
	char comm[32];
	struct nl_stats st;
};

struct nl_range {
	__u32 ctx_id, id, flags, mode, prefetch, policy;
	__u64 iova, length, pages_mapped;
	bool has_mapped, has_prefetch, has_policy, has_mode;
	struct nl_stats st;
};

struct nl_dev {
	__u32 ctx_id, id, iommu_group, fault_path;
	bool has_group, has_path, iopf, own_domain;
	char name[IOPFMAP_DEVICE_NAME_MAX];
};

struct nl_queue {
	__u32 ctx_id, depth, timeout_ms, pending, inflight, armed;
	bool attached, has_armed;
	bool has_qstats;
	__u64 qs[NR_QSTATS];	/* from IOPFMAP_A_QUEUE_STATS_GROUPS on */
};

struct nl_global {
	__u32 contexts, devices;
	bool has_contexts, has_devices;
	struct nl_stats st;
};

struct nl_event {
	__u8 cmd;
	__u32 ctx_id, dev_id, reason, count, window_ms;
	bool has_ctx, has_dev, has_reason, has_count, has_window;
	char dev_name[IOPFMAP_DEVICE_NAME_MAX];
};

/* Where a dump's parser puts its objects. */
struct sink {
	void *objs;
	int n, max;
	int bad;		/* replies of another command */
	__u8 cmd;
};

static void *sink_next(struct sink *s, size_t size, struct nlmsghdr *nlh)
{
	struct genlmsghdr *g = nlmsg_data(nlh);

	if (g->cmd != s->cmd) {
		s->bad++;
		return NULL;
	}
	if (s->n >= s->max) {
		s->n++;		/* counted, not kept */
		return NULL;
	}
	return (char *)s->objs + size * s->n++;
}

static __u32 get_u32(struct nlattr *a, bool *has)
{
	if (has)
		*has = a != NULL;
	return a ? nla_get_u32(a) : 0;
}

static void ctx_reply(struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_CTX_MAX + 1];
	struct nl_ctx *c = sink_next(arg, sizeof(*c), nlh);

	if (!c || genlmsg_parse(nlh, 0, tb, IOPFMAP_A_CTX_MAX, NULL))
		return;
	memset(c, 0, sizeof(*c));
	c->id = get_u32(tb[IOPFMAP_A_CTX_ID], NULL);
	c->pid = get_u32(tb[IOPFMAP_A_CTX_PID], NULL);
	c->iopt_type = get_u32(tb[IOPFMAP_A_CTX_IOPT_TYPE], &c->has_iopt);
	c->nr_ranges = get_u32(tb[IOPFMAP_A_CTX_NR_RANGES], NULL);
	c->nr_devices = get_u32(tb[IOPFMAP_A_CTX_NR_DEVICES], NULL);
	c->sim = tb[IOPFMAP_A_CTX_SIM] != NULL;
	c->queue = tb[IOPFMAP_A_CTX_QUEUE] != NULL;
	if (tb[IOPFMAP_A_CTX_COMM])
		snprintf(c->comm, sizeof(c->comm), "%s",
			 nla_get_string(tb[IOPFMAP_A_CTX_COMM]));
	parse_stats(&c->st, tb[IOPFMAP_A_CTX_STATS]);
}

static void range_reply(struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_RANGE_MAX + 1];
	struct nl_range *r = sink_next(arg, sizeof(*r), nlh);

	if (!r || genlmsg_parse(nlh, 0, tb, IOPFMAP_A_RANGE_MAX, NULL))
		return;
	memset(r, 0, sizeof(*r));
	r->ctx_id = get_u32(tb[IOPFMAP_A_RANGE_CTX_ID], NULL);
	r->id = get_u32(tb[IOPFMAP_A_RANGE_ID], NULL);
	r->flags = get_u32(tb[IOPFMAP_A_RANGE_FLAGS], NULL);
	r->mode = get_u32(tb[IOPFMAP_A_RANGE_MODE], &r->has_mode);
	r->prefetch = get_u32(tb[IOPFMAP_A_RANGE_PREFETCH], &r->has_prefetch);
	r->policy = get_u32(tb[IOPFMAP_A_RANGE_POLICY], &r->has_policy);
	if (tb[IOPFMAP_A_RANGE_IOVA])
		r->iova = nla_get_u64(tb[IOPFMAP_A_RANGE_IOVA]);
	if (tb[IOPFMAP_A_RANGE_LENGTH])
		r->length = nla_get_u64(tb[IOPFMAP_A_RANGE_LENGTH]);
	r->has_mapped = tb[IOPFMAP_A_RANGE_PAGES_MAPPED] != NULL;
	if (r->has_mapped)
		r->pages_mapped = nla_get_u64(tb[IOPFMAP_A_RANGE_PAGES_MAPPED]);
	parse_stats(&r->st, tb[IOPFMAP_A_RANGE_STATS]);
}

static void dev_reply(struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_DEV_MAX + 1];
	struct nl_dev *d = sink_next(arg, sizeof(*d), nlh);

	if (!d || genlmsg_parse(nlh, 0, tb, IOPFMAP_A_DEV_MAX, NULL))
		return;
	memset(d, 0, sizeof(*d));
	d->ctx_id = get_u32(tb[IOPFMAP_A_DEV_CTX_ID], NULL);
	d->id = get_u32(tb[IOPFMAP_A_DEV_ID], NULL);
	d->iommu_group = get_u32(tb[IOPFMAP_A_DEV_IOMMU_GROUP], &d->has_group);
	d->fault_path = get_u32(tb[IOPFMAP_A_DEV_FAULT_PATH], &d->has_path);
	d->iopf = tb[IOPFMAP_A_DEV_IOPF] != NULL;
	d->own_domain = tb[IOPFMAP_A_DEV_OWN_DOMAIN] != NULL;
	if (tb[IOPFMAP_A_DEV_NAME])
		snprintf(d->name, sizeof(d->name), "%s",
			 nla_get_string(tb[IOPFMAP_A_DEV_NAME]));
}

static void queue_reply(struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_QUEUE_MAX + 1];
	struct nlattr *qb[IOPFMAP_A_QUEUE_STATS_MAX + 1];
	struct nl_queue *q = sink_next(arg, sizeof(*q), nlh);
	int i;

	if (!q || genlmsg_parse(nlh, 0, tb, IOPFMAP_A_QUEUE_MAX, NULL))
		return;
	memset(q, 0, sizeof(*q));
	q->ctx_id = get_u32(tb[IOPFMAP_A_QUEUE_CTX_ID], NULL);
	q->depth = get_u32(tb[IOPFMAP_A_QUEUE_DEPTH], NULL);
	q->timeout_ms = get_u32(tb[IOPFMAP_A_QUEUE_TIMEOUT_MS], NULL);
	q->pending = get_u32(tb[IOPFMAP_A_QUEUE_PENDING], NULL);
	q->inflight = get_u32(tb[IOPFMAP_A_QUEUE_INFLIGHT], NULL);
	q->armed = get_u32(tb[IOPFMAP_A_QUEUE_ARMED], &q->has_armed);
	q->attached = tb[IOPFMAP_A_QUEUE_ATTACHED] != NULL;
	if (!tb[IOPFMAP_A_QUEUE_STATS] ||
	    nla_parse_nested(qb, IOPFMAP_A_QUEUE_STATS_MAX,
			     tb[IOPFMAP_A_QUEUE_STATS], NULL))
		return;
	q->has_qstats = true;
	for (i = 0; i < NR_QSTATS; i++)
		if (qb[IOPFMAP_A_QUEUE_STATS_GROUPS + i])
			q->qs[i] = nla_get_u64(qb[IOPFMAP_A_QUEUE_STATS_GROUPS +
						  i]);
}

static void global_reply(struct nlmsghdr *nlh, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_GLOBAL_MAX + 1];
	struct nl_global *g = sink_next(arg, sizeof(*g), nlh);

	if (!g || genlmsg_parse(nlh, 0, tb, IOPFMAP_A_GLOBAL_MAX, NULL))
		return;
	memset(g, 0, sizeof(*g));
	g->contexts = get_u32(tb[IOPFMAP_A_GLOBAL_CONTEXTS], &g->has_contexts);
	g->devices = get_u32(tb[IOPFMAP_A_GLOBAL_DEVICES], &g->has_devices);
	parse_stats(&g->st, tb[IOPFMAP_A_GLOBAL_STATS]);
}

/*
 * A dump (or a do) of @cmd, filtered by @ctx_id (attribute @filter_attr)
 * when @ctx_id is not 0: how many objects came (at most @max kept in
 * @objs), or -errno. Replies of another command fail with -EPROTO.
 */
static int nl_collect(struct nlc *n, __u8 cmd, bool dump, int filter_attr,
		      __u32 ctx_id, nl_reply_fn fn, void *objs, int max,
		      struct nl_res *r)
{
	struct sink s = { .objs = objs, .max = max, .cmd = cmd };
	struct nl_msg *msg = nlc_msg(n, cmd, dump);
	struct nl_res local;
	int ret;

	if (!r)
		r = &local;
	if (msg && ctx_id && nla_put_u32(msg, filter_attr, ctx_id)) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = nlc_transact(n, msg, fn, &s, r);
	if (ret)
		return ret;
	return s.bad ? -EPROTO : s.n;
}

static int dump_ctxs(struct nlc *n, struct nl_ctx *c, int max)
{
	return nl_collect(n, IOPFMAP_NL_CMD_CTX_GET, true, 0, 0, ctx_reply, c,
			  max, NULL);
}

/* ctx-get do: 0 with the context in *@c, or -errno (extack in @r). */
static int get_ctx(struct nlc *n, __u32 id, struct nl_ctx *c,
		   struct nl_res *r)
{
	struct sink s = { .objs = c, .max = 1, .cmd = IOPFMAP_NL_CMD_CTX_GET };
	struct nl_msg *msg = nlc_msg(n, IOPFMAP_NL_CMD_CTX_GET, false);
	int ret;

	if (msg && nla_put_u32(msg, IOPFMAP_A_CTX_ID, id)) {
		nlmsg_free(msg);
		msg = NULL;
	}
	ret = nlc_transact(n, msg, ctx_reply, &s, r);
	if (ret)
		return ret;
	return s.n == 1 && !s.bad ? 0 : -EPROTO;
}

static int dump_ranges(struct nlc *n, __u32 ctx_id, struct nl_range *r,
		       int max)
{
	return nl_collect(n, IOPFMAP_NL_CMD_RANGE_GET, true,
			  IOPFMAP_A_RANGE_CTX_ID, ctx_id, range_reply, r, max,
			  NULL);
}

static int dump_devs(struct nlc *n, __u32 ctx_id, struct nl_dev *d, int max)
{
	return nl_collect(n, IOPFMAP_NL_CMD_DEV_GET, true,
			  IOPFMAP_A_DEV_CTX_ID, ctx_id, dev_reply, d, max,
			  NULL);
}

static int dump_queues(struct nlc *n, __u32 ctx_id, struct nl_queue *q,
		       int max)
{
	return nl_collect(n, IOPFMAP_NL_CMD_QUEUE_GET, true,
			  IOPFMAP_A_QUEUE_CTX_ID, ctx_id, queue_reply, q, max,
			  NULL);
}

static int get_global(struct nlc *n, struct nl_global *g)
{
	int ret = nl_collect(n, IOPFMAP_NL_CMD_STATS_GET, false, 0, 0,
			     global_reply, g, 1, NULL);

	return ret == 1 ? 0 : ret < 0 ? ret : -EPROTO;
}

#define OMIT	(-1LL)

/*
 * range-set with the attributes that are not OMIT (values are sent as
 * they are, bad ones included): 0 or -errno, the extack in @r.
 */
static int range_set(struct nlc *n, long long ctx_id, long long id,
		     long long prefetch, long long policy, struct nl_res *r)
{
	struct nl_msg *msg = nlc_msg(n, IOPFMAP_NL_CMD_RANGE_SET, false);

	if (msg && ((ctx_id != OMIT &&
		     nla_put_u32(msg, IOPFMAP_A_RANGE_CTX_ID, ctx_id)) ||
		    (id != OMIT && nla_put_u32(msg, IOPFMAP_A_RANGE_ID, id)) ||
		    (prefetch != OMIT &&
		     nla_put_u32(msg, IOPFMAP_A_RANGE_PREFETCH, prefetch)) ||
		    (policy != OMIT &&
		     nla_put_u32(msg, IOPFMAP_A_RANGE_POLICY, policy)))) {
		nlmsg_free(msg);
		msg = NULL;
	}
	return nlc_transact(n, msg, NULL, NULL, r);
}

/* The range @id among @r[0..@nr), or NULL. */
static struct nl_range *find_range(struct nl_range *r, int nr, __u32 id)
{
	int i;

	for (i = 0; i < nr; i++)
		if (r[i].id == id)
			return &r[i];
	return NULL;
}

static struct nl_ctx *find_ctx(struct nl_ctx *c, int nr, __u32 id)
{
	int i;

	for (i = 0; i < nr; i++)
		if (c[i].id == id)
			return &c[i];
	return NULL;
}

/*
 * The next event within @ms: 0, or -ETIMEDOUT. Events of other contexts
 * are not skipped here: callers filter.
 */
static int next_event(struct nlc *n, int ms, struct nl_event *ev)
{
	struct nlattr *tb[IOPFMAP_A_EVENT_MAX + 1];
	struct sockaddr_nl peer;
	unsigned char *buf;
	struct nlmsghdr *nlh;
	__u64 end = iopfmap_now_ms() + ms;
	int len, ret;

	for (;;) {
		__u64 now = iopfmap_now_ms();

		ret = nlc_wait(n, now >= end ? 0 : end - now);
		if (ret)
			return ret;
		len = nl_recv(n->sk, &peer, &buf, NULL);
		if (len <= 0)
			return -EIO;
		/* One notification per datagram. */
		nlh = (struct nlmsghdr *)buf;
		if (!nlmsg_ok(nlh, len) || nlh->nlmsg_type != n->family ||
		    genlmsg_parse(nlh, 0, tb, IOPFMAP_A_EVENT_MAX, NULL)) {
			free(buf);
			continue;
		}
		memset(ev, 0, sizeof(*ev));
		ev->cmd = ((struct genlmsghdr *)nlmsg_data(nlh))->cmd;
		ev->ctx_id = get_u32(tb[IOPFMAP_A_EVENT_CTX_ID], &ev->has_ctx);
		ev->dev_id = get_u32(tb[IOPFMAP_A_EVENT_DEV_ID], &ev->has_dev);
		ev->reason = get_u32(tb[IOPFMAP_A_EVENT_REASON],
				     &ev->has_reason);
		ev->count = get_u32(tb[IOPFMAP_A_EVENT_COUNT], &ev->has_count);
		ev->window_ms = get_u32(tb[IOPFMAP_A_EVENT_WINDOW_MS],
					&ev->has_window);
		if (tb[IOPFMAP_A_EVENT_DEV_NAME])
			snprintf(ev->dev_name, sizeof(ev->dev_name), "%s",
				 nla_get_string(tb[IOPFMAP_A_EVENT_DEV_NAME]));
		free(buf);
		return 0;
	}
}

/* The next event @cmd of context @ctx_id within @ms: 0 or -ETIMEDOUT. */
static int wait_event(struct nlc *n, __u8 cmd, __u32 ctx_id, int ms,
		      struct nl_event *ev)
{
	__u64 end = iopfmap_now_ms() + ms;
	int ret;

	for (;;) {
		__u64 now = iopfmap_now_ms();

		ret = next_event(n, now >= end ? 0 : end - now, ev);
		if (ret)
			return ret;
		if (ev->cmd == cmd && ev->ctx_id == ctx_id)
			return 0;
	}
}

/* ---- the context, the simulated device and its queue ------------------- */

static char *alloc_pages(size_t npages, unsigned int seed)
{
	char *p = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Base pages: a 2 MiB entry would map more than the tests count. */
	madvise(p, npages * psz, MADV_NOHUGEPAGE);
	iopfmap_fill(p, npages * psz, seed);
	return p;
}

static __u32 ctx_id_of(int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	return _test_cmd_get_info(fd, &info) ? 0 : info.out_ctx_id;
}

static int sim_create(int fd)
{
	struct iopfmap_sim_create cmd = { .size = sizeof(cmd) };

	return _test_cmd_sim_create(fd, &cmd);
}

/* Pages of [iova, iova + len) that QUERY_MAPPED reports, or -errno. */
static long query_mapped(int fd, __u64 iova, __u64 len)
{
	size_t words = (len / psz + 63) / 64;
	__u64 *bits = calloc(words, sizeof(*bits));
	struct iopfmap_query_mapped q = {
		.size = sizeof(q), .iova = iova, .length = len,
		.bitmap = (__u64)(uintptr_t)bits,
	};
	long ret;

	if (!bits)
		return -ENOMEM;
	ret = _test_cmd_query_mapped(fd, &q);
	free(bits);
	return ret ? ret : (long)q.out_mapped_pages;
}

/* One device read of @len bytes at @iova; its status, faults in *@faults. */
static __u32 dma(struct __test_metadata *_metadata, int fd, __u64 iova,
		 size_t len, __u32 *faults)
{
	static char buf[64 * 4096];
	struct iopfmap_sim_dma d;
	int ret;

	ret = _test_sim_dma(fd, &d, DMA_READ, iova, buf,
			    len < sizeof(buf) ? len : sizeof(buf));
	EXPECT_EQ(0, ret) TH_LOG("SIM_DMA %#llx: %s", (unsigned long long)iova,
				 strerror(-ret));
	if (faults)
		*faults = d.out_faults;
	return d.out_status;
}

static int queue_alloc(int fd, __u32 depth, __u32 timeout_ms)
{
	struct iopfmap_queue_alloc qa = {
		.size = sizeof(qa), .depth = depth, .timeout_ms = timeout_ms,
	};
	int ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);

	return ret ? ret : qa.out_fd;
}

static int queue_info(int qfd, struct iopfmap_queue_info *qi)
{
	memset(qi, 0, sizeof(*qi));
	qi->size = sizeof(*qi);
	return _test_ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, qi);
}

/* Polls QUEUE_GET_INFO until @n groups wait: true if they did in time. */
static bool wait_pending(int qfd, __u32 n)
{
	struct iopfmap_queue_info qi;
	__u64 end = iopfmap_now_ms() + WAIT_MS;

	while (iopfmap_now_ms() < end) {
		if (!queue_info(qfd, &qi) && qi.out_pending == n)
			return true;
		iopfmap_sleep_ms(2);
	}
	return false;
}

/*
 * A simulated DMA that may block in a fault queue runs in its own
 * thread; the jobs are static, so that a thread still running after a
 * failed assertion writes into nothing that went away.
 */
struct job {
	pthread_t thread;
	int fd;
	__u64 iova;
	struct iopfmap_sim_dma dma;
	char buf[64];
	int ret;
	int done;
};

static struct job jobs[8];

static void *job_run(void *arg)
{
	struct job *j = arg;

	j->ret = _test_sim_dma(j->fd, &j->dma, DMA_READ, j->iova, j->buf,
			       sizeof(j->buf));
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void job_start(struct __test_metadata *_metadata, struct job *j,
		      int fd, __u64 iova)
{
	memset(j, 0, sizeof(*j));
	j->fd = fd;
	j->iova = iova;
	ASSERT_EQ(0, pthread_create(&j->thread, NULL, job_run, j));
}

/* Joins @j within WAIT_MS: its DMA's status. */
static __u32 job_join(struct __test_metadata *_metadata, struct job *j)
{
	struct timespec end;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += WAIT_MS / 1000;
	ASSERT_EQ(0, pthread_timedjoin_np(j->thread, NULL, &end))
		TH_LOG("the DMA at %#llx is still waiting",
		       (unsigned long long)j->iova);
	EXPECT_EQ(0, j->ret) TH_LOG("SIM_DMA: %s", strerror(-j->ret));
	return j->dma.out_status;
}

/* This process's command name, as the kernel keeps it. */
static void self_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static int read_param(const char *path, unsigned int *v)
{
	FILE *f = fopen(path, "re");
	int ret;

	if (!f)
		return -errno;
	ret = fscanf(f, "%u", v) == 1 ? 0 : -EIO;
	fclose(f);
	return ret;
}

static int write_param(const char *path, unsigned int v)
{
	char buf[16];
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(buf, sizeof(buf), "%u", v);
	if (write(fd, buf, strlen(buf)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* ---- checks ------------------------------------------------------------ */

/* The first counter where @s and GET_STATS's @st differ, or NR_STATS. */
static int stats_diff(const struct nl_stats *s, const struct iopfmap_stats *st)
{
	__u64 v[NR_STATS];
	int i;

	memcpy(v, ioctl_counters(st), sizeof(v));
	for (i = 0; i < NR_STATS; i++)
		if (v[i] != s->v[i])
			break;
	return i;
}

/* The family's counters equal GET_STATS's, one by one. */
static void expect_same_stats(struct __test_metadata *_metadata,
			      const char *what, const struct nl_stats *s,
			      const struct iopfmap_stats *st)
{
	int i = stats_diff(s, st);

	ASSERT_TRUE(s->present) TH_LOG("%s: no stats nest", what);
	EXPECT_EQ(NR_STATS, (int)s->nr) TH_LOG("%s: %u counters", what,
					       s->nr);
	EXPECT_EQ(NR_STATS, i)
		TH_LOG("%s: %s is %llu, GET_STATS says %llu", what,
		       i < NR_STATS ? stat_names[i] : "?",
		       i < NR_STATS ? (unsigned long long)s->v[i] : 0ULL,
		       i < NR_STATS ?
		       (unsigned long long)ioctl_counters(st)[i] : 0ULL);
	EXPECT_EQ(s->v[ST_FAULTS], s->v[ST_HANDLED] + s->v[ST_INVALID] +
				   s->v[ST_FORWARDED])
		TH_LOG("%s: faults %llu, handled %llu + invalid %llu + forwarded %llu",
		       what, (unsigned long long)s->v[ST_FAULTS],
		       (unsigned long long)s->v[ST_HANDLED],
		       (unsigned long long)s->v[ST_INVALID],
		       (unsigned long long)s->v[ST_FORWARDED]);
}

/* A refusal: @err, and a message that says why. */
#define EXPECT_REFUSED(_err, ret, r, what)					\
	do {									\
		EXPECT_EQ(-(_err), ret) TH_LOG("%s: %s", what,			\
					       strerror(-(ret)));		\
		EXPECT_NE('\0', (r).msg[0])					\
			TH_LOG("%s: no extended-ack message", what);		\
	} while (0)

/* ---- fixtures ---------------------------------------------------------- */

/*
 * A context with the simulated device and a socket of the family; SKIPs
 * without the module or sim=1, fails when the module lacks the family.
 */
FIXTURE(nl)
{
	struct nlc n;
	struct nlc ev;		/* subscribed to "events", when a test asks */
	int fd;
	int qfd;
	__u32 ctx_id;
	char *mem;
	unsigned int storm_saved;
	bool storm_set;
};

FIXTURE_SETUP(nl)
{
	int ret;

	self->fd = -1;
	self->qfd = -1;
	self->mem = NULL;
	self->storm_set = false;
	memset(&self->ev, 0, sizeof(self->ev));
	memset(&self->n, 0, sizeof(self->n));
	OPEN_CONTEXT(&self->fd);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "module loaded without sim=1");
	ret = nlc_open(&self->n, false);
	ASSERT_EQ(0, ret) TH_LOG("generic netlink family \"%s\": %s",
				 IOPFMAP_FAMILY_NAME, strerror(-ret));
	self->ctx_id = ctx_id_of(self->fd);
	ASSERT_NE(0U, self->ctx_id);
	ASSERT_EQ(0, sim_create(self->fd));
	self->mem = alloc_pages(A_PAGES + B_PAGES + P_PAGES + F_PAGES, 1);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(nl)
{
	if (self->storm_set)
		write_param(STORM_PARAM, self->storm_saved);
	if (self->qfd >= 0)
		close(self->qfd);
	if (self->fd >= 0)
		close(self->fd);
	nlc_close(&self->ev);
	nlc_close(&self->n);
}

/* Subscribes self->ev to "events". */
#define SUBSCRIBE(self)							\
	do {								\
		int __r = nlc_open(&(self)->ev, true);			\
		ASSERT_EQ(0, __r) TH_LOG("joining \"events\": %s",	\
					 strerror(-__r));		\
	} while (0)

/* The four ranges of the tests; ids into @ids (A, B, P, F). */
static void map_four(struct __test_metadata *_metadata, int fd, char *mem,
		     __u32 *ids)
{
	char *b = mem + A_PAGES * psz, *p = b + B_PAGES * psz;
	char *f = p + P_PAGES * psz;

	ASSERT_EQ(0, _test_map_id(fd, IOVA_A, mem, A_PAGES * psz, RW, 0, &ids[0]));
	ASSERT_EQ(0, _test_map_id(fd, IOVA_B, b, B_PAGES * psz, IOPFMAP_MAP_READ, 8,
			    &ids[1]));
	ASSERT_EQ(0, _test_map_id(fd, IOVA_P, p, P_PAGES * psz,
			    RW | IOPFMAP_MAP_PIN, 0, &ids[2]));
	ASSERT_EQ(0, _test_map_id(fd, IOVA_F, f, F_PAGES * psz,
			    RW | IOPFMAP_MAP_FORWARD, 0, &ids[3]));
}

/* ---- the family ------------------------------------------------------- */

/* The family is registered under its name, with its "events" group. */
TEST(family)
{
	struct nlc n;
	int fd, ret;

	OPEN_CONTEXT(&fd);
	close(fd);
	ret = nlc_open(&n, false);
	ASSERT_EQ(0, ret) TH_LOG("resolving \"%s\" and its \"%s\" group: %s",
				 IOPFMAP_FAMILY_NAME, IOPFMAP_MCGRP_EVENTS,
				 strerror(-ret));
	EXPECT_LT(GENL_ID_CTRL, n.family);
	EXPECT_LT(0, n.grp);
	nlc_close(&n);
}

/* ---- ctx-get ----------------------------------------------------------- */

TEST_F(nl, ctx_dump)
{
	struct nl_ctx c[MAX_OBJS], one, *mine, *other;
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_stats st;
	__u32 ids[4], other_id;
	struct nl_res r;
	char comm[32];
	int nr, fd2, ret;

	self_comm(comm, sizeof(comm));
	map_four(_metadata, self->fd, self->mem, ids);
	OPEN_CONTEXT(&fd2);
	other_id = ctx_id_of(fd2);
	ASSERT_NE(0U, other_id);
	ASSERT_NE(self->ctx_id, other_id);

	nr = dump_ctxs(&self->n, c, MAX_OBJS);
	ASSERT_LE(2, nr) TH_LOG("ctx-get dump: %s",
				nr < 0 ? strerror(-nr) : "too few");
	ASSERT_GE(MAX_OBJS, nr);
	mine = find_ctx(c, nr, self->ctx_id);
	other = find_ctx(c, nr, other_id);
	ASSERT_NE(NULL, mine) TH_LOG("context %u is not in the dump",
				     self->ctx_id);
	ASSERT_NE(NULL, other) TH_LOG("context %u is not in the dump",
				      other_id);

	test_cmd_get_info(self->fd, &info);
	EXPECT_EQ((__u32)getpid(), mine->pid);
	EXPECT_STREQ(comm, mine->comm);
	EXPECT_TRUE(mine->has_iopt);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_TYPE_SIM, mine->iopt_type);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_TRUE(mine->sim);
	EXPECT_EQ(4U, mine->nr_ranges);
	EXPECT_EQ(0U, mine->nr_devices);
	EXPECT_FALSE(mine->queue);
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_same_stats(_metadata, "ctx", &mine->st, &st);
	/* The PIN range's pages are pinned: a counter that is not zero. */
	EXPECT_EQ((__u64)P_PAGES, mine->st.v[NR_STATS - 1]);

	/* A bare context: nothing translates, nothing is mapped. */
	EXPECT_EQ((__u32)getpid(), other->pid);
	EXPECT_STREQ(comm, other->comm);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_TYPE_NONE, other->iopt_type);
	EXPECT_FALSE(other->sim);
	EXPECT_EQ(0U, other->nr_ranges);

	/* do by id says the same; a queue shows. */
	self->qfd = queue_alloc(self->fd, 0, 0);
	ASSERT_LE(0, self->qfd);
	ret = get_ctx(&self->n, self->ctx_id, &one, &r);
	ASSERT_EQ(0, ret) TH_LOG("ctx-get %u: %s (%s)", self->ctx_id,
				 strerror(-ret), r.msg);
	EXPECT_EQ(self->ctx_id, one.id);
	EXPECT_EQ((__u32)getpid(), one.pid);
	EXPECT_STREQ(comm, one.comm);
	EXPECT_TRUE(one.sim);
	EXPECT_EQ(4U, one.nr_ranges);
	EXPECT_TRUE(one.queue);
	expect_same_stats(_metadata, "ctx-get do", &one.st, &st);

	/* Closed: gone from the dump, and unknown by id. */
	close(fd2);
	nr = dump_ctxs(&self->n, c, MAX_OBJS);
	ASSERT_LE(1, nr);
	EXPECT_EQ(NULL, find_ctx(c, nr, other_id))
		TH_LOG("closed context %u is still dumped", other_id);
	EXPECT_NE(NULL, find_ctx(c, nr, self->ctx_id));
	ret = get_ctx(&self->n, other_id, &one, &r);
	EXPECT_REFUSED(ENOENT, ret, r, "ctx-get of a closed context");
}

TEST_F(nl, ctx_get_unknown)
{
	struct nl_ctx c;
	struct nl_res r;
	int ret;

	ret = get_ctx(&self->n, 0x7ffffff0, &c, &r);
	EXPECT_REFUSED(ENOENT, ret, r, "ctx-get of an unknown id");
	/* The spec's check: ids start at 1 (the policy says ERANGE). */
	ret = get_ctx(&self->n, 0, &c, &r);
	EXPECT_EQ(-ERANGE, ret)
		TH_LOG("ctx-get of id 0: %s", strerror(-ret));
	EXPECT_NE('\0', r.msg[0]);
}

/* ---- range-get --------------------------------------------------------- */

TEST_F(nl, range_dump)
{
	struct nl_range r[MAX_OBJS], *x;
	static const struct {
		__u64 iova, pages;
		__u32 flags, mode, prefetch, policy;
	} want[] = {
		{ IOVA_A, A_PAGES, RW, IOPFMAP_RANGE_MODE_FAULT, 1,
		  IOPFMAP_POLICY_RESOLVE },
		{ IOVA_B, B_PAGES, IOPFMAP_MAP_READ, IOPFMAP_RANGE_MODE_FAULT,
		  8, IOPFMAP_POLICY_RESOLVE },
		{ IOVA_P, P_PAGES, RW | IOPFMAP_MAP_PIN,
		  IOPFMAP_RANGE_MODE_PIN, 1, IOPFMAP_POLICY_RESOLVE },
		{ IOVA_F, F_PAGES, RW | IOPFMAP_MAP_FORWARD,
		  IOPFMAP_RANGE_MODE_FAULT, 1, IOPFMAP_POLICY_FORWARD },
	};
	struct iopfmap_stats st;
	char *other_mem;
	__u32 ids[4], other_range, faults;
	int nr, i, fd2;

	map_four(_metadata, self->fd, self->mem, ids);
	/* Three pages of A, one fault in B (a window of 8). */
	for (i = 0; i < 3; i++)
		ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
			  dma(_metadata, self->fd, IOVA_A + (5 + 2 * i) * psz,
			      64, NULL));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_B + 9 * psz, 64, &faults));
	EXPECT_EQ(1U, faults);

	/* Another context's range must not show in our filtered dump. */
	OPEN_CONTEXT(&fd2);
	ASSERT_EQ(0, sim_create(fd2));
	other_mem = alloc_pages(2, 2);
	ASSERT_NE(NULL, other_mem);
	ASSERT_EQ(0, _test_map_id(fd2, IOVA_A, other_mem, 2 * psz, RW, 0,
			    &other_range));

	nr = dump_ranges(&self->n, self->ctx_id, r, MAX_OBJS);
	ASSERT_EQ(4, nr) TH_LOG("range-get dump of context %u: %s",
				self->ctx_id,
				nr < 0 ? strerror(-nr) : "not 4 ranges");
	for (i = 0; i < 4; i++) {
		x = find_range(r, nr, ids[i]);
		ASSERT_NE(NULL, x) TH_LOG("range %u missing", ids[i]);
		EXPECT_EQ(self->ctx_id, x->ctx_id);
		EXPECT_EQ(want[i].iova, x->iova);
		EXPECT_EQ(want[i].pages * psz, x->length);
		EXPECT_EQ(want[i].flags, x->flags);
		EXPECT_TRUE(x->has_mode && x->has_prefetch && x->has_policy);
		EXPECT_EQ(want[i].mode, x->mode) TH_LOG("range %d", i);
		EXPECT_EQ(want[i].prefetch, x->prefetch) TH_LOG("range %d", i);
		EXPECT_EQ(want[i].policy, x->policy) TH_LOG("range %d", i);
		EXPECT_TRUE(x->has_mapped);
		EXPECT_EQ(query_mapped(self->fd, want[i].iova,
				       want[i].pages * psz),
			  (long)x->pages_mapped) TH_LOG("range %d", i);
		st = iopfmap_get_stats(_metadata, self->fd, want[i].iova);
		expect_same_stats(_metadata, "range", &x->st, &st);
	}
	/* What the faults mapped, to the page. */
	EXPECT_EQ(3ULL, find_range(r, nr, ids[0])->pages_mapped);
	EXPECT_EQ(8ULL, find_range(r, nr, ids[1])->pages_mapped);
	EXPECT_EQ((__u64)P_PAGES, find_range(r, nr, ids[2])->pages_mapped);
	EXPECT_EQ(0ULL, find_range(r, nr, ids[3])->pages_mapped);
	EXPECT_EQ(3ULL, find_range(r, nr, ids[0])->st.v[ST_FAULTS]);
	EXPECT_EQ(7ULL, find_range(r, nr, ids[1])->st.v[ST_PREFETCHED]);

	/* Unfiltered, both contexts' ranges come. */
	nr = dump_ranges(&self->n, 0, r, MAX_OBJS);
	ASSERT_LE(5, nr);
	ASSERT_GE(MAX_OBJS, nr);
	x = NULL;
	for (i = 0; i < nr; i++)
		if (r[i].ctx_id == ctx_id_of(fd2) && r[i].id == other_range)
			x = &r[i];
	EXPECT_NE(NULL, x) TH_LOG("the other context's range is missing");
	for (i = 0; i < 4; i++)
		EXPECT_NE(NULL, find_range(r, nr, ids[i]));

	/* Unmapped ranges leave the dump. */
	ASSERT_EQ(0, _test_unmap(self->fd, IOVA_B, B_PAGES * psz));
	nr = dump_ranges(&self->n, self->ctx_id, r, MAX_OBJS);
	EXPECT_EQ(3, nr);
	EXPECT_EQ(NULL, find_range(r, nr > 0 ? nr : 0, ids[1]));
	close(fd2);
}

/* ---- counters ---------------------------------------------------------- */

/* Reads ctx-get of @id into *@c; asserts it worked. */
#define CTX_GET(n, id, c)						\
	do {								\
		struct nl_res __r;					\
		int __ret = get_ctx(n, id, c, &__r);			\
		ASSERT_EQ(0, __ret) TH_LOG("ctx-get %u: %s (%s)", id,	\
					   strerror(-__ret), __r.msg);	\
	} while (0)

#define GLOBAL_GET(n, g)						\
	do {								\
		int __ret = get_global(n, g);				\
		ASSERT_EQ(0, __ret) TH_LOG("stats-get: %s",		\
					   strerror(-__ret));		\
	} while (0)

TEST_F(nl, counters_follow_faults)
{
	struct nl_global g0, g1, g2;
	struct nl_ctx c0, c1;
	struct iopfmap_stats st;
	__u32 ids[4], faults, f;
	int fd2, i;

	map_four(_metadata, self->fd, self->mem, ids);
	GLOBAL_GET(&self->n, &g0);
	ASSERT_TRUE(g0.has_contexts && g0.has_devices && g0.st.present);
	EXPECT_EQ(NR_STATS, (int)g0.st.nr);
	EXPECT_LE(1U, g0.contexts);
	CTX_GET(&self->n, self->ctx_id, &c0);

	/* 10 pages read: 10 faults, each handled. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A, 10 * psz, &faults));
	EXPECT_EQ(10U, faults);
	/* Outside every range: one fault, invalid. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma(_metadata, self->fd, IOVA_NONE, 64, &f));
	EXPECT_EQ(1U, f);
	faults += f;
	/* A FORWARD range without a queue: forwarded, and refused. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma(_metadata, self->fd, IOVA_F, 64, &f));
	EXPECT_EQ(1U, f);
	faults += f;

	CTX_GET(&self->n, self->ctx_id, &c1);
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_same_stats(_metadata, "ctx after faults", &c1.st, &st);
	EXPECT_EQ((__u64)faults, c1.st.v[ST_FAULTS] - c0.st.v[ST_FAULTS]);
	EXPECT_EQ(10ULL, c1.st.v[ST_HANDLED] - c0.st.v[ST_HANDLED]);
	EXPECT_EQ(1ULL, c1.st.v[ST_INVALID] - c0.st.v[ST_INVALID]);
	EXPECT_EQ(1ULL, c1.st.v[ST_FORWARDED] - c0.st.v[ST_FORWARDED]);
	EXPECT_EQ(10ULL, c1.st.v[ST_MAPPED] - c0.st.v[ST_MAPPED]);

	/* The module's counters moved by as much. */
	GLOBAL_GET(&self->n, &g1);
	for (i = 0; i <= ST_MAPPED; i++)
		EXPECT_EQ(c1.st.v[i] - c0.st.v[i], g1.st.v[i] - g0.st.v[i])
			TH_LOG("module-wide %s moved by %llu, the context's by %llu",
			       stat_names[i],
			       (unsigned long long)(g1.st.v[i] - g0.st.v[i]),
			       (unsigned long long)(c1.st.v[i] - c0.st.v[i]));
	EXPECT_EQ(g1.st.v[ST_FAULTS], g1.st.v[ST_HANDLED] +
		  g1.st.v[ST_INVALID] + g1.st.v[ST_FORWARDED]);

	/* A closed context's faults still count; contexts are counted. */
	OPEN_CONTEXT(&fd2);
	GLOBAL_GET(&self->n, &g2);
	EXPECT_EQ(g1.contexts + 1, g2.contexts);
	ASSERT_EQ(0, sim_create(fd2));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma(_metadata, fd2, IOVA_NONE, 3 * psz, &f));
	close(fd2);
	GLOBAL_GET(&self->n, &g2);
	EXPECT_EQ(g1.contexts, g2.contexts);
	EXPECT_EQ((__u64)f, g2.st.v[ST_FAULTS] - g1.st.v[ST_FAULTS]);
	EXPECT_EQ((__u64)f, g2.st.v[ST_INVALID] - g1.st.v[ST_INVALID]);
}

/* ---- queue-get --------------------------------------------------------- */

/* The queue's counters equal QUEUE_GET_INFO's. */
static void expect_same_queue(struct __test_metadata *_metadata,
			      const struct nl_queue *q,
			      const struct iopfmap_queue_info *qi)
{
	const __u64 *v = &qi->out_groups;
	int i;

	EXPECT_EQ(qi->out_ctx_id, q->ctx_id);
	EXPECT_EQ(qi->out_depth, q->depth);
	EXPECT_EQ(qi->out_timeout_ms, q->timeout_ms);
	EXPECT_EQ(qi->out_pending, q->pending);
	EXPECT_EQ(qi->out_inflight, q->inflight);
	ASSERT_TRUE(q->has_qstats);
	for (i = 0; i < NR_QSTATS; i++)
		EXPECT_EQ(v[i], q->qs[i]) TH_LOG("queue counter %d", i);
}

TEST_F(nl, queue_get)
{
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct iopfmap_fault_response resp;
	struct iopfmap_queue_info qi;
	struct nl_queue q[4];
	__u32 ids[4];
	int nr;

	map_four(_metadata, self->fd, self->mem, ids);
	nr = dump_queues(&self->n, self->ctx_id, q, 4);
	EXPECT_EQ(0, nr) TH_LOG("a queue before QUEUE_ALLOC");

	/* A timeout only to see it: none may fire while the test dumps. */
	self->qfd = queue_alloc(self->fd, 8, 60000);
	ASSERT_LE(0, self->qfd);
	nr = dump_queues(&self->n, self->ctx_id, q, 4);
	ASSERT_EQ(1, nr);
	ASSERT_EQ(0, queue_info(self->qfd, &qi));
	EXPECT_EQ(self->ctx_id, q[0].ctx_id);
	EXPECT_EQ(8U, q[0].depth);
	EXPECT_EQ(60000U, q[0].timeout_ms);
	EXPECT_EQ(0U, q[0].pending + q[0].inflight);
	EXPECT_TRUE(q[0].attached);
	EXPECT_TRUE(q[0].has_armed);
	EXPECT_EQ(0U, q[0].armed);
	expect_same_queue(_metadata, &q[0], &qi);

	/* Two forwarded groups wait; one is read. */
	job_start(_metadata, &jobs[0], self->fd, IOVA_F);
	job_start(_metadata, &jobs[1], self->fd, IOVA_F + psz);
	ASSERT_TRUE(wait_pending(self->qfd, 2));
	ASSERT_EQ((ssize_t)sizeof(rec[0]),
		  read(self->qfd, rec, sizeof(rec[0])));
	nr = dump_queues(&self->n, self->ctx_id, q, 4);
	ASSERT_EQ(1, nr);
	ASSERT_EQ(0, queue_info(self->qfd, &qi));
	EXPECT_EQ(1U, q[0].pending);
	EXPECT_EQ(1U, q[0].inflight);
	EXPECT_EQ(2ULL, q[0].qs[0]);	/* groups */
	expect_same_queue(_metadata, &q[0], &qi);

	/* Answered: SUCCESS maps the page; the other one INVALID. */
	resp = (struct iopfmap_fault_response){ .cookie = rec[0].cookie };
	ASSERT_EQ((ssize_t)sizeof(resp), write(self->qfd, &resp,
					       sizeof(resp)));
	ASSERT_EQ((ssize_t)sizeof(rec[0]),
		  read(self->qfd, rec, sizeof(rec[0])));
	resp = (struct iopfmap_fault_response){
		.cookie = rec[0].cookie, .code = IOPFMAP_PAGE_RESP_INVALID,
	};
	ASSERT_EQ((ssize_t)sizeof(resp), write(self->qfd, &resp,
					       sizeof(resp)));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK + (__u32)IOPFMAP_SIM_DMA_INVALID,
		  job_join(_metadata, &jobs[0]) + job_join(_metadata, &jobs[1]));
	nr = dump_queues(&self->n, self->ctx_id, q, 4);
	ASSERT_EQ(1, nr);
	ASSERT_EQ(0, queue_info(self->qfd, &qi));
	EXPECT_EQ(0U, q[0].pending + q[0].inflight);
	expect_same_queue(_metadata, &q[0], &qi);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	EXPECT_EQ(1ULL, qi.out_resp_invalid);

	/* Nobody holds the queue's file any more. */
	close(self->qfd);
	self->qfd = -1;
	nr = dump_queues(&self->n, self->ctx_id, q, 4);
	if (nr == 1) {
		EXPECT_FALSE(q[0].attached);
	} else {
		EXPECT_EQ(0, nr);
	}
}

/* ---- dev-get ----------------------------------------------------------- */

TEST_F(nl, dev_get_none)
{
	struct nl_dev d[MAX_OBJS];
	struct nl_ctx c;
	int nr;

	nr = dump_devs(&self->n, self->ctx_id, d, MAX_OBJS);
	EXPECT_EQ(0, nr) TH_LOG("dev-get of a context without devices: %d",
				nr);
	CTX_GET(&self->n, self->ctx_id, &c);
	EXPECT_EQ(0U, c.nr_devices);
}

/* The IOMMU group of PCI device @dev, or -1. */
static int iommu_group_of(const char *dev)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 dev);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -1;
	link[n] = '\0';
	base = strrchr(link, '/');
	return atoi(base ? base + 1 : link);
}

/*
 * A real device: dev-get says what ATTACH did, and the events group
 * hears the attach and both kinds of detach.
 */
TEST_F(nl, dev_get_and_events)
{
	char edu[MAX_OBJS][IOPFMAP_DEVICE_NAME_MAX];
	struct iopfmap_device_attach a, a2;
	struct nl_global g0, g1;
	struct nl_dev d[MAX_OBJS];
	struct nl_event ev;
	struct nl_ctx c;
	__u32 ctx2;
	int fd2, nedu, nr, ret, grp;

	OPEN_CONTEXT(&fd2);
	nedu = edu_require(_metadata, fd2, edu, MAX_OBJS);
	if (!nedu) {
		close(fd2);
		return;
	}
	ctx2 = ctx_id_of(fd2);
	SUBSCRIBE(self);
	GLOBAL_GET(&self->n, &g0);

	ret = _test_attach(fd2, edu[0], 0, &a);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s: %s", edu[0], strerror(-ret));
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_DEV_ATTACH_NTF, ctx2,
			 WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no dev-attach-ntf");
	EXPECT_TRUE(ev.has_dev);
	EXPECT_EQ(a.out_dev_id, ev.dev_id);
	EXPECT_STREQ(edu[0], ev.dev_name);

	nr = dump_devs(&self->n, ctx2, d, MAX_OBJS);
	ASSERT_EQ(1, nr);
	EXPECT_EQ(ctx2, d[0].ctx_id);
	EXPECT_EQ(a.out_dev_id, d[0].id);
	EXPECT_STREQ(edu[0], d[0].name);
	grp = iommu_group_of(edu[0]);
	EXPECT_TRUE(d[0].has_group);
	EXPECT_EQ(grp, (int)d[0].iommu_group);
	EXPECT_EQ(!!(a.out_flags & IOPFMAP_DEVICE_HW_IOPF), d[0].iopf);
	EXPECT_TRUE(d[0].has_path);
	EXPECT_EQ(d[0].iopf ? (__u32)IOPFMAP_FAULT_PATH_IOMMU :
			      (__u32)IOPFMAP_FAULT_PATH_DRIVER,
		  d[0].fault_path);
	EXPECT_FALSE(d[0].own_domain);
	/* Not ours: our context has none. */
	EXPECT_EQ(0, dump_devs(&self->n, self->ctx_id, d, MAX_OBJS));
	CTX_GET(&self->n, ctx2, &c);
	EXPECT_EQ(1U, c.nr_devices);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_TYPE_DOMAIN, c.iopt_type);
	EXPECT_FALSE(c.sim);
	GLOBAL_GET(&self->n, &g1);
	EXPECT_EQ(g0.devices + 1, g1.devices);

	/* DETACH: reason request. */
	ASSERT_EQ(0, _test_detach(fd2, a.out_dev_id));
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_DEV_DETACH_NTF, ctx2,
			 WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no dev-detach-ntf after DETACH");
	EXPECT_EQ(a.out_dev_id, ev.dev_id);
	EXPECT_STREQ(edu[0], ev.dev_name);
	EXPECT_TRUE(ev.has_reason);
	EXPECT_EQ((__u32)IOPFMAP_DETACH_REASON_REQUEST, ev.reason);
	EXPECT_EQ(0, dump_devs(&self->n, ctx2, d, MAX_OBJS));
	GLOBAL_GET(&self->n, &g1);
	EXPECT_EQ(g0.devices, g1.devices);

	/* Its own domain shows; closing the context detaches: ctx-close. */
	ret = _test_attach(fd2, edu[0], IOPFMAP_ATTACH_OWN_DOMAIN, &a2);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s again: %s", edu[0],
				 strerror(-ret));
	ASSERT_EQ(0, wait_event(&self->ev, IOPFMAP_NL_CMD_DEV_ATTACH_NTF,
				ctx2, WAIT_MS, &ev));
	nr = dump_devs(&self->n, ctx2, d, MAX_OBJS);
	ASSERT_EQ(1, nr);
	EXPECT_TRUE(d[0].own_domain);
	EXPECT_EQ(a2.out_dev_id, d[0].id);
	close(fd2);
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_DEV_DETACH_NTF, ctx2,
			 WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no dev-detach-ntf after close");
	EXPECT_EQ(a2.out_dev_id, ev.dev_id);
	EXPECT_EQ((__u32)IOPFMAP_DETACH_REASON_CTX_CLOSE, ev.reason);
}

/* ---- range-set --------------------------------------------------------- */

/* Reads range @id of our context; asserts it is there. */
static struct nl_range get_range(struct __test_metadata *_metadata,
				 struct nlc *n, __u32 ctx_id, __u32 id)
{
	struct nl_range r[MAX_OBJS], none = { .id = 0 }, *x;
	int nr = dump_ranges(n, ctx_id, r, MAX_OBJS);

	EXPECT_LE(1, nr) TH_LOG("range-get: %s",
				nr < 0 ? strerror(-nr) : "nothing");
	x = nr > 0 ? find_range(r, nr, id) : NULL;
	EXPECT_NE(NULL, x) TH_LOG("range %u is not dumped", id);
	return x ? *x : none;
}

#define RANGE_SET_OK(n, ctx, id, prefetch, policy)			\
	do {								\
		struct nl_res __r;					\
		int __ret = range_set(n, ctx, id, prefetch, policy, &__r); \
		ASSERT_EQ(0, __ret) TH_LOG("range-set: %s (%s)",	\
					   strerror(-__ret), __r.msg);	\
	} while (0)

TEST_F(nl, range_set_prefetch_and_policy)
{
	struct iopfmap_stats st0, st1;
	struct nl_range x;
	__u32 ids[4], faults;

	map_four(_metadata, self->fd, self->mem, ids);

	/* A window of 16: one fault maps its whole aligned window. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[0], 16, OMIT);
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(16U, x.prefetch);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, x.policy);
	st0 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A + 21 * psz, 64, &faults));
	EXPECT_EQ(1U, faults);
	EXPECT_EQ(16, query_mapped(self->fd, IOVA_A + 16 * psz, 16 * psz));
	EXPECT_EQ(16, query_mapped(self->fd, IOVA_A, A_PAGES * psz));
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(16ULL, x.pages_mapped);
	st1 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ(15ULL, st1.out_pages_prefetched - st0.out_pages_prefetched);
	/* The whole window is there: no more faults in it. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A + 16 * psz, 16 * psz,
		      &faults));
	EXPECT_EQ(0U, faults);

	/* reject: faults fail, what is mapped stays mapped. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[0], OMIT,
		     IOPFMAP_POLICY_REJECT);
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_REJECT, x.policy);
	EXPECT_EQ(16U, x.prefetch);
	st0 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma(_metadata, self->fd, IOVA_A + 40 * psz, 64, &faults));
	EXPECT_EQ(1U, faults);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A + 17 * psz, 64, &faults));
	EXPECT_EQ(0U, faults);
	st1 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ(1ULL, st1.out_faults - st0.out_faults);
	EXPECT_EQ(1ULL, st1.out_faults_invalid - st0.out_faults_invalid);
	EXPECT_EQ(0ULL, st1.out_faults_handled - st0.out_faults_handled);
	EXPECT_EQ(16, query_mapped(self->fd, IOVA_A, A_PAGES * psz));
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	expect_same_stats(_metadata, "rejecting range", &x.st, &st1);

	/* Back to resolve, and both at once: the fault maps a window of 4. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[0], 4,
		     IOPFMAP_POLICY_RESOLVE);
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, x.policy);
	EXPECT_EQ(4U, x.prefetch);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A + 40 * psz, 64, &faults));
	EXPECT_EQ(1U, faults);
	EXPECT_EQ(20, query_mapped(self->fd, IOVA_A, A_PAGES * psz));
	EXPECT_EQ(4, query_mapped(self->fd, IOVA_A + 40 * psz, 4 * psz));

	/* forward on a FAULT range: without a queue its faults fail. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[0], OMIT,
		     IOPFMAP_POLICY_FORWARD);
	st0 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma(_metadata, self->fd, IOVA_A + 60 * psz, 64, NULL));
	st1 = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ(1ULL, st1.out_faults_forwarded - st0.out_faults_forwarded);
	/* The other ranges did not change. */
	x = get_range(_metadata, &self->n, self->ctx_id, ids[1]);
	EXPECT_EQ(8U, x.prefetch);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, x.policy);
}

/* Prefetch and policy of ranges A (ids[0]) and P (ids[2]) as mapped. */
static void expect_unchanged(struct __test_metadata *_metadata,
			     struct nlc *n, __u32 ctx_id, const __u32 *ids,
			     const char *after)
{
	struct nl_range a = get_range(_metadata, n, ctx_id, ids[0]);
	struct nl_range p = get_range(_metadata, n, ctx_id, ids[2]);

	EXPECT_EQ(1U, a.prefetch) TH_LOG("after %s", after);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, a.policy)
		TH_LOG("after %s", after);
	EXPECT_EQ(1U, p.prefetch) TH_LOG("after %s", after);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, p.policy)
		TH_LOG("after %s", after);
}

TEST_F(nl, range_set_refused)
{
	static const struct {
		const char *what;
		int err;
		int range;		/* index into ids; -1: a bad id */
		long long ctx, prefetch, policy;
	} c[] = {
		{ "nothing to set", EINVAL, 0, 0, OMIT, OMIT },
		{ "prefetch 3", EINVAL, 0, 0, 3, OMIT },
		{ "prefetch 1024", ERANGE, 0, 0, 1024, OMIT },
		{ "prefetch 0", ERANGE, 0, 0, 0, OMIT },
		{ "prefetch 3 with a good policy", EINVAL, 0, 0, 3,
		  IOPFMAP_POLICY_REJECT },
		{ "an unknown policy", ERANGE, 0, 0, OMIT, 3 },
		{ "an unknown range", ENOENT, -1, 0, 4, OMIT },
		{ "an unknown context", ENOENT, 0, 0x7ffffff0, 4, OMIT },
		{ "forward on a PIN range", EINVAL, 2, 0, OMIT,
		  IOPFMAP_POLICY_FORWARD },
		{ "forward and a prefetch on a PIN range", EINVAL, 2, 0, 4,
		  IOPFMAP_POLICY_FORWARD },
	};
	__u32 ids[4];
	struct nl_res r;
	unsigned int i;
	int ret;

	map_four(_metadata, self->fd, self->mem, ids);
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		long long ctx = c[i].ctx ? c[i].ctx : self->ctx_id;
		long long id = c[i].range < 0 ? 0x7ffffff0 : ids[c[i].range];

		ret = range_set(&self->n, ctx, id, c[i].prefetch,
				c[i].policy, &r);
		EXPECT_REFUSED(c[i].err, ret, r, c[i].what);
		expect_unchanged(_metadata, &self->n, self->ctx_id, ids,
				 c[i].what);
	}
	/* Without the ids the request names nothing. */
	ret = range_set(&self->n, OMIT, ids[0], 4, OMIT, &r);
	EXPECT_EQ(-EINVAL, ret);
	ret = range_set(&self->n, self->ctx_id, OMIT, 4, OMIT, &r);
	EXPECT_EQ(-EINVAL, ret);
	expect_unchanged(_metadata, &self->n, self->ctx_id, ids, "no ids");
	/* The PIN range takes a prefetch window and reject. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[2], 2, IOPFMAP_POLICY_REJECT);
}

/* What the unprivileged child saw. */
struct unpriv_result {
	int step;		/* 0: all ran; else where it stopped */
	int err;		/* that step's -errno */
	int set_err;
	bool set_msg;
	int nr_ranges;		/* the dump's */
	__u32 prefetch;		/* range A's, as dumped */
};


static void unpriv_child(int wfd, __u32 ctx_id, __u32 range_id)
{
	struct unpriv_result res = { 0 };
	struct nl_range r[MAX_OBJS], *x;
	struct nl_res nr;
	struct nlc n;

	res.err = iopfmap_become_nobody();
	if (res.err) {
		res.step = 1;
		goto out;
	}
	/* Its own socket: the kernel checks the opener and the sender. */
	res.err = nlc_open(&n, false);
	if (res.err) {
		res.step = 2;
		goto out;
	}
	res.set_err = range_set(&n, ctx_id, range_id, 64,
				IOPFMAP_POLICY_REJECT, &nr);
	res.set_msg = nr.msg[0] != '\0';
	/* A context is for its opener's uid and administrators only. */
	res.nr_ranges = dump_ranges(&n, ctx_id, r, MAX_OBJS);
	x = res.nr_ranges > 0 ? find_range(r, res.nr_ranges, range_id) : NULL;
	res.prefetch = x ? x->prefetch : 0;
	nlc_close(&n);
out:
	if (write(wfd, &res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

/*
 * Every command validates strictly: an attribute the family does not
 * know, or a non-zero reserved field of the generic netlink header, fails
 * with EINVAL and changes nothing.
 */
TEST_F(nl, strict_validation)
{
	struct nl_range x;
	struct nl_res r;
	struct nl_msg *msg;
	__u32 ids[4];
	int ret;

	map_four(_metadata, self->fd, self->mem, ids);

	/* range-set with an attribute number past the family's. */
	msg = nlc_msg(&self->n, IOPFMAP_NL_CMD_RANGE_SET, false);
	ASSERT_TRUE(msg != NULL);
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_CTX_ID, self->ctx_id));
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_ID, ids[0]));
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_PREFETCH, 16));
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_MAX + 1, 1));
	ret = nlc_transact(&self->n, msg, NULL, NULL, &r);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("unknown attribute: %s",
				       strerror(-ret));
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(1U, x.prefetch);

	/* The same request with the header's reserved field set. */
	msg = nlc_msg(&self->n, IOPFMAP_NL_CMD_RANGE_SET, false);
	ASSERT_TRUE(msg != NULL);
	((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->reserved = 1;
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_CTX_ID, self->ctx_id));
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_ID, ids[0]));
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_PREFETCH, 16));
	ret = nlc_transact(&self->n, msg, NULL, NULL, &r);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("reserved header field: %s",
				       strerror(-ret));
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(1U, x.prefetch);

	/* A dump with an attribute its request does not take. */
	msg = nlc_msg(&self->n, IOPFMAP_NL_CMD_RANGE_GET, true);
	ASSERT_TRUE(msg != NULL);
	ASSERT_EQ(0, nla_put_u32(msg, IOPFMAP_A_RANGE_PREFETCH, 16));
	ret = nlc_transact(&self->n, msg, NULL, NULL, &r);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("range-get with prefetch: %s",
				       strerror(-ret));
}

TEST_F(nl, range_set_needs_admin)
{
	struct unpriv_result res;
	struct nl_range x;
	__u32 ids[4];
	int p[2], status;
	pid_t pid;

	map_four(_metadata, self->fd, self->mem, ids);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[0]);
		unpriv_child(p[1], self->ctx_id, ids[0]);
	}
	close(p[1]);
	memset(&res, 0, sizeof(res));
	EXPECT_EQ((ssize_t)sizeof(res), read(p[0], &res, sizeof(res)));
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, res.step) TH_LOG("the child stopped at step %d: %s",
				      res.step, strerror(-res.err));
	EXPECT_EQ(-EPERM, res.set_err) TH_LOG("range-set as nobody: %s",
					      strerror(-res.set_err));
	EXPECT_EQ(0, res.nr_ranges) TH_LOG("range-get as nobody: %s",
					   res.nr_ranges < 0 ?
					   strerror(-res.nr_ranges) : "count");

	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(1U, x.prefetch);
	EXPECT_EQ((__u32)IOPFMAP_POLICY_RESOLVE, x.policy);
	/* As root the same request works. */
	RANGE_SET_OK(&self->n, self->ctx_id, ids[0], 64,
		     IOPFMAP_POLICY_REJECT);
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(64U, x.prefetch);
}

/* ---- events ------------------------------------------------------------ */

/*
 * The last file of a queue closed with groups held: they are answered
 * INVALID, and queue-close-ntf counts them.
 */
TEST_F(nl, event_queue_close)
{
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct nl_event ev;
	__u32 ids[4];
	int ret;

	map_four(_metadata, self->fd, self->mem, ids);
	SUBSCRIBE(self);
	self->qfd = queue_alloc(self->fd, 0, 0);
	ASSERT_LE(0, self->qfd);
	/* One delivered, one waiting: both count. */
	job_start(_metadata, &jobs[0], self->fd, IOVA_F);
	job_start(_metadata, &jobs[1], self->fd, IOVA_F + 3 * psz);
	ASSERT_TRUE(wait_pending(self->qfd, 2));
	ASSERT_EQ((ssize_t)sizeof(rec[0]),
		  read(self->qfd, rec, sizeof(rec[0])));
	close(self->qfd);
	self->qfd = -1;
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, job_join(_metadata, &jobs[0]));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, job_join(_metadata, &jobs[1]));

	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_QUEUE_CLOSE_NTF,
			 self->ctx_id, WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no queue-close-ntf");
	EXPECT_TRUE(ev.has_count);
	EXPECT_EQ(2U, ev.count);

	/* An empty queue closes silently. */
	self->qfd = queue_alloc(self->fd, 0, 0);
	ASSERT_LE(0, self->qfd);
	close(self->qfd);
	self->qfd = -1;
	EXPECT_EQ(-ETIMEDOUT, wait_event(&self->ev,
					 IOPFMAP_NL_CMD_QUEUE_CLOSE_NTF,
					 self->ctx_id, QUIET_MS, &ev))
		TH_LOG("queue-close-ntf for an empty queue (count %u)",
		       ev.count);
}

TEST_F(nl, event_queue_timeout)
{
	struct nl_event ev;
	__u32 ids[4];
	int ret;

	map_four(_metadata, self->fd, self->mem, ids);
	SUBSCRIBE(self);
	self->qfd = queue_alloc(self->fd, 0, 100);
	ASSERT_LE(0, self->qfd);
	job_start(_metadata, &jobs[0], self->fd, IOVA_F + psz);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, job_join(_metadata, &jobs[0]));
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_QUEUE_TIMEOUT_NTF,
			 self->ctx_id, WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no queue-timeout-ntf");
	EXPECT_TRUE(ev.has_count);
	EXPECT_EQ(1U, ev.count);
}

/*
 * A depth-1 queue and more groups: the first overflow is reported at
 * once, the next ones within the second are not, and the next reports
 * count them all.
 */
TEST_F(nl, event_queue_full)
{
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct iopfmap_fault_response resp;
	struct nl_event ev;
	__u32 ids[4], sum;
	__u64 t0, t1;
	int ret, i;

	map_four(_metadata, self->fd, self->mem, ids);
	SUBSCRIBE(self);
	self->qfd = queue_alloc(self->fd, 1, 0);
	ASSERT_LE(0, self->qfd);
	job_start(_metadata, &jobs[0], self->fd, IOVA_F);
	ASSERT_TRUE(wait_pending(self->qfd, 1));

	/* Before the first overflow, which opens the second: a bound. */
	t0 = iopfmap_now_ms();
	job_start(_metadata, &jobs[1], self->fd, IOVA_F + psz);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, job_join(_metadata, &jobs[1]));
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_QUEUE_FULL_NTF,
			 self->ctx_id, WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no queue-full-ntf");
	EXPECT_TRUE(ev.has_count);
	EXPECT_EQ(1U, ev.count);

	/* Two more within the second: no event yet. */
	for (i = 2; i < 4; i++) {
		job_start(_metadata, &jobs[i], self->fd, IOVA_F + i * psz);
		EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
			  job_join(_metadata, &jobs[i]));
	}
	/*
	 * An event of theirs would already be sent. Not checked if a stall
	 * may have put one past the second.
	 */
	t1 = iopfmap_now_ms();
	if (t1 - t0 < 800) {
		ret = wait_event(&self->ev, IOPFMAP_NL_CMD_QUEUE_FULL_NTF,
				 self->ctx_id, 1000 - (t1 - t0) - 150, &ev);
		EXPECT_EQ(-ETIMEDOUT, ret)
			TH_LOG("a second queue-full-ntf within a second (count %u)",
			       ev.count);
	} else {
		TH_LOG("overflows 1-3 took %llu ms: not checking that 2-3 "
		       "are held back", (unsigned long long)(t1 - t0));
	}
	/*
	 * A second after the last report, the next overflow reports all
	 * those since: three in all, in one event unless a stall above let
	 * one of the two report first.
	 */
	while (iopfmap_now_ms() - t1 < 1100)
		iopfmap_sleep_ms(50);
	job_start(_metadata, &jobs[4], self->fd, IOVA_F + 4 * psz);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, job_join(_metadata, &jobs[4]));
	for (sum = 0; sum < 3; sum += ev.count) {
		ret = wait_event(&self->ev, IOPFMAP_NL_CMD_QUEUE_FULL_NTF,
				 self->ctx_id, WAIT_MS, &ev);
		ASSERT_EQ(0, ret)
			TH_LOG("queue-full-ntf a second later: %u of 3", sum);
		EXPECT_TRUE(ev.has_count);
	}
	EXPECT_EQ(3U, sum);

	/* The held group is still answered normally. */
	ASSERT_EQ((ssize_t)sizeof(rec[0]),
		  read(self->qfd, rec, sizeof(rec[0])));
	resp = (struct iopfmap_fault_response){ .cookie = rec[0].cookie };
	ASSERT_EQ((ssize_t)sizeof(resp), write(self->qfd, &resp,
					       sizeof(resp)));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, job_join(_metadata, &jobs[0]));
}

/*
 * More invalidations than storm_threshold within a second: one
 * inval-storm-ntf with the count and the window. Under it: none.
 */
TEST_F(nl, event_inval_storm)
{
	const unsigned int threshold = 20;
	struct nl_event ev;
	struct nl_range x;
	unsigned int i;
	__u32 ids[4], faults;
	__u64 t0, loop_ms;
	int ret;

	ret = read_param(STORM_PARAM, &self->storm_saved);
	ASSERT_EQ(0, ret) TH_LOG(STORM_PARAM ": %s", strerror(-ret));
	self->storm_set = true;
	ASSERT_EQ(0, write_param(STORM_PARAM, threshold));
	map_four(_metadata, self->fd, self->mem, ids);
	SUBSCRIBE(self);

	/* The device maps 4 pages; the CPU drops them, again and again. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma(_metadata, self->fd, IOVA_A, 4 * psz, &faults));
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(4ULL, x.pages_mapped);
	t0 = iopfmap_now_ms();
	for (i = 0; i < 3 * threshold; i++)
		ASSERT_EQ(0, madvise(self->mem, 4 * psz, MADV_DONTNEED));
	loop_ms = iopfmap_now_ms() - t0;
	x = get_range(_metadata, &self->n, self->ctx_id, ids[0]);
	EXPECT_EQ(0ULL, x.pages_mapped);
	EXPECT_LE((__u64)(3 * threshold), x.st.v[ST_INVALS]);
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_INVAL_STORM_NTF,
			 self->ctx_id, WAIT_MS, &ev);
	ASSERT_EQ(0, ret) TH_LOG("no inval-storm-ntf after %u invalidations",
				 3 * threshold);
	EXPECT_TRUE(ev.has_count && ev.has_window);
	EXPECT_LT(threshold, ev.count);
	EXPECT_GE(3 * threshold, ev.count);
	EXPECT_EQ(1000U, ev.window_ms);
	/*
	 * Once per window, which the first invalidation opens. A loop that
	 * took about a window (a stall) may have opened a second one, with
	 * its own event: then at most that one more (each needs over
	 * @threshold of the 3 * @threshold).
	 */
	if (loop_ms < 900) {
		ret = wait_event(&self->ev, IOPFMAP_NL_CMD_INVAL_STORM_NTF,
				 self->ctx_id, QUIET_MS, &ev);
		EXPECT_EQ(-ETIMEDOUT, ret)
			TH_LOG("a second event in the window");
	} else {
		TH_LOG("the invalidations took %llu ms, about a window or "
		       "more: a second event may come",
		       (unsigned long long)loop_ms);
		for (i = 0; !wait_event(&self->ev,
					IOPFMAP_NL_CMD_INVAL_STORM_NTF,
					self->ctx_id, QUIET_MS, &ev); i++) {
			EXPECT_LT(threshold, ev.count);
			EXPECT_GE(3 * threshold, ev.count);
		}
		EXPECT_GE(1U, i) TH_LOG("%u more inval-storm-ntf", i);
	}

	/* A threshold above what happens: no event. */
	ASSERT_EQ(0, write_param(STORM_PARAM, 100000));
	iopfmap_sleep_ms(1100);		/* a new window */
	for (i = 0; i < 3 * threshold; i++)
		ASSERT_EQ(0, madvise(self->mem, 4 * psz, MADV_DONTNEED));
	ret = wait_event(&self->ev, IOPFMAP_NL_CMD_INVAL_STORM_NTF,
			 self->ctx_id, QUIET_MS, &ev);
	EXPECT_EQ(-ETIMEDOUT, ret)
		TH_LOG("inval-storm-ntf under the threshold (count %u)",
		       ev.count);
}

/* ---- fail_nth: each command with each injection point failing ------- */

/*
 * The nl fixture's context with its four ranges and a queue, and the
 * sweep's counter. Each run uses a fresh socket, so that a dump cut short
 * by a failure leaves nothing behind for the next run.
 */
FIXTURE(nl_fail_nth)
{
	int fd, qfd;
	__u32 ctx_id;
	__u32 ids[4];
	char *mem;
	struct fi_nth nth;
	long refcnt;
};

FIXTURE_SETUP(nl_fail_nth)
{
	const char *why = fi_unavailable();

	self->fd = -1;
	self->qfd = -1;
	self->nth.fd = -1;
	self->mem = NULL;
	if (why)
		SKIP(return, "%s", why);
	self->refcnt = fi_module_refcnt();
	OPEN_CONTEXT(&self->fd);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "module loaded without sim=1");
	self->ctx_id = ctx_id_of(self->fd);
	ASSERT_EQ(0, sim_create(self->fd));
	self->mem = alloc_pages(A_PAGES + B_PAGES + P_PAGES + F_PAGES, 1);
	ASSERT_NE(NULL, self->mem);
	map_four(_metadata, self->fd, self->mem, self->ids);
	self->qfd = queue_alloc(self->fd, 8, 0);
	ASSERT_LE(0, self->qfd);
	why = fi_begin(_metadata, &self->nth);
	ASSERT_EQ(NULL, why) TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(nl_fail_nth)
{
	fi_end(_metadata, &self->nth);
	if (self->qfd >= 0)
		close(self->qfd);
	if (self->fd >= 0)
		close(self->fd);
	if (self->nth.injected)
		fi_expect_idle(_metadata, self->refcnt);
}

/* What one run of a command saw: its return, and objects it returned. */
struct nl_run {
	int ret;
	struct nl_ctx c[MAX_OBJS];
	struct nl_range r[MAX_OBJS];
	struct nl_queue q[MAX_OBJS];
	struct nl_dev d[MAX_OBJS];
	struct nl_global g;
};

enum nl_op { OP_CTX_DO, OP_CTX_DUMP, OP_RANGE_DUMP, OP_QUEUE_DUMP,
	     OP_DEV_DUMP, OP_STATS_DO, OP_RANGE_SET, NR_OPS };

static const char *const op_names[NR_OPS] = {
	"ctx-get do", "ctx-get dump", "range-get dump", "queue-get dump",
	"dev-get dump", "stats-get do", "range-set do",
};

static int nl_run_op(struct nlc *n, enum nl_op op, __u32 ctx_id,
		     __u32 range_id, __u32 prefetch, struct nl_run *x)
{
	struct nl_res res;

	switch (op) {
	case OP_CTX_DO:
		return get_ctx(n, ctx_id, x->c, &res);
	case OP_CTX_DUMP:
		return dump_ctxs(n, x->c, MAX_OBJS);
	case OP_RANGE_DUMP:
		return dump_ranges(n, ctx_id, x->r, MAX_OBJS);
	case OP_QUEUE_DUMP:
		return dump_queues(n, ctx_id, x->q, MAX_OBJS);
	case OP_DEV_DUMP:
		return dump_devs(n, ctx_id, x->d, MAX_OBJS);
	case OP_STATS_DO:
		return get_global(n, &x->g);
	case OP_RANGE_SET:
		return range_set(n, ctx_id, range_id, prefetch, OMIT, &res);
	default:
		return -EINVAL;
	}
}

/* A run that completed returned what the context holds. */
static void nl_check_run(struct __test_metadata *_metadata,
			 FIXTURE_DATA(nl_fail_nth) *self, enum nl_op op,
			 const struct nl_run *x)
{
	const struct nl_ctx *c;

	switch (op) {
	case OP_CTX_DO:
		EXPECT_EQ(self->ctx_id, x->c[0].id);
		EXPECT_EQ(4U, x->c[0].nr_ranges);
		break;
	case OP_CTX_DUMP:
		c = find_ctx((struct nl_ctx *)x->c, x->ret, self->ctx_id);
		EXPECT_NE(NULL, c);
		if (c)
			EXPECT_EQ(4U, c->nr_ranges);
		break;
	case OP_RANGE_DUMP:
		EXPECT_EQ(4, x->ret);
		break;
	case OP_QUEUE_DUMP:
		EXPECT_EQ(1, x->ret);
		EXPECT_EQ(8U, x->q[0].depth);
		break;
	case OP_DEV_DUMP:
		EXPECT_EQ(0, x->ret);
		break;
	case OP_STATS_DO:
		EXPECT_LE(1U, x->g.contexts);
		break;
	default:
		break;
	}
}

/* Range A's window, as range-get says. */
static __u32 prefetch_of_a(struct __test_metadata *_metadata,
			   FIXTURE_DATA(nl_fail_nth) *self, struct nlc *n)
{
	return get_range(_metadata, n, self->ctx_id, self->ids[0]).prefetch;
}

TEST_F(nl_fail_nth, every_command)
{
	static struct nl_run x;
	__u32 before, after, want;
	enum nl_op op;
	struct nlc n;
	bool fired;

	for (op = 0; op < NR_OPS; op++) {
		FI_SWEEP(&self->nth) {
			ASSERT_EQ(0, nlc_open(&n, false));
			before = prefetch_of_a(_metadata, self, &n);
			want = before == 4 ? 8 : 4;
			memset(&x, 0, sizeof(x));
			fi_nth_arm(_metadata, &self->nth);
			x.ret = nl_run_op(&n, op, self->ctx_id, self->ids[0],
					  want, &x);
			fired = fi_nth_fired(_metadata, &self->nth);
			if (!fired) {
				EXPECT_LE(0, x.ret)
					TH_LOG("%s: %s", op_names[op],
					       strerror(-x.ret));
			}
			if (x.ret >= 0)
				nl_check_run(_metadata, self, op, &x);
			if (op == OP_RANGE_SET) {
				nlc_close(&n);
				ASSERT_EQ(0, nlc_open(&n, false));
				after = prefetch_of_a(_metadata, self, &n);
				/*
				 * Refused: nothing changed. Only a reply lost
				 * on the way back (EIO: the socket, recvmsg or
				 * poll failed) leaves it unknown.
				 */
				if (!x.ret) {
					EXPECT_EQ(want, after);
				} else if (x.ret != -EIO) {
					EXPECT_EQ(before, after)
						TH_LOG("run %u: range-set failed (%s) and changed the window",
						       self->nth.n,
						       strerror(-x.ret));
				}
			}
			nlc_close(&n);
			if (!fired)
				break;
		}
		ASSERT_LT(self->nth.n, FI_NTH_MAX) TH_LOG("%s", op_names[op]);
		TH_LOG("%s reaches %u points", op_names[op], self->nth.n - 1);
	}
}

TEST_HARNESS_MAIN
