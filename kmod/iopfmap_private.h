/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfmap internals: the objects, who owns them, and which lock protects
 * what. docs/design.md tells the same story for readers of the code.
 *
 * Objects and lifetimes
 *
 *   module       /dev/iopfmap is registered last in module init and
 *                deregistered first in exit, so no context can be opened
 *                on a half-initialized module. An open file pins the
 *                module through fops->owner.
 *   context      (struct iopfmap_ctx) one per open() of /dev/iopfmap,
 *                owned by the struct file: allocated in open(), freed in
 *                release(). ioctls run with the file referenced, so a
 *                context never disappears under a running command.
 *
 * Locks, in the order they nest (outermost first)
 *
 *   ctx->lock    mutex; serializes commands that change the context's
 *                configuration. Never taken on the fault path.
 *
 * No lock is global: two contexts never contend.
 */
#ifndef IOPFMAP_PRIVATE_H
#define IOPFMAP_PRIVATE_H

#include <linux/mutex.h>
#include <linux/types.h>
#include <uapi/linux/iopfmap.h>

/* The IOPFMAP_FEATURE_* bits this module implements (IOPFMAP_GET_INFO). */
#define IOPFMAP_FEATURES_SUPPORTED 0ULL

struct iopfmap_ctx {
	struct mutex lock;	/* see "Locks" above */
};

/* One ioctl call in flight: the caller's struct, copied in and checked. */
struct iopfmap_ucmd {
	struct iopfmap_ctx *ctx;
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

/* The fields every command struct starts with (see the uapi DOC block). */
struct iopfmap_cmd_header {
	__u32 size;
	__u32 flags;
};

int iopfmap_ucmd_respond(struct iopfmap_ucmd *ucmd, size_t cmd_len);

#endif /* IOPFMAP_PRIVATE_H */
