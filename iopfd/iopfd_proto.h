/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The iopfd client protocol: what a VMM (or any client) and iopfd say to
 * each other over iopfd's UNIX socket. docs/iopfd-protocol.md tells the
 * same with a sequence diagram; iopfd.8 says how to run the daemon.
 *
 * Transport: an AF_UNIX SOCK_SEQPACKET socket (default
 * /run/iopfd/iopfd.sock). One message per packet, at most
 * IOPFD_MSG_MAX bytes, in the host's byte order (both ends run on the
 * same host). Every message starts with struct iopfd_msg_hdr.
 *
 * A conversation:
 *
 *   1. The client sends HELLO with the protocol version it speaks. iopfd
 *      answers HELLO (echoing @seq) with its own version and features,
 *      or ERROR (EPROTONOSUPPORT) and closes the connection. Anything
 *      else before HELLO gets ERROR (EPROTO).
 *   2. The owner of a context hands a queue of it over: HANDOVER, with
 *      the queue fd (IOPFMAP_QUEUE_ALLOC) and optionally the context fd
 *      attached as SCM_RIGHTS, and the handler iopfd shall apply to its
 *      faults. iopfd answers ACK (carrying the context id) or ERROR
 *      (EEXIST: it serves that context's queue already; EBUSY: its
 *      previous queue is still going away; EINVAL: no queue fd). The
 *      client may close its copies of the fds afterwards: iopfd keeps the
 *      queue served until the context is closed, the client says
 *      RELEASE, or iopfd exits (which answers every fault held INVALID).
 *      A context fd keeps the context alive, so iopfd keeps one only for
 *      the resolve handler, and only while the connection that handed it
 *      over stays open.
 *   3. A client that wants forwarded faults sends SUBSCRIBE with a filter
 *      (context, device, PASID). iopfd sends it FAULT messages for groups
 *      of queues with the FORWARD handler that match, and the client
 *      answers each with RESPONSE. iopfd answers the kernel when the
 *      client answers; a client that does not answer within iopfd's
 *      client timeout, or disconnects, has its faults answered by iopfd's
 *      policy (configurable, INVALID by default).
 *
 *   4. When the kernel detaches a device (iopfmap's netlink event
 *      dev-detach-ntf), iopfd ends every subscription that names that
 *      device (its context id and device id, not IOPFD_ANY) and tells
 *      the client with DEVICE_GONE. Forwarded groups of that device the
 *      client still held are answered by iopfd's policy: the kernel
 *      answered them when it detached the device. The connection stays;
 *      a new SUBSCRIBE starts a new subscription.
 *
 * Versions: IOPFD_PROTO_VERSION changes only when a message changes
 * meaning or layout. A message iopfd adds for clients (DEVICE_GONE) keeps
 * the version and is announced by a feature bit in iopfd's HELLO; a
 * client ignores message types it does not know.
 *
 * Requests (HELLO, HANDOVER, SUBSCRIBE, RELEASE) carry a client-chosen
 * @seq that the ACK or ERROR answering them echoes. A malformed message
 * (short, wrong @len, unknown type, non-zero reserved fields, fds where
 * none belong) gets ERROR (EBADMSG or EINVAL) and is otherwise ignored;
 * iopfd closes connections that keep sending them.
 */
#ifndef IOPFD_PROTO_H
#define IOPFD_PROTO_H

#include <linux/iopfmap.h>
#include <linux/types.h>

#define IOPFD_PROTO_VERSION	1
#define IOPFD_SOCKET_PATH	"/run/iopfd/iopfd.sock"

/* The largest message: a FAULT with a whole group. */
#define IOPFD_MSG_MAX	(sizeof(struct iopfd_msg_fault) + \
			 IOPFMAP_FAULT_GROUP_MAX * \
			 sizeof(struct iopfmap_fault_record))

enum iopfd_msg_type {
	IOPFD_MSG_HELLO = 1,		/* both ways */
	IOPFD_MSG_ACK,			/* iopfd -> client */
	IOPFD_MSG_ERROR,		/* iopfd -> client */
	IOPFD_MSG_HANDOVER,		/* client -> iopfd, with fds */
	IOPFD_MSG_SUBSCRIBE,		/* client -> iopfd */
	IOPFD_MSG_FAULT,		/* iopfd -> client */
	IOPFD_MSG_RESPONSE,		/* client -> iopfd */
	IOPFD_MSG_RELEASE,		/* client -> iopfd */
	IOPFD_MSG_DEVICE_GONE,		/* iopfd -> client: IOPFD_FEAT_DEVICE_GONE */
};

/**
 * struct iopfd_msg_hdr - starts every message
 * @type: enum iopfd_msg_type
 * @__reserved: must be 0
 * @len: bytes of the whole message, header included
 * @seq: requests: chosen by the client; ACK/ERROR: the request's @seq;
 *       FAULT: 0
 */
struct iopfd_msg_hdr {
	__u16 type;
	__u16 __reserved;
	__u32 len;
	__u32 seq;
	__u32 __reserved2;
};

/* iopfd_msg_hello.features (iopfd's answer) */
#define IOPFD_FEAT_FORWARD	(1U << 0)
#define IOPFD_FEAT_RESOLVE	(1U << 1)
#define IOPFD_FEAT_REJECT	(1U << 2)
#define IOPFD_FEAT_DEVICE_GONE	(1U << 3)	/* sends DEVICE_GONE */

