/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the iopfmap selftests: the ioctl size-contract table,
 * ioctl wrappers that return 0 or -errno, checks of content and of the
 * mapped pages, module load/unload, and finding PCI devices in sysfs.
 *
 * Wrappers return -errno instead of setting errno so an assertion can
 * compare one value, and a failing assertion's log output cannot clobber
 * the errno being checked.
 */
#ifndef IOPFMAP_UTILS_H
#define IOPFMAP_UTILS_H

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/mempolicy.h>
#include <linux/iopfmap.h>
#include <linux/module.h>	/* MODULE_INIT_COMPRESSED_FILE */

#include "kselftest_harness.h"

#define IOPFMAP_DEV		"/dev/iopfmap"
#define IOPFMAP_MODNAME		"iopfmap"
#define IOPFMAP_SYSFS_MODULE	"/sys/module/" IOPFMAP_MODNAME
#define IOPFMAP_SYSFS_MISC	"/sys/class/misc/" IOPFMAP_MODNAME

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#ifndef offsetofend
#define offsetofend(TYPE, MEMBER) \
	(offsetof(TYPE, MEMBER) + sizeof(((TYPE *)0)->MEMBER))
#endif
/*
 * Automatic NUMA balancing unmaps a task's pages now and then to sample
 * where they are used: each time is a real invalidation, after which the
 * device re-faults. Tests that count faults, mappings or unmaps would see
 * extra ones, so every test program opts out when it starts: a task
 * policy without MPOL_F_MOF (here MPOL_LOCAL: allocate on the local node,
 * fall back to others) makes the scanner skip the task's memory
 * (vma_policy_mof()). Children inherit it. The one test that runs with
 * the scanner calls iopfmap_numa_balancing_scans_me().
 */
static void __attribute__((constructor)) iopfmap_numa_balancing_skips_me(void)
{
	syscall(SYS_set_mempolicy, MPOL_LOCAL, NULL, 0UL);
}

/* Back to the default policy, which the NUMA balancing scanner scans. */
static inline int iopfmap_numa_balancing_scans_me(void)
{
	return syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0UL) ? -errno : 0;
}

/* The PFN /proc/self/pagemap gives for @addr (needs root), 0 if none. */
static inline __u64 iopfmap_pagemap_pfn(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	__u64 ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent),
		  (uintptr_t)addr / page * sizeof(ent)) != sizeof(ent))
		ent = 0;
	close(fd);
	return ent & (1ULL << 63) ? ent & ((1ULL << 55) - 1) : 0;
}

/* As in the kernel: 0, or a build error if @e is true. */
#define IOPFMAP_BUILD_BUG_ON_ZERO(e) ((size_t)sizeof(struct { int:(-!!(e)); }))

/*
 * The size contract of one ioctl, as the module's dispatcher table has it:
 * @size is sizeof() the struct in this header, @min_size the end of the
 * last field of the struct's first published version, @valid_flags the
 * flags the command accepts.
 */
struct iopfmap_ioctl_desc {
	const char *name;
	unsigned long cmd;
	size_t size;
	size_t min_size;
	__u32 valid_flags;
	bool on_queue;		/* a command of a queue fd, not a context */
};

/*
 * Indexed by command number, like the module's table, so that
 * IOPFMAP_CMD_BASE + ARRAY_SIZE(iopfmap_ioctls) is the first number the
 * module does not know. Every struct must start with size and flags at
 * offsets 0 and 4: the contract test writes them there.
 */
#define IOPFMAP_IOCTL_DESC(_name, _struct, _last, _flags)			\
	[IOPFMAP_CMD_##_name - IOPFMAP_CMD_BASE] = {				\
		.name = "IOPFMAP_" #_name,					\
		.cmd = IOPFMAP_##_name,						\
		.size = sizeof(_struct) +					\
			IOPFMAP_BUILD_BUG_ON_ZERO(offsetof(_struct, size) != 0) + \
			IOPFMAP_BUILD_BUG_ON_ZERO(offsetof(_struct, flags) != 4), \
		.min_size = offsetofend(_struct, _last),			\
		.valid_flags = _flags,						\
	}

