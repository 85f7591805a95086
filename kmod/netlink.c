// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap: the "iopfmap" generic netlink family, as described by
 * docs/netlink/specs/iopfmap.yaml (whose uapi header is generated). Dumps
 * of contexts, devices, ranges and fault queues, the module's counters,
 * range-set, and the "events" multicast group.
 *
 * Commands find contexts by id and hold a reference on them
 * (iopfmap_ctx_get_next()), so a context being closed waits for them.
 * No genetlink lock is taken (parallel_ops): each command takes the locks
 * of what it reads, in the order iopfmap_private.h gives.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/moduleparam.h>
#include <linux/pid.h>
#include <net/genetlink.h>

#include "compat.h"
#include "iopfmap_private.h"

#define IOPFMAP_STORM_WINDOW_MS	1000

unsigned int iopfmap_storm_threshold = 10000;
module_param_named(storm_threshold, iopfmap_storm_threshold, uint, 0644);
MODULE_PARM_DESC(storm_threshold,
		 "Invalidations of one context within a second that make an inval-storm event (0: never)");

static struct genl_family iopfmap_nl_family;

/* Each request's attributes; do and dump of a command share a policy. */
static const struct nla_policy iopfmap_nl_ctx_policy[IOPFMAP_A_CTX_ID + 1] = {
	[IOPFMAP_A_CTX_ID] = NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy
iopfmap_nl_dev_policy[IOPFMAP_A_DEV_CTX_ID + 1] = {
	[IOPFMAP_A_DEV_CTX_ID] = NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy
iopfmap_nl_range_get_policy[IOPFMAP_A_RANGE_CTX_ID + 1] = {
	[IOPFMAP_A_RANGE_CTX_ID] = NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy
iopfmap_nl_range_set_policy[IOPFMAP_A_RANGE_POLICY + 1] = {
	[IOPFMAP_A_RANGE_CTX_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[IOPFMAP_A_RANGE_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[IOPFMAP_A_RANGE_PREFETCH] = NLA_POLICY_RANGE(NLA_U32, 1,
						      IOPFMAP_PREFETCH_MAX),
	[IOPFMAP_A_RANGE_POLICY] = NLA_POLICY_MAX(NLA_U32,
						  IOPFMAP_POLICY_REJECT),
};

static const struct nla_policy
iopfmap_nl_queue_policy[IOPFMAP_A_QUEUE_CTX_ID + 1] = {
	[IOPFMAP_A_QUEUE_CTX_ID] = NLA_POLICY_MIN(NLA_U32, 1),
};

/* v6.2 split do and dump; before it a dump found its attributes here. */
static struct nlattr **iopfmap_nl_dump_attrs(struct netlink_callback *cb)
{
#ifdef IOPFMAP_HAVE_GENL_SPLIT_OPS
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

static void *iopfmap_nl_dump_put(struct sk_buff *skb,
				 struct netlink_callback *cb, u8 cmd)
{
	return genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
			   cb->nlh->nlmsg_seq, &iopfmap_nl_family,
			   NLM_F_MULTI, cmd);
}

/* What a dump returns after a fill: go on, stop, or fail. */
static int iopfmap_nl_dump_result(struct sk_buff *skb, int ret)
{
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;	/* the next call resumes there */
	return ret ?: skb->len;
}

/* Counters as one u64 attribute each, numbered from @first. */
static int iopfmap_nl_put_counters(struct sk_buff *skb, int nest_type,
				   int first, int pad, const u64 *values,
				   unsigned int nr)
{
	struct nlattr *nest = nla_nest_start(skb, nest_type);
	unsigned int i;

	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < nr; i++) {
		if (nla_put_u64_64bit(skb, first + i, values[i], pad)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int iopfmap_nl_put_stats(struct sk_buff *skb, int nest_type,
				const atomic64_t *stats)
{
	u64 values[IOPFMAP_STAT_NR];
	unsigned int i;

	/* The attributes follow enum iopfmap_stat. */
	BUILD_BUG_ON(IOPFMAP_A_STATS_MAX - IOPFMAP_A_STATS_FAULTS + 1 !=
		     IOPFMAP_STAT_NR);
	for (i = 0; i < IOPFMAP_STAT_NR; i++)
		values[i] = atomic64_read(&stats[i]);
	return iopfmap_nl_put_counters(skb, nest_type, IOPFMAP_A_STATS_FAULTS,
				       IOPFMAP_A_STATS_PAD, values,
				       IOPFMAP_STAT_NR);
}

/*
 * Who may see a context (its pid, comm, devices, ranges, counters): an
 * administrator (CAP_NET_ADMIN), or a user of the uid that opened it
 * (iopfd runs as root without capabilities). To everyone else it does not
 * exist. @skb is the request.
 */
static bool iopfmap_nl_may_see(const struct sk_buff *skb,
			       const struct iopfmap_ctx *ctx)
{
	return uid_eq(ctx->owner_uid, current_uid()) ||
	       netlink_capable(skb, CAP_NET_ADMIN);
}

/* ctx-get */

/* The context @attr names, referenced; else NULL with an extended ack. */
static struct iopfmap_ctx *iopfmap_nl_get_ctx(struct sk_buff *skb,
					      struct genl_info *info,
					      const struct nlattr *attr)
{
	unsigned long id = nla_get_u32(attr);
	struct iopfmap_ctx *ctx = iopfmap_ctx_get_next(&id);

	if (ctx && (ctx->id != nla_get_u32(attr) ||
		    !iopfmap_nl_may_see(skb, ctx))) {
		iopfmap_ctx_put(ctx);
		ctx = NULL;
	}
	if (!ctx)
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "no such context");
	return ctx;
}

/*
 * Each object's fill function: @ctx, and the object in it (NULL for the
 * context itself). Returns 0 or -EMSGSIZE.
 */
typedef int (*iopfmap_nl_fill_t)(struct sk_buff *skb, struct iopfmap_ctx *ctx,
				 const void *obj);

/* One object's message in a dump; -EMSGSIZE when the skb is full. */
static int iopfmap_nl_dump_one(struct sk_buff *skb,
			       struct netlink_callback *cb, u8 cmd,
			       iopfmap_nl_fill_t fill, struct iopfmap_ctx *ctx,
			       const void *obj)
{
	void *hdr = iopfmap_nl_dump_put(skb, cb, cmd);
	int ret;

	if (!hdr)
		return -EMSGSIZE;
	ret = fill(skb, ctx, obj);
	if (ret) {
		genlmsg_cancel(skb, hdr);
		return ret;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int iopfmap_nl_fill_ctx(struct sk_buff *skb, struct iopfmap_ctx *ctx,
			       const void *unused)
{
	static const u32 iopt_types[] = {
		[IOPFMAP_IOPT_NONE] = IOPFMAP_IOPT_TYPE_NONE,
		[IOPFMAP_IOPT_SIM] = IOPFMAP_IOPT_TYPE_SIM,
		[IOPFMAP_IOPT_DOMAIN] = IOPFMAP_IOPT_TYPE_DOMAIN,
	};
	struct interval_tree_node *node;
	u32 nr_ranges = 0, nr_devices = 0;
	struct iopfmap_iopt *iopt;
	bool sim;
	void *entry;
	unsigned long id;

	/* Pairs with the release that publishes it (SIM_CREATE, ATTACH). */
	iopt = smp_load_acquire(&ctx->iopt);
	/* Pairs with the release in SIM_CREATE. */
	sim = smp_load_acquire(&ctx->sim);

	down_read(&ctx->ranges_rwsem);
	for (node = interval_tree_iter_first(&ctx->ranges, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX))
		nr_ranges++;
	up_read(&ctx->ranges_rwsem);
	xa_for_each(&ctx->devices, id, entry)
		nr_devices++;

	if (nla_put_u32(skb, IOPFMAP_A_CTX_ID, ctx->id) ||
	    nla_put_u32(skb, IOPFMAP_A_CTX_PID, pid_vnr(ctx->owner)) ||
	    nla_put_string(skb, IOPFMAP_A_CTX_COMM, ctx->owner_comm) ||
	    nla_put_u32(skb, IOPFMAP_A_CTX_IOPT_TYPE,
			iopt_types[iopt ? iopt->type : IOPFMAP_IOPT_NONE]) ||
	    (sim && nla_put_flag(skb, IOPFMAP_A_CTX_SIM)) ||
	    nla_put_u32(skb, IOPFMAP_A_CTX_NR_RANGES, nr_ranges) ||
	    nla_put_u32(skb, IOPFMAP_A_CTX_NR_DEVICES, nr_devices) ||
	    (rcu_access_pointer(ctx->queue) &&
	     nla_put_flag(skb, IOPFMAP_A_CTX_QUEUE)))
		return -EMSGSIZE;
	return iopfmap_nl_put_stats(skb, IOPFMAP_A_CTX_STATS, ctx->stats);
}

static int iopfmap_nl_ctx_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct iopfmap_ctx *ctx;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, IOPFMAP_A_CTX_ID))
		return -EINVAL;
	ctx = iopfmap_nl_get_ctx(skb, info, info->attrs[IOPFMAP_A_CTX_ID]);
	if (!ctx)
		return -ENOENT;

	ret = -ENOMEM;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		goto out_put;
	hdr = genlmsg_put_reply(msg, info, &iopfmap_nl_family, 0,
				info->genlhdr->cmd);
	if (!hdr)
		goto err_free;
	ret = iopfmap_nl_fill_ctx(msg, ctx, NULL);
	if (ret)
		goto err_free;
	genlmsg_end(msg, hdr);
	iopfmap_ctx_put(ctx);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
out_put:
	iopfmap_ctx_put(ctx);
	return ret;
}

static int iopfmap_nl_ctx_get_dumpit(struct sk_buff *skb,
				     struct netlink_callback *cb)
{
	unsigned long id = cb->args[0];
	struct iopfmap_ctx *ctx;
	int ret = 0;

	for (; (ctx = iopfmap_ctx_get_next(&id)); id++) {
		ret = iopfmap_nl_may_see(cb->skb, ctx) ?
		      iopfmap_nl_dump_one(skb, cb, IOPFMAP_NL_CMD_CTX_GET,
					  iopfmap_nl_fill_ctx, ctx, NULL) : 0;
		iopfmap_ctx_put(ctx);
		if (ret)
			break;
	}
	cb->args[0] = id;
	return iopfmap_nl_dump_result(skb, ret);
}

/*
 * The contexts a dump covers: the one @filter names, or all. Resumes at
 * cb->args[0]; returns the next one, referenced, or NULL.
 */
static struct iopfmap_ctx *iopfmap_nl_dump_next_ctx(struct netlink_callback *cb,
						    const struct nlattr *filter)
{
	unsigned long id = cb->args[0];
	struct iopfmap_ctx *ctx;

	if (filter) {
		if (id > nla_get_u32(filter))
			return NULL;
		id = nla_get_u32(filter);
	}
	/* The contexts this caller may not see are skipped. */
	for (; (ctx = iopfmap_ctx_get_next(&id)); id++) {
		if (iopfmap_nl_may_see(cb->skb, ctx))
			break;
		iopfmap_ctx_put(ctx);
		if (filter)
			return NULL;
	}
	if (ctx && filter && ctx->id != nla_get_u32(filter)) {
		iopfmap_ctx_put(ctx);
		return NULL;
	}
	if (ctx && cb->args[0] != id) {
		/* A new context: its objects from the first. */
		cb->args[0] = id;
		cb->args[1] = 0;
	}
	return ctx;
}

/* Every object of @ctx was dumped: the next call starts after it. */
static void iopfmap_nl_dump_ctx_done(struct netlink_callback *cb,
				     struct iopfmap_ctx *ctx)
{
	cb->args[0] = ctx->id + 1;
	cb->args[1] = 0;
}

/* dev-get */

static int iopfmap_nl_fill_dev(struct sk_buff *skb, struct iopfmap_ctx *ctx,
			       const void *obj)
{
	const struct iopfmap_device_snapshot *snap = obj;
	bool iopf = snap->flags & IOPFMAP_DEVICE_HW_IOPF;

	if (nla_put_u32(skb, IOPFMAP_A_DEV_CTX_ID, ctx->id) ||
	    nla_put_u32(skb, IOPFMAP_A_DEV_ID, snap->id) ||
	    nla_put_string(skb, IOPFMAP_A_DEV_NAME, snap->name) ||
	    (snap->iommu_group >= 0 &&
	     nla_put_u32(skb, IOPFMAP_A_DEV_IOMMU_GROUP, snap->iommu_group)) ||
	    (iopf && nla_put_flag(skb, IOPFMAP_A_DEV_IOPF)) ||
	    nla_put_u32(skb, IOPFMAP_A_DEV_FAULT_PATH,
			iopf ? IOPFMAP_FAULT_PATH_IOMMU :
			       IOPFMAP_FAULT_PATH_DRIVER) ||
	    (snap->own_domain && nla_put_flag(skb, IOPFMAP_A_DEV_OWN_DOMAIN)))
		return -EMSGSIZE;
	return 0;
}

static int iopfmap_nl_dev_get_dumpit(struct sk_buff *skb,
				     struct netlink_callback *cb)
{
	struct nlattr *filter = iopfmap_nl_dump_attrs(cb)[IOPFMAP_A_DEV_CTX_ID];
	struct iopfmap_device_snapshot snap;
	struct iopfmap_ctx *ctx;
	unsigned long dev_id;
	int ret = 0;

	while (!ret && (ctx = iopfmap_nl_dump_next_ctx(cb, filter))) {
		for (dev_id = cb->args[1];
		     iopfmap_ctx_device_snapshot(ctx, &dev_id, &snap);
		     dev_id++) {
			ret = iopfmap_nl_dump_one(skb, cb,
						  IOPFMAP_NL_CMD_DEV_GET,
						  iopfmap_nl_fill_dev, ctx,
						  &snap);
			if (ret)
				break;
		}
		cb->args[1] = dev_id;
		if (!ret)
			iopfmap_nl_dump_ctx_done(cb, ctx);
		iopfmap_ctx_put(ctx);
	}
	return iopfmap_nl_dump_result(skb, ret);
}

/* range-get */

/* Under ranges_rwsem: @obj stays. */
static int iopfmap_nl_fill_range(struct sk_buff *skb, struct iopfmap_ctx *ctx,
				 const void *obj)
{
	/* Its lock is taken, nothing else changes. */
	struct iopfmap_range *range = (struct iopfmap_range *)obj;
	static const u32 modes[] = {
		[IOPFMAP_MODE_FAULT] = IOPFMAP_RANGE_MODE_FAULT,
		[IOPFMAP_MODE_PIN] = IOPFMAP_RANGE_MODE_PIN,
	};
	unsigned long mapped;
	u32 mode;

	mutex_lock(&range->lock);
	mapped = bitmap_weight(range->iopf_mapped, range->npages);
	mode = modes[range->mode];
	mutex_unlock(&range->lock);
	if (nla_put_u32(skb, IOPFMAP_A_RANGE_CTX_ID, ctx->id) ||
	    nla_put_u32(skb, IOPFMAP_A_RANGE_ID, range->id) ||
	    nla_put_u64_64bit(skb, IOPFMAP_A_RANGE_IOVA, range->node.start,
			      IOPFMAP_A_RANGE_PAD) ||
	    nla_put_u64_64bit(skb, IOPFMAP_A_RANGE_LENGTH,
			      (u64)range->npages << PAGE_SHIFT,
			      IOPFMAP_A_RANGE_PAD) ||
	    nla_put_u32(skb, IOPFMAP_A_RANGE_FLAGS, range->flags) ||
	    nla_put_u32(skb, IOPFMAP_A_RANGE_MODE, mode) ||
	    nla_put_u64_64bit(skb, IOPFMAP_A_RANGE_PAGES_MAPPED, mapped,
			      IOPFMAP_A_RANGE_PAD) ||
	    nla_put_u32(skb, IOPFMAP_A_RANGE_PREFETCH,
			READ_ONCE(range->prefetch)) ||
	    nla_put_u32(skb, IOPFMAP_A_RANGE_POLICY, READ_ONCE(range->policy)))
		return -EMSGSIZE;
	return iopfmap_nl_put_stats(skb, IOPFMAP_A_RANGE_STATS, range->stats);
}

/* Dumps @ctx's ranges from IOVA cb->args[1] on; 0 when all fit. */
static int iopfmap_nl_dump_ranges(struct sk_buff *skb,
				  struct netlink_callback *cb,
				  struct iopfmap_ctx *ctx)
{
	struct interval_tree_node *node;
	int ret = 0;

	down_read(&ctx->ranges_rwsem);
	for (node = interval_tree_iter_first(&ctx->ranges, cb->args[1],
					     ULONG_MAX);
	     node; node = interval_tree_iter_next(node, cb->args[1],
						  ULONG_MAX)) {
		/* A range that began before the resume point was sent. */
		if (node->start < cb->args[1])
			continue;
		ret = iopfmap_nl_dump_one(skb, cb, IOPFMAP_NL_CMD_RANGE_GET,
					  iopfmap_nl_fill_range, ctx,
					  container_of(node,
						       struct iopfmap_range,
						       node));
		if (ret) {
			cb->args[1] = node->start;
			break;
		}
	}
	up_read(&ctx->ranges_rwsem);
	return ret;
}

static int iopfmap_nl_range_get_dumpit(struct sk_buff *skb,
				       struct netlink_callback *cb)
{
	struct nlattr *filter =
		iopfmap_nl_dump_attrs(cb)[IOPFMAP_A_RANGE_CTX_ID];
	struct iopfmap_ctx *ctx;
	int ret = 0;

	while (!ret && (ctx = iopfmap_nl_dump_next_ctx(cb, filter))) {
		ret = iopfmap_nl_dump_ranges(skb, cb, ctx);
		if (!ret)
			iopfmap_nl_dump_ctx_done(cb, ctx);
		iopfmap_ctx_put(ctx);
	}
	return iopfmap_nl_dump_result(skb, ret);
}

/* range-set */

/* @ctx's range @id, or NULL. Under ctx->lock: ranges stay. */
static struct iopfmap_range *iopfmap_ctx_find_range(struct iopfmap_ctx *ctx,
						    u32 id)
{
	struct interval_tree_node *node;
	struct iopfmap_range *range;

	lockdep_assert_held(&ctx->lock);
	for (node = interval_tree_iter_first(&ctx->ranges, 0, ULONG_MAX); node;
	     node = interval_tree_iter_next(node, 0, ULONG_MAX)) {
		range = container_of(node, struct iopfmap_range, node);
		if (range->id == id)
			return range;
	}
	return NULL;
}

static int iopfmap_nl_range_set_doit(struct sk_buff *skb,
				     struct genl_info *info)
{
	struct nlattr *prefetch_attr = info->attrs[IOPFMAP_A_RANGE_PREFETCH];
	struct nlattr *policy_attr = info->attrs[IOPFMAP_A_RANGE_POLICY];
	struct iopfmap_range *range;
	struct iopfmap_ctx *ctx;
	u32 prefetch = 0, policy = 0, range_id;
	int ret = 0;

	if (GENL_REQ_ATTR_CHECK(info, IOPFMAP_A_RANGE_CTX_ID) ||
	    GENL_REQ_ATTR_CHECK(info, IOPFMAP_A_RANGE_ID))
		return -EINVAL;
	if (!prefetch_attr && !policy_attr) {
		NL_SET_ERR_MSG(info->extack,
			       "nothing to set: give prefetch or policy");
		return -EINVAL;
	}
	if (prefetch_attr) {
		prefetch = nla_get_u32(prefetch_attr);
		if (!is_power_of_2(prefetch)) {
			NL_SET_ERR_MSG_ATTR(info->extack, prefetch_attr,
					    "prefetch must be a power of two");
			return -EINVAL;
		}
	}
	if (policy_attr)
		policy = nla_get_u32(policy_attr);

	ctx = iopfmap_nl_get_ctx(skb, info,
				 info->attrs[IOPFMAP_A_RANGE_CTX_ID]);
	if (!ctx)
		return -ENOENT;

	/* ctx->lock: the range stays, and its mode does not change. */
	mutex_lock(&ctx->lock);
	range_id = nla_get_u32(info->attrs[IOPFMAP_A_RANGE_ID]);
	range = iopfmap_ctx_find_range(ctx, range_id);
	if (!range) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    info->attrs[IOPFMAP_A_RANGE_ID],
				    "no such range in this context");
		ret = -ENOENT;
		goto out_unlock;
	}
	if (policy_attr && policy == IOPFMAP_POLICY_FORWARD &&
	    range->mode == IOPFMAP_MODE_PIN) {
		NL_SET_ERR_MSG_ATTR(info->extack, policy_attr,
				    "a pinned range never faults: nothing to forward");
		ret = -EINVAL;
		goto out_unlock;
	}
	if (prefetch_attr)
		WRITE_ONCE(range->prefetch, prefetch);
	if (policy_attr)
		WRITE_ONCE(range->policy, policy);
out_unlock:
	mutex_unlock(&ctx->lock);
	iopfmap_ctx_put(ctx);
	return ret;
}

/* queue-get */

static int iopfmap_nl_fill_queue(struct sk_buff *skb, struct iopfmap_ctx *ctx,
				 const void *obj)
{
	const struct iopfmap_queue_snapshot *snap = obj;

	BUILD_BUG_ON(IOPFMAP_A_QUEUE_STATS_MAX - IOPFMAP_A_QUEUE_STATS_GROUPS +
		     1 != IOPFMAP_QSTAT_NR);
	if (nla_put_u32(skb, IOPFMAP_A_QUEUE_CTX_ID, ctx->id) ||
	    nla_put_u32(skb, IOPFMAP_A_QUEUE_DEPTH, snap->depth) ||
	    nla_put_u32(skb, IOPFMAP_A_QUEUE_TIMEOUT_MS, snap->timeout_ms) ||
	    nla_put_u32(skb, IOPFMAP_A_QUEUE_PENDING, snap->pending) ||
	    nla_put_u32(skb, IOPFMAP_A_QUEUE_INFLIGHT, snap->inflight) ||
	    (snap->attached && nla_put_flag(skb, IOPFMAP_A_QUEUE_ATTACHED)) ||
	    nla_put_u32(skb, IOPFMAP_A_QUEUE_ARMED, snap->armed))
		return -EMSGSIZE;
	return iopfmap_nl_put_counters(skb, IOPFMAP_A_QUEUE_STATS,
				       IOPFMAP_A_QUEUE_STATS_GROUPS,
				       IOPFMAP_A_QUEUE_STATS_PAD, snap->stats,
				       IOPFMAP_QSTAT_NR);
}

static int iopfmap_nl_queue_get_dumpit(struct sk_buff *skb,
				       struct netlink_callback *cb)
{
	struct nlattr *filter =
		iopfmap_nl_dump_attrs(cb)[IOPFMAP_A_QUEUE_CTX_ID];
	struct iopfmap_queue_snapshot snap;
	struct iopfmap_ctx *ctx;
	int ret = 0;

	while (!ret && (ctx = iopfmap_nl_dump_next_ctx(cb, filter))) {
		if (iopfmap_ctx_queue_snapshot(ctx, &snap))
			ret = iopfmap_nl_dump_one(skb, cb,
						  IOPFMAP_NL_CMD_QUEUE_GET,
						  iopfmap_nl_fill_queue, ctx,
						  &snap);
		if (!ret)
			iopfmap_nl_dump_ctx_done(cb, ctx);
		iopfmap_ctx_put(ctx);
	}
	return iopfmap_nl_dump_result(skb, ret);
}

/* stats-get */

static int iopfmap_nl_stats_get_doit(struct sk_buff *skb,
				     struct genl_info *info)
{
	u64 stats[IOPFMAP_STAT_NR];
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &iopfmap_nl_family, 0,
				info->genlhdr->cmd);
	if (!hdr)
		goto err_free;
	iopfmap_global_stats(stats);
	if (nla_put_u32(msg, IOPFMAP_A_GLOBAL_CONTEXTS,
			iopfmap_nr_contexts()) ||
	    nla_put_u32(msg, IOPFMAP_A_GLOBAL_DEVICES, iopfmap_nr_devices()) ||
	    iopfmap_nl_put_counters(msg, IOPFMAP_A_GLOBAL_STATS,
				    IOPFMAP_A_STATS_FAULTS, IOPFMAP_A_STATS_PAD,
				    stats, IOPFMAP_STAT_NR))
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

/* Events */

enum iopfmap_nl_mcgrp {
	IOPFMAP_NL_MCGRP_EVENTS,
};

static const struct genl_multicast_group iopfmap_nl_mcgrps[] = {
	[IOPFMAP_NL_MCGRP_EVENTS] = { .name = IOPFMAP_MCGRP_EVENTS },
};

/* A message for the events group, or NULL when nobody listens. */
static struct sk_buff *iopfmap_event_new(u8 cmd, void **hdr, gfp_t gfp)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&iopfmap_nl_family, &init_net,
				IOPFMAP_NL_MCGRP_EVENTS))
		return NULL;
	msg = genlmsg_new(NLMSG_GOODSIZE, gfp);
	if (!msg)
		return NULL;
	*hdr = genlmsg_put(msg, 0, 0, &iopfmap_nl_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static void iopfmap_event_send(struct sk_buff *msg, void *hdr, int ret,
			       gfp_t gfp)
{
	if (ret) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&iopfmap_nl_family, msg, 0, IOPFMAP_NL_MCGRP_EVENTS,
			  gfp);
}

/* dev-attach-ntf, dev-detach-ntf (@reason < 0: none). Process context. */
void iopfmap_notify_device(u8 cmd, u32 ctx_id, u32 dev_id, const char *name,
			   int reason)
{
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = iopfmap_event_new(cmd, &hdr, GFP_KERNEL);
	if (!msg)
		return;
	ret = nla_put_u32(msg, IOPFMAP_A_EVENT_CTX_ID, ctx_id) ||
	      nla_put_u32(msg, IOPFMAP_A_EVENT_DEV_ID, dev_id) ||
	      nla_put_string(msg, IOPFMAP_A_EVENT_DEV_NAME, name) ||
	      (reason >= 0 &&
	       nla_put_u32(msg, IOPFMAP_A_EVENT_REASON, reason));
	iopfmap_event_send(msg, hdr, ret, GFP_KERNEL);
}

/* queue-full-ntf, queue-timeout-ntf, queue-close-ntf. Process context. */
void iopfmap_notify_queue(u8 cmd, u32 ctx_id, u32 count)
{
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = iopfmap_event_new(cmd, &hdr, GFP_KERNEL);
	if (!msg)
		return;
	ret = nla_put_u32(msg, IOPFMAP_A_EVENT_CTX_ID, ctx_id) ||
	      nla_put_u32(msg, IOPFMAP_A_EVENT_COUNT, count);
	iopfmap_event_send(msg, hdr, ret, GFP_KERNEL);
}

/*
 * Counts one invalidation of @ctx's ranges and sends inval-storm-ntf when
 * a window holds more than the threshold. Called from the invalidate
 * callback, which may not sleep: no lock, GFP_ATOMIC. Concurrent callers
 * may both open a window; the count is a rate, not an account.
 */
void iopfmap_count_invalidation(struct iopfmap_ctx *ctx)
{
	unsigned int threshold = READ_ONCE(iopfmap_storm_threshold);
	unsigned long end = READ_ONCE(ctx->storm_window_end);
	struct sk_buff *msg;
	void *hdr;
	int count, ret;

	if (!threshold)
		return;
	if (time_after_eq(jiffies, end) &&
	    cmpxchg(&ctx->storm_window_end, end,
		    jiffies + msecs_to_jiffies(IOPFMAP_STORM_WINDOW_MS)) == end)
		atomic_set(&ctx->storm_count, 0);
	count = atomic_inc_return(&ctx->storm_count);
	if (count != threshold + 1)
		return;

	msg = iopfmap_event_new(IOPFMAP_NL_CMD_INVAL_STORM_NTF, &hdr,
				GFP_ATOMIC);
	if (!msg)
		return;
	ret = nla_put_u32(msg, IOPFMAP_A_EVENT_CTX_ID, ctx->id) ||
	      nla_put_u32(msg, IOPFMAP_A_EVENT_COUNT, count) ||
	      nla_put_u32(msg, IOPFMAP_A_EVENT_WINDOW_MS,
			  IOPFMAP_STORM_WINDOW_MS);
	iopfmap_event_send(msg, hdr, ret, GFP_ATOMIC);
}

/* The family */

#ifdef IOPFMAP_HAVE_GENL_SPLIT_OPS
static const struct genl_split_ops iopfmap_nl_ops[] = {
	{
		.cmd = IOPFMAP_NL_CMD_CTX_GET,
		.doit = iopfmap_nl_ctx_get_doit,
		.policy = iopfmap_nl_ctx_policy,
		.maxattr = IOPFMAP_A_CTX_ID,
		.flags = GENL_CMD_CAP_DO,
	},
	{
		.cmd = IOPFMAP_NL_CMD_CTX_GET,
		.dumpit = iopfmap_nl_ctx_get_dumpit,
		.flags = GENL_CMD_CAP_DUMP,
	},
	{
		.cmd = IOPFMAP_NL_CMD_DEV_GET,
		.dumpit = iopfmap_nl_dev_get_dumpit,
		.policy = iopfmap_nl_dev_policy,
		.maxattr = IOPFMAP_A_DEV_CTX_ID,
		.flags = GENL_CMD_CAP_DUMP,
	},
	{
		.cmd = IOPFMAP_NL_CMD_RANGE_GET,
		.dumpit = iopfmap_nl_range_get_dumpit,
		.policy = iopfmap_nl_range_get_policy,
		.maxattr = IOPFMAP_A_RANGE_CTX_ID,
		.flags = GENL_CMD_CAP_DUMP,
	},
	{
		.cmd = IOPFMAP_NL_CMD_RANGE_SET,
		.doit = iopfmap_nl_range_set_doit,
		.policy = iopfmap_nl_range_set_policy,
		.maxattr = IOPFMAP_A_RANGE_POLICY,
		.flags = GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd = IOPFMAP_NL_CMD_QUEUE_GET,
		.dumpit = iopfmap_nl_queue_get_dumpit,
		.policy = iopfmap_nl_queue_policy,
		.maxattr = IOPFMAP_A_QUEUE_CTX_ID,
		.flags = GENL_CMD_CAP_DUMP,
	},
	{
		.cmd = IOPFMAP_NL_CMD_STATS_GET,
		.doit = iopfmap_nl_stats_get_doit,
		.flags = GENL_CMD_CAP_DO,
	},
};
#else
/* Before v6.2 a command's do and dump share one entry and one policy. */
static const struct genl_ops iopfmap_nl_ops[] = {
	{
		.cmd = IOPFMAP_NL_CMD_CTX_GET,
		.doit = iopfmap_nl_ctx_get_doit,
		.dumpit = iopfmap_nl_ctx_get_dumpit,
		.policy = iopfmap_nl_ctx_policy,
		.maxattr = IOPFMAP_A_CTX_ID,
	},
	{
		.cmd = IOPFMAP_NL_CMD_DEV_GET,
		.dumpit = iopfmap_nl_dev_get_dumpit,
		.policy = iopfmap_nl_dev_policy,
		.maxattr = IOPFMAP_A_DEV_CTX_ID,
	},
	{
		.cmd = IOPFMAP_NL_CMD_RANGE_GET,
		.dumpit = iopfmap_nl_range_get_dumpit,
		.policy = iopfmap_nl_range_get_policy,
		.maxattr = IOPFMAP_A_RANGE_CTX_ID,
	},
	{
		.cmd = IOPFMAP_NL_CMD_RANGE_SET,
		.doit = iopfmap_nl_range_set_doit,
		.policy = iopfmap_nl_range_set_policy,
		.maxattr = IOPFMAP_A_RANGE_POLICY,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = IOPFMAP_NL_CMD_QUEUE_GET,
		.dumpit = iopfmap_nl_queue_get_dumpit,
		.policy = iopfmap_nl_queue_policy,
		.maxattr = IOPFMAP_A_QUEUE_CTX_ID,
	},
	{
		.cmd = IOPFMAP_NL_CMD_STATS_GET,
		.doit = iopfmap_nl_stats_get_doit,
	},
};
#endif

static struct genl_family iopfmap_nl_family __ro_after_init = {
	.name = IOPFMAP_FAMILY_NAME,
	.version = IOPFMAP_FAMILY_VERSION,
	.module = THIS_MODULE,
	/* Commands take iopfmap's own locks, never genetlink's. */
	.parallel_ops = true,
	/*
	 * 0: every command validates strictly, as for a new family: unknown
	 * attributes and a non-zero reserved header field fail.
	 */
	.resv_start_op = 0,
#ifdef IOPFMAP_HAVE_GENL_SPLIT_OPS
	.split_ops = iopfmap_nl_ops,
	.n_split_ops = ARRAY_SIZE(iopfmap_nl_ops),
#else
	.ops = iopfmap_nl_ops,
	.n_ops = ARRAY_SIZE(iopfmap_nl_ops),
#endif
	.mcgrps = iopfmap_nl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(iopfmap_nl_mcgrps),
};

int __init iopfmap_netlink_init(void)
{
	return genl_register_family(&iopfmap_nl_family);
}

void iopfmap_netlink_exit(void)
{
	genl_unregister_family(&iopfmap_nl_family);
}