/**
 * struct iopfd_msg_hello - HELLO
 * @hdr: the header
 * @version: IOPFD_PROTO_VERSION the sender speaks
 * @features: iopfd's answer: IOPFD_FEAT_*; the client sends 0
 * @name: the sender's name for logs, NUL-terminated
 */
struct iopfd_msg_hello {
	struct iopfd_msg_hdr hdr;
	__u32 version;
	__u32 features;
	char name[32];
};

/* How iopfd treats the faults of a queue handed over. */
enum iopfd_handler {
	IOPFD_HANDLER_DEFAULT = 0,	/* the config file's default_handler */
	IOPFD_HANDLER_FORWARD,		/* to subscribed clients */
	IOPFD_HANDLER_RESOLVE,		/* fill stage 1 by the configured rule */
	IOPFD_HANDLER_REJECT,		/* log and answer INVALID */
};

/**
 * struct iopfd_msg_handover - HANDOVER
 * @hdr: the header
 * @handler: enum iopfd_handler
 * @flags: must be 0
 *
 * SCM_RIGHTS carries the queue fd first and, optionally, the context fd:
 * the RESOLVE handler needs it (it fills stage-1 entries with
 * IOPFMAP_SIM_S1_MAP). ACK's @value is the context id.
 */
struct iopfd_msg_handover {
	struct iopfd_msg_hdr hdr;
	__u32 handler;
	__u32 flags;
};

#define IOPFD_ANY	0xffffffffU

/**
 * struct iopfd_msg_subscribe - SUBSCRIBE
 * @hdr: the header
 * @ctx_id: a context id, or IOPFD_ANY
 * @dev_id: a device id of that context (0: the simulated device), or
 *          IOPFD_ANY
 * @pasid: a PASID, or IOPFD_ANY (then requests without a PASID match too)
 * @flags: must be 0
 *
 * A connection holds one subscription; a new SUBSCRIBE replaces it. A
 * group goes to the first subscribed connection whose filter matches.
 */
struct iopfd_msg_subscribe {
	struct iopfd_msg_hdr hdr;
	__u32 ctx_id;
	__u32 dev_id;
	__u32 pasid;
	__u32 flags;
};

/**
 * struct iopfd_msg_fault - FAULT: one page request group
 * @hdr: the header
 * @nr: records that follow
 * @__reserved: 0
 * @records: the group's records, as the kernel gave them
 */
struct iopfd_msg_fault {
	struct iopfd_msg_hdr hdr;
	__u32 nr;
	__u32 __reserved;
	struct iopfmap_fault_record records[];
};

/**
 * struct iopfd_msg_response - RESPONSE
 * @hdr: the header
 * @ctx_id: the records' ctx_id
 * @code: IOPFMAP_PAGE_RESP_SUCCESS or IOPFMAP_PAGE_RESP_INVALID
 * @cookie: the records' cookie
 *
 * No ACK follows; an unknown or answered cookie gets ERROR (ENOENT).
 */
struct iopfd_msg_response {
	struct iopfd_msg_hdr hdr;
	__u32 ctx_id;
	__u32 code;
	__aligned_u64 cookie;
};

/**
 * struct iopfd_msg_release - RELEASE: stop serving a context's queue
 * @hdr: the header
 * @ctx_id: a context this connection handed over
 * @__reserved: must be 0
 *
 * iopfd answers the faults it holds for it INVALID and closes the queue.
 */
struct iopfd_msg_release {
	struct iopfd_msg_hdr hdr;
	__u32 ctx_id;
	__u32 __reserved;
};

/**
 * struct iopfd_msg_status - ACK and ERROR
 * @hdr: the header; @seq is the request's
 * @error: 0 (ACK) or a positive errno (ERROR)
 * @value: ACK of HANDOVER: the context id; else 0
 * @text: ERROR: what was wrong, NUL-terminated
 */
struct iopfd_msg_status {
	struct iopfd_msg_hdr hdr;
	__s32 error;
	__u32 value;
	char text[64];
};

/* iopfd_msg_device_gone.reason: iopfmap's detach-reason */
#define IOPFD_GONE_DETACHED	0	/* IOPFMAP_DEVICE_DETACH */
#define IOPFD_GONE_CTX_CLOSED	1	/* the context was closed */

/**
 * struct iopfd_msg_device_gone - DEVICE_GONE: a subscription ended
 * @hdr: the header; @seq is 0
 * @ctx_id: the subscription's context
 * @dev_id: the subscription's device, which the kernel detached
 * @reason: IOPFD_GONE_*, as the kernel gave it
 * @__reserved: 0
 *
 * Sent to a client whose subscription named this very device; the
 * subscription is gone, no FAULT of it follows, and nothing answers this
 * message. Only with IOPFD_FEAT_DEVICE_GONE.
 */
struct iopfd_msg_device_gone {
	struct iopfd_msg_hdr hdr;
	__u32 ctx_id;
	__u32 dev_id;
	__u32 reason;
	__u32 __reserved;
};

#endif /* IOPFD_PROTO_H */