/*
 * Add every new command here, with one line; the size-contract test in
 * iopfmap_abi.c then covers it (size, trailing bytes, flags, bad pointers).
 */
static const struct iopfmap_ioctl_desc iopfmap_ioctls[] = {
	IOPFMAP_IOCTL_DESC(GET_INFO, struct iopfmap_info, out_pgsize_bitmap, 0),
	IOPFMAP_IOCTL_DESC(MAP, struct iopfmap_map, __reserved,
			   IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE |
			   IOPFMAP_MAP_PIN | IOPFMAP_MAP_FORWARD),
	IOPFMAP_IOCTL_DESC(UNMAP, struct iopfmap_unmap, out_unmapped,
			   IOPFMAP_UNMAP_ALL),
	IOPFMAP_IOCTL_DESC(SET_MODE, struct iopfmap_set_mode, __reserved, 0),
	IOPFMAP_IOCTL_DESC(GET_STATS, struct iopfmap_stats, out_pages_pinned,
			   IOPFMAP_STATS_RANGE),
	IOPFMAP_IOCTL_DESC(QUERY_MAPPED, struct iopfmap_query_mapped,
			   out_mapped_pages, IOPFMAP_QUERY_IOPT),
	IOPFMAP_IOCTL_DESC(SIM_CREATE, struct iopfmap_sim_create,
			   out_iova_last, IOPFMAP_SIM_NESTED),
	IOPFMAP_IOCTL_DESC(SIM_DMA, struct iopfmap_sim_dma, out_iotlb_misses,
			   IOPFMAP_SIM_DMA_WRITE | IOPFMAP_SIM_DMA_PASID),
	IOPFMAP_IOCTL_DESC(SIM_PAGE_REQUEST, struct iopfmap_sim_page_request,
			   __reserved, IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE |
			   IOPFMAP_PRQ_PASID | IOPFMAP_PRQ_LAST),
	IOPFMAP_IOCTL_DESC(SIM_S1_MAP, struct iopfmap_sim_s1_map, length,
			   IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE),
	IOPFMAP_IOCTL_DESC(SIM_S1_UNMAP, struct iopfmap_sim_s1_unmap,
			   out_unmapped, 0),
	IOPFMAP_IOCTL_DESC(DEVICE_ATTACH, struct iopfmap_device_attach,
			   out_iova_last, IOPFMAP_ATTACH_OWN_DOMAIN |
			   IOPFMAP_ATTACH_REQUIRE_IOPF | IOPFMAP_ATTACH_PASID),
	IOPFMAP_IOCTL_DESC(DEVICE_DETACH, struct iopfmap_device_detach,
			   __reserved, 0),
	IOPFMAP_IOCTL_DESC(QUEUE_ALLOC, struct iopfmap_queue_alloc,
			   out_features, IOPFMAP_QUEUE_NONBLOCK),
	[IOPFMAP_CMD_QUEUE_GET_INFO - IOPFMAP_CMD_BASE] = {
		.name = "IOPFMAP_QUEUE_GET_INFO",
		.cmd = IOPFMAP_QUEUE_GET_INFO,
		.size = sizeof(struct iopfmap_queue_info),
		.min_size = offsetofend(struct iopfmap_queue_info,
					out_refused),
		.on_queue = true,
	},
	IOPFMAP_IOCTL_DESC(SIM_GET_STATS, struct iopfmap_sim_stats,
			   out_withdrawn, 0),
};
#define IOPFMAP_NUM_IOCTLS ARRAY_SIZE(iopfmap_ioctls)

