// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/iopfmap ioctl ABI as include/uapi/linux/iopfmap.h documents it:
 * GET_INFO, and the size/flags/pointer rules that every command shares,
 * checked for each command in iopfmap_ioctls[]. Needs the module loaded
 * and access to /dev/iopfmap (root).
 */
#include <sys/mman.h>

#include "iopfmap_utils.h"

static size_t page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* read()/write()/lseek() result as itself or -errno. */
static long neg_errno(long ret)
{
	return ret < 0 ? -errno : ret;
}

/* Zeroes the page at @buf and writes a command header at its start. */
static void put_header(void *buf, __u32 size, __u32 flags)
{
	memset(buf, 0, page_size());
	memcpy(buf, &size, sizeof(size));
	memcpy((char *)buf + 4, &flags, sizeof(flags));
}

FIXTURE(iopfmap)
{
	int fd;
	char *buf;		/* one read-write page ... */
	char *noaccess;		/* ... followed by a PROT_NONE page */
	char *saved;		/* a copy of buf, to see whether it changed */
	int qfd;		/* a queue of fd, for the queue's commands */
};

/* A fault queue of context @fd: its descriptor or -errno. */
static int abi_queue_alloc(int fd)
{
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	int ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);

	return ret ? ret : qa.out_fd;
}

FIXTURE_SETUP(iopfmap)
{
	size_t psz = page_size();

	OPEN_CONTEXT(&self->fd);
	self->qfd = -1;

	self->buf = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(self->buf != MAP_FAILED);
	self->noaccess = self->buf + psz;
	ASSERT_EQ(0, mprotect(self->noaccess, psz, PROT_NONE));
	self->saved = malloc(psz);
	ASSERT_TRUE(self->saved != NULL);
}

FIXTURE_TEARDOWN(iopfmap)
{
	free(self->saved);
	munmap(self->buf, 2 * page_size());
	if (self->qfd >= 0)
		close(self->qfd);
	close(self->fd);
}

TEST_F(iopfmap, get_info)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	__u64 psz = page_size();

	test_cmd_get_info(self->fd, &info);
	EXPECT_EQ(sizeof(info), info.size);
	EXPECT_EQ(0U, info.flags);
	EXPECT_EQ(0U, info.__reserved);
	ASSERT_EQ((__u32)IOPFMAP_ABI_VERSION, info.out_abi_version);
	EXPECT_EQ(0ULL, info.out_features & ~(__u64)IOPFMAP_FEATURES_KNOWN)
		TH_LOG("features %#llx", info.out_features);

	ASSERT_EQ(0ULL, psz & (psz - 1));
	ASSERT_NE(0ULL, info.out_pgsize_bitmap);
	/* The base page can always be mapped; nothing smaller can. */
	EXPECT_EQ(psz, info.out_pgsize_bitmap & psz)
		TH_LOG("pgsize_bitmap %#llx", info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_pgsize_bitmap & (psz - 1))
		TH_LOG("pgsize_bitmap %#llx", info.out_pgsize_bitmap);
	EXPECT_EQ(0U, info.__reserved2);
	EXPECT_LE(info.out_iova_start, info.out_iova_last);
}

/*
 * A new context has no IO page table: nothing translates, the page size
 * is the base page, and the control plane is there to create ranges once
 * one exists.
 */
TEST_F(iopfmap, get_info_no_iopt)
{
	struct iopfmap_info info;
	__u64 psz = page_size();

	/* out_ fields are written whatever the caller left in them. */
	memset(&info, 0xA5, sizeof(info));
	info.size = sizeof(info);
	info.flags = 0;
	info.__reserved = 0;
	info.__reserved2 = 0;
	info.__reserved3 = 0;
	test_cmd_get_info(self->fd, &info);
	EXPECT_EQ((__u32)IOPFMAP_ABI_VERSION, info.out_abi_version);
	EXPECT_EQ(IOPFMAP_FEATURE_MAP, info.out_features & IOPFMAP_FEATURE_MAP)
		TH_LOG("features %#llx", info.out_features);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
	EXPECT_EQ(psz, info.out_pgsize_bitmap)
		TH_LOG("pgsize_bitmap %#llx", info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_iova_start);
	EXPECT_EQ(0ULL, info.out_iova_last);
	EXPECT_EQ(0U, info.__reserved);
	EXPECT_EQ(0U, info.__reserved2);
}

