// SPDX-License-Identifier: GPL-2.0
/*
 * The client protocol, iopfd_proto.h (docs/iopfd-protocol.md): one
 * SOCK_SEQPACKET connection per client, one recvmsg always in flight on
 * the ring. Replies are sent at once with MSG_DONTWAIT; what the socket
 * cannot take waits in a per-client queue flushed on POLLOUT, and a
 * client that lags more than IOPFD_SENDQ_MAX bytes behind is dropped
 * rather than let it stall the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iopfd.h"

static void client_recv_arm(struct client *c)
{
	struct io_uring_sqe *sqe = iopfd_sqe(c->d);

	c->iov.iov_base = c->rbuf;
	c->iov.iov_len = sizeof(c->rbuf);
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = &c->iov;
	c->msg.msg_iovlen = 1;
	c->msg.msg_control = c->cmsg.buf;
	c->msg.msg_controllen = sizeof(c->cmsg.buf);
	io_uring_prep_recvmsg(sqe, c->fd, &c->msg, MSG_CMSG_CLOEXEC);
	io_uring_sqe_set_data(sqe, &c->recv_op);
	c->pending++;
}

static void client_pollout_arm(struct client *c)
{
	struct io_uring_sqe *sqe;

	if (c->pollout_armed)
		return;
	sqe = iopfd_sqe(c->d);
	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data(sqe, &c->pollout_op);
	c->pollout_armed = true;
	c->pending++;
}

void client_accept(struct iopfd *d, int fd)
{
	struct ucred cred = { .pid = 0 };
	socklen_t clen = sizeof(cred);
	struct client *c;

	if (d->nr_clients >= IOPFD_CLIENTS_MAX) {
		log_warn("connect", "msg=\"too many clients\" max=%u",
			 IOPFD_CLIENTS_MAX);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("connect", "msg=\"out of memory\"");
		close(fd);
		return;
	}
	c->d = d;
	c->fd = fd;
	c->id = ++d->next_client_id;
	if (!c->id)
		c->id = ++d->next_client_id;
	INIT_LIST_HEAD(&c->outstanding);
	INIT_LIST_HEAD(&c->sendq);
	c->recv_op.type = OP_CLIENT_RECV;
	c->recv_op.owner = c;
	c->pollout_op.type = OP_CLIENT_POLLOUT;
	c->pollout_op.owner = c;
	list_add_tail(&c->node, &d->clients);
	d->nr_clients++;
	d->stats.clients_accepted++;
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
	log_info("connect", "client=%u pid=%d uid=%u", c->id, cred.pid,
		 cred.uid);
	client_recv_arm(c);
}

void client_close(struct client *c, const char *why)
{
	struct iopfd *d = c->d;
	struct kqueue *kq, *kn;
	struct outmsg *m, *mn;
	unsigned int n = 0;
	char qw[64], qn[48];
	struct group *g;

	if (c->closing)
		return;
	c->closing = true;
	d->nr_clients--;
	while (!list_empty(&c->outstanding)) {
		g = list_first_entry(&c->outstanding, struct group, cnode);
		handle_client_lost(g, why);
		n++;
	}
	/*
	 * A queue whose context iopfd holds would keep the context alive
	 * after its owner is gone: let both go with the connection.
	 */
	list_for_each_entry_safe(kq, kn, &d->queues, node) {
		if (kq->owner != c->id || kq->draining)
			continue;
		if (kq->ctx_fd >= 0)
			kq_drop(kq, DECIDER_RELEASE, false,
				"owner gone, context fd held");
		else
			kq->owner = 0;
	}
	list_for_each_entry_safe(m, mn, &c->sendq, node) {
		list_del_init(&m->node);
		free(m);
	}
	c->sendq_bytes = 0;
	log_info("disconnect", "client=%u name=%s reason=%s answered_by_policy=%u",
		 c->id, log_quote(qn, sizeof(qn), c->name),
		 log_quote(qw, sizeof(qw), why), n);
	/* Completes the recvmsg and the POLLOUT poll; reap frees @c. */
	shutdown(c->fd, SHUT_RDWR);
}

void client_free(struct client *c)
{
	struct outmsg *m, *mn;

	list_for_each_entry_safe(m, mn, &c->sendq, node)
		free(m);
	close(c->fd);
	free(c);
}

