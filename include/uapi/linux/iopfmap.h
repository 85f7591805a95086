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
 *  - EFAULT: the struct, or memory it points to, cannot be accessed. A
 *    command with ``out_`` fields checks that it can write its struct
 *    back before it acts (it writes back what it read), so a struct in
 *    read-only memory fails at once and changes nothing. Only a caller
 *    that makes the struct unwritable while the command runs can see
 *    EFAULT after the work is done; DEVICE_ATTACH then undoes the attach.
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
	IOPFMAP_CMD_MAP,
	IOPFMAP_CMD_UNMAP,
	IOPFMAP_CMD_SET_MODE,
	IOPFMAP_CMD_GET_STATS,
	IOPFMAP_CMD_QUERY_MAPPED,
	IOPFMAP_CMD_SIM_CREATE,
	IOPFMAP_CMD_SIM_DMA,
	IOPFMAP_CMD_SIM_PAGE_REQUEST,
	IOPFMAP_CMD_SIM_S1_MAP,
	IOPFMAP_CMD_SIM_S1_UNMAP,
	IOPFMAP_CMD_DEVICE_ATTACH,
	IOPFMAP_CMD_DEVICE_DETACH,
	IOPFMAP_CMD_QUEUE_ALLOC,
	IOPFMAP_CMD_QUEUE_GET_INFO,
	IOPFMAP_CMD_SIM_GET_STATS,
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
 *
 * IOPFMAP_FEATURE_MAP: MAP, UNMAP, SET_MODE, GET_STATS and QUERY_MAPPED.
 * IOPFMAP_FEATURE_SIM: the simulated device (the SIM_* commands). The
 * module offers it only when loaded with the parameter sim=1.
 * IOPFMAP_FEATURE_DEVICE: DEVICE_ATTACH and DEVICE_DETACH: real devices
 * behind the kernel's IOMMU layer.
 * IOPFMAP_FEATURE_HW_IOPF: on this kernel the IOMMU drivers deliver the
 * I/O page faults of an attached device's requester ID (PCIe PRI without
 * a PASID, SMMU stall), and they reach iopfmap. Without it, an attached
 * device's page requests never reach iopfmap: only PIN ranges, or a
 * driver that raises software page requests (docs/kernel-apis.md), make
 * its DMA work. Not reported on x86 before 7.0: VT-d answers each such
 * request INVALID itself, AMD-Vi reports only PASID-tagged ones.
 * IOPFMAP_FEATURE_CORE_FAULTS: page requests that the IOMMU core reports
 * for an attached device's requester ID reach iopfmap, whichever driver
 * reports them (6.1: a per-device fault handler; 6.9 and later: domains
 * attached with an attach handle). iopfmap answers each group once
 * through the core.
 * IOPFMAP_FEATURE_PASID_ATTACH: DEVICE_ATTACH with IOPFMAP_ATTACH_PASID
 * attaches the context's IO page table to a device at a PASID, and the
 * page requests that carry it reach iopfmap (6.12 and later:
 * iommu_attach_device_pasid()).
 * IOPFMAP_FEATURE_QUEUE: fault queues (QUEUE_ALLOC, QUEUE_GET_INFO, the
 * fault queue fd), range ids from MAP, context ids from GET_INFO, and
 * SIM_GET_STATS.
 */
#define IOPFMAP_FEATURE_MAP	(1ULL << 0)
#define IOPFMAP_FEATURE_SIM	(1ULL << 1)
#define IOPFMAP_FEATURE_DEVICE	(1ULL << 2)
#define IOPFMAP_FEATURE_HW_IOPF	(1ULL << 3)
#define IOPFMAP_FEATURE_QUEUE	(1ULL << 4)
#define IOPFMAP_FEATURE_CORE_FAULTS	(1ULL << 5)
#define IOPFMAP_FEATURE_PASID_ATTACH	(1ULL << 6)
#define IOPFMAP_FEATURES_KNOWN	(IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_SIM | \
				 IOPFMAP_FEATURE_DEVICE | \
				 IOPFMAP_FEATURE_HW_IOPF | \
				 IOPFMAP_FEATURE_QUEUE | \
				 IOPFMAP_FEATURE_CORE_FAULTS | \
				 IOPFMAP_FEATURE_PASID_ATTACH)

/* iopfmap_info.out_iopt_type: what translates the context's IOVAs. */
#define IOPFMAP_IOPT_NONE	0	/* nothing yet: MAP fails with ENODEV */
#define IOPFMAP_IOPT_SIM	1	/* the simulated device's own table */
#define IOPFMAP_IOPT_DOMAIN	2	/* IOMMU domains of attached devices */

/**
 * struct iopfmap_info - ioctl(IOPFMAP_GET_INFO)
 * @size: sizeof(struct iopfmap_info)
 * @flags: must be 0
 * @out_abi_version: IOPFMAP_ABI_VERSION of the running module
 * @__reserved: must be 0
 * @out_features: IOPFMAP_FEATURE_* bits that this module supports
 * @out_pgsize_bitmap: the sizes of the entries iopfmap makes in the
 *                     context's IO page table: the base page and, where
 *                     every domain (or the simulated device) has them,
 *                     2 MiB; bit N set means 2^N bytes. With no IO page
 *                     table this is the base page size.
 * @out_iopt_type: IOPFMAP_IOPT_* of the context's IO page table
 * @__reserved2: must be 0
 * @out_iova_start: first IOVA the IO page table can translate
 * @out_iova_last: last IOVA it can translate (inclusive); 0 with no table.
 *                 With devices attached, the aperture is the intersection
 *                 of their domains' apertures.
 * @out_ctx_id: the context's id, as fault records, tracepoints and iopfctl
 *              name it; never 0 (with IOPFMAP_FEATURE_QUEUE)
 * @__reserved3: must be 0
 *
 * Reports what the module supports, so that userspace can discover
 * features before using them, and what the context's IO page table can
 * hold. It never fails on a valid struct. Callers built against the first
 * version of the struct (up to @out_pgsize_bitmap) get that part only.
 */
struct iopfmap_info {
	__u32 size;
	__u32 flags;
	__u32 out_abi_version;
	__u32 __reserved;
	__aligned_u64 out_features;
	__aligned_u64 out_pgsize_bitmap;
	__u32 out_iopt_type;
	__u32 __reserved2;
	__aligned_u64 out_iova_start;
	__aligned_u64 out_iova_last;
	__u32 out_ctx_id;
	__u32 __reserved3;
};

