/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the iopfmap selftests: the ioctl size-contract table,
 * ioctl wrappers that return 0 or -errno, and module load/unload.
 *
 * Wrappers return -errno instead of setting errno so an assertion can
 * compare one value, and a failing assertion's log output cannot clobber
 * the errno being checked.
 */
#ifndef IOPFMAP_UTILS_H
#define IOPFMAP_UTILS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

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
};
#define IOPFMAP_NUM_IOCTLS ARRAY_SIZE(iopfmap_ioctls)

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
 * Loads the module from @path: 0 or -errno (-EEXIST: already loaded).
 * A compressed .ko (as DKMS may install it) needs the kernel to
 * decompress it: CONFIG_MODULE_DECOMPRESS.
 */
static inline int iopfmap_load(const char *path)
{
	unsigned int flags = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (iopfmap_str_ends(path, ".xz") || iopfmap_str_ends(path, ".zst") ||
	    iopfmap_str_ends(path, ".gz"))
		flags |= MODULE_INIT_COMPRESSED_FILE;
	ret = syscall(SYS_finit_module, fd, "", flags) ? -errno : 0;
	close(fd);
	return ret;
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

#endif /* IOPFMAP_UTILS_H */
