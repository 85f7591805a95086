// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap's generic netlink family (docs/netlink/specs/iopfmap.yaml), as
 * iopfd uses it: at start it logs the contexts the module has (ctx-get
 * dump), then it listens to the "events" group and logs every event.
 * A detached device ends the client subscriptions that name it
 * (DEVICE_GONE, iopfd_proto.h).
 *
 * Threading: none of its own. The dump at start is one blocking
 * exchange on a socket of its own, bounded by a receive timeout, before
 * the loop runs; the events socket is non-blocking and the event loop's
 * ring polls it (IORING_OP_POLL_ADD, one shot, re-armed after each
 * drain), so events are handled in the loop's thread between faults.
 *
 * The family is optional: a module without it (an older iopfmap) gets a
 * warning, and iopfd serves queues as before.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <linux/iopfmap_netlink.h>

/* The spec's names: generated from it by tools/netlink-gen.sh. */
#include <iopfmap_nl_names.h>
#include "iopfd.h"

#define NL_DUMP_TIMEOUT_S	2
#define NL_RCVBUF		(1 << 20)	/* bursts of events */

_Static_assert(IOPFMAP_NL_CMD_MAX < IOPFD_NL_CMDS, "event counters");

struct iopfd_nl {
	struct nl_sock *sk;	/* joined to "events", non-blocking */
	int family;
	int fd;
	struct op op;
	bool armed;
	/* Room for any notification: they are a few attributes each. */
	unsigned char buf[8192] __aligned(8);
};

/* The spec's name of @v in @table, or "unknown". */
#define SPEC_NAME(table, v)						\
	((v) < ARRAY_SIZE(table) && (table)[v] ? (table)[v] : "unknown")

const char *nl_event_name(unsigned int cmd)
{
	return SPEC_NAME(iopfmap_nl_ntf_names, cmd);
}

static const char *iopt_name(uint32_t t)
{
	return SPEC_NAME(iopfmap_nl_iopt_type_names, t);
}

static const char *reason_name(uint32_t r)
{
	return SPEC_NAME(iopfmap_nl_detach_reason_names, r);
}

static uint32_t attr_u32(struct nlattr *a)
{
	return a ? nla_get_u32(a) : 0;
}

/* One context of the dump at start, as a log line. */
static int nl_ctx_line(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[IOPFMAP_A_CTX_MAX + 1];
	struct nlattr *st[IOPFMAP_A_STATS_MAX + 1];
	unsigned int *count = arg;
	unsigned long long faults = 0;
	char qc[48];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, IOPFMAP_A_CTX_MAX, NULL) ||
	    !tb[IOPFMAP_A_CTX_ID])
		return NL_SKIP;
	if (tb[IOPFMAP_A_CTX_STATS] &&
	    !nla_parse_nested(st, IOPFMAP_A_STATS_MAX,
			      tb[IOPFMAP_A_CTX_STATS], NULL) &&
	    st[IOPFMAP_A_STATS_FAULTS])
		faults = nla_get_u64(st[IOPFMAP_A_STATS_FAULTS]);
	(*count)++;
	log_info("nl_ctx", "ctx=%u pid=%u comm=%s iopt=%s sim=%d ranges=%u devices=%u queue=%d faults=%llu",
		 attr_u32(tb[IOPFMAP_A_CTX_ID]), attr_u32(tb[IOPFMAP_A_CTX_PID]),
		 log_quote(qc, sizeof(qc), tb[IOPFMAP_A_CTX_COMM] ?
			   nla_get_string(tb[IOPFMAP_A_CTX_COMM]) : ""),
		 iopt_name(attr_u32(tb[IOPFMAP_A_CTX_IOPT_TYPE])),
		 !!tb[IOPFMAP_A_CTX_SIM], attr_u32(tb[IOPFMAP_A_CTX_NR_RANGES]),
		 attr_u32(tb[IOPFMAP_A_CTX_NR_DEVICES]), !!tb[IOPFMAP_A_CTX_QUEUE],
		 faults);
	return NL_OK;
}

/*
 * The contexts the module has now, on a socket of its own so that the
 * events socket never sees a reply: how many, or a negative libnl error.
 */
