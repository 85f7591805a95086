/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfd's private header: the objects of the daemon and what each file
 * offers the others.
 *
 *   main.c     options, start-up, signals, the event loop
 *   config.c   the configuration file
 *   kqueue.c   serving one kernel fault queue (uring_cmd slots or
 *              read/write), groups held and their answers
 *   client.c   the socket protocol (iopfd_proto.h)
 *   handler.c  forward, resolve, reject; client timeouts
 *   netlink.c  iopfmap's generic netlink family: contexts at start,
 *              kernel events (logged; a device detach ends the
 *              subscriptions that name it)
 *   log.c      logfmt lines to stderr or syslog
 *   stats.c    counters and the latency histogram
 *
 * Everything runs in one thread around one io_uring ring. Every request
 * on the ring carries a struct op as its user_data; the object that owns
 * the op lives until the request's completion arrived (objects that go
 * away are parked and freed by iopfd_reap() once nothing is in flight).
 */
#ifndef IOPFD_H
#define IOPFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <liburing.h>
#include <linux/iopfmap.h>

#include "iopfd_proto.h"

#ifndef IOPFMAP_VERSION
#define IOPFMAP_VERSION "unknown"
#endif

#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __aligned(x)	__attribute__((aligned(x)))
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define IOPFD_CONFIG_PATH	"/etc/iopfd/iopfd.conf"
#define IOPFD_DEVICE_PATH	"/dev/iopfmap"
#define IOPFD_STATS_PATH	"/run/iopfd/stats.json"

#define IOPFD_PAGE_SIZE		4096ULL
#define IOPFD_CLIENTS_MAX	256	/* connections at once */
#define IOPFD_QUEUES_MAX	1024	/* queues served at once */
#define IOPFD_BAD_MSGS_MAX	8	/* malformed messages before a close */
#define IOPFD_SENDQ_MAX		(1U << 20) /* bytes a client may lag behind */
#define IOPFD_WINDOWS_MAX	1024	/* resolve_map lines */

/* A minimal doubly linked list, after the kernel's. */
struct list_head {
	struct list_head *next, *prev;
};

static inline void INIT_LIST_HEAD(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void list_insert(struct list_head *n, struct list_head *prev,
			       struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}

static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	list_insert(n, h->prev, h);
}

/* Unlinks @n and leaves it pointing at itself, so a second del is safe. */
static inline void list_del_init(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	INIT_LIST_HEAD(n);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)
#define list_for_each_entry(pos, h, member)				\
	for (pos = list_entry((h)->next, typeof(*pos), member);		\
	     &pos->member != (h);					\
	     pos = list_entry(pos->member.next, typeof(*pos), member))
#define list_for_each_entry_safe(pos, n, h, member)			\
	for (pos = list_entry((h)->next, typeof(*pos), member),		\
	     n = list_entry(pos->member.next, typeof(*pos), member);	\
	     &pos->member != (h);					\
	     pos = n, n = list_entry(n->member.next, typeof(*n), member))

/* log.c: one logfmt line per event, filtered by level. */
enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

void log_init(bool use_syslog);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
__printf(3, 4)
void log_event(enum log_level level, const char *event, const char *fmt, ...);
/* @s as a logfmt value: quoted and escaped when it needs to be. */
const char *log_quote(char *buf, size_t len, const char *s);
/* strerror(@err) as a logfmt value; four calls may share one line. */
const char *log_strerror(int err);
int log_level_parse(const char *s, enum log_level *level);
const char *log_level_name(enum log_level level);

#define log_err(ev, ...)	log_event(LOG_LVL_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)	log_event(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)	log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_dbg(ev, ...)						\
	do {								\
		if (log_enabled(LOG_LVL_DEBUG))				\
			log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__);	\
	} while (0)

/* config.c */
enum serve_mode {
	SERVE_AUTO,
	SERVE_URING,
	SERVE_RW,
};

struct resolve_window {
	uint64_t iova;
	uint64_t length;
	uint64_t ipa;
};

struct config {
	char *socket;
	enum iopfd_handler default_handler;	/* never _DEFAULT */
	enum serve_mode serve;
	unsigned int slots;
	unsigned int queue_depth;
	unsigned int client_timeout_ms;		/* 0: clients never time out */
	uint32_t client_policy;			/* IOPFMAP_PAGE_RESP_* */
	bool resolve_offset_on;			/* false: windows only */
	uint64_t resolve_offset;		/* added modulo 2^64 */
	struct resolve_window *windows;
	unsigned int nr_windows;
	enum log_level log_level;
	char *stats_file;			/* NULL: none */
};

/*
 * Reads @path into @cfg over the defaults; a missing file is the defaults
 * unless @must_exist. Returns 0, or -1 after logging what is
 * wrong (file:line); @cfg is then freed.
 */