/* A binary built against a newer header: its zero tail is accepted. */
TEST_F(iopfmap, get_info_larger_struct)
{
	struct {
		struct iopfmap_info info;
		__u8 tail[16];
	} big;
	size_t i;

	memset(&big, 0, sizeof(big));
	big.info.size = sizeof(big);
	test_cmd_get_info(self->fd, &big.info);
	EXPECT_EQ((__u32)IOPFMAP_ABI_VERSION, big.info.out_abi_version);
	EXPECT_NE(0ULL, big.info.out_pgsize_bitmap);
	/* Past the kernel's struct: left untouched, so still zero. */
	for (i = 0; i < sizeof(big.tail); i++) {
		EXPECT_EQ(0, big.tail[i]) TH_LOG("tail byte %zu", i);
	}
}

/*
 * The kernel writes no more than the caller's size. struct iopfmap_info
 * grew past its first version (min_size, the end of out_pgsize_bitmap): a
 * binary built against the first header passes 32 bytes and must get its
 * 32 bytes filled in and nothing written after them.
 */
TEST_F(iopfmap, get_info_output_limited_to_size)
{
	const struct iopfmap_ioctl_desc *d =
		&iopfmap_ioctls[IOPFMAP_CMD_GET_INFO - IOPFMAP_CMD_BASE];
	struct iopfmap_info *info = (struct iopfmap_info *)self->buf;
	__u32 size = d->min_size;
	size_t i;

	ASSERT_EQ(32U, d->min_size);
	ASSERT_LT(d->min_size, sizeof(struct iopfmap_info));

	/* An old caller: out_ fields hold garbage, everything after is 0xA5. */
	memset(self->buf, 0xA5, page_size());
	info->size = size;
	info->flags = 0;
	info->__reserved = 0;
	test_cmd_get_info(self->fd, info);
	EXPECT_EQ(size, info->size);
	EXPECT_EQ((__u32)IOPFMAP_ABI_VERSION, info->out_abi_version);
	EXPECT_EQ(IOPFMAP_FEATURE_MAP, info->out_features & IOPFMAP_FEATURE_MAP);
	EXPECT_EQ(0ULL, info->out_features & ~(__u64)IOPFMAP_FEATURES_KNOWN);
	EXPECT_EQ((__u64)page_size(), info->out_pgsize_bitmap);
	for (i = size; i < page_size(); i++) {
		ASSERT_EQ(0xA5, (unsigned char)self->buf[i])
			TH_LOG("byte %zu past size %u was written", i, size);
	}

	/*
	 * Between the first version and the whole struct: the kernel reads
	 * zeroes in the fields the caller did not pass (out_iopt_type is an
	 * out_ field, but __reserved2 is not and must read as zero), and
	 * writes only up to the caller's size.
	 */
	size = offsetofend(struct iopfmap_info, out_iopt_type);
	memset(self->buf, 0xA5, page_size());
	info->size = size;
	info->flags = 0;
	info->__reserved = 0;
	test_cmd_get_info(self->fd, info);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info->out_iopt_type);
	for (i = size; i < page_size(); i++) {
		ASSERT_EQ(0xA5, (unsigned char)self->buf[i])
			TH_LOG("byte %zu past size %u was written", i, size);
	}

	/* The whole struct: all of it written, nothing after it. */
	size = sizeof(struct iopfmap_info);
	memset(self->buf, 0xA5, page_size());
	info->size = size;
	info->flags = 0;
	info->__reserved = 0;
	info->__reserved2 = 0;
	info->__reserved3 = 0;
	test_cmd_get_info(self->fd, info);
	EXPECT_EQ((__u32)IOPFMAP_ABI_VERSION, info->out_abi_version);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info->out_iopt_type);
	EXPECT_EQ(0ULL, info->out_iova_start);
	EXPECT_EQ(0ULL, info->out_iova_last);
	for (i = size; i < page_size(); i++) {
		ASSERT_EQ(0xA5, (unsigned char)self->buf[i])
			TH_LOG("byte %zu past size %u was written", i, size);
	}

	/* Shorter than the first version of the struct. */
	size = offsetof(struct iopfmap_info, out_features);
	memset(self->buf, 0, page_size());
	memcpy(self->buf, &size, sizeof(size));
	memcpy(self->saved, self->buf, page_size());
	test_err_get_info(EINVAL, self->fd, info);
	EXPECT_EQ(0, memcmp(self->saved, self->buf, page_size()));
	size = d->min_size - 1;
	memcpy(self->buf, &size, sizeof(size));
	memcpy(self->saved, self->buf, page_size());
	test_err_get_info(EINVAL, self->fd, info);
	EXPECT_EQ(0, memcmp(self->saved, self->buf, page_size()));
}

