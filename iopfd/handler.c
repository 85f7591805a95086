// SPDX-License-Identifier: GPL-2.0
/*
 * What iopfd does with a group, by the handler its queue was handed over
 * with:
 *
 *  - forward: to the first subscribed client whose filter matches, which
 *    answers with RESPONSE. No such client, no answer within
 *    client_timeout_ms, or the client leaves: client_policy answers.
 *  - resolve: stage-1 records (the nested simulated device) get a
 *    stage-1 entry by the configured rule, IOPFMAP_SIM_S1_MAP on the
 *    context fd, then SUCCESS: the device translates again. Records on
 *    FORWARD ranges get SUCCESS: the kernel maps the pages itself.
 *  - reject: logged and answered INVALID.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "iopfd.h"

bool client_matches(const struct client *c, const struct kqueue *kq,
		    const struct iopfmap_fault_record *rec)
{
	if (!c->hello || !c->subscribed || c->closing)
		return false;
	if (c->f_ctx != IOPFD_ANY && c->f_ctx != kq->ctx_id)
		return false;
	if (c->f_dev != IOPFD_ANY && c->f_dev != rec->dev_id)
		return false;
	if (c->f_pasid == IOPFD_ANY)
		return true;
	return (rec->flags & IOPFMAP_RECORD_PASID) && rec->pasid == c->f_pasid;
}

/* Keeps iopfd->timeouts sorted; the timeout rarely changes, so scan back. */
static void timeout_insert(struct iopfd *d, struct group *g)
{
	struct list_head *pos = d->timeouts.prev;

	while (pos != &d->timeouts &&
	       list_entry(pos, struct group, tnode)->deadline_ns >
	       g->deadline_ns)
		pos = pos->prev;
	list_insert(&g->tnode, pos, pos->next);
}

static void forward(struct kqueue *kq, struct group *g)
{
	struct iopfd *d = kq->d;
	union {
		struct iopfd_msg_fault m;
		unsigned char bytes[IOPFD_MSG_MAX];
	} msg;
	struct client *c;
	size_t len;

	list_for_each_entry(c, &d->clients, node)
		if (client_matches(c, kq, &g->rec[0]))
			break;
	if (&c->node == &d->clients) {
		log_dbg("no_subscriber", "ctx=%u dev=%u cookie=%#llx",
			kq->ctx_id, g->rec[0].dev_id,
			(unsigned long long)g->cookie);
		group_answer(g, d->cfg.client_policy, DECIDER_POLICY);
		return;
	}
	g->client = c;
	list_add_tail(&g->cnode, &c->outstanding);
	if (d->cfg.client_timeout_ms) {
		g->deadline_ns = now_ns() +
				 d->cfg.client_timeout_ms * 1000000ULL;
		timeout_insert(d, g);
	}
	len = sizeof(msg.m) + g->nr * sizeof(msg.m.records[0]);
	memset(&msg.m, 0, sizeof(msg.m));
	msg.m.hdr.type = IOPFD_MSG_FAULT;
	msg.m.hdr.len = len;
	msg.m.nr = g->nr;
	memcpy(msg.m.records, g->rec, g->nr * sizeof(msg.m.records[0]));
	log_dbg("forward", "ctx=%u dev=%u cookie=%#llx records=%u client=%u",
		kq->ctx_id, g->rec[0].dev_id, (unsigned long long)g->cookie,
		g->nr, c->id);
	/* On failure the client is closed, and @g answered by policy. */
	client_send(c, &msg, len);
}