int config_load(struct config *cfg, const char *path, bool must_exist);
void config_free(struct config *cfg);
void config_print(FILE *f, const struct config *cfg);
/* The stage-1 output address for page @iova; false if no rule covers. */
bool config_resolve(const struct config *cfg, uint64_t iova, uint64_t *ipa);
const char *handler_name(enum iopfd_handler h);
const char *serve_name(enum serve_mode m);
const char *resp_name(uint32_t code);

/* stats.c */
enum decider {
	DECIDER_CLIENT,		/* a client's RESPONSE */
	DECIDER_POLICY,		/* client_policy: no client, timeout, gone */
	DECIDER_RULE,		/* the resolve handler */
	DECIDER_REJECT,		/* the reject handler */
	DECIDER_SHUTDOWN,	/* iopfd is exiting */
	DECIDER_RELEASE,	/* RELEASE, or the queue's owner went */
	DECIDER_NR,
};

#define LAT_BUCKETS	32
#define IOPFD_NL_CMDS	16	/* above IOPFMAP_NL_CMD_MAX */

struct stats {
	uint64_t start_ns;
	uint64_t groups;
	uint64_t records;
	uint64_t resp_success;
	uint64_t resp_invalid;
	uint64_t resp_failure;
	uint64_t by_handler[IOPFD_HANDLER_REJECT + 1];
	uint64_t by_decider[DECIDER_NR];
	uint64_t client_timeouts;
	uint64_t refused;
	uint64_t s1_maps;
	uint64_t s1_errors;
	uint64_t queues_handed;
	uint64_t queues_dropped;
	uint64_t clients_accepted;
	uint64_t bad_msgs;
	/* netlink: events by command (IOPFMAP_NL_CMD_*), lost, DEVICE_GONE */
	uint64_t nl_events;
	uint64_t nl_by_cmd[IOPFD_NL_CMDS];
	uint64_t nl_lost;
	uint64_t devices_gone;
	/* bucket 0: < 1 us; bucket i: [2^(i-1), 2^i) us; the last: above */
	uint64_t lat[LAT_BUCKETS];
	uint64_t lat_count;
};

uint64_t now_ns(void);
void stats_init(struct stats *st);
void stats_answer(struct stats *st, enum iopfd_handler h, enum decider who,
		  uint32_t code, uint64_t t0_ns, uint64_t t1_ns);
/* Estimate of the @pct percentile of the latency, in microseconds. */
uint64_t stats_percentile(const struct stats *st, unsigned int pct);
void stats_log(const struct stats *st, unsigned int queues,
	       unsigned int clients);
int stats_write(const struct stats *st, const char *path,
		unsigned int queues, unsigned int clients);
const char *decider_name(enum decider who);

/* What a completion belongs to: the user_data of every request. */
enum op_type {
	OP_ACCEPT = 1,
	OP_SIGNAL,
	OP_CLIENT_RECV,
	OP_CLIENT_POLLOUT,
	OP_KQ_CMD,
	OP_KQ_POLL,
	OP_NL_POLL,
};

struct op {
	enum op_type type;
	unsigned int slot;	/* OP_KQ_CMD: the slot */
	void *owner;
};

struct client;
struct kqueue;

/*
 * A page request group that iopfd holds: delivered by the kernel, not
 * answered yet. It sits on its queue's list, and while a client has it,
 * on that client's list and the timeout list.
 */
struct group {
	struct list_head qnode;		/* kq->held */
	struct list_head cnode;		/* client->outstanding */
	struct list_head tnode;		/* iopfd->timeouts, by deadline */
	struct kqueue *kq;
	struct client *client;		/* forwarded to; NULL otherwise */
	uint64_t cookie;
	uint64_t t0_ns;			/* the earliest record's time_ns */
	uint64_t deadline_ns;
	int slot;			/* records in this uring slot, or -1 */
	unsigned int nr;
	struct iopfmap_fault_record *rec;	/* slot buffer or own copy */
};

/* kqueue.c */
enum kq_mode {
	KQ_URING,
	KQ_RW,
};

enum slot_state {
	SLOT_IDLE,	/* no command; the buffer is ours */
	SLOT_ARMED,	/* FETCH or COMMIT_AND_FETCH in flight */
	SLOT_HELD,	/* its buffer holds a group not answered yet */
};

struct kslot {
	struct op op;
	enum slot_state state;
	unsigned int retries;	/* consecutive failed re-arms */
	struct iopfmap_fault_record *buf;
};

struct kqueue {
	struct list_head node;		/* iopfd->queues */
	struct iopfd *d;
	uint32_t id;			/* iopfd's own number, for logs */
	uint32_t ctx_id;
	uint32_t owner;			/* client id; 0 once it left */
	int fd;				/* the queue; -1 once closed */
	int ctx_fd;			/* the context (resolve only) or -1 */
	enum iopfd_handler handler;
	enum kq_mode mode;
	bool may_fall_back;		/* serve = auto */
	bool uring_ok;			/* a uring command has worked */
	bool draining;			/* dropped; waits for its commands */
	uint32_t features;		/* IOPFMAP_QUEUE_FEAT_* */
	uint32_t depth;
	unsigned int nslots;
	unsigned int armed;		/* slots with a command in flight */
	struct kslot *slots;
	struct list_head held;		/* struct group */
	unsigned int nheld;
	struct op poll_op;
	bool poll_armed;
	struct iopfmap_fault_record *rbuf;	/* read() buffer */
	unsigned int rbuf_nr;
};