/* Bad input changes nothing: the out_ fields keep what the caller put. */
TEST_F(iopfmap, get_info_reserved)
{
	static const __u32 bad[] = { 1, 1U << 31 };
	struct iopfmap_info info, before;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&info, 0xA5, sizeof(info));
		info.size = sizeof(info);
		info.flags = 0;
		info.__reserved = bad[i];
		info.__reserved2 = 0;
		before = info;
		test_err_get_info(EOPNOTSUPP, self->fd, &info);
		EXPECT_EQ(0, memcmp(&before, &info, sizeof(info)))
			TH_LOG("__reserved %#x: struct changed", bad[i]);

		/* The second reserved field, added with the struct's growth. */
		memset(&info, 0xA5, sizeof(info));
		info.size = sizeof(info);
		info.flags = 0;
		info.__reserved = 0;
		info.__reserved2 = bad[i];
		before = info;
		test_err_get_info(EOPNOTSUPP, self->fd, &info);
		EXPECT_EQ(0, memcmp(&before, &info, sizeof(info)))
			TH_LOG("__reserved2 %#x: struct changed", bad[i]);
	}
}

/*
 * Calls @d's ioctl on @arg and expects -@_errno, with the caller's page
 * self->buf unchanged: a refused command writes nothing back.
 */
#define EXPECT_REFUSED(d, arg, _errno, fmt, ...)				\
	do {									\
		int __ret;							\
										\
		memcpy(self->saved, self->buf, page_size());			\
		__ret = _test_ioctl(cmd_fd, (d)->cmd, arg);			\
		EXPECT_EQ(-(_errno), __ret)					\
			TH_LOG("%s, " fmt ": %s", (d)->name, ##__VA_ARGS__,	\
			       strerror(-__ret));				\
		EXPECT_EQ(0, memcmp(self->saved, self->buf, page_size()))	\
			TH_LOG("%s, " fmt ": caller's memory changed",		\
			       (d)->name, ##__VA_ARGS__);			\
	} while (0)

/*
 * Issues @d's command with an all-zero struct of @size bytes (flags 0) on
 * a context of its own, so that what one command does (SIM_CREATE gives
 * the context an IO page table) cannot change what the next one sees:
 * 0 or -errno.
 */
static int zero_struct_result(struct __test_metadata *_metadata,
			      const struct iopfmap_ioctl_desc *d, char *buf,
			      __u32 size)
{
	int fd, qfd = -1, ret;

	fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, fd) TH_LOG("open " IOPFMAP_DEV ": %s", strerror(errno));
	if (fd < 0)
		return -errno;
	if (d->on_queue) {
		qfd = abi_queue_alloc(fd);
		EXPECT_LE(0, qfd) TH_LOG("QUEUE_ALLOC: %s", strerror(-qfd));
	}
	put_header(buf, size, 0);
	ret = _test_ioctl(d->on_queue ? qfd : fd, d->cmd, buf);
	/* A new queue's descriptor: ours to close. */
	if (!ret && d->cmd == IOPFMAP_QUEUE_ALLOC)
		close(((struct iopfmap_queue_alloc *)buf)->out_fd);
	if (qfd >= 0)
		close(qfd);
	close(fd);
	return ret;
}

