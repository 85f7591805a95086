/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * iopfmap: fault-driven DMA mapping for devices that translate through an
 * IOMMU. This is the userspace ABI of /dev/iopfmap.
 */
#ifndef _UAPI_LINUX_IOPFMAP_H
#define _UAPI_LINUX_IOPFMAP_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: General ioctl format
 *
 * Every open of /dev/iopfmap is a context. Commands are issued with ioctl()
 * on the context's file descriptor. Each command takes a pointer to a
 * struct that starts with two __u32 fields:
 *
 *  - @size: sizeof() of the struct as the caller's header defines it. The
 *    kernel reads that many bytes and never more. A newer kernel that knows
 *    a larger struct treats the missing tail as zero, so old binaries keep
 *    working. An older kernel that knows a smaller struct accepts the extra
 *    tail only if every byte of it is zero.
 *  - @flags: modifiers of the command. A flag the kernel does not know is
 *    refused, never ignored.
 *
 * Fields named __reserved must be zero. Fields prefixed ``out_`` are
 * written by the kernel; the kernel copies back at most @size bytes and
 * leaves anything past its own struct size untouched. Structs have no
 * implicit padding, pointers are passed in __aligned_u64 fields, and no
 * enums or bitfields appear in them, so the layout is the same for 32-bit
 * and 64-bit callers.
 *
 * Errors common to all commands; a command that fails with one of them has
 * changed nothing:
 *
 *  - ENOTTY: the ioctl number is not an iopfmap command known to this
 *    kernel. Check IOPFMAP_GET_INFO first.
 *  - EFAULT: the struct, or memory it points to, cannot be accessed.
 *  - EINVAL: @size is smaller than the smallest struct the command has ever
 *    had, or a field holds a value that is invalid for the command.
 *  - E2BIG: @size is larger than the kernel's struct and a byte past the
 *    kernel's struct is not zero: the caller asks for something this kernel
 *    does not know.
 *  - EOPNOTSUPP: @flags has a bit this kernel does not know, or a
 *    __reserved field is not zero.
 *  - ENOMEM: the kernel could not allocate memory for the command.
 *
 * Each command documents the further errnos it can return.
 *
 * The device node is created with mode 0600 (root only): a context can
 * make a device write to memory, so giving other users access is an
 * administrator's decision (a udev rule).
 */

/* The ioctl "type" byte of iopfmap; unassigned in ioctl-number.rst. */
#define IOPFMAP_TYPE 0xE7

enum {
	IOPFMAP_CMD_BASE = 0x80,
	IOPFMAP_CMD_GET_INFO = IOPFMAP_CMD_BASE,
};

/*
 * IOPFMAP_ABI_VERSION changes only on an incompatible change of this ABI,
 * which the size/flags rules above are designed to avoid. Additions are
 * announced with feature bits instead.
 */
#define IOPFMAP_ABI_VERSION 1

/*
 * Feature bits reported in iopfmap_info.out_features. Each later addition
 * of the ABI gets a bit here; userspace tests the bit before using it.
 * IOPFMAP_FEATURES_KNOWN is the union of the bits this header defines.
 */
#define IOPFMAP_FEATURES_KNOWN 0ULL

/**
 * struct iopfmap_info - ioctl(IOPFMAP_GET_INFO)
 * @size: sizeof(struct iopfmap_info)
 * @flags: must be 0
 * @out_abi_version: IOPFMAP_ABI_VERSION of the running module
 * @__reserved: must be 0
 * @out_features: IOPFMAP_FEATURE_* bits that this module supports
 * @out_pgsize_bitmap: the page sizes that the context's IO page table can
 *                     map with one entry; bit N set means 2^N bytes. With
 *                     no device attached this is the base page size.
 *
 * Reports what the module supports, so that userspace can discover
 * features before using them. It never fails on a valid struct.
 */
struct iopfmap_info {
	__u32 size;
	__u32 flags;
	__u32 out_abi_version;
	__u32 __reserved;
	__aligned_u64 out_features;
	__aligned_u64 out_pgsize_bitmap;
};

#define IOPFMAP_GET_INFO _IO(IOPFMAP_TYPE, IOPFMAP_CMD_GET_INFO)

#endif /* _UAPI_LINUX_IOPFMAP_H */