static int client_queue(struct client *c, const void *buf, size_t len)
{
	struct outmsg *m;

	if (c->sendq_bytes + len > IOPFD_SENDQ_MAX) {
		client_close(c, "client does not read its socket");
		return -1;
	}
	m = malloc(sizeof(*m) + len);
	if (!m) {
		client_close(c, "out of memory");
		return -1;
	}
	m->len = len;
	memcpy(m->data, buf, len);
	list_add_tail(&m->node, &c->sendq);
	c->sendq_bytes += len;
	client_pollout_arm(c);
	return 0;
}

/* 0: sent, 1: the socket is full, -1: the client was closed. */
static int client_send_now(struct client *c, const void *buf, size_t len)
{
	ssize_t n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	client_close(c, n < 0 ? strerror(errno) : "short send");
	return -1;
}

int client_send(struct client *c, const void *buf, size_t len)
{
	int ret;

	if (c->closing)
		return -1;
	if (list_empty(&c->sendq)) {
		ret = client_send_now(c, buf, len);
		if (ret <= 0)
			return ret;
	}
	return client_queue(c, buf, len);
}

static void client_flush(struct client *c)
{
	struct outmsg *m;
	int ret;

	while (!list_empty(&c->sendq)) {
		m = list_first_entry(&c->sendq, struct outmsg, node);
		ret = client_send_now(c, m->data, m->len);
		if (ret < 0)
			return;
		if (ret > 0) {
			client_pollout_arm(c);
			return;
		}
		c->sendq_bytes -= m->len;
		list_del_init(&m->node);
		free(m);
	}
}

static void send_status(struct client *c, uint16_t type, uint32_t seq,
			int error, uint32_t value, const char *text)
{
	struct iopfd_msg_status s;

	memset(&s, 0, sizeof(s));
	s.hdr.type = type;
	s.hdr.len = sizeof(s);
	s.hdr.seq = seq;
	s.error = error;
	s.value = value;
	if (text)
		snprintf(s.text, sizeof(s.text), "%s", text);
	client_send(c, &s, sizeof(s));
}

static void send_ack(struct client *c, uint32_t seq, uint32_t value)
{
	send_status(c, IOPFD_MSG_ACK, seq, 0, value, NULL);
}

static void send_error(struct client *c, uint32_t seq, int error,
		       const char *text)
{
	send_status(c, IOPFD_MSG_ERROR, seq, error, 0, text);
}

/* A message the protocol refuses: ERROR, and too many of them close. */
static void bad_msg(struct client *c, uint32_t seq, int error,
		    const char *text)
{
	char qt[96];

	c->bad_msgs++;
	c->d->stats.bad_msgs++;
	log_warn("bad_message", "client=%u seq=%u error=%d msg=%s", c->id,
		 seq, error, log_quote(qt, sizeof(qt), text));
	send_error(c, seq, error, text);
	if (c->bad_msgs >= IOPFD_BAD_MSGS_MAX && !c->closing)
		client_close(c, "too many malformed messages");
}

/* Client names go to logs: keep the printable part. */
static void set_name(struct client *c, const char *name)
{
	size_t i, o = 0;

	for (i = 0; name[i] && o < sizeof(c->name) - 1; i++)
		if (name[i] > ' ' && name[i] < 0x7f)
			c->name[o++] = name[i];
	c->name[o] = '\0';
}

static void on_hello(struct client *c, const struct iopfd_msg_hello *m,
		     size_t len)
{
	struct iopfd_msg_hello r;
	char qn[48];

	/* A later version may grow HELLO: its version field says so. */
	if (len >= offsetof(struct iopfd_msg_hello, features) &&
	    m->version != IOPFD_PROTO_VERSION) {
		log_warn("hello", "client=%u version=%u msg=\"unsupported protocol version\"",
			 c->id, m->version);
		send_error(c, m->hdr.seq, EPROTONOSUPPORT,
			   "protocol version not supported");
		client_close(c, "protocol version");
		return;
	}
	if (len != sizeof(*m))
		return bad_msg(c, m->hdr.seq, EBADMSG, "HELLO has a wrong size");
	if (c->hello)
		return bad_msg(c, m->hdr.seq, EINVAL, "HELLO twice");
	if (m->features)
		return bad_msg(c, m->hdr.seq, EINVAL, "features must be 0");
	if (!memchr(m->name, '\0', sizeof(m->name)))
		return bad_msg(c, m->hdr.seq, EINVAL,
			       "name is not NUL-terminated");
	set_name(c, m->name);
	c->hello = true;
	memset(&r, 0, sizeof(r));
	r.hdr.type = IOPFD_MSG_HELLO;
	r.hdr.len = sizeof(r);
	r.hdr.seq = m->hdr.seq;
	r.version = IOPFD_PROTO_VERSION;
	r.features = IOPFD_FEAT_FORWARD | IOPFD_FEAT_RESOLVE |
		     IOPFD_FEAT_REJECT | IOPFD_FEAT_DEVICE_GONE;
	snprintf(r.name, sizeof(r.name), "iopfd %s", IOPFMAP_VERSION);
	log_info("hello", "client=%u name=%s version=%u", c->id,
		 log_quote(qn, sizeof(qn), c->name), m->version);
	client_send(c, &r, sizeof(r));
}