static int nl_dump_contexts(int family, unsigned int *count)
{
	struct timeval tv = { .tv_sec = NL_DUMP_TIMEOUT_S };
	struct nl_sock *sk = nl_socket_alloc();
	int ret;

	if (!sk)
		return -NLE_NOMEM;
	ret = genl_connect(sk);
	if (ret)
		goto out;
	/* A module that never answers must not hang the start. */
	setsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_RCVTIMEO, &tv,
		   sizeof(tv));
	ret = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, nl_ctx_line,
				  count);
	if (ret)
		goto out;
	ret = genl_send_simple(sk, family, IOPFMAP_NL_CMD_CTX_GET,
			       IOPFMAP_FAMILY_VERSION, NLM_F_DUMP);
	if (ret >= 0)
		ret = nl_recvmsgs_default(sk);
out:
	nl_socket_free(sk);
	return ret;
}

static void nl_arm(struct iopfd *d)
{
	struct iopfd_nl *nl = d->nl;
	struct io_uring_sqe *sqe;

	if (nl->armed || d->stopping)
		return;
	sqe = iopfd_sqe(d);
	io_uring_prep_poll_add(sqe, nl->fd, POLLIN);
	io_uring_sqe_set_data(sqe, &nl->op);
	nl->armed = true;
}

void nl_start(struct iopfd *d)
{
	unsigned int count = 0;
	struct iopfd_nl *nl;
	int grp, ret;

	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		log_warn("netlink", "msg=\"out of memory: no kernel events\"");
		return;
	}
	nl->sk = nl_socket_alloc();
	if (!nl->sk || genl_connect(nl->sk)) {
		log_warn("netlink", "msg=\"no generic netlink socket: no kernel events\"");
		goto fail;
	}
	nl->family = genl_ctrl_resolve(nl->sk, IOPFMAP_FAMILY_NAME);
	if (nl->family < 0) {
		log_warn("netlink", "family=%s msg=\"the iopfmap module has no netlink family: no contexts listed, no kernel events\"",
			 IOPFMAP_FAMILY_NAME);
		goto fail;
	}
	grp = genl_ctrl_resolve_grp(nl->sk, IOPFMAP_FAMILY_NAME,
				    IOPFMAP_MCGRP_EVENTS);
	/* Events are multicast with sequence number 0. */
	nl_socket_disable_seq_check(nl->sk);
	if (grp < 0 || nl_socket_add_membership(nl->sk, grp)) {
		log_warn("netlink", "family=%s group=%s msg=\"cannot join the events group\"",
			 IOPFMAP_FAMILY_NAME, IOPFMAP_MCGRP_EVENTS);
		goto fail;
	}
	nl_socket_set_buffer_size(nl->sk, NL_RCVBUF, 0);
	nl_socket_set_nonblocking(nl->sk);
	nl->fd = nl_socket_get_fd(nl->sk);
	nl->op.type = OP_NL_POLL;
	d->nl = nl;

	/* Joined first: nothing between the dump and the events is lost. */
	ret = nl_dump_contexts(nl->family, &count);
	if (ret < 0)
		log_warn("netlink", "cmd=ctx-get error=%s", nl_geterror(ret));
	log_info("netlink", "family=%s id=%d group=%s contexts=%u",
		 IOPFMAP_FAMILY_NAME, nl->family, IOPFMAP_MCGRP_EVENTS, count);
	nl_arm(d);
	return;

fail:
	if (nl->sk)
		nl_socket_free(nl->sk);
	free(nl);
}

void nl_stop(struct iopfd *d)
{
	if (!d->nl)
		return;
	nl_socket_free(d->nl->sk);
	free(d->nl);
	d->nl = NULL;
}

/*
 * The kernel detached device @dev of context @ctx, and answered its
 * groups: subscriptions naming it end, with DEVICE_GONE, and the groups
 * their clients still held are answered by policy (the kernel refuses
 * the late answer, which frees the slot).
 */
static void nl_device_gone(struct iopfd *d, uint32_t ctx, uint32_t dev,
			   uint32_t reason)
{
	struct iopfd_msg_device_gone m;
	struct group *g, *gn;
	struct client *c;
	unsigned int n;

	list_for_each_entry(c, &d->clients, node) {
		if (c->closing || !c->subscribed || c->f_ctx != ctx ||
		    c->f_dev != dev)
			continue;
		c->subscribed = false;
		n = 0;
		list_for_each_entry_safe(g, gn, &c->outstanding, cnode) {
			if (g->kq->ctx_id != ctx || g->rec[0].dev_id != dev)
				continue;
			group_answer(g, d->cfg.client_policy, DECIDER_POLICY);
			n++;
		}
		memset(&m, 0, sizeof(m));
		m.hdr.type = IOPFD_MSG_DEVICE_GONE;
		m.hdr.len = sizeof(m);
		m.ctx_id = ctx;
		m.dev_id = dev;
		m.reason = reason;
		d->stats.devices_gone++;
		log_info("device_gone", "client=%u ctx=%u dev=%u reason=%s answered_by_policy=%u",
			 c->id, ctx, dev, reason_name(reason), n);
		/* On failure the client is closed; the list stays valid. */
		client_send(c, &m, sizeof(m));
	}
}