#define IOPFMAP_GET_INFO _IO(IOPFMAP_TYPE, IOPFMAP_CMD_GET_INFO)

/**
 * DOC: Ranges
 *
 * A range makes [@iova, @iova + @length) of the context's IO page table
 * translate to the same-sized window of the calling process's virtual
 * memory at @vaddr. A FAULT range (the default) pins nothing and is not
 * charged to RLIMIT_MEMLOCK: a page enters the IO page table when the
 * device faults on it and leaves it as soon as the CPU's page tables change
 * (munmap, MADV_DONTNEED, mprotect, copy-on-write, migration, reclaim,
 * THP split, KSM merge). A PIN range is classic VFIO: every page is pinned
 * (FOLL_LONGTERM), charged to the caller's locked_vm and mapped at once;
 * the device keeps the pinned pages whatever the CPU does.
 *
 * Ranges never overlap in IOVA. Ranges of different processes (a context
 * fd passed to another process) can share a context: each range belongs
 * to the address space of the process that created it.
 *
 * UNMAP removes whole ranges only. It never splits one: a span that cuts a
 * range fails with EINVAL and unmaps nothing.
 *
 * A fault succeeds whenever the CPU page behind the faulting IOVA allows
 * the access: the prefetch window is best effort (a page of it without a
 * VMA or without the permission shrinks it to the faulting page). A
 * fault snapshots the CPU's page tables and maps only if no invalidation
 * of the range ran meanwhile; it tries again otherwise, at most
 * IOPFMAP_FAULT_RETRIES_MAX times, then answers INVALID, so a device
 * never waits through an endless storm of invalidations. The limit counts
 * attempts, not time: a slow host never turns a fault that can be
 * resolved into INVALID.
 *
 * Pages leave the IO page table only when the CPU's page tables change,
 * at UNMAP, at a mode switch, when the last device of the context is
 * detached (FAULT ranges), and, for a page the device may now write that
 * sits in a read-only 2 MiB entry, as that entry is replaced by a
 * writable one (the fault that asks maps the whole block again).
 */

/* A fault's attempts against invalidations before it answers INVALID. */
#define IOPFMAP_FAULT_RETRIES_MAX	1024

/* iopfmap_map.flags */
#define IOPFMAP_MAP_READ	(1U << 0)	/* the device may read */
#define IOPFMAP_MAP_WRITE	(1U << 1)	/* the device may write */
#define IOPFMAP_MAP_PIN		(1U << 2)	/* pin and map everything now */
#define IOPFMAP_MAP_FORWARD	(1U << 3)	/* faults go to userspace */

/* The largest prefetch window: one 2 MiB block of 4 KiB pages. */
#define IOPFMAP_PREFETCH_MAX	512

/* The longest range, in bytes: 16 TiB (its bitmaps take 128 MiB each). */
#define IOPFMAP_MAP_LENGTH_MAX	(1ULL << 44)

/**
 * struct iopfmap_map - ioctl(IOPFMAP_MAP)
 * @size: sizeof(struct iopfmap_map)
 * @flags: IOPFMAP_MAP_READ and/or IOPFMAP_MAP_WRITE (at least one),
 *         optionally IOPFMAP_MAP_PIN or IOPFMAP_MAP_FORWARD (not both)
 * @iova: first IOVA of the range, page aligned
 * @vaddr: the calling process's address that @iova translates to, page
 *         aligned
 * @length: bytes, page aligned, not 0
 * @prefetch_pages: 0 or 1: a fault maps the faulting page only; otherwise
 *                  a power of two up to IOPFMAP_PREFETCH_MAX: a fault maps
 *                  the window of that many pages around it, aligned in
 *                  IOVA space to its own size and clipped to the range,
 *                  faulting the CPU pages in
 * @__reserved: must be 0
 * @out_range_id: the range's id in the context, as fault records name it;
 *                never 0 (with IOPFMAP_FEATURE_QUEUE)
 * @__reserved2: must be 0
 *
 * Creates a range (see "Ranges"). With IOPFMAP_MAP_FORWARD the kernel asks
 * userspace before it resolves a fault on the range: the page request
 * group goes to the context's fault queue (see "Fault queues"), and only a
 * SUCCESS response makes the kernel map the pages, as for any range, and
 * answer the device. While the context has no fault queue, such faults
 * are answered INVALID.
 *
 * Errors:
 *  - ENODEV: the context has no IO page table yet (IOPFMAP_SIM_CREATE).
 *  - EINVAL: no permission, PIN with FORWARD, an address or the length
 *    not page aligned, zero length or longer than IOPFMAP_MAP_LENGTH_MAX,
 *    the IOVA or VA span wraps around, or @prefetch_pages is not 0 or a
 *    power of two up to the maximum.
 *  - ERANGE: the IOVA span is not inside the IO page table's aperture
 *    (see iopfmap_info).
 *  - EADDRINUSE: the IOVA span overlaps a reserved region of an attached
 *    device's IOMMU group (an MSI window, an RMRR; the group's
 *    reserved_regions file in sysfs lists them).
 *  - EEXIST: the IOVA span overlaps an existing range.
 *  - EFAULT: the VA span is not a user address range; for PIN, a page of
 *    it is not mapped or lacks the permission.
 *  - ENOMEM: PIN beyond RLIMIT_MEMLOCK (without CAP_IPC_LOCK), or out of
 *    memory.
 */
struct iopfmap_map {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 vaddr;
	__aligned_u64 length;
	__u32 prefetch_pages;
	__u32 __reserved;
	__u32 out_range_id;
	__u32 __reserved2;
};

#define IOPFMAP_MAP _IO(IOPFMAP_TYPE, IOPFMAP_CMD_MAP)

/* iopfmap_unmap.flags */
#define IOPFMAP_UNMAP_ALL	(1U << 0)	/* all; iova and length 0 */

/**
 * struct iopfmap_unmap - ioctl(IOPFMAP_UNMAP)
 * @size: sizeof(struct iopfmap_unmap)
 * @flags: 0 or IOPFMAP_UNMAP_ALL
 * @iova: page aligned start of the span
 * @length: page aligned length of the span, not 0
 * @out_unmapped: total length of the ranges removed
 *
 * Removes every range that lies inside [@iova, @iova + @length): its pages
 * leave the IO page table (the device can no longer reach them when the
 * call returns), PIN ranges are unpinned and uncharged.
 *
 * Errors:
 *  - EINVAL: misaligned, zero length, wraps around, or a range crosses an
 *    end of the span (ranges are never split); IOPFMAP_UNMAP_ALL with a
 *    non-zero @iova or @length.
 *  - ENOENT: no range lies inside the span (with IOPFMAP_UNMAP_ALL: the
 *    context has no range).
 */