/* Whether the running kernel is @major.@minor or later. */
static inline bool iopfmap_kernel_at_least(unsigned int major,
					   unsigned int minor)
{
	unsigned int kmajor = 0, kminor = 0;
	struct utsname u;

	if (uname(&u) || sscanf(u.release, "%u.%u", &kmajor, &kminor) != 2)
		return false;
	return kmajor > major || (kmajor == major && kminor >= minor);
}

/* How messages name a simulated DMA's out_status. */
static inline __u64 iopfmap_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static inline void iopfmap_sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#define IOPFMAP_NOBODY	65534

/*
 * Becomes "nobody" with no capability left, for good (what an
 * unprivileged user can do): 0 or -errno.
 */
static inline int iopfmap_become_nobody(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) || setgroups(0, NULL) ||
	    setresgid(IOPFMAP_NOBODY, IOPFMAP_NOBODY, IOPFMAP_NOBODY) ||
	    setresuid(IOPFMAP_NOBODY, IOPFMAP_NOBODY, IOPFMAP_NOBODY))
		return -errno;
	/* Leaving uid 0 cleared them; check rather than trust it. */
	if (syscall(SYS_capget, &h, d))
		return -errno;
	return d[0].effective | d[0].permitted | d[1].effective |
	       d[1].permitted ? -EPERM : 0;
}

static inline const char *iopfmap_dma_status_name(__u32 status)
{
	switch (status) {
	case IOPFMAP_SIM_DMA_OK:
		return "OK";
	case IOPFMAP_SIM_DMA_INVALID:
		return "INVALID";
	case IOPFMAP_SIM_DMA_S1_FAULT:
		return "S1_FAULT";
	case IOPFMAP_SIM_DMA_NO_PROGRESS:
		return "NO_PROGRESS";
	case IOPFMAP_SIM_DMA_FAILURE:
		return "FAILURE";
	}
	return "?";
}

/* ioctl() as 0 (or the command's non-negative result) or -errno. */
static inline int _test_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* Issues GET_INFO on @info exactly as the caller filled it in. */
static inline int _test_cmd_get_info(int fd, struct iopfmap_info *info)
{
	return _test_ioctl(fd, IOPFMAP_GET_INFO, info);
}
#define test_cmd_get_info(fd, info) \
	ASSERT_EQ(0, _test_cmd_get_info(fd, info))
#define test_err_get_info(_errno, fd, info) \
	EXPECT_EQ(-(_errno), _test_cmd_get_info(fd, info))

/*
 * One wrapper trio per command, as for GET_INFO: _test_cmd_X() issues the
 * command on a struct the caller filled in (size set by the wrapper when
 * left 0) and returns 0 or -errno; test_cmd_X() asserts success;
 * test_err_X() expects an errno.
 */