static void on_handover(struct client *c, const struct iopfd_msg_handover *m,
			int *fds, int nfds)
{
	uint32_t ctx_id = 0;
	char why[80], qw[96];
	int err;

	if (m->flags || nfds < 1 || nfds > 2 ||
	    m->handler > IOPFD_HANDLER_REJECT) {
		while (nfds > 0)
			close(fds[--nfds]);
		return bad_msg(c, m->hdr.seq, EINVAL, m->flags ?
			       "flags must be 0" : m->handler >
			       IOPFD_HANDLER_REJECT ? "unknown handler" :
			       "expected the queue fd and optionally the context fd");
	}
	err = kq_create(c->d, c, fds[0], nfds > 1 ? fds[1] : -1, m->handler,
			&ctx_id, why, sizeof(why));
	if (err) {
		log_warn("handover", "client=%u error=%d msg=%s", c->id, -err,
			 log_quote(qw, sizeof(qw), why));
		return send_error(c, m->hdr.seq, -err, why);
	}
	send_ack(c, m->hdr.seq, ctx_id);
}

static void filter_str(char *buf, size_t len, uint32_t v)
{
	if (v == IOPFD_ANY)
		snprintf(buf, len, "any");
	else
		snprintf(buf, len, "%u", v);
}

static void on_subscribe(struct client *c,
			 const struct iopfd_msg_subscribe *m)
{
	char fc[12], fd[12], fp[12];

	if (m->flags)
		return bad_msg(c, m->hdr.seq, EINVAL, "flags must be 0");
	c->f_ctx = m->ctx_id;
	c->f_dev = m->dev_id;
	c->f_pasid = m->pasid;
	c->subscribed = true;
	filter_str(fc, sizeof(fc), m->ctx_id);
	filter_str(fd, sizeof(fd), m->dev_id);
	filter_str(fp, sizeof(fp), m->pasid);
	log_info("subscribe", "client=%u ctx=%s dev=%s pasid=%s", c->id, fc,
		 fd, fp);
	send_ack(c, m->hdr.seq, 0);
}

static void on_response(struct client *c, const struct iopfd_msg_response *m)
{
	struct group *g;

	/* The kernel takes no FAILURE from userspace: it turns PRI off. */
	if (m->code != IOPFMAP_PAGE_RESP_SUCCESS &&
	    m->code != IOPFMAP_PAGE_RESP_INVALID)
		return bad_msg(c, m->hdr.seq, EINVAL,
			       "response code must be SUCCESS or INVALID");
	list_for_each_entry(g, &c->outstanding, cnode) {
		if (g->cookie == m->cookie && g->kq->ctx_id == m->ctx_id) {
			group_answer(g, m->code, DECIDER_CLIENT);
			return;
		}
	}
	log_warn("response", "client=%u ctx=%u cookie=%#llx msg=\"unknown or answered cookie\"",
		 c->id, m->ctx_id, (unsigned long long)m->cookie);
	send_error(c, m->hdr.seq, ENOENT, "unknown or answered cookie");
}

static void on_release(struct client *c, const struct iopfd_msg_release *m)
{
	struct kqueue *kq;

	if (m->__reserved)
		return bad_msg(c, m->hdr.seq, EINVAL,
			       "reserved fields must be 0");
	kq = kq_find(c->d, m->ctx_id);
	if (!kq || kq->owner != c->id)
		return send_error(c, m->hdr.seq, ENOENT,
				  "no queue of this context from this client");
	kq_drop(kq, DECIDER_RELEASE, false, "RELEASE");
	send_ack(c, m->hdr.seq, 0);
}