struct iopfmap_unmap {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 out_unmapped;
};

#define IOPFMAP_UNMAP _IO(IOPFMAP_TYPE, IOPFMAP_CMD_UNMAP)

/* iopfmap_set_mode.mode */
#define IOPFMAP_MODE_FAULT	0
#define IOPFMAP_MODE_PIN	1

/**
 * struct iopfmap_set_mode - ioctl(IOPFMAP_SET_MODE)
 * @size: sizeof(struct iopfmap_set_mode)
 * @flags: must be 0
 * @iova: the first IOVA of the range
 * @mode: IOPFMAP_MODE_FAULT or IOPFMAP_MODE_PIN
 * @__reserved: must be 0
 *
 * Switches a range between map-on-fault and pinned. To PIN: the pages are
 * pinned, charged and mapped as for IOPFMAP_MAP with IOPFMAP_MAP_PIN. To
 * FAULT: every page leaves the IO page table, is unpinned and uncharged;
 * later DMA faults pages back in. Asking for the current mode succeeds and
 * changes nothing.
 *
 * Errors:
 *  - ENOENT: no range starts at @iova.
 *  - EINVAL: unknown @mode, or PIN on a FORWARD range.
 *  - ENOMEM, EFAULT: as for IOPFMAP_MAP with IOPFMAP_MAP_PIN; the range
 *    stays in FAULT mode.
 */
struct iopfmap_set_mode {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__u32 mode;
	__u32 __reserved;
};

#define IOPFMAP_SET_MODE _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SET_MODE)

/* iopfmap_stats.flags */
#define IOPFMAP_STATS_RANGE	(1U << 0)	/* the range holding @iova */

/**
 * struct iopfmap_stats - ioctl(IOPFMAP_GET_STATS)
 * @size: sizeof(struct iopfmap_stats)
 * @flags: 0 for the whole context (including ranges since removed), or
 *         IOPFMAP_STATS_RANGE for one range
 * @iova: with IOPFMAP_STATS_RANGE, any IOVA inside the range; else 0
 * @out_faults: page requests that arrived
 * @out_faults_handled: of those, resolved by the kernel alone and
 *                      answered SUCCESS
 * @out_faults_invalid: of those, answered INVALID by the kernel alone
 *                      (outside every range, no permission, no CPU page)
 * @out_faults_forwarded: of those, in groups on FORWARD ranges: sent to
 *                        the fault queue (whatever it answered), or
 *                        answered INVALID for want of one. The three
 *                        outcomes add up to @out_faults.
 * @out_pages_mapped: base pages entered into the IO page table, faulted,
 *                    prefetched, in 2 MiB entries or pinned
 * @out_pages_prefetched: of those, mapped by a prefetch window around
 *                        another page's fault
 * @out_huge_mappings: 2 MiB IO page table entries created
 * @out_invalidations: CPU page table changes that overlapped a range
 * @out_invalidations_handled: of those, the ones that unmapped something
 * @out_pages_unmapped: base pages removed from the IO page table
 * @out_retries: fault resolutions restarted because the CPU page tables
 *               changed under them
 * @out_pages_pinned: base pages pinned now
 *
 * Counters only grow, except @out_pages_pinned. Errors: ENOENT (no range
 * holds @iova), EINVAL (non-zero @iova without IOPFMAP_STATS_RANGE).
 */
struct iopfmap_stats {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 out_faults;
	__aligned_u64 out_faults_handled;
	__aligned_u64 out_faults_invalid;
	__aligned_u64 out_faults_forwarded;
	__aligned_u64 out_pages_mapped;
	__aligned_u64 out_pages_prefetched;
	__aligned_u64 out_huge_mappings;
	__aligned_u64 out_invalidations;
	__aligned_u64 out_invalidations_handled;
	__aligned_u64 out_pages_unmapped;
	__aligned_u64 out_retries;
	__aligned_u64 out_pages_pinned;
};

#define IOPFMAP_GET_STATS _IO(IOPFMAP_TYPE, IOPFMAP_CMD_GET_STATS)

/* iopfmap_query_mapped.flags */
#define IOPFMAP_QUERY_IOPT	(1U << 0)	/* walk the IO page table */

/**
 * struct iopfmap_query_mapped - ioctl(IOPFMAP_QUERY_MAPPED)
 * @size: sizeof(struct iopfmap_query_mapped)
 * @flags: 0: report the ranges' iopf_mapped bitmaps; IOPFMAP_QUERY_IOPT:
 *         report which pages the IO page table translates
 * @iova: page aligned start of the span
 * @length: page aligned length of the span, not 0, at most 1 GiB
 * @bitmap: user pointer to (@length / page size + 63) / 64 __u64 words;
 *          bit N (bit N % 64 of word N / 64) is page @iova + N * page size
 * @out_mapped_pages: how many bits were set
 *
 * A snapshot: it is exact only while no DMA or CPU page table change runs
 * concurrently. Without IOPFMAP_QUERY_IOPT, pages outside every range read
 * as 0. Errors: EINVAL (misaligned, zero, too long, wraps), ERANGE (outside
 * the aperture), ENODEV (no IO page table).
 */
struct iopfmap_query_mapped {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 bitmap;
	__aligned_u64 out_mapped_pages;
};

#define IOPFMAP_QUERY_MAPPED _IO(IOPFMAP_TYPE, IOPFMAP_CMD_QUERY_MAPPED)

/**
 * DOC: Simulated device
 *
 * With the module parameter sim=1, a context can get a simulated device:
 * a DMA engine that translates IOVAs through its own software IO page
 * table (4 KiB and 2 MiB entries, aperture [0, 1 GiB)) and a small IOTLB.
 * On a miss it raises a page request into the same fault path a real
 * IOMMU feeds, waits for the response, retries after SUCCESS and fails
 * the DMA after INVALID. It exists to test and benchmark iopfmap without
 * PRI hardware; its commands fail with ENODEV without sim=1.
 *
 * In nested mode (IOPFMAP_SIM_NESTED) the engine translates through two
 * stages: a stage-1 table that userspace fills (IOPFMAP_SIM_S1_MAP, as a
 * guest's vIOMMU would), whose output addresses are the context's IOVAs,
 * then the context's IO page table (stage 2). A stage-2 miss is resolved
 * in the kernel; a stage-1 miss belongs to userspace. It goes to the
 * context's fault queue as a one-page group with IOPFMAP_RECORD_STAGE1
 * (see "Fault queues"): after SUCCESS the engine translates again, after
 * any other answer, or with no queue, the DMA ends with
 * IOPFMAP_SIM_DMA_S1_FAULT.
 */