#define IOPFMAP_CMD_WRAPPERS(_lname, _NAME, _struct)				\
static inline int _test_cmd_##_lname(int fd, _struct *cmd)			\
{										\
	if (!cmd->size)								\
		cmd->size = sizeof(*cmd);					\
	return _test_ioctl(fd, IOPFMAP_##_NAME, cmd);				\
}

IOPFMAP_CMD_WRAPPERS(map, MAP, struct iopfmap_map)
IOPFMAP_CMD_WRAPPERS(unmap, UNMAP, struct iopfmap_unmap)
IOPFMAP_CMD_WRAPPERS(set_mode, SET_MODE, struct iopfmap_set_mode)
IOPFMAP_CMD_WRAPPERS(get_stats, GET_STATS, struct iopfmap_stats)
IOPFMAP_CMD_WRAPPERS(query_mapped, QUERY_MAPPED, struct iopfmap_query_mapped)
IOPFMAP_CMD_WRAPPERS(sim_create, SIM_CREATE, struct iopfmap_sim_create)
IOPFMAP_CMD_WRAPPERS(sim_dma, SIM_DMA, struct iopfmap_sim_dma)
IOPFMAP_CMD_WRAPPERS(sim_page_request, SIM_PAGE_REQUEST,
		     struct iopfmap_sim_page_request)
IOPFMAP_CMD_WRAPPERS(sim_s1_map, SIM_S1_MAP, struct iopfmap_sim_s1_map)
IOPFMAP_CMD_WRAPPERS(sim_s1_unmap, SIM_S1_UNMAP, struct iopfmap_sim_s1_unmap)
IOPFMAP_CMD_WRAPPERS(device_attach, DEVICE_ATTACH, struct iopfmap_device_attach)
IOPFMAP_CMD_WRAPPERS(device_detach, DEVICE_DETACH, struct iopfmap_device_detach)

#define test_cmd(_lname, fd, cmd) ASSERT_EQ(0, _test_cmd_##_lname(fd, cmd))
#define test_err(_lname, _errno, fd, cmd) \
	EXPECT_EQ(-(_errno), _test_cmd_##_lname(fd, cmd))

/*
 * MAP of [iova, iova + len) to vaddr with flags and prefetch: 0 or -errno.
 * *@id (if given) gets the range's id, 0 on error.
 */
static inline int _test_map_id(int fd, __u64 iova, void *vaddr, __u64 len,
			       __u32 flags, __u32 prefetch, __u32 *id)
{
	struct iopfmap_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.iova = iova,
		.vaddr = (__u64)(unsigned long)vaddr,
		.length = len,
		.prefetch_pages = prefetch,
	};
	int ret = _test_cmd_map(fd, &cmd);

	if (id)
		*id = ret ? 0 : cmd.out_range_id;
	return ret;
}

static inline int _test_map(int fd, __u64 iova, void *vaddr, __u64 len,
			    __u32 flags, __u32 prefetch)
{
	return _test_map_id(fd, iova, vaddr, len, flags, prefetch, NULL);
}

/* UNMAP of [iova, iova + len): 0 or -errno. */
static inline int _test_unmap(int fd, __u64 iova, __u64 len)
{
	struct iopfmap_unmap cmd = {
		.size = sizeof(cmd),
		.iova = iova,
		.length = len,
	};

	return _test_cmd_unmap(fd, &cmd);
}

/*
 * DEVICE_ATTACH of the PCI device @name with @flags, at @pasid if @flags
 * has IOPFMAP_ATTACH_PASID: 0 or -errno; the out_ fields in *@out when it
 * is not NULL.
 */
static inline int _test_attach_pasid(int fd, const char *name, __u32 flags,
				     __u32 pasid,
				     struct iopfmap_device_attach *out)
{
	struct iopfmap_device_attach cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.pasid = pasid,
	};
	int ret;

	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	ret = _test_cmd_device_attach(fd, &cmd);
	if (out)
		*out = cmd;
	return ret;
}

/* DEVICE_ATTACH by requester ID, as above. */
static inline int _test_attach(int fd, const char *name, __u32 flags,
			       struct iopfmap_device_attach *out)
{
	return _test_attach_pasid(fd, name, flags, 0, out);
}

/* DEVICE_DETACH of @dev_id: 0 or -errno. */
static inline int _test_detach(int fd, __u32 dev_id)
{
	struct iopfmap_device_detach cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
	};

	return _test_cmd_device_detach(fd, &cmd);
}

/*
 * One simulated DMA: 0 or -errno from the ioctl; the device's outcome is
 * in dma->out_status.
 */
static inline int _test_sim_dma(int fd, struct iopfmap_sim_dma *dma,
				__u32 flags, __u64 iova, void *buf, __u64 len)
{
	memset(dma, 0, sizeof(*dma));
	dma->size = sizeof(*dma);
	dma->flags = flags;
	dma->iova = iova;
	dma->buffer = (__u64)(unsigned long)buf;
	dma->length = len;
	return _test_cmd_sim_dma(fd, dma);
}

/* Whole-context (iova == ~0ULL) or one range's counters: 0 or -errno. */
static inline int _test_stats(int fd, __u64 iova, struct iopfmap_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	if (iova != ~0ULL) {
		st->flags = IOPFMAP_STATS_RANGE;
		st->iova = iova;
	}
	return _test_cmd_get_stats(fd, st);
}