/*
 * The rules of the uapi DOC block that every command shares. Each command
 * of iopfmap_ioctls[] gets the same treatment; a refused call must leave
 * the caller's memory alone, whatever the command.
 */
TEST_F(iopfmap, size_contract)
{
	const size_t psz = page_size();
	unsigned int i, bit;
	size_t off;
	int ret;

	for (i = 0; i < IOPFMAP_NUM_IOCTLS; i++) {
		const struct iopfmap_ioctl_desc *d = &iopfmap_ioctls[i];
		int cmd_fd = self->fd;
		char *p;

		ASSERT_TRUE(d->name != NULL) TH_LOG("hole in iopfmap_ioctls[] at %u", i);
		if (d->on_queue) {
			/* Not a context command; the contract holds on a queue. */
			put_header(self->buf, d->size, 0);
			EXPECT_REFUSED(d, self->buf, ENOTTY, "on a context");
			if (self->qfd < 0)
				self->qfd = abi_queue_alloc(self->fd);
			ASSERT_LE(0, self->qfd);
			cmd_fd = self->qfd;
		}
		ASSERT_LE(8U, d->min_size) TH_LOG("%s", d->name);
		ASSERT_LE(d->min_size, d->size) TH_LOG("%s", d->name);
		ASSERT_LE(d->size + 8, psz) TH_LOG("%s", d->name);

		put_header(self->buf, 0, 0);
		EXPECT_REFUSED(d, self->buf, EINVAL, "size 0");
		put_header(self->buf, d->min_size - 1, 0);
		EXPECT_REFUSED(d, self->buf, EINVAL, "size min_size - 1");

		/*
		 * A non-zero byte past the struct asks for the unknown; try
		 * the first and the last byte of the tail.
		 */
		for (off = d->size; off < d->size + 8; off += 7) {
			put_header(self->buf, d->size + 8, 0);
			self->buf[off] = 1;
			EXPECT_REFUSED(d, self->buf, E2BIG,
				       "size + 8, byte %zu non-zero", off);
		}

		/*
		 * A zero tail passes the size checks, and a struct cut short
		 * after its first version reads as zero-filled. What the
		 * command then does with an all-zero struct is its own
		 * business, but it must do the same whatever the size.
		 */
		ret = zero_struct_result(_metadata, d, self->buf, d->size);
		EXPECT_NE(-E2BIG, ret) TH_LOG("%s, exact size", d->name);
		EXPECT_NE(-EOPNOTSUPP, ret) TH_LOG("%s, exact size", d->name);
		EXPECT_EQ(ret, zero_struct_result(_metadata, d, self->buf,
						  d->size + 8))
			TH_LOG("%s: size + 8 with a zero tail acts differently",
			       d->name);
		EXPECT_EQ(ret, zero_struct_result(_metadata, d, self->buf,
						  d->min_size))
			TH_LOG("%s: min_size acts differently", d->name);

		for (bit = 0; bit < 32; bit++) {
			if (d->valid_flags & (1U << bit))
				continue;
			put_header(self->buf, d->size, 1U << bit);
			EXPECT_REFUSED(d, self->buf, EOPNOTSUPP,
				       "unknown flag %#x", 1U << bit);
		}

		/* Not even the header readable. */
		put_header(self->buf, 0, 0);
		EXPECT_REFUSED(d, self->noaccess, EFAULT, "PROT_NONE struct");
		EXPECT_REFUSED(d, NULL, EFAULT, "NULL struct");

		/* Header readable, the rest of the struct not. */
		if (d->size > 8) {
			p = self->noaccess - 8;
			put_header(self->buf, 0, 0);
			memcpy(p, &(__u32){ d->size }, 4);
			EXPECT_REFUSED(d, p, EFAULT, "struct runs into PROT_NONE");
		}

		/* Struct readable, the tail to check for zeroes not. */
		p = self->noaccess - d->size;
		put_header(self->buf, 0, 0);
		memcpy(p, &(__u32){ d->size + 8 }, 4);
		EXPECT_REFUSED(d, p, EFAULT, "tail in PROT_NONE");
	}
}