/* iopfmap_sim_create.flags */
#define IOPFMAP_SIM_NESTED	(1U << 0)

/**
 * struct iopfmap_sim_create - ioctl(IOPFMAP_SIM_CREATE)
 * @size: sizeof(struct iopfmap_sim_create)
 * @flags: 0 or IOPFMAP_SIM_NESTED
 * @pgsize_bitmap: page sizes the software table may use: 0 for all it
 *                 supports (4 KiB and 2 MiB), else a subset including
 *                 4 KiB
 * @out_pgsize_bitmap: the page sizes it uses
 * @out_iova_last: last IOVA of its aperture; the first is 0
 *
 * Gives the context a simulated device whose table becomes the context's
 * IO page table. Errors: ENODEV (the module was loaded without sim=1),
 * EEXIST (the context already has an IO page table), EINVAL (a bad
 * @pgsize_bitmap).
 */
struct iopfmap_sim_create {
	__u32 size;
	__u32 flags;
	__aligned_u64 pgsize_bitmap;
	__aligned_u64 out_pgsize_bitmap;
	__aligned_u64 out_iova_last;
};

#define IOPFMAP_SIM_CREATE _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_CREATE)

/* iopfmap_sim_dma.flags */
#define IOPFMAP_SIM_DMA_WRITE	(1U << 0)	/* buffer -> memory */
#define IOPFMAP_SIM_DMA_PASID	(1U << 1)	/* tag requests with @pasid */

/* iopfmap_sim_dma.out_status */
#define IOPFMAP_SIM_DMA_OK		0	/* all @length bytes moved */
#define IOPFMAP_SIM_DMA_INVALID		1	/* a page request got INVALID */
#define IOPFMAP_SIM_DMA_S1_FAULT	2	/* nested: no stage-1 entry */
#define IOPFMAP_SIM_DMA_NO_PROGRESS	3	/* missed again after SUCCESS,
						 * too many times
						 */
#define IOPFMAP_SIM_DMA_FAILURE		4	/* a page request got FAILURE */

/**
 * struct iopfmap_sim_dma - ioctl(IOPFMAP_SIM_DMA)
 * @size: sizeof(struct iopfmap_sim_dma)
 * @flags: IOPFMAP_SIM_DMA_WRITE for a device write into memory (from
 *         @buffer), else a device read from memory (into @buffer);
 *         IOPFMAP_SIM_DMA_PASID to tag it with @pasid
 * @iova: first device address (any byte alignment)
 * @length: bytes to move, not 0, at most 64 MiB
 * @buffer: the caller's buffer of @length bytes
 * @pasid: the PASID, with IOPFMAP_SIM_DMA_PASID (20 bits)
 * @out_status: IOPFMAP_SIM_DMA_*; the ioctl itself succeeds whatever the
 *              device's outcome
 * @out_done: bytes moved before the DMA stopped
 * @out_fault_iova: with a status other than OK, the address it stopped at
 * @out_faults: page requests this DMA raised
 * @out_iotlb_misses: translations that missed the simulated IOTLB
 *
 * Runs the simulated DMA engine in the caller's thread. A page request it
 * raises is resolved before the engine goes on, as a device waits for
 * its page response; for a forwarded one that lasts until the fault
 * queue answers it. A fatal signal withdraws the request from the queue
 * (it is counted as withdrawn and never answered).
 *
 * Errors: ENODEV (no simulated device), EINVAL (zero
 * or too long @length, wraps around, a PASID of more than 20 bits, or a
 * non-zero @pasid without IOPFMAP_SIM_DMA_PASID), EFAULT (@buffer; the
 * device may already have moved part of the data), EINTR (a fatal signal
 * arrived).
 */
struct iopfmap_sim_dma {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 buffer;
	__u32 pasid;
	__u32 out_status;
	__aligned_u64 out_done;
	__aligned_u64 out_fault_iova;
	__u32 out_faults;
	__u32 out_iotlb_misses;
};

#define IOPFMAP_SIM_DMA _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_DMA)

/* iopfmap_sim_page_request.flags: the page request's PCIe fields */
#define IOPFMAP_PRQ_READ	(1U << 0)
#define IOPFMAP_PRQ_WRITE	(1U << 1)
#define IOPFMAP_PRQ_PASID	(1U << 2)	/* @pasid is valid */
#define IOPFMAP_PRQ_LAST	(1U << 3)	/* last request of the group */

/* Page response codes, as PCIe PRI defines them */
#define IOPFMAP_PAGE_RESP_SUCCESS	0
#define IOPFMAP_PAGE_RESP_INVALID	1
#define IOPFMAP_PAGE_RESP_FAILURE	0xf
/* Not a response: the group's last request has not arrived yet. */
#define IOPFMAP_PAGE_RESP_PENDING	0xffffffffU

/* Requests of a group the simulated device holds before its last one. */
#define IOPFMAP_PRQ_GROUP_MAX	32

/**
 * struct iopfmap_sim_page_request - ioctl(IOPFMAP_SIM_PAGE_REQUEST)
 * @size: sizeof(struct iopfmap_sim_page_request)
 * @flags: IOPFMAP_PRQ_*: READ and/or WRITE (at least one), PASID, LAST
 * @iova: the page address (low bits are ignored, as PRI does)
 * @pasid: with IOPFMAP_PRQ_PASID, the PASID (20 bits)
 * @grpid: page request group index (9 bits)
 * @out_response: IOPFMAP_PAGE_RESP_* for the whole group once the
 *                request with IOPFMAP_PRQ_LAST arrives; PENDING before
 * @__reserved: must be 0
 *
 * Makes the simulated device raise one raw page request, as PRI hardware
 * does. Requests without LAST wait for their group's last request; the
 * group is then answered once, SUCCESS only if every page was resolved.
 * Errors: ENODEV (no simulated device), EINVAL (no permission, @pasid or
 * @grpid out of range, a non-zero @pasid without IOPFMAP_PRQ_PASID),
 * EBUSY (more than IOPFMAP_PRQ_GROUP_MAX requests are waiting for their
 * group's last request).
 */