/*
 * Counters of the context (@iova == ~0ULL) or of the range holding @iova;
 * asserts that the command succeeds.
 */
static inline struct iopfmap_stats
iopfmap_get_stats(struct __test_metadata *_metadata, int fd, __u64 iova)
{
	struct iopfmap_stats st;
	int ret = _test_stats(fd, iova, &st);

	ASSERT_EQ(0, ret) TH_LOG("GET_STATS %#llx: %s",
				 (unsigned long long)iova, strerror(-ret));
	return st;
}

/* The module parameter sim=1 is needed for the simulated device. */
static inline bool iopfmap_sim_available(int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	return !_test_cmd_get_info(fd, &info) &&
	       (info.out_features & IOPFMAP_FEATURE_SIM);
}

/*
 * The core invariant: over [iova, iova + len) the ranges' iopf_mapped
 * bitmaps equal what the IO page table translates. Returns the number of
 * pages where they differ (0 when consistent), or -errno; *@mapped gets
 * the number of mapped pages when not NULL. @len is at most 1 GiB.
 */
static inline long iopfmap_bitmap_vs_iopt(int fd, __u64 iova, __u64 len,
					  long *mapped)
{
	size_t psz = sysconf(_SC_PAGESIZE), npages = len / psz;
	size_t words = (npages + 63) / 64, i;
	struct iopfmap_query_mapped q;
	__u64 *bits, *walk;
	long diff = 0;
	int ret;

	bits = calloc(words, sizeof(*bits));
	walk = calloc(words, sizeof(*walk));
	if (!bits || !walk) {
		free(bits);
		free(walk);
		return -ENOMEM;
	}
	q = (struct iopfmap_query_mapped){ .size = sizeof(q), .iova = iova,
		.length = len, .bitmap = (__u64)(unsigned long)bits };
	ret = _test_cmd_query_mapped(fd, &q);
	if (!ret) {
		if (mapped)
			*mapped = q.out_mapped_pages;
		q = (struct iopfmap_query_mapped){ .size = sizeof(q),
			.flags = IOPFMAP_QUERY_IOPT, .iova = iova,
			.length = len, .bitmap = (__u64)(unsigned long)walk };
		ret = _test_cmd_query_mapped(fd, &q);
	}
	for (i = 0; !ret && i < words; i++)
		diff += __builtin_popcountll(bits[i] ^ walk[i]);
	free(bits);
	free(walk);
	return ret ? ret : diff;
}

/*
 * Pages of [iova, iova + len) that the ranges' bitmaps hold; checks that
 * the IO page table (a simulated device's, or the devices' domains) holds
 * the same ones.
 */
static inline long mapped_in(struct __test_metadata *_metadata, int fd,
			     __u64 iova, __u64 len)
{
	long mapped = -1, diff;

	diff = iopfmap_bitmap_vs_iopt(fd, iova, len, &mapped);
	ASSERT_LE(0, diff) TH_LOG("QUERY_MAPPED %#llx+%#llx: %s",
				  (unsigned long long)iova,
				  (unsigned long long)len, strerror(-diff));
	EXPECT_EQ(0, diff)
		TH_LOG("%ld pages of %#llx+%#llx differ between the bitmap and the IO page table",
		       diff, (unsigned long long)iova, (unsigned long long)len);
	return mapped;
}

/* ---- content ---------------------------------------------------------- */

/*
 * Pattern @seed: a hash of each byte's offset and the seed, so that data
 * from another offset, another page or an older fill never matches.
 */
static inline void iopfmap_fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *b = p;
	__u64 x;
	size_t i;

	for (i = 0; i < len; i++) {
		x = (i + 1) * 0x9E3779B97F4A7C15ULL ^
		    (seed + 1) * 0xC2B2AE3D27D4EB4FULL;
		b[i] = (unsigned char)((x ^ (x >> 29)) >> 24);
	}
}