/* The exact size of each request; HELLO is checked by on_hello(). */
static size_t request_size(uint16_t type)
{
	switch (type) {
	case IOPFD_MSG_HELLO:
		return sizeof(struct iopfd_msg_hello);
	case IOPFD_MSG_HANDOVER:
		return sizeof(struct iopfd_msg_handover);
	case IOPFD_MSG_SUBSCRIBE:
		return sizeof(struct iopfd_msg_subscribe);
	case IOPFD_MSG_RESPONSE:
		return sizeof(struct iopfd_msg_response);
	case IOPFD_MSG_RELEASE:
		return sizeof(struct iopfd_msg_release);
	}
	return 0;
}

static void client_msg(struct client *c, size_t len, int flags, int *fds,
		       int nfds)
{
	const struct iopfd_msg_hdr *h = (const void *)c->rbuf;
	const char *why;
	uint32_t seq = 0;
	int err;

	if ((flags & MSG_TRUNC) || len > IOPFD_MSG_MAX) {
		err = EBADMSG;
		why = "message too long";
		goto bad;
	}
	if (flags & MSG_CTRUNC) {
		err = EINVAL;
		why = "too many fds";
		goto bad;
	}
	if (len < sizeof(*h)) {
		err = EBADMSG;
		why = "short message";
		goto bad;
	}
	seq = h->seq;
	if (h->len != len) {
		err = EBADMSG;
		why = "len does not match the packet";
		goto bad;
	}
	if (!request_size(h->type)) {
		err = EBADMSG;
		why = "not a request type";
		goto bad;
	}
	if (h->__reserved || h->__reserved2) {
		err = EINVAL;
		why = "reserved fields must be 0";
		goto bad;
	}
	if (nfds && h->type != IOPFD_MSG_HANDOVER) {
		err = EINVAL;
		why = "fds where none belong";
		goto bad;
	}
	if (!c->hello && h->type != IOPFD_MSG_HELLO) {
		err = EPROTO;
		why = "HELLO first";
		goto bad;
	}
	if (h->type == IOPFD_MSG_HELLO)
		return on_hello(c, (const void *)h, len);
	if (len != request_size(h->type)) {
		err = EBADMSG;
		why = "wrong size for the type";
		goto bad;
	}
	switch (h->type) {
	case IOPFD_MSG_HANDOVER:
		return on_handover(c, (const void *)h, fds, nfds);
	case IOPFD_MSG_SUBSCRIBE:
		return on_subscribe(c, (const void *)h);
	case IOPFD_MSG_RESPONSE:
		return on_response(c, (const void *)h);
	case IOPFD_MSG_RELEASE:
		return on_release(c, (const void *)h);
	}
	err = EBADMSG;
	why = "not a request type";
bad:
	while (nfds > 0)
		close(fds[--nfds]);
	bad_msg(c, seq, err, why);
}

/* The fds that came with the message, installed close-on-exec. */
static int take_fds(struct client *c, int *fds, int max, bool *extra)
{
	struct cmsghdr *cm;
	int n = 0;

	*extra = false;
	if (c->msg.msg_controllen < sizeof(struct cmsghdr))
		return 0;
	for (cm = CMSG_FIRSTHDR(&c->msg); cm; cm = CMSG_NXTHDR(&c->msg, cm)) {
		size_t i, k;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (n < max) {
				fds[n++] = fd;
			} else {
				close(fd);
				*extra = true;
			}
		}
	}
	return n;
}

void client_complete(struct client *c, struct op *op, int res)
{
	int fds[4], nfds;
	bool extra;

	c->pending--;
	if (op == &c->pollout_op) {
		c->pollout_armed = false;
		if (!c->closing)
			client_flush(c);
		return;
	}
	nfds = res > 0 ? take_fds(c, fds, ARRAY_SIZE(fds), &extra) : 0;
	if (c->closing || res <= 0) {
		while (nfds > 0)
			close(fds[--nfds]);
		if (res < 0 && !c->closing)
			client_close(c, strerror(-res));
		else if (!c->closing)
			client_close(c, "disconnected");
		return;
	}
	client_msg(c, res, c->msg.msg_flags | (extra ? MSG_CTRUNC : 0), fds,
		   nfds);
	if (!c->closing)
		client_recv_arm(c);
}
