// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap: the /dev/iopfmap character device and its ioctl dispatcher.
 *
 * Every command struct follows the rules in the uapi header's DOC block.
 * The dispatcher enforces the parts common to all commands (size, trailing
 * bytes, unknown flags) from the table at the end of this file, so a
 * command's handler only checks its own fields.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched/task.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "compat.h"
#include "iopfmap_private.h"

/* Copies a command's output back, never past what the caller passed in. */
int iopfmap_ucmd_respond(struct iopfmap_ucmd *ucmd, size_t cmd_len)
{
	if (copy_to_user(ucmd->ubuffer, ucmd->cmd,
			 min_t(size_t, ucmd->user_size, cmd_len)))
		return -EFAULT;
	return 0;
}

bool iopfmap_sim_enabled;
module_param_named(sim, iopfmap_sim_enabled, bool, 0444);
MODULE_PARM_DESC(sim, "Offer the simulated device (IOPFMAP_SIM_*), for tests and benchmarks");

static int iopfmap_get_info(struct iopfmap_ucmd *ucmd)
{
	struct iopfmap_info *cmd = ucmd->cmd;
	/* Pairs with the release in SIM_CREATE: the table is initialized. */
	struct iopfmap_iopt *iopt = smp_load_acquire(&ucmd->ctx->iopt);

	if (cmd->__reserved || cmd->__reserved2 || cmd->__reserved3)
		return -EOPNOTSUPP;

	cmd->out_abi_version = IOPFMAP_ABI_VERSION;
	cmd->out_features = IOPFMAP_FEATURES_BASE |
			    (iopfmap_sim_enabled ? IOPFMAP_FEATURE_SIM : 0) |
			    (iopfmap_hw_iopf_supported() ?
			     IOPFMAP_FEATURE_HW_IOPF : 0) |
			    (iopfmap_pasid_attach_supported() ?
			     IOPFMAP_FEATURE_PASID_ATTACH : 0);
	cmd->out_pgsize_bitmap = iopt ? iopt->pgsize_bitmap : PAGE_SIZE;
	cmd->out_iopt_type = iopt ? iopt->type : IOPFMAP_IOPT_NONE;
	cmd->out_iova_start = iopt ? iopt->iova_start : 0;
	cmd->out_iova_last = iopt ? iopt->iova_last : 0;
	cmd->out_ctx_id = ucmd->ctx->id;
	return iopfmap_ucmd_respond(ucmd, sizeof(*cmd));
}

/*
 * The open contexts by id, as tracepoints and tools show them. Netlink
 * commands look them up here and take a reference (ctx->users); the
 * xarray's lock is held only for that.
 */
static DEFINE_XARRAY_ALLOC1(iopfmap_ctxs);
static atomic_t iopfmap_nr_ctxs = ATOMIC_INIT(0);

/* The context with the lowest id >= *@id, referenced, or NULL. */
struct iopfmap_ctx *iopfmap_ctx_get_next(unsigned long *id)
{
	struct iopfmap_ctx *ctx;

	xa_lock(&iopfmap_ctxs);
	for (ctx = xa_find(&iopfmap_ctxs, id, U32_MAX, XA_PRESENT); ctx;
	     ctx = xa_find_after(&iopfmap_ctxs, id, U32_MAX, XA_PRESENT))
		if (refcount_inc_not_zero(&ctx->users))
			break;
	xa_unlock(&iopfmap_ctxs);
	return ctx;
}

void iopfmap_ctx_put(struct iopfmap_ctx *ctx)
{
	if (refcount_dec_and_test(&ctx->users))
		complete(&ctx->unused);
}

unsigned int iopfmap_nr_contexts(void)
{
	return atomic_read(&iopfmap_nr_ctxs);
}