/* The first byte where @a and @b differ, @len if none. */
static inline size_t diff_at(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return len;
	for (i = 0; i < len && x[i] == y[i]; i++)
		;
	return i;
}

/* Expects @len bytes at @got to equal @want; says where they do not. */
static inline bool same(struct __test_metadata *_metadata, const char *what,
			const void *got, const void *want, size_t len)
{
	size_t i = diff_at(got, want, len);

	EXPECT_EQ(len, i)
		TH_LOG("%s: byte %#zx of %#zx (page %zu) is %#04x, want %#04x",
		       what, i, len, i / (size_t)sysconf(_SC_PAGESIZE),
		       ((const unsigned char *)got)[i],
		       ((const unsigned char *)want)[i]);
	return i == len;
}

/* Expects @len bytes at @got to be 0; says where they are not. */
static inline bool all_zero(struct __test_metadata *_metadata,
			    const char *what, const void *got, size_t len)
{
	const unsigned char *p = got;
	size_t i;

	for (i = 0; i < len && !p[i]; i++)
		;
	EXPECT_EQ(len, i)
		TH_LOG("%s: byte %#zx of %#zx (page %zu) is %#04x, want 0",
		       what, i, len, i / (size_t)sysconf(_SC_PAGESIZE), p[i]);
	return i == len;
}

static inline bool iopfmap_dev_present(void)
{
	return access(IOPFMAP_DEV, F_OK) == 0;
}

/* SKIPs the calling test or fixture setup when the module is not loaded. */
#define SKIP_IF_NO_IOPFMAP(statement)						\
	do {									\
		if (!iopfmap_dev_present())					\
			SKIP(statement, "iopfmap module not loaded: "		\
			     IOPFMAP_DEV " missing");				\
	} while (0)

/* Opens a context into *@fdp, or SKIPs the test saying why it cannot. */
#define OPEN_CONTEXT(fdp)							\
	do {									\
		*(fdp) = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);			\
		if (*(fdp) < 0 && errno == ENOENT)				\
			SKIP(return, "iopfmap module not loaded: "		\
			     IOPFMAP_DEV " missing");				\
		if (*(fdp) < 0 && (errno == EACCES || errno == EPERM))		\
			SKIP(return, IOPFMAP_DEV " is root only: run as root");	\
		ASSERT_LE(0, *(fdp))						\
			TH_LOG("open " IOPFMAP_DEV ": %s", strerror(errno));	\
	} while (0)

static inline bool iopfmap_module_loaded(void)
{
	return access(IOPFMAP_SYSFS_MODULE, F_OK) == 0;
}

/* $IOPFMAP_KO, else where "make modules_install" puts the module. */
static inline const char *iopfmap_ko_path(char *buf, size_t len)
{
	const char *env = getenv("IOPFMAP_KO");
	struct utsname u;

	if (env && *env)
		return env;
	if (uname(&u))
		return NULL;
	snprintf(buf, len, "/lib/modules/%s/extra/" IOPFMAP_MODNAME ".ko",
		 u.release);
	return buf;
}