struct iopfmap_sim_page_request {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__u32 pasid;
	__u32 grpid;
	__u32 out_response;
	__u32 __reserved;
};

#define IOPFMAP_SIM_PAGE_REQUEST _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_PAGE_REQUEST)

/**
 * struct iopfmap_sim_s1_map - ioctl(IOPFMAP_SIM_S1_MAP)
 * @size: sizeof(struct iopfmap_sim_s1_map)
 * @flags: IOPFMAP_MAP_READ and/or IOPFMAP_MAP_WRITE (at least one)
 * @iova: stage-1 input address, page aligned
 * @ipa: stage-1 output address, a stage-2 IOVA, page aligned
 * @length: page aligned, not 0
 *
 * Fills the nested simulated device's stage-1 table with 4 KiB entries.
 * Errors: ENODEV (no nested simulated device), EINVAL (alignment, zero,
 * wrap, no permission), ERANGE (outside the aperture), EEXIST (a page of
 * the span already has an entry: nothing is changed).
 */
struct iopfmap_sim_s1_map {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 ipa;
	__aligned_u64 length;
};

#define IOPFMAP_SIM_S1_MAP _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_S1_MAP)

/**
 * struct iopfmap_sim_s1_unmap - ioctl(IOPFMAP_SIM_S1_UNMAP)
 * @size: sizeof(struct iopfmap_sim_s1_unmap)
 * @flags: must be 0
 * @iova: stage-1 input address, page aligned
 * @length: page aligned, not 0
 * @out_unmapped: bytes of the span that had an entry
 *
 * Clears stage-1 entries (and the simulated IOTLB). Errors: as
 * IOPFMAP_SIM_S1_MAP, except EEXIST.
 */
struct iopfmap_sim_s1_unmap {
	__u32 size;
	__u32 flags;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 out_unmapped;
};

#define IOPFMAP_SIM_S1_UNMAP _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_S1_UNMAP)

/**
 * DOC: Devices
 *
 * A context drives real devices through the kernel's IOMMU layer. ATTACH
 * takes a PCI device by its address, claims DMA ownership of its IOMMU
 * group (no kernel driver may be using the DMA API on any device of the
 * group; drivers that declare driver_managed_dma, such as vfio-pci, may
 * stay bound), gives the group an unmanaged paging domain and makes the
 * domains of the context's devices its IO page table: every range is
 * mapped in all of them. The first ATTACH fixes the IO page table's type
 * (IOPFMAP_IOPT_DOMAIN); a context with a simulated device cannot attach.
 *
 * Devices share one domain when the IOMMU driver allows it. With
 * IOPFMAP_ATTACH_OWN_DOMAIN a device gets a domain of its own (up to
 * IOPFMAP_DOMAINS_MAX per context), filled at once with what the
 * context's other domains map.
 *
 * The group's reserved regions become holes of the IOVA space: a MAP
 * over one fails with EADDRINUSE. ATTACH refuses a device whose reserved
 * regions or aperture would cut an existing range.
 *
 * A device whose IOMMU does not isolate its MSIs (no interrupt
 * remapping) could raise any interrupt by writing the MSI doorbell:
 * ATTACH refuses it with EPERM, as VFIO and iommufd do, unless the
 * module parameter allow_unsafe_interrupts is set. The flag
 * IOPFMAP_DEVICE_MSI_ISOLATED in @out_flags says which case it is.
 *
 * DETACH, and close() of the context, first stop the device's faults
 * reaching iopfmap, then answer those in flight, turn the device's bus
 * mastering off (PCI_COMMAND_MASTER: a DMA still running when the group
 * goes back to its default domain, an identity map on many hosts, must
 * not reach memory), then detach the group and release its DMA
 * ownership. The device's driver turns bus mastering on again before its
 * next DMA. Unmapped pages are unreachable by the device before the call
 * returns. A device that is removed (hot unplug, sysfs remove) while
 * attached is detached the same way first, with the netlink reason
 * "removed"; its id then names nothing (ENOENT).
 *
 * PASIDs (IOPFMAP_FEATURE_PASID_ATTACH): once a device is attached by
 * its requester ID, ATTACH with IOPFMAP_ATTACH_PASID attaches the same
 * domain at @pasid as well, as a device of its own id. DMA and page
 * requests tagged with that PASID then translate through the context's
 * ranges; the page requests are resolved like the others, answered with
 * their PASID, and forwarded records carry it (IOPFMAP_RECORD_PASID) and
 * the PASID attachment's id. DETACH of the PASID attachment's id
 * detaches that PASID only (bus mastering stays as it is); DETACH of the
 * requester-ID attachment, and removal of the device, detach its PASIDs
 * first.
 */

/* iopfmap_device_attach.flags */
#define IOPFMAP_ATTACH_OWN_DOMAIN	(1U << 0)	/* never share one */
#define IOPFMAP_ATTACH_REQUIRE_IOPF	(1U << 1)	/* need HW faults */
#define IOPFMAP_ATTACH_PASID		(1U << 2)	/* at @pasid */

/* PASIDs are 20 bits; 0 is the requester ID's (no PASID). */
#define IOPFMAP_PASID_MAX	((1U << 20) - 1)

/* iopfmap_device_attach.out_flags */
#define IOPFMAP_DEVICE_HW_IOPF	(1U << 0)	/* hardware faults reach us */
#define IOPFMAP_DEVICE_MSI_ISOLATED (1U << 1)	/* MSIs are remapped */
#define IOPFMAP_DEVICE_PASID	(1U << 2)	/* a PASID attachment */

/* Distinct IOMMU domains one context may hold. */
#define IOPFMAP_DOMAINS_MAX	4

/* Room for a PCI address "SSSS:BB:DD.F" and its NUL, with spare. */
#define IOPFMAP_DEVICE_NAME_MAX	32