static int iopfmap_fops_open(struct inode *inode, struct file *filp)
{
	struct iopfmap_ctx *ctx;
	int ret;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return -ENOMEM;
	refcount_set(&ctx->users, 1);
	init_completion(&ctx->unused);
	ctx->owner = get_pid(task_tgid(current));
	ctx->owner_uid = current_uid();
	get_task_comm(ctx->owner_comm, current->group_leader);
	mutex_init(&ctx->lock);
	iopfmap_ctx_init_ranges(ctx);
	iopfmap_ctx_init_devices(ctx);
	ctx->storm_window_end = jiffies;
	/* Visible to netlink once whole. */
	ret = xa_alloc(&iopfmap_ctxs, &ctx->id, ctx, xa_limit_32b, GFP_KERNEL);
	if (ret) {
		put_pid(ctx->owner);
		kfree(ctx);
		return ret;
	}
	atomic_inc(&iopfmap_nr_ctxs);
	filp->private_data = ctx;
	return nonseekable_open(inode, filp);
}

static int iopfmap_fops_release(struct inode *inode, struct file *filp)
{
	struct iopfmap_ctx *ctx = filp->private_data;

	/* No new netlink user. */
	xa_erase(&iopfmap_ctxs, ctx->id);
	atomic_dec(&iopfmap_nr_ctxs);
	/*
	 * Devices stop faulting first; the ranges use the IO page table.
	 * The file's reference on ctx->users outlives them: a device's
	 * removal notifier takes another (see device.c).
	 */
	iopfmap_ctx_destroy_devices(ctx);
	/* Wait for the netlink users that have it. */
	iopfmap_ctx_put(ctx);
	wait_for_completion(&ctx->unused);
	iopfmap_ctx_destroy_queue(ctx);
	iopfmap_ctx_destroy_ranges(ctx);
	iopfmap_sim_destroy(ctx);
	iopfmap_ctx_free_domains(ctx);
	mutex_destroy(&ctx->lock);
	put_pid(ctx->owner);
	kfree(ctx);
	return 0;
}

/* Large enough for the biggest command struct; checked at build time. */
union iopfmap_ucmd_buffer {
	struct iopfmap_info info;
	struct iopfmap_map map;
	struct iopfmap_unmap unmap;
	struct iopfmap_set_mode set_mode;
	struct iopfmap_stats stats;
	struct iopfmap_query_mapped query_mapped;
	struct iopfmap_sim_create sim_create;
	struct iopfmap_sim_dma sim_dma;
	struct iopfmap_sim_page_request sim_page_request;
	struct iopfmap_sim_s1_map sim_s1_map;
	struct iopfmap_sim_s1_unmap sim_s1_unmap;
	struct iopfmap_device_attach device_attach;
	struct iopfmap_device_detach device_detach;
	struct iopfmap_queue_alloc queue_alloc;
	struct iopfmap_queue_info queue_info;
	struct iopfmap_sim_stats sim_stats;
};

struct iopfmap_ioctl_op {
	unsigned int size;	/* the struct as this module knows it */
	unsigned int min_size;	/* the struct's first published version */
	unsigned int ioctl_num;
	u32 valid_flags;
	bool out;		/* the struct has out_ fields to write back */
	int (*execute)(struct iopfmap_ucmd *ucmd);
};

#define __IOPFMAP_IOCTL_OP(_name, _fn, _struct, _last, _flags, _out)	\
	[IOPFMAP_CMD_##_name - IOPFMAP_CMD_BASE] = {			\
		.size = sizeof(_struct) +				\
			BUILD_BUG_ON_ZERO(sizeof(union iopfmap_ucmd_buffer) < \
					  sizeof(_struct)) +		\
			BUILD_BUG_ON_ZERO(offsetof(_struct, flags) !=	\
					  offsetof(struct iopfmap_cmd_header, \
						   flags)),		\
		.min_size = offsetofend(_struct, _last),		\
		.ioctl_num = IOPFMAP_##_name,				\
		.valid_flags = _flags,					\
		.out = _out,						\
		.execute = _fn,						\
	}

/* A command whose struct is input only. */
#define IOPFMAP_IOCTL_OP(_name, _fn, _struct, _last, _flags)		\
	__IOPFMAP_IOCTL_OP(_name, _fn, _struct, _last, _flags, false)