static inline bool iopfmap_str_ends(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/*
 * The parameters the module is loaded with: $IOPFMAP_MODULE_PARAMS, which
 * run_tests.sh sets to "sim=1 allow_unsafe_interrupts=1" so that the
 * simulated device is there and every emulated IOMMU's devices attach.
 */
static inline const char *iopfmap_module_params(void)
{
	const char *env = getenv("IOPFMAP_MODULE_PARAMS");

	return env ? env : "";
}

/*
 * Loads the module file @path with @params: 0 or -errno (-EEXIST: already
 * loaded). A compressed .ko (as DKMS may install it) needs the kernel to
 * decompress it: CONFIG_MODULE_DECOMPRESS.
 */
static inline int iopfmap_load_file(const char *path, const char *params)
{
	unsigned int flags = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (iopfmap_str_ends(path, ".xz") || iopfmap_str_ends(path, ".zst") ||
	    iopfmap_str_ends(path, ".gz"))
		flags |= MODULE_INIT_COMPRESSED_FILE;
	ret = syscall(SYS_finit_module, fd, params, flags) ? -errno : 0;
	close(fd);
	return ret;
}

/* Loads iopfmap from @path with iopfmap_module_params(). */
static inline int iopfmap_load(const char *path)
{
	return iopfmap_load_file(path, iopfmap_module_params());
}

/*
 * Unloads the module: 0 or -errno. delete_module() never waits for users
 * (since Linux 3.13, O_NONBLOCK or not): a module still referenced, e.g.
 * by an open /dev/iopfmap, fails with EWOULDBLOCK (== EAGAIN), not EBUSY.
 */
static inline int iopfmap_unload(void)
{
	return syscall(SYS_delete_module, IOPFMAP_MODNAME, O_NONBLOCK) ? -errno : 0;
}

/*
 * devtmpfs creates and removes the node synchronously with
 * misc_register()/misc_deregister(), but a udev in the guest may still be
 * working on it: poll for up to ~2 s. True if @path's existence matches
 * @present in time.
 */
static inline bool iopfmap_wait_path(const char *path, bool present)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	int i;

	for (i = 0; i < 200; i++) {
		if ((access(path, F_OK) == 0) == present)
			return true;
		nanosleep(&tick, NULL);
	}
	return (access(path, F_OK) == 0) == present;
}

/*
 * Loads @modname.ko, a module only the tests use, unless its device node
 * @node exists: from $@env if set, else from where tools/vm/run and
 * "make modules_install" put it. Returns 1 if it loaded the module, 0 if
 * the node was there, or -errno with the reason in @why.
 */
static inline int iopfmap_load_test_module(const char *modname,
					   const char *env, const char *node,
					   char *why, size_t len)
{
	const char *path_env = getenv(env);
	char path[512];
	struct utsname u;
	int ret;

	if (access(node, F_OK) == 0)
		return 0;
	if (path_env && *path_env) {
		snprintf(path, sizeof(path), "%s", path_env);
	} else {
		if (uname(&u)) {
			ret = -errno;
			snprintf(why, len, "uname: %s", strerror(-ret));
			return ret;
		}
		snprintf(path, sizeof(path), "/lib/modules/%s/extra/%s.ko",
			 u.release, modname);
	}
	ret = iopfmap_load_file(path, "");
	if (ret && ret != -EEXIST) {
		snprintf(why, len, "cannot load %s: %s", path, strerror(-ret));
		return ret;
	}
	if (!iopfmap_wait_path(node, true)) {
		snprintf(why, len, "%s is loaded but %s is missing", path, node);
		return -ENOENT;
	}
	return ret ? 0 : 1;
}

/*
 * The PCI devices with @vendor:@device, by scanning sysfs (their addresses
 * depend on the machine): up to @max names into @names, sorted. Returns
 * how many were found.
 */
static inline int iopfmap_find_pci(unsigned int vendor, unsigned int device,
				   char (*names)[IOPFMAP_DEVICE_NAME_MAX],
				   int max)
{
	static const char dir[] = "/sys/bus/pci/devices";
	struct dirent **ents;
	int n, i, found = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned int v = 0, d = 0;
		char path[512];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s/vendor", dir,
			 ents[i]->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fscanf(f, "%x", &v) != 1)
				v = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s/device", dir,
			 ents[i]->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fscanf(f, "%x", &d) != 1)
				d = 0;
			fclose(f);
		}
		if (v == vendor && d == device && found < max &&
		    strlen(ents[i]->d_name) < IOPFMAP_DEVICE_NAME_MAX)
			snprintf(names[found++], IOPFMAP_DEVICE_NAME_MAX, "%s",
				 ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return found;
}

#endif /* IOPFMAP_UTILS_H */