/**
 * struct iopfmap_device_attach - ioctl(IOPFMAP_DEVICE_ATTACH)
 * @size: sizeof(struct iopfmap_device_attach)
 * @flags: IOPFMAP_ATTACH_* bits
 * @name: the PCI device's address as sysfs names it ("0000:00:02.0"),
 *        NUL-terminated
 * @out_dev_id: the device's id in the context, for IOPFMAP_DEVICE_DETACH;
 *              never 0
 * @out_flags: IOPFMAP_DEVICE_* bits: IOPFMAP_DEVICE_MSI_ISOLATED if the
 *             IOMMU isolates the device's MSIs; IOPFMAP_DEVICE_HW_IOPF if
 *             the IOMMU driver enabled I/O page faults for the device and
 *             they reach iopfmap: for a PASID attachment, the page
 *             requests tagged with its PASID (6.12 on x86 included, where
 *             the requester ID's get none); IOPFMAP_DEVICE_PASID for a
 *             PASID attachment
 * @out_pgsize_bitmap: page sizes of the device's domain, as its IOMMU
 *                     driver reports them (iopfmap uses only the base page
 *                     and 2 MiB of them: see iopfmap_info)
 * @out_iova_start: first IOVA of the device's domain's aperture
 * @out_iova_last: last IOVA of that aperture (inclusive)
 * @pasid: with IOPFMAP_ATTACH_PASID, the PASID to attach at (1 to
 *         IOPFMAP_PASID_MAX); else must be 0
 * @__reserved: must be 0
 *
 * Attaches a device to the context (see "Devices"), by its requester ID
 * or, with IOPFMAP_ATTACH_PASID, at a PASID; IOPFMAP_DEVICE_PASID in
 * @out_flags then says so.
 *
 * Errors:
 *  - ENODEV: no PCI device has that name, or it is not behind an IOMMU.
 *  - EINVAL: @name is not NUL-terminated within IOPFMAP_DEVICE_NAME_MAX.
 *  - EEXIST: the context has a simulated device.
 *  - EBUSY: a kernel driver uses the DMA API on a device of the group, or
 *    another owner (another context, VFIO, iommufd) has claimed it,
 *    including this context through another device of the same group.
 *  - ENOSPC: the device needs a domain of its own and the context holds
 *    IOPFMAP_DOMAINS_MAX already.
 *  - EADDRINUSE: a reserved region of the group overlaps a range.
 *  - ERANGE: a range lies outside the domain's aperture.
 *  - EOPNOTSUPP: IOPFMAP_ATTACH_REQUIRE_IOPF, and the device cannot raise
 *    I/O page faults, or this build cannot receive them (no
 *    IOPFMAP_FEATURE_HW_IOPF); or the IOMMU cannot keep the device's DMA
 *    cache coherent (IOMMU_CAP_CACHE_COHERENCY): iopfmap maps every page
 *    cacheable (IOMMU_CACHE), as VFIO and iommufd do.
 *  - EPERM: the IOMMU does not isolate the group's MSIs, and
 *    allow_unsafe_interrupts is not set.
 *  - EFAULT: the struct cannot be written back; nothing is attached.
 *  - With IOPFMAP_ATTACH_PASID: EOPNOTSUPP without
 *    IOPFMAP_FEATURE_PASID_ATTACH, or when the IOMMU driver attaches no
 *    paging domain at a PASID (AMD-Vi, virtio-iommu); EINVAL for a
 *    @pasid out of range, with IOPFMAP_ATTACH_OWN_DOMAIN, or a @pasid
 *    without the flag; ENOENT when the device is not attached to this
 *    context by its requester ID; EBUSY when it is attached at @pasid
 *    already.
 *  - EOPNOTSUPP: @__reserved is not 0.
 *  - Others from the IOMMU driver when it cannot allocate or attach a
 *    domain (ENOMEM, EINVAL).
 */
struct iopfmap_device_attach {
	__u32 size;
	__u32 flags;
	char name[IOPFMAP_DEVICE_NAME_MAX];
	__u32 out_dev_id;
	__u32 out_flags;
	__aligned_u64 out_pgsize_bitmap;
	__aligned_u64 out_iova_start;
	__aligned_u64 out_iova_last;
	__u32 pasid;
	__u32 __reserved;
};

#define IOPFMAP_DEVICE_ATTACH _IO(IOPFMAP_TYPE, IOPFMAP_CMD_DEVICE_ATTACH)

/**
 * struct iopfmap_device_detach - ioctl(IOPFMAP_DEVICE_DETACH)
 * @size: sizeof(struct iopfmap_device_detach)
 * @flags: must be 0
 * @dev_id: what IOPFMAP_DEVICE_ATTACH returned in out_dev_id
 * @__reserved: must be 0
 *
 * Detaches the device (see "Devices"). The ranges stay. When the last
 * device leaves, FAULT ranges are emptied (their pages fault in again
 * through the next device) and PIN ranges keep their pins, to be mapped
 * into the next device's domain at ATTACH. Errors: ENOENT (no device with
 * that id).
 */
struct iopfmap_device_detach {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 __reserved;
};

#define IOPFMAP_DEVICE_DETACH _IO(IOPFMAP_TYPE, IOPFMAP_CMD_DEVICE_DETACH)

/**
 * struct iopfmap_sim_stats - ioctl(IOPFMAP_SIM_GET_STATS)
 * @size: sizeof(struct iopfmap_sim_stats)
 * @flags: must be 0
 * @out_page_requests: page request groups the simulated device raised
 *                     (SIM_DMA misses of both stages, and
 *                     SIM_PAGE_REQUEST groups once their last request came)
 * @out_responses: page responses it received; equals @out_page_requests
 *                 whenever no DMA or page request is in flight
 * @out_resp_success: of those, SUCCESS
 * @out_resp_invalid: of those, INVALID
 * @out_resp_failure: of those, FAILURE
 * @out_withdrawn: groups the device gave up on (its caller got a fatal
 *                 signal while the fault queue held them): no response
 *
 * The simulated device's own view of its page requests, to check that
 * each was answered once. Errors: ENODEV (no simulated device).
 */
struct iopfmap_sim_stats {
	__u32 size;
	__u32 flags;
	__aligned_u64 out_page_requests;
	__aligned_u64 out_responses;
	__aligned_u64 out_resp_success;
	__aligned_u64 out_resp_invalid;
	__aligned_u64 out_resp_failure;
	__aligned_u64 out_withdrawn;
};

#define IOPFMAP_SIM_GET_STATS _IO(IOPFMAP_TYPE, IOPFMAP_CMD_SIM_GET_STATS)