/* A command whose struct has out_ fields: see iopfmap_ioctl_dispatch(). */
#define IOPFMAP_IOCTL_OP_OUT(_name, _fn, _struct, _last, _flags)	\
	__IOPFMAP_IOCTL_OP(_name, _fn, _struct, _last, _flags, true)

static const struct iopfmap_ioctl_op iopfmap_ioctl_ops[] = {
	IOPFMAP_IOCTL_OP_OUT(GET_INFO, iopfmap_get_info,
			     struct iopfmap_info, out_pgsize_bitmap, 0),
	IOPFMAP_IOCTL_OP_OUT(MAP, iopfmap_map, struct iopfmap_map, __reserved,
			     IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE |
			     IOPFMAP_MAP_PIN | IOPFMAP_MAP_FORWARD),
	IOPFMAP_IOCTL_OP_OUT(UNMAP, iopfmap_unmap, struct iopfmap_unmap,
			     out_unmapped, IOPFMAP_UNMAP_ALL),
	IOPFMAP_IOCTL_OP(SET_MODE, iopfmap_set_mode, struct iopfmap_set_mode,
			 __reserved, 0),
	IOPFMAP_IOCTL_OP_OUT(GET_STATS, iopfmap_get_stats, struct iopfmap_stats,
			     out_pages_pinned, IOPFMAP_STATS_RANGE),
	IOPFMAP_IOCTL_OP_OUT(QUERY_MAPPED, iopfmap_query_mapped,
			     struct iopfmap_query_mapped, out_mapped_pages,
			     IOPFMAP_QUERY_IOPT),
	IOPFMAP_IOCTL_OP_OUT(SIM_CREATE, iopfmap_sim_create,
			     struct iopfmap_sim_create, out_iova_last,
			     IOPFMAP_SIM_NESTED),
	IOPFMAP_IOCTL_OP_OUT(SIM_DMA, iopfmap_sim_dma, struct iopfmap_sim_dma,
			     out_iotlb_misses,
			     IOPFMAP_SIM_DMA_WRITE | IOPFMAP_SIM_DMA_PASID),
	IOPFMAP_IOCTL_OP_OUT(SIM_PAGE_REQUEST, iopfmap_sim_page_request,
			     struct iopfmap_sim_page_request, __reserved,
			     IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE |
			     IOPFMAP_PRQ_PASID | IOPFMAP_PRQ_LAST),
	IOPFMAP_IOCTL_OP(SIM_S1_MAP, iopfmap_sim_s1_map,
			 struct iopfmap_sim_s1_map, length,
			 IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE),
	IOPFMAP_IOCTL_OP_OUT(SIM_S1_UNMAP, iopfmap_sim_s1_unmap,
			     struct iopfmap_sim_s1_unmap, out_unmapped, 0),
	IOPFMAP_IOCTL_OP_OUT(DEVICE_ATTACH, iopfmap_device_attach,
			     struct iopfmap_device_attach, out_iova_last,
			     IOPFMAP_ATTACH_OWN_DOMAIN |
			     IOPFMAP_ATTACH_REQUIRE_IOPF |
			     IOPFMAP_ATTACH_PASID),
	IOPFMAP_IOCTL_OP(DEVICE_DETACH, iopfmap_device_detach,
			 struct iopfmap_device_detach, __reserved, 0),
	IOPFMAP_IOCTL_OP_OUT(QUEUE_ALLOC, iopfmap_queue_alloc,
			     struct iopfmap_queue_alloc, out_features,
			     IOPFMAP_QUEUE_NONBLOCK),
	IOPFMAP_IOCTL_OP_OUT(SIM_GET_STATS, iopfmap_sim_get_stats,
			     struct iopfmap_sim_stats, out_withdrawn, 0),
};

/* The commands of a queue fd. */
static const struct iopfmap_ioctl_op iopfmap_queue_ioctl_ops[] = {
	IOPFMAP_IOCTL_OP_OUT(QUEUE_GET_INFO, iopfmap_queue_get_info,
			     struct iopfmap_queue_info, out_refused, 0),
};