/*
 * Takes over @qfd and @cfd (-1: none) handed over by @owner. Returns 0
 * with the context id in *@ctx_id, or a negative errno and a reason in
 * @why; the fds are closed either way unless kept.
 */
int kq_create(struct iopfd *d, struct client *owner, int qfd, int cfd,
	      uint32_t handler, uint32_t *ctx_id, char *why, size_t whylen);
void kq_complete(struct kqueue *kq, struct op *op, int res);
/*
 * Stops serving @kq: the groups it holds are answered INVALID (@who),
 * unless @ctx_gone (the kernel answered them), and it is freed by
 * iopfd_reap() once no command is in flight.
 */
void kq_drop(struct kqueue *kq, enum decider who, bool ctx_gone,
	     const char *why);
/* Answers @g with @code and frees it; re-arms its slot when serving. */
void group_answer(struct group *g, uint32_t code, enum decider who);
struct kqueue *kq_find(struct iopfd *d, uint32_t ctx_id);
void kq_free(struct kqueue *kq);
/* At exit: close every queue fd, so 6.1 cancels the armed commands. */
void kq_close_all(struct iopfd *d);
bool kq_busy(const struct kqueue *kq);

/* client.c */
struct outmsg {
	struct list_head node;
	size_t len;
	unsigned char data[];
};

struct client {
	struct list_head node;		/* iopfd->clients */
	struct iopfd *d;
	uint32_t id;
	int fd;
	char name[32];			/* from HELLO, printable */
	bool hello;
	bool subscribed;
	bool closing;
	bool pollout_armed;
	uint32_t f_ctx, f_dev, f_pasid;	/* the subscription's filter */
	unsigned int bad_msgs;
	struct list_head outstanding;	/* groups forwarded to it */
	struct list_head sendq;		/* struct outmsg not sent yet */
	size_t sendq_bytes;
	unsigned int pending;		/* requests in flight */
	struct op recv_op;
	struct op pollout_op;
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cmsg;
	/* One byte more than the largest message, to see oversized ones. */
	unsigned char rbuf[IOPFD_MSG_MAX + 1] __aligned(8);
};

void client_accept(struct iopfd *d, int fd);
void client_complete(struct client *c, struct op *op, int res);
/* Sends one message; on failure the client is closed. */
int client_send(struct client *c, const void *buf, size_t len);
void client_close(struct client *c, const char *why);
void client_free(struct client *c);
/* Does @c's subscription take a group of @kq starting with @rec? */
bool client_matches(const struct client *c, const struct kqueue *kq,
		    const struct iopfmap_fault_record *rec);

/* netlink.c */
struct iopfd_nl;

/*
 * Resolves the family, logs the contexts, joins "events" and arms a poll
 * of its socket on the ring. A module without the family is a warning:
 * iopfd serves queues without it.
 */
void nl_start(struct iopfd *d);
void nl_complete(struct iopfd *d, int res);
/* After the ring is gone: the poll's op may be freed. */
void nl_stop(struct iopfd *d);
/* The name of event @cmd, as the spec has it. */
const char *nl_event_name(unsigned int cmd);

/* handler.c */
void handle_group(struct kqueue *kq, struct group *g);
/* Answers by client_policy every forwarded group past its deadline. */
void handle_timeouts(struct iopfd *d, uint64_t now);
/* Nanoseconds until the next deadline, or -1 for none. */
int64_t handle_next_deadline(struct iopfd *d, uint64_t now);
/* A client holding @g left or failed: answer by policy. */
void handle_client_lost(struct group *g, const char *why);

/* The daemon. */
struct iopfd {
	struct io_uring ring;
	bool ring_ok;
	struct config cfg;
	const char *config_path;
	bool config_explicit;
	const char *socket_opt;		/* -s: overrides the config */
	const char *device;
	dev_t dev_rdev;			/* the iopfmap char device */
	char *socket_path;		/* bound; kept across reloads */
	ino_t socket_ino;
	int listen_fd;
	int sig_fd;
	struct op accept_op;
	struct op sig_op;
	struct signalfd_siginfo siginfo;
	bool accept_armed;
	uint64_t accept_retry_ns;	/* re-arm accept then; 0: armed */
	bool sig_armed;
	struct list_head clients;
	struct list_head queues;
	struct list_head timeouts;
	unsigned int nr_clients;
	unsigned int nr_queues;
	uint32_t next_client_id;
	uint32_t next_queue_id;
	struct stats stats;
	struct iopfd_nl *nl;		/* NULL: no netlink family */
	bool stopping;
};

/* main.c: a free SQE, submitting what is queued if the ring is full. */
struct io_uring_sqe *iopfd_sqe(struct iopfd *d);

#endif /* IOPFD_H */