/*
 * "nr past the last command" also fails if the module has a command that
 * iopfmap_ioctls[] lacks: the table must list them all.
 */
TEST_F(iopfmap, unknown_ioctls)
{
	const struct {
		const char *what;
		unsigned long cmd;
	} bad[] = {
		{ "nr past the last command",
		  _IO(IOPFMAP_TYPE, IOPFMAP_CMD_BASE + IOPFMAP_NUM_IOCTLS) },
		{ "nr below IOPFMAP_CMD_BASE", _IO(IOPFMAP_TYPE, IOPFMAP_CMD_BASE - 1) },
		{ "nr 0", _IO(IOPFMAP_TYPE, 0) },
		{ "foreign type", _IO('T', 0x80) },
		/* GET_INFO's nr, encoded with a direction and a size */
		{ "GET_INFO as _IOR",
		  _IOR(IOPFMAP_TYPE, IOPFMAP_CMD_GET_INFO, struct iopfmap_info) },
		{ "GET_INFO as _IOWR",
		  _IOWR(IOPFMAP_TYPE, IOPFMAP_CMD_GET_INFO, struct iopfmap_info) },
	};
	struct iopfmap_info info, before;
	size_t i;
	int ret;

	ASSERT_LE(IOPFMAP_CMD_BASE + IOPFMAP_NUM_IOCTLS, (size_t)_IOC_NRMASK);

	/* Every command's nr with a direction and size is not the command. */
	for (i = 0; i < IOPFMAP_NUM_IOCTLS; i++) {
		const struct iopfmap_ioctl_desc *d = &iopfmap_ioctls[i];
		unsigned long nr = IOPFMAP_CMD_BASE + i;
		const unsigned long variants[] = {
			_IOC(_IOC_READ | _IOC_WRITE, IOPFMAP_TYPE, nr, d->size),
			_IOC(_IOC_WRITE, IOPFMAP_TYPE, nr, d->size),
			_IOC(_IOC_NONE, IOPFMAP_TYPE, nr, d->size),
		};
		size_t v;

		ASSERT_EQ(_IO(IOPFMAP_TYPE, nr), d->cmd) TH_LOG("%s", d->name);
		for (v = 0; v < ARRAY_SIZE(variants); v++) {
			put_header(self->buf, d->size, 0);
			memcpy(self->saved, self->buf, page_size());
			ret = _test_ioctl(self->fd, variants[v], self->buf);
			EXPECT_EQ(-ENOTTY, ret)
				TH_LOG("%s as %#lx: %s", d->name, variants[v],
				       strerror(-ret));
			EXPECT_EQ(0, memcmp(self->saved, self->buf, page_size()))
				TH_LOG("%s as %#lx: struct changed", d->name,
				       variants[v]);
		}
	}

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&info, 0xA5, sizeof(info));
		info.size = sizeof(info);
		info.flags = 0;
		info.__reserved = 0;
		before = info;
		ret = _test_ioctl(self->fd, bad[i].cmd, &info);
		EXPECT_EQ(-ENOTTY, ret)
			TH_LOG("%s (%#lx): %s", bad[i].what, bad[i].cmd, strerror(-ret));
		EXPECT_EQ(0, memcmp(&before, &info, sizeof(info)))
			TH_LOG("%s: struct changed", bad[i].what);
	}
}

/* A context has only ioctls: no read/write op, and it is not seekable. */
TEST_F(iopfmap, no_read_write_seek)
{
	char c = 0;

	/* The VFS answers EINVAL for a file without read/write ops. */
	EXPECT_EQ(-EINVAL, neg_errno(read(self->fd, &c, 1)));
	EXPECT_EQ(-EINVAL, neg_errno(write(self->fd, &c, 1)));
	/* nonseekable_open() */
	EXPECT_EQ(-ESPIPE, neg_errno(lseek(self->fd, 0, SEEK_SET)));
	EXPECT_EQ(-ESPIPE, neg_errno(pread(self->fd, &c, 1, 0)));
}

TEST_HARNESS_MAIN