static long iopfmap_ioctl_dispatch(const struct iopfmap_ioctl_op *ops,
				   unsigned int nr_ops,
				   struct iopfmap_ucmd *ucmd, unsigned int cmd)
{
	struct iopfmap_cmd_header *header = ucmd->cmd;
	const struct iopfmap_ioctl_op *op;
	unsigned int nr = _IOC_NR(cmd);
	int ret;

	if (_IOC_TYPE(cmd) != IOPFMAP_TYPE || nr < IOPFMAP_CMD_BASE ||
	    nr - IOPFMAP_CMD_BASE >= nr_ops)
		return -ENOTTY;
	op = &ops[nr - IOPFMAP_CMD_BASE];
	if (!op->execute || op->ioctl_num != cmd)
		return -ENOTTY;

	if (get_user(ucmd->user_size, (u32 __user *)ucmd->ubuffer))
		return -EFAULT;
	if (ucmd->user_size < op->min_size)
		return -EINVAL;
	ret = copy_struct_from_user(ucmd->cmd, op->size, ucmd->ubuffer,
				    ucmd->user_size);
	if (ret)
		return ret;
	if (header->flags & ~op->valid_flags)
		return -EOPNOTSUPP;
	/*
	 * A command that fails changes nothing: one whose results could not
	 * be written back (the struct in read-only memory) fails before it
	 * acts. What is written is what was read.
	 */
	if (op->out && iopfmap_ucmd_respond(ucmd, op->size))
		return -EFAULT;

	return op->execute(ucmd);
}

static long iopfmap_fops_ioctl(struct file *filp, unsigned int cmd,
			       unsigned long arg)
{
	union iopfmap_ucmd_buffer buf;
	struct iopfmap_ucmd ucmd = {
		.ctx = filp->private_data,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};

	return iopfmap_ioctl_dispatch(iopfmap_ioctl_ops,
				      ARRAY_SIZE(iopfmap_ioctl_ops), &ucmd,
				      cmd);
}

long iopfmap_queue_ioctl(struct iopfmap_queue *queue, unsigned int cmd,
			 unsigned long arg)
{
	union iopfmap_ucmd_buffer buf;
	struct iopfmap_ucmd ucmd = {
		.queue = queue,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};

	return iopfmap_ioctl_dispatch(iopfmap_queue_ioctl_ops,
				      ARRAY_SIZE(iopfmap_queue_ioctl_ops),
				      &ucmd, cmd);
}

static const struct file_operations iopfmap_fops = {
	.owner = THIS_MODULE,
	.open = iopfmap_fops_open,
	.release = iopfmap_fops_release,
	.unlocked_ioctl = iopfmap_fops_ioctl,
	/* Command structs have one layout for 32- and 64-bit callers. */
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice iopfmap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "iopfmap",
	.fops = &iopfmap_fops,
	.mode = 0600,
};

static int __init iopfmap_init(void)
{
	int ret;

	/* Events may be sent as soon as a context exists. */
	ret = iopfmap_netlink_init();
	if (ret)
		return ret;
	ret = iopfmap_devices_init();
	if (ret)
		goto err_netlink;
	ret = misc_register(&iopfmap_misc);
	if (ret)
		goto err_devices;
	return 0;

err_devices:
	iopfmap_devices_exit();
err_netlink:
	iopfmap_netlink_exit();
	return ret;
}

static void __exit iopfmap_exit(void)
{
	misc_deregister(&iopfmap_misc);
	iopfmap_devices_exit();
	iopfmap_netlink_exit();
	/* Closed queues are freed by an RCU callback in this module. */
	rcu_barrier();
}

module_init(iopfmap_init);
module_exit(iopfmap_exit);

MODULE_DESCRIPTION("Fault-driven DMA mapping through the IOMMU");
MODULE_LICENSE("GPL");
MODULE_VERSION(IOPFMAP_VERSION);