static uint32_t resolve_record(struct kqueue *kq,
			       const struct iopfmap_fault_record *r)
{
	struct iopfd *d = kq->d;
	struct iopfmap_sim_s1_map m = {
		.size = sizeof(m),
		.flags = IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE,
		.length = IOPFD_PAGE_SIZE,
	};
	uint64_t ipa;

	if (!(r->flags & IOPFMAP_RECORD_STAGE1))
		return IOPFMAP_PAGE_RESP_SUCCESS;
	m.iova = r->addr & ~(IOPFD_PAGE_SIZE - 1);
	if (kq->ctx_fd < 0) {
		log_warn("resolve", "ctx=%u addr=%#llx code=invalid msg=\"no context fd was handed over\"",
			 kq->ctx_id, (unsigned long long)m.iova);
		return IOPFMAP_PAGE_RESP_INVALID;
	}
	if (!config_resolve(&d->cfg, m.iova, &ipa)) {
		log_warn("resolve", "ctx=%u addr=%#llx code=invalid msg=\"no rule covers the address\"",
			 kq->ctx_id, (unsigned long long)m.iova);
		return IOPFMAP_PAGE_RESP_INVALID;
	}
	m.ipa = ipa;
	if (ioctl(kq->ctx_fd, IOPFMAP_SIM_S1_MAP, &m)) {
		/* Another record or an earlier fault mapped it already. */
		if (errno == EEXIST)
			return IOPFMAP_PAGE_RESP_SUCCESS;
		d->stats.s1_errors++;
		log_warn("resolve", "ctx=%u addr=%#llx ipa=%#llx code=invalid error=%s",
			 kq->ctx_id, (unsigned long long)m.iova,
			 (unsigned long long)m.ipa,
			 log_strerror(errno));
		return IOPFMAP_PAGE_RESP_INVALID;
	}
	d->stats.s1_maps++;
	log_dbg("resolve", "ctx=%u addr=%#llx ipa=%#llx", kq->ctx_id,
		(unsigned long long)m.iova, (unsigned long long)m.ipa);
	return IOPFMAP_PAGE_RESP_SUCCESS;
}

/* The group succeeds only if every record does, as the IOMMU core has it. */
static void resolve(struct kqueue *kq, struct group *g)
{
	uint32_t code = IOPFMAP_PAGE_RESP_SUCCESS;
	unsigned int i;

	for (i = 0; i < g->nr && code == IOPFMAP_PAGE_RESP_SUCCESS; i++)
		code = resolve_record(kq, &g->rec[i]);
	group_answer(g, code, DECIDER_RULE);
}

static void reject(struct kqueue *kq, struct group *g)
{
	const struct iopfmap_fault_record *r = &g->rec[0];

	log_info("reject", "ctx=%u dev=%u cookie=%#llx addr=%#llx perm=%#x stage1=%d records=%u",
		 kq->ctx_id, r->dev_id, (unsigned long long)g->cookie,
		 (unsigned long long)r->addr, r->perm,
		 !!(r->flags & IOPFMAP_RECORD_STAGE1), g->nr);
	group_answer(g, IOPFMAP_PAGE_RESP_INVALID, DECIDER_REJECT);
}

void handle_group(struct kqueue *kq, struct group *g)
{
	switch (kq->handler) {
	case IOPFD_HANDLER_FORWARD:
		forward(kq, g);
		break;
	case IOPFD_HANDLER_RESOLVE:
		resolve(kq, g);
		break;
	default:
		reject(kq, g);
		break;
	}
}

void handle_client_lost(struct group *g, const char *why)
{
	struct iopfd *d = g->kq->d;
	char qw[64];

	log_dbg("policy", "ctx=%u cookie=%#llx code=%s reason=%s",
		g->kq->ctx_id, (unsigned long long)g->cookie,
		resp_name(d->cfg.client_policy),
		log_quote(qw, sizeof(qw), why));
	group_answer(g, d->cfg.client_policy, DECIDER_POLICY);
}

void handle_timeouts(struct iopfd *d, uint64_t now)
{
	struct group *g;

	while (!list_empty(&d->timeouts)) {
		g = list_first_entry(&d->timeouts, struct group, tnode);
		if (g->deadline_ns > now)
			break;
		d->stats.client_timeouts++;
		log_warn("client_timeout", "client=%u ctx=%u cookie=%#llx code=%s",
			 g->client ? g->client->id : 0, g->kq->ctx_id,
			 (unsigned long long)g->cookie,
			 resp_name(d->cfg.client_policy));
		group_answer(g, d->cfg.client_policy, DECIDER_POLICY);
	}
}

int64_t handle_next_deadline(struct iopfd *d, uint64_t now)
{
	struct group *g;

	if (list_empty(&d->timeouts))
		return -1;
	g = list_first_entry(&d->timeouts, struct group, tnode);
	return g->deadline_ns > now ? (int64_t)(g->deadline_ns - now) : 0;
}