/**
 * DOC: Fault queues
 *
 * A fault queue hands page request groups that the kernel does not
 * resolve by itself to userspace: groups that touch a FORWARD range, and
 * the simulated device's stage-1 misses (nested translation, where only
 * the guest can fill the table). IOPFMAP_QUEUE_ALLOC on a context returns
 * the queue's file descriptor; a context has at most one live queue. The
 * descriptor can be passed to another process (SCM_RIGHTS): whoever holds
 * it serves the context's faults, without access to the context itself.
 *
 * A group is delivered whole, as one fault record per page request,
 * struct iopfmap_fault_record, the last one flagged IOPFMAP_RECORD_LAST.
 * All records of a group carry the group's cookie. Userspace answers the
 * group once, with a struct iopfmap_fault_response naming the cookie and
 * a PCIe page response code: IOPFMAP_PAGE_RESP_SUCCESS or _INVALID. For a
 * FORWARD range, SUCCESS means "go ahead": the kernel then maps the
 * group's pages and answers the device with the outcome. For a stage-1
 * record, SUCCESS means the stage-1 entry now exists: the device
 * translates again. INVALID goes to the device as it is. FAILURE is
 * refused with EINVAL, as any other code: in PCIe it makes the function
 * turn its page requests off (a VF's are its PF's), which is not for a
 * queue's server to decide. The kernel never sends FAILURE either, so
 * the out_resp_failure counters stay 0.
 *
 * Exactly one answer reaches the device for every group:
 *
 *  - A response naming a cookie that was never delivered, was already
 *    answered, or was answered by the kernel meanwhile (timeout, close,
 *    detach) fails with ENOENT and changes nothing. An unknown code or a
 *    non-zero __reserved field fails with EINVAL.
 *  - When the queue's last descriptor is closed (the serving process
 *    exits or is killed), every group it holds, delivered or not, is
 *    answered INVALID. The context's next QUEUE_ALLOC gets a new queue.
 *  - A queue holds at most @depth groups (IOPFMAP_QUEUE_ALLOC). A group
 *    arriving at a full queue is answered INVALID at once and counted as
 *    an overflow.
 *  - With a timeout, a group not answered within @timeout_ms of its
 *    arrival is answered INVALID and counted. The default is no timeout
 *    for the simulated device's groups, whose waiter can be killed. A
 *    device's group (an attached device: PRI, or a driver's software page
 *    request) waits at most IOPFMAP_QUEUE_DEVICE_TIMEOUT_MS, whatever
 *    @timeout_ms says, and is then answered INVALID and counted as a
 *    timeout: a device never waits forever.
 *  - DETACH of a device, or close() of the context, answers that
 *    device's groups INVALID. A queue whose context is gone reads end of
 *    file, polls EPOLLHUP, and fails new uring commands with ENODEV.
 *
 * The descriptor is served in one of two ways, which can be mixed:
 *
 *  - read() returns whole groups only: as many whole groups as fit in the
 *    buffer, and EINVAL when even the next group does not fit (a buffer of
 *    IOPFMAP_FAULT_GROUP_MAX records always does). It blocks while the
 *    queue is empty, unless the descriptor is O_NONBLOCK (EAGAIN). poll()
 *    reports EPOLLIN while undelivered groups wait, and EPOLLOUT always.
 *    write() takes an array of whole struct iopfmap_fault_response; it
 *    returns the bytes of the responses it applied, stopping at the first
 *    refused one, whose errno it returns if it is the first. This works
 *    with epoll and with io_uring's READ and WRITE.
 *  - io_uring commands (IORING_OP_URING_CMD, as ublk does it), with a
 *    struct iopfmap_queue_fetch or struct iopfmap_queue_commit in the
 *    SQE's command area (16 bytes: any ring, no IORING_SETUP_SQE128
 *    needed). The queue has @depth slots. IOPFMAP_QUEUE_FETCH gives slot
 *    @slot a record buffer and arms it: the command completes when a group
 *    arrives, with the number of records written into the buffer as its
 *    result. IOPFMAP_QUEUE_COMMIT_AND_FETCH answers a group and re-arms a
 *    slot with the buffer it was given last, in one trip. Many armed slots
 *    let one io_uring_enter() move a batch. A command fails with: EINVAL
 *    (bad slot, buffer, flags, code, or COMMIT_AND_FETCH of a slot that
 *    never had a buffer), EBUSY (the slot is armed already), ENOENT (the
 *    cookie, as for write(): the slot is not armed), EFAULT (the records
 *    could not be written: the group goes back to the queue), ENODEV (the
 *    context is gone), ECANCELED (cancelled). Closing any descriptor of
 *    the queue (process exit included) cancels the commands the closing
 *    process armed. With IOPFMAP_QUEUE_FEAT_URING_CANCEL, io_uring also
 *    cancels them when their ring is torn down.
 *
 * Errors of QUEUE_ALLOC: EBUSY (the context has a live queue), EINVAL
 * (@depth above IOPFMAP_QUEUE_DEPTH_MAX), EMFILE/ENFILE (no descriptor).
 */

/* The largest page request group: one record per request. */
#define IOPFMAP_FAULT_GROUP_MAX		64

#define IOPFMAP_QUEUE_DEPTH_DEFAULT	256
#define IOPFMAP_QUEUE_DEPTH_MAX		4096

/* iopfmap_queue_alloc.flags */
#define IOPFMAP_QUEUE_NONBLOCK	(1U << 0)	/* the fd is O_NONBLOCK */

/* iopfmap_queue_alloc.out_features: how this kernel serves a queue */
#define IOPFMAP_QUEUE_FEAT_RW		(1U << 0)	/* read/write/poll */
#define IOPFMAP_QUEUE_FEAT_URING_CMD	(1U << 1)	/* FETCH, COMMIT */
#define IOPFMAP_QUEUE_FEAT_URING_CANCEL	(1U << 2)	/* ring teardown
							 * cancels
							 */

/**
 * struct iopfmap_queue_alloc - ioctl(IOPFMAP_QUEUE_ALLOC)
 * @size: sizeof(struct iopfmap_queue_alloc)
 * @flags: 0 or IOPFMAP_QUEUE_NONBLOCK
 * @depth: groups the queue holds, delivered or not; also its number of
 *         io_uring slots. 0 means IOPFMAP_QUEUE_DEPTH_DEFAULT.
 * @timeout_ms: answer a group INVALID this long after it arrived; 0: never
 * @out_fd: the queue's file descriptor (close-on-exec)
 * @out_features: IOPFMAP_QUEUE_FEAT_* bits
 *
 * Creates the context's fault queue (see "Fault queues").
 */
struct iopfmap_queue_alloc {
	__u32 size;
	__u32 flags;
	__u32 depth;
	__u32 timeout_ms;
	__s32 out_fd;
	__u32 out_features;
};

#define IOPFMAP_QUEUE_ALLOC _IO(IOPFMAP_TYPE, IOPFMAP_CMD_QUEUE_ALLOC)