static void nl_event(struct iopfd *d, struct nlmsghdr *nlh)
{
	struct nlattr *tb[IOPFMAP_A_EVENT_MAX + 1];
	struct genlmsghdr *gh = nlmsg_data(nlh);
	uint32_t ctx, dev, reason;
	char qn[48];

	if (genlmsg_parse(nlh, 0, tb, IOPFMAP_A_EVENT_MAX, NULL)) {
		log_warn("nl_event", "msg=\"malformed notification\"");
		return;
	}
	d->stats.nl_events++;
	d->stats.nl_by_cmd[gh->cmd < IOPFD_NL_CMDS ? gh->cmd : 0]++;
	ctx = attr_u32(tb[IOPFMAP_A_EVENT_CTX_ID]);
	switch (gh->cmd) {
	case IOPFMAP_NL_CMD_DEV_ATTACH_NTF:
	case IOPFMAP_NL_CMD_DEV_DETACH_NTF:
		dev = attr_u32(tb[IOPFMAP_A_EVENT_DEV_ID]);
		reason = attr_u32(tb[IOPFMAP_A_EVENT_REASON]);
		log_info("nl_event", "type=%s ctx=%u dev=%u name=%s%s%s",
			 nl_event_name(gh->cmd), ctx, dev,
			 log_quote(qn, sizeof(qn),
				   tb[IOPFMAP_A_EVENT_DEV_NAME] ?
				   nla_get_string(tb[IOPFMAP_A_EVENT_DEV_NAME]) :
				   ""),
			 tb[IOPFMAP_A_EVENT_REASON] ? " reason=" : "",
			 tb[IOPFMAP_A_EVENT_REASON] ? reason_name(reason) : "");
		if (gh->cmd == IOPFMAP_NL_CMD_DEV_DETACH_NTF)
			nl_device_gone(d, ctx, dev, reason);
		break;
	case IOPFMAP_NL_CMD_QUEUE_FULL_NTF:
	case IOPFMAP_NL_CMD_QUEUE_TIMEOUT_NTF:
	case IOPFMAP_NL_CMD_QUEUE_CLOSE_NTF:
		log_info("nl_event", "type=%s ctx=%u count=%u served=%d",
			 nl_event_name(gh->cmd), ctx,
			 attr_u32(tb[IOPFMAP_A_EVENT_COUNT]),
			 kq_find(d, ctx) != NULL);
		break;
	case IOPFMAP_NL_CMD_INVAL_STORM_NTF:
		log_info("nl_event", "type=%s ctx=%u count=%u window_ms=%u",
			 nl_event_name(gh->cmd), ctx,
			 attr_u32(tb[IOPFMAP_A_EVENT_COUNT]),
			 attr_u32(tb[IOPFMAP_A_EVENT_WINDOW_MS]));
		break;
	default:
		/* A later module's event: logged by number. */
		log_info("nl_event", "type=unknown cmd=%u ctx=%u", gh->cmd,
			 ctx);
		break;
	}
}

/* Everything the socket holds, then the poll again. */
void nl_complete(struct iopfd *d, int res)
{
	struct iopfd_nl *nl = d->nl;
	struct nlmsghdr *nlh;
	ssize_t n;
	int len;

	if (!nl)
		return;
	nl->armed = false;
	if (res < 0 && res != -EINTR) {
		/* Not re-armed: a poll that fails would fail again. */
		if (res != -ECANCELED)
			log_warn("netlink", "msg=\"poll failed: no more kernel events\" error=%s",
				 log_strerror(-res));
		return;
	}
	for (;;) {
		n = recv(nl->fd, nl->buf, sizeof(nl->buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* The socket overran: say so, and go on. */
			d->stats.nl_lost++;
			log_warn("netlink", "msg=\"kernel events were lost (receive buffer full)\"");
			continue;
		}
		if (n <= 0)
			break;
		len = n;
		for (nlh = (struct nlmsghdr *)nl->buf; nlmsg_ok(nlh, len);
		     nlh = nlmsg_next(nlh, &len))
			if (nlh->nlmsg_type == nl->family)
				nl_event(d, nlh);
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		log_warn("netlink", "error=%s", log_strerror(errno));
	nl_arm(d);
}