/* iopfmap_queue_info.out_flags */
#define IOPFMAP_QUEUE_CTX_GONE	(1U << 0)	/* the context was closed */

/**
 * struct iopfmap_queue_info - ioctl(IOPFMAP_QUEUE_GET_INFO), on a queue fd
 * @size: sizeof(struct iopfmap_queue_info)
 * @flags: must be 0
 * @out_ctx_id: the context the queue serves (iopfmap_info.out_ctx_id)
 * @out_features: IOPFMAP_QUEUE_FEAT_* bits
 * @out_depth: the queue's depth
 * @out_timeout_ms: its timeout; 0: none
 * @out_pending: groups waiting to be delivered
 * @out_inflight: groups delivered and not answered yet
 * @out_flags: IOPFMAP_QUEUE_CTX_GONE
 * @__reserved: must be 0
 * @out_groups: groups that arrived, overflows included
 * @out_records: their page requests
 * @out_delivered: deliveries to userspace (a group handed back after a
 *                 failed copy is delivered again)
 * @out_resp_success: groups userspace answered SUCCESS
 * @out_resp_invalid: ... INVALID
 * @out_resp_failure: ... FAILURE
 * @out_timeouts: groups the timeout answered
 * @out_closed: groups answered because their device was detached or the
 *              context closed
 * @out_overflows: groups answered at once because the queue was full
 * @out_withdrawn: groups their device gave up on (no answer was due)
 * @out_refused: responses refused (unknown cookie or code)
 *
 * Arrived and answered are counted apart: at any time @out_groups equals
 * the sum of the answers, @out_withdrawn, @out_pending and @out_inflight.
 * Groups still held when the queue is closed are answered INVALID and not
 * counted anywhere: the queue is gone. Errors: ENOTTY on a context fd.
 */
struct iopfmap_queue_info {
	__u32 size;
	__u32 flags;
	__u32 out_ctx_id;
	__u32 out_features;
	__u32 out_depth;
	__u32 out_timeout_ms;
	__u32 out_pending;
	__u32 out_inflight;
	__u32 out_flags;
	__u32 __reserved;
	__aligned_u64 out_groups;
	__aligned_u64 out_records;
	__aligned_u64 out_delivered;
	__aligned_u64 out_resp_success;
	__aligned_u64 out_resp_invalid;
	__aligned_u64 out_resp_failure;
	__aligned_u64 out_timeouts;
	__aligned_u64 out_closed;
	__aligned_u64 out_overflows;
	__aligned_u64 out_withdrawn;
	__aligned_u64 out_refused;
};

#define IOPFMAP_QUEUE_GET_INFO _IO(IOPFMAP_TYPE, IOPFMAP_CMD_QUEUE_GET_INFO)

/* iopfmap_fault_record.flags */
#define IOPFMAP_RECORD_LAST	(1U << 0)	/* the group's last record */
#define IOPFMAP_RECORD_PASID	(1U << 1)	/* @pasid is valid */
#define IOPFMAP_RECORD_STAGE1	(1U << 2)	/* a stage-1 miss: @addr is a
						 * stage-1 input address
						 */

/**
 * struct iopfmap_fault_record - one page request, as read from a queue
 * @cookie: the group's cookie, for its response
 * @addr: the page address: an IOVA of the context, or with
 *        IOPFMAP_RECORD_STAGE1 the stage-1 input address that missed
 * @time_ns: when the request arrived (CLOCK_MONOTONIC)
 * @flags: IOPFMAP_RECORD_* bits
 * @perm: IOPFMAP_PRQ_READ and/or IOPFMAP_PRQ_WRITE: the access asked for
 * @pasid: with IOPFMAP_RECORD_PASID, the PASID
 * @grpid: the PCIe page request group index
 * @ctx_id: the context
 * @dev_id: the device: an id from IOPFMAP_DEVICE_ATTACH, or 0 for the
 *          simulated device
 * @range_id: the range holding @addr (IOPFMAP_MAP's out_range_id); 0 for
 *            a stage-1 record or an address outside every range
 * @__reserved: 0
 */
struct iopfmap_fault_record {
	__aligned_u64 cookie;
	__aligned_u64 addr;
	__aligned_u64 time_ns;
	__u32 flags;
	__u32 perm;
	__u32 pasid;
	__u32 grpid;
	__u32 ctx_id;
	__u32 dev_id;
	__u32 range_id;
	__u32 __reserved;
};

/* The longest a device's group waits in a fault queue (milliseconds). */
#define IOPFMAP_QUEUE_DEVICE_TIMEOUT_MS	5000

/**
 * struct iopfmap_fault_response - one answer, as written to a queue
 * @cookie: the group's cookie, from its records
 * @code: IOPFMAP_PAGE_RESP_SUCCESS or IOPFMAP_PAGE_RESP_INVALID (any other
 *        code, FAILURE included, is refused with EINVAL)
 * @__reserved: must be 0
 */
struct iopfmap_fault_response {
	__aligned_u64 cookie;
	__u32 code;
	__u32 __reserved;
};

/**
 * struct iopfmap_queue_fetch - the command of IOPFMAP_QUEUE_FETCH
 * @records: user address of the slot's buffer: @max_records records
 * @slot: the slot, below the queue's depth
 * @max_records: at least IOPFMAP_FAULT_GROUP_MAX
 * @flags: must be 0
 */
struct iopfmap_queue_fetch {
	__aligned_u64 records;
	__u16 slot;
	__u16 max_records;
	__u32 flags;
};

/**
 * struct iopfmap_queue_commit - the command of
 * IOPFMAP_QUEUE_COMMIT_AND_FETCH
 * @cookie: the group answered
 * @slot: the slot to re-arm with its last buffer
 * @code: the answer, IOPFMAP_PAGE_RESP_*
 * @flags: must be 0
 */
struct iopfmap_queue_commit {
	__aligned_u64 cookie;
	__u16 slot;
	__u16 code;
	__u32 flags;
};

/* io_uring command opcodes (sqe->cmd_op) of a queue fd */
#define IOPFMAP_QUEUE_FETCH \
	_IOWR(IOPFMAP_TYPE, 0xa0, struct iopfmap_queue_fetch)
#define IOPFMAP_QUEUE_COMMIT_AND_FETCH \
	_IOWR(IOPFMAP_TYPE, 0xa1, struct iopfmap_queue_commit)

#endif /* _UAPI_LINUX_IOPFMAP_H */
