// SPDX-License-Identifier: GPL-2.0
/*
 * The iopfmap control plane, driven through the simulated device: MAP,
 * UNMAP, SET_MODE, GET_STATS, QUERY_MAPPED and SIM_CREATE, and the
 * simulated device's DMA, raw page requests and stage-1 table, each held
 * to what include/uapi/linux/iopfmap.h documents. Every test checks
 * content (what a DMA read or wrote, which pages are mapped, what was
 * charged), not only return codes.
 *
 * Needs root and the module loaded with sim=1 (run_tests.sh loads it so);
 * without it the tests SKIP and say why. Buffers are a few tens of pages:
 * the guests run under TCG.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <linux/capability.h>

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(). Whether GCC warns about that depends
 * on register allocation in each wrapper, so on what the tests look like,
 * not on anything they do wrong. Nothing in this file calls setjmp().
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#include "iopfmap_utils.h"

#define SZ_4K		0x1000ULL
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL
/* The simulated device's aperture: [0, 1 GiB). */
#define SIM_IOVA_LAST	(SZ_1G - 1)
#define SIM_PGSIZES	(SZ_4K | SZ_2M)
#define SIM_DMA_MAX	(64ULL << 20)
#define PASID_LIMIT	(1U << 20)
#define GRPID_MAX	511U
/* The bottom of the kernel half on x86-64, 4- or 5-level paging alike. */
#define KERNEL_VA	0xffff800000000000ULL

/* IOVAs the tests use; all well inside the aperture. */
#define IOVA_A		0x100000ULL	/* 1 MiB */
#define IOVA_B		0x800000ULL	/* 8 MiB */
#define IOVA_C		0x4000000ULL	/* 64 MiB */

/* Pages in the buffer each fixture gives its tests. */
#define BUF_PAGES	16

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define DMA_WRITE	IOPFMAP_SIM_DMA_WRITE	/* buffer -> memory */
#define DMA_READ	0			/* memory -> buffer */

static size_t psz;

static void __attribute__((constructor)) init_page_size(void)
{
	psz = sysconf(_SC_PAGESIZE);
}

/* The byte at @off of the pattern @seed: each page and each seed differ. */
static unsigned char pattern_byte(unsigned int seed, size_t off)
{
	return (unsigned char)(off * 7 + (off / psz) * 131 + seed * 29 + 1);
}

static void fill(void *buf, size_t len, unsigned int seed)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pattern_byte(seed, i);
}

/*
 * Where @buf differs from bytes [@start, @start + @len) of pattern @seed:
 * the offset in @buf, or -1 when they are equal.
 */
static long pattern_diff(const void *buf, size_t len, unsigned int seed,
			 size_t start)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, start + i))
			return i;
	return -1;
}

/*
 * @npages of private anonymous memory filled with pattern @seed. No THP:
 * every page is a base page, so counters count base pages.
 */
static char *alloc_buf(size_t npages, unsigned int seed)
{
	char *p = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, npages * psz, MADV_NOHUGEPAGE);
	fill(p, npages * psz, seed);
	return p;
}

/* @npages filled with @seed, at an address aligned to @align_pages pages. */
static char *alloc_aligned(size_t npages, size_t align_pages, unsigned int seed)
{
	size_t len = npages * psz, align = align_pages * psz;
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, p + len + align - (a + len));
	madvise(a, len, MADV_NOHUGEPAGE);
	fill(a, len, seed);
	return a;
}

static __u64 u64_of(const void *p)
{
	return (__u64)(uintptr_t)p;
}

/* VmLck of this process in kB (what pinning charges), or -1. */
static long vmlck_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long kb(size_t npages)
{
	return npages * psz / 1024;
}

/*
 * QUERY_MAPPED of [@iova, @iova + @len) with @flags into @bits (NULL: a
 * scratch bitmap): out_mapped_pages, or -errno.
 */
static long query(int fd, __u32 flags, __u64 iova, __u64 len, __u64 *bits)
{
	size_t words = (len / psz + 63) / 64 + 1;
	struct iopfmap_query_mapped q = {
		.size = sizeof(q),
		.flags = flags,
		.iova = iova,
		.length = len,
	};
	__u64 *scratch = NULL;
	int ret;

	if (!bits) {
		scratch = calloc(words, sizeof(*scratch));
		if (!scratch)
			return -ENOMEM;
		bits = scratch;
	}
	q.bitmap = u64_of(bits);
	ret = _test_cmd_query_mapped(fd, &q);
	free(scratch);
	return ret ? ret : (long)q.out_mapped_pages;
}

/* Pages of the span the IO page table translates. */
static long iopt_mapped(int fd, __u64 iova, __u64 len)
{
	return query(fd, IOPFMAP_QUERY_IOPT, iova, len, NULL);
}

/* A DMA that must move all @len bytes: the page requests it raised. */
static __u32 dma_ok(struct __test_metadata *_metadata, int fd, __u32 flags,
		    __u64 iova, void *buf, size_t len)
{
	struct iopfmap_sim_dma d;

	ASSERT_EQ(0, _test_sim_dma(fd, &d, flags, iova, buf, len));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status)
		TH_LOG("DMA %s of %zu bytes at %#llx: %s at %#llx after %llu bytes",
		       flags & DMA_WRITE ? "write" : "read", len,
		       (unsigned long long)iova, iopfmap_dma_status_name(d.out_status),
		       (unsigned long long)d.out_fault_iova,
		       (unsigned long long)d.out_done);
	EXPECT_EQ((__u64)len, d.out_done);
	return d.out_faults;
}

/*
 * A DMA that must stop with @status: how far it got. The address it
 * stopped at is the first byte it did not move.
 */
static __u64 dma_stops(struct __test_metadata *_metadata, int fd, __u32 flags,
		       __u64 iova, void *buf, size_t len, __u32 status)
{
	struct iopfmap_sim_dma d;

	ASSERT_EQ(0, _test_sim_dma(fd, &d, flags, iova, buf, len));
	EXPECT_EQ(status, d.out_status)
		TH_LOG("DMA %s of %zu bytes at %#llx: %s (expected %s), done %llu",
		       flags & DMA_WRITE ? "write" : "read", len,
		       (unsigned long long)iova, iopfmap_dma_status_name(d.out_status),
		       iopfmap_dma_status_name(status), (unsigned long long)d.out_done);
	EXPECT_LT(d.out_done, (__u64)len);
	EXPECT_EQ(iova + d.out_done, d.out_fault_iova)
		TH_LOG("DMA at %#llx stopped after %llu bytes", (unsigned long long)iova,
		       (unsigned long long)d.out_done);
	return d.out_done;
}

static void map_ok(struct __test_metadata *_metadata, int fd, __u64 iova,
		   void *vaddr, size_t len, __u32 flags, __u32 prefetch)
{
	int ret = _test_map(fd, iova, vaddr, len, flags, prefetch);

	ASSERT_EQ(0, ret) TH_LOG("MAP %#llx + %#zx flags %#x prefetch %u: %s",
				 (unsigned long long)iova, len, flags, prefetch,
				 strerror(-ret));
}

/* UNMAP that must succeed: out_unmapped. */
static __u64 unmap_ok(struct __test_metadata *_metadata, int fd, __u64 iova,
		      __u64 len)
{
	struct iopfmap_unmap cmd = {
		.size = sizeof(cmd),
		.iova = iova,
		.length = len,
	};
	int ret = _test_cmd_unmap(fd, &cmd);

	ASSERT_EQ(0, ret) TH_LOG("UNMAP %#llx + %#llx: %s",
				 (unsigned long long)iova,
				 (unsigned long long)len, strerror(-ret));
	return cmd.out_unmapped;
}

static int set_mode(int fd, __u64 iova, __u32 mode)
{
	struct iopfmap_set_mode cmd = {
		.size = sizeof(cmd),
		.iova = iova,
		.mode = mode,
	};

	return _test_cmd_set_mode(fd, &cmd);
}


/* One raw page request: 0 or -errno; *@resp gets out_response. */
static int prq(int fd, __u32 flags, __u64 iova, __u32 grpid, __u32 *resp)
{
	struct iopfmap_sim_page_request r = {
		.size = sizeof(r),
		.flags = flags,
		.iova = iova,
		.grpid = grpid,
		.out_response = 0xdeadbeef,
	};
	int ret = _test_cmd_sim_page_request(fd, &r);

	if (resp)
		*resp = r.out_response;
	return ret;
}

/* A page request that must be accepted: its response. */
static __u32 prq_ok(struct __test_metadata *_metadata, int fd, __u32 flags,
		    __u64 iova, __u32 grpid)
{
	__u32 resp = 0;
	int ret = prq(fd, flags, iova, grpid, &resp);

	ASSERT_EQ(0, ret) TH_LOG("page request flags %#x at %#llx group %u: %s",
				 flags, (unsigned long long)iova, grpid,
				 strerror(-ret));
	return resp;
}

#define PRQ_RW_LAST	(IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE | IOPFMAP_PRQ_LAST)
#define PRQ_RW		(IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE)
#define RESP_SUCCESS	((__u32)IOPFMAP_PAGE_RESP_SUCCESS)
#define RESP_INVALID	((__u32)IOPFMAP_PAGE_RESP_INVALID)
#define RESP_PENDING	((__u32)IOPFMAP_PAGE_RESP_PENDING)

static int s1_map(int fd, __u32 flags, __u64 iova, __u64 ipa, __u64 len)
{
	struct iopfmap_sim_s1_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.iova = iova,
		.ipa = ipa,
		.length = len,
	};

	return _test_cmd_sim_s1_map(fd, &cmd);
}

/* S1_UNMAP: 0 or -errno; *@unmapped gets out_unmapped. */
static int s1_unmap(int fd, __u64 iova, __u64 len, __u64 *unmapped)
{
	struct iopfmap_sim_s1_unmap cmd = {
		.size = sizeof(cmd),
		.iova = iova,
		.length = len,
		.out_unmapped = 0xA5A5A5A5A5A5A5A5ULL,
	};
	int ret = _test_cmd_sim_s1_unmap(fd, &cmd);

	if (unmapped)
		*unmapped = cmd.out_unmapped;
	return ret;
}

/*
 * Nothing of [@iova, @iova + @len) is a range: QUERY finds nothing mapped
 * either way, a DMA to its first byte is refused, and UNMAP finds nothing
 * to remove. Used after a refused command, which must change nothing.
 */
static void expect_no_range(struct __test_metadata *_metadata, int fd,
			    __u64 iova, __u64 len)
{
	char c = 0;

	EXPECT_EQ(0, query(fd, 0, iova, len, NULL));
	EXPECT_EQ(0, iopt_mapped(fd, iova, len));
	dma_stops(_metadata, fd, DMA_READ, iova, &c, 1, IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-ENOENT, _test_unmap(fd, iova, len))
		TH_LOG("a refused command left a range at %#llx",
		       (unsigned long long)iova);
}

#define REQUIRE_SIM(fd)								\
	do {									\
		if (!iopfmap_sim_available(fd))					\
			SKIP(return, "module loaded without sim=1");		\
	} while (0)

/* SIM_CREATE with @flags and @pgsizes: 0 or -errno; *@out gets the reply. */
static int sim_create(int fd, __u32 flags, __u64 pgsizes,
		      struct iopfmap_sim_create *out)
{
	struct iopfmap_sim_create cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.pgsize_bitmap = pgsizes,
	};
	int ret = _test_cmd_sim_create(fd, &cmd);

	if (out)
		*out = cmd;
	return ret;
}

static struct iopfmap_info get_info(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	test_cmd_get_info(fd, &info);
	return info;
}

/*
 * A context without an IO page table. Tests that need the simulated
 * device SKIP without sim=1; the others do not need it.
 */
FIXTURE(nosim)
{
	int fd;
};

FIXTURE_SETUP(nosim)
{
	self->fd = -1;
	OPEN_CONTEXT(&self->fd);
}

FIXTURE_TEARDOWN(nosim)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* A context with a simulated device (flat, or nested), and a buffer. */
FIXTURE(sim)
{
	int fd;
	char *buf;	/* BUF_PAGES pages of pattern 1 */
	size_t len;
};

static void sim_fixture_setup(struct __test_metadata *_metadata, int fd,
			      __u32 flags)
{
	struct iopfmap_sim_create sc;
	int ret;

	ret = sim_create(fd, flags, 0, &sc);
	ASSERT_EQ(0, ret) TH_LOG("SIM_CREATE flags %#x: %s", flags, strerror(-ret));
	ASSERT_EQ(SIM_PGSIZES, sc.out_pgsize_bitmap);
	ASSERT_EQ(SIM_IOVA_LAST, sc.out_iova_last);
}

/*
 * The sim and nested fixtures: a context with a simulated device created
 * with @sim_flags, and BUF_PAGES pages of pattern 1.
 */
static void sim_buf_setup(struct __test_metadata *_metadata, int *fd,
			  char **buf, size_t *len, __u32 sim_flags)
{
	*fd = -1;
	*buf = NULL;
	OPEN_CONTEXT(fd);
	REQUIRE_SIM(*fd);
	sim_fixture_setup(_metadata, *fd, sim_flags);
	*len = BUF_PAGES * psz;
	*buf = alloc_buf(BUF_PAGES, 1);
	ASSERT_TRUE(*buf != NULL);
}

static void sim_buf_teardown(int fd, char *buf, size_t len)
{
	if (buf)
		munmap(buf, len);
	if (fd >= 0)
		close(fd);
}

FIXTURE_SETUP(sim)
{
	sim_buf_setup(_metadata, &self->fd, &self->buf, &self->len, 0);
}

FIXTURE_TEARDOWN(sim)
{
	sim_buf_teardown(self->fd, self->buf, self->len);
}

FIXTURE(nested)
{
	int fd;
	char *buf;	/* BUF_PAGES pages of pattern 1 */
	size_t len;
};

FIXTURE_SETUP(nested)
{
	sim_buf_setup(_metadata, &self->fd, &self->buf, &self->len,
		      IOPFMAP_SIM_NESTED);
}

FIXTURE_TEARDOWN(nested)
{
	sim_buf_teardown(self->fd, self->buf, self->len);
}

/*
 * ---------------------------------------------------------------------
 * No IO page table yet; SIM_CREATE
 * ---------------------------------------------------------------------
 */

/* Every command that needs an IO page table says so, and changes nothing. */
TEST_F(nosim, enodev_before_sim_create)
{
	struct iopfmap_sim_page_request r = {
		.flags = PRQ_RW_LAST, .iova = IOVA_A,
	};
	struct iopfmap_sim_dma d;
	struct iopfmap_info info;
	char *buf = alloc_buf(4, 2);
	long v0 = vmlck_kb();

	ASSERT_TRUE(buf != NULL);
	EXPECT_EQ(-ENODEV, _test_map(self->fd, IOVA_A, buf, 4 * psz, RW, 0));
	EXPECT_EQ(-ENODEV, _test_map(self->fd, IOVA_A, buf, 4 * psz,
				     RW | IOPFMAP_MAP_PIN, 0));
	/* A refused PIN charged nothing. */
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(-ENODEV, query(self->fd, 0, IOVA_A, 4 * psz, NULL));
	EXPECT_EQ(-ENODEV, query(self->fd, IOPFMAP_QUERY_IOPT, IOVA_A, 4 * psz, NULL));
	EXPECT_EQ(-ENODEV, _test_sim_dma(self->fd, &d, DMA_READ, IOVA_A, buf, psz));
	EXPECT_EQ(-ENODEV, _test_cmd_sim_page_request(self->fd, &r));
	EXPECT_EQ(-ENODEV, s1_map(self->fd, RW, IOVA_A, IOVA_B, psz));
	EXPECT_EQ(-ENODEV, s1_unmap(self->fd, IOVA_A, psz, NULL));

	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
	EXPECT_EQ((__u64)psz, info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_iova_last);
	EXPECT_EQ(-1, pattern_diff(buf, 4 * psz, 2, 0));

	/* Without sim=1 there is no simulated device to create either. */
	if (!(info.out_features & IOPFMAP_FEATURE_SIM)) {
		EXPECT_EQ(-ENODEV, sim_create(self->fd, 0, 0, NULL));
		EXPECT_EQ(-ENODEV, sim_create(self->fd, IOPFMAP_SIM_NESTED, 0, NULL));
		info = get_info(_metadata, self->fd);
		EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
	}
	munmap(buf, 4 * psz);
}

/* The default device: 4 KiB and 2 MiB pages, [0, 1 GiB); once per context. */
TEST_F(nosim, sim_create)
{
	struct iopfmap_sim_create sc;
	struct iopfmap_info info;

	REQUIRE_SIM(self->fd);
	info = get_info(_metadata, self->fd);
	EXPECT_EQ(IOPFMAP_FEATURE_SIM, info.out_features & IOPFMAP_FEATURE_SIM);
	EXPECT_EQ(IOPFMAP_FEATURE_MAP, info.out_features & IOPFMAP_FEATURE_MAP);

	ASSERT_EQ(0, sim_create(self->fd, 0, 0, &sc));
	EXPECT_EQ(SIM_PGSIZES, sc.out_pgsize_bitmap);
	EXPECT_EQ(SIM_IOVA_LAST, sc.out_iova_last);

	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_EQ(SIM_PGSIZES, info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_iova_start);
	EXPECT_EQ(SIM_IOVA_LAST, info.out_iova_last);
	EXPECT_EQ(0U, info.__reserved2);

	/* A second device, flat or nested, or with other page sizes. */
	memset(&sc, 0xA5, sizeof(sc));
	EXPECT_EQ(-EEXIST, sim_create(self->fd, 0, 0, &sc));
	EXPECT_EQ(-EEXIST, sim_create(self->fd, IOPFMAP_SIM_NESTED, 0, NULL));
	EXPECT_EQ(-EEXIST, sim_create(self->fd, 0, SZ_4K, NULL));
	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_EQ(SIM_PGSIZES, info.out_pgsize_bitmap);
	EXPECT_EQ(SIM_IOVA_LAST, info.out_iova_last);
}

/* A device restricted to 4 KiB pages says so, and works. */
TEST_F(nosim, sim_create_4k_only)
{
	struct iopfmap_sim_create sc;
	struct iopfmap_info info;
	char *buf, *out;

	REQUIRE_SIM(self->fd);
	ASSERT_EQ(0, sim_create(self->fd, 0, SZ_4K, &sc));
	EXPECT_EQ(SZ_4K, sc.out_pgsize_bitmap);
	EXPECT_EQ(SIM_IOVA_LAST, sc.out_iova_last);
	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_EQ(SZ_4K, info.out_pgsize_bitmap);
	EXPECT_EQ(SIM_IOVA_LAST, info.out_iova_last);

	buf = alloc_buf(4, 3);
	out = alloc_buf(4, 0);
	ASSERT_TRUE(buf && out);
	map_ok(_metadata, self->fd, IOVA_A, buf, 4 * psz, RW, 0);
	EXPECT_EQ(4U, dma_ok(_metadata, self->fd, DMA_READ, IOVA_A, out, 4 * psz));
	EXPECT_EQ(-1, pattern_diff(out, 4 * psz, 3, 0));
}

/* Page sizes that are not a subset of {4K, 2M} with 4K in it. */
TEST_F(nosim, sim_create_bad_pgsize)
{
	static const __u64 bad[] = {
		0x3000,			/* 4K | 8K */
		SZ_2M,			/* without 4K */
		SZ_2M | SZ_1G,
		SZ_4K | SZ_1G,		/* a size the table does not have */
		SZ_4K | 0x2000,
		SIM_PGSIZES | SZ_1G,
		1,
		~0ULL,
	};
	struct iopfmap_sim_create sc;
	struct iopfmap_info info;
	char *buf = alloc_buf(2, 4);
	size_t i;

	REQUIRE_SIM(self->fd);
	ASSERT_TRUE(buf != NULL);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, sim_create(self->fd, 0, bad[i], NULL))
			TH_LOG("pgsize_bitmap %#llx", (unsigned long long)bad[i]);
		EXPECT_EQ(-EINVAL, sim_create(self->fd, IOPFMAP_SIM_NESTED,
					      bad[i], NULL))
			TH_LOG("nested, pgsize_bitmap %#llx",
			       (unsigned long long)bad[i]);
	}
	/* Nothing was created. */
	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
	EXPECT_EQ((__u64)psz, info.out_pgsize_bitmap);
	EXPECT_EQ(-ENODEV, _test_map(self->fd, IOVA_A, buf, 2 * psz, RW, 0));

	ASSERT_EQ(0, sim_create(self->fd, 0, SIM_PGSIZES, &sc));
	EXPECT_EQ(SIM_PGSIZES, sc.out_pgsize_bitmap);
	map_ok(_metadata, self->fd, IOVA_A, buf, 2 * psz, RW, 0);
}

TEST_F(nosim, sim_create_nested)
{
	struct iopfmap_sim_create sc;
	struct iopfmap_info info;

	REQUIRE_SIM(self->fd);
	ASSERT_EQ(0, sim_create(self->fd, IOPFMAP_SIM_NESTED, 0, &sc));
	EXPECT_EQ(SIM_PGSIZES, sc.out_pgsize_bitmap);
	EXPECT_EQ(SIM_IOVA_LAST, sc.out_iova_last);
	info = get_info(_metadata, self->fd);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_EQ(SIM_PGSIZES, info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_iova_start);
	EXPECT_EQ(SIM_IOVA_LAST, info.out_iova_last);
	EXPECT_EQ(-EEXIST, sim_create(self->fd, IOPFMAP_SIM_NESTED, 0, NULL));
	EXPECT_EQ(-EEXIST, sim_create(self->fd, 0, 0, NULL));
}

/*
 * ---------------------------------------------------------------------
 * MAP
 * ---------------------------------------------------------------------
 */

TEST_F(sim, get_info)
{
	struct iopfmap_info info = get_info(_metadata, self->fd);

	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, info.out_iopt_type);
	EXPECT_EQ(SIM_PGSIZES, info.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, info.out_iova_start);
	EXPECT_EQ(SIM_IOVA_LAST, info.out_iova_last);
	EXPECT_EQ(IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_SIM,
		  info.out_features & (IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_SIM));
}

/* A FAULT range: pages come in as the device touches them; nothing is locked. */
TEST_F(sim, map_fault)
{
	const __u64 iova = IOVA_A;
	char *out = alloc_buf(BUF_PAGES, 0);
	char *src = alloc_buf(3, 7);
	long v0 = vmlck_kb(), mapped = -1;
	const size_t off = psz - 3, n = 2 * psz + 7;

	ASSERT_TRUE(out && src);
	map_ok(_metadata, self->fd, iova, self->buf, self->len, RW, 0);
	EXPECT_EQ(0, query(self->fd, 0, iova, self->len, NULL));
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));

	/* A device read of every page: one fault each, the CPU's data. */
	EXPECT_EQ((__u32)BUF_PAGES,
		  dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len));
	EXPECT_EQ(-1, pattern_diff(out, self->len, 1, 0));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, self->len, &mapped));
	EXPECT_EQ(BUF_PAGES, mapped);

	/* An unaligned device write across two page boundaries. */
	dma_ok(_metadata, self->fd, DMA_WRITE, iova + off, src, n);
	EXPECT_EQ(-1, pattern_diff(self->buf, off, 1, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + off, n, 7, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + off + n, self->len - off - n, 1,
				   off + n));

	/* Mapped on fault, never pinned or charged. */
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(self->len, unmap_ok(_metadata, self->fd, iova, self->len));
	EXPECT_EQ(v0, vmlck_kb());
}

/* Each EINVAL of MAP; none of them leaves a range behind. */
TEST_F(sim, map_einval)
{
	const __u64 iova = IOVA_A, va = u64_of(self->buf), len = 4 * psz;
	const __u64 wrap = -(__u64)psz;
	const struct {
		const char *what;
		__u32 flags;
		__u64 iova, vaddr, length;
		__u32 prefetch;
	} bad[] = {
		{ "no READ or WRITE", 0, iova, va, len, 0 },
		{ "PIN without READ or WRITE", IOPFMAP_MAP_PIN, iova, va, len, 0 },
		{ "FORWARD without READ or WRITE", IOPFMAP_MAP_FORWARD, iova, va, len, 0 },
		{ "PIN | FORWARD", RW | IOPFMAP_MAP_PIN | IOPFMAP_MAP_FORWARD,
		  iova, va, len, 0 },
		{ "READ | PIN | FORWARD",
		  IOPFMAP_MAP_READ | IOPFMAP_MAP_PIN | IOPFMAP_MAP_FORWARD,
		  iova, va, len, 0 },
		{ "iova + 1", RW, iova + 1, va, len, 0 },
		{ "iova + half a page", RW, iova + psz / 2, va, len, 0 },
		{ "vaddr + 8", RW, iova, va + 8, len, 0 },
		{ "length - 1", RW, iova, va, len - 1, 0 },
		{ "length + 100", RW, iova, va, len + 100, 0 },
		{ "length 0", RW, iova, va, 0, 0 },
		{ "length 0, PIN", RW | IOPFMAP_MAP_PIN, iova, va, 0, 0 },
		{ "iova wraps", RW, wrap, va, 2 * psz, 0 },
		{ "vaddr wraps", RW, iova, wrap, 2 * psz, 0 },
		{ "length wraps both", RW, iova, va, wrap, 0 },
		{ "prefetch 3", RW, iova, va, len, 3 },
		{ "prefetch 6", RW, iova, va, len, 6 },
		{ "prefetch 513", RW, iova, va, len, 513 },
		{ "prefetch 1024", RW, iova, va, len, 1024 },
		{ "prefetch 2^31", RW, iova, va, len, 1U << 31 },
		{ "prefetch ~0", RW, iova, va, len, ~0U },
	};
	struct iopfmap_map cmd, before;
	char *out = alloc_buf(4, 0);
	long v0 = vmlck_kb();
	size_t i;

	ASSERT_TRUE(out != NULL);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		cmd = (struct iopfmap_map){
			.size = sizeof(cmd),
			.flags = bad[i].flags,
			.iova = bad[i].iova,
			.vaddr = bad[i].vaddr,
			.length = bad[i].length,
			.prefetch_pages = bad[i].prefetch,
		};
		before = cmd;
		EXPECT_EQ(-EINVAL, _test_cmd_map(self->fd, &cmd))
			TH_LOG("%s", bad[i].what);
		EXPECT_EQ(0, memcmp(&before, &cmd, sizeof(cmd)))
			TH_LOG("%s: struct changed", bad[i].what);
	}
	EXPECT_EQ(v0, vmlck_kb());
	expect_no_range(_metadata, self->fd, iova, len);
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);

	/* The span is free: a valid MAP of it works. */
	map_ok(_metadata, self->fd, iova, self->buf, len, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, iova, out, len);
	EXPECT_EQ(-1, pattern_diff(out, len, 1, 0));
	EXPECT_EQ(len, unmap_ok(_metadata, self->fd, iova, len));
}

TEST_F(sim, map_reserved)
{
	struct iopfmap_map cmd = {
		.size = sizeof(cmd),
		.flags = RW,
		.iova = IOVA_A,
		.vaddr = u64_of(self->buf),
		.length = self->len,
		.__reserved = 1,
	};

	EXPECT_EQ(-EOPNOTSUPP, _test_cmd_map(self->fd, &cmd));
	expect_no_range(_metadata, self->fd, IOVA_A, self->len);
}

/* 0, 1 and every power of two up to IOPFMAP_PREFETCH_MAX are accepted. */
TEST_F(sim, map_prefetch_values)
{
	__u32 prefetch;
	__u64 iova = IOVA_A, total = 0;
	int i = 0;

	for (prefetch = 0; prefetch <= IOPFMAP_PREFETCH_MAX;
	     prefetch = prefetch ? prefetch * 2 : 1, i++) {
		/* One page of the buffer each, a page apart in IOVA. */
		ASSERT_LT(i, BUF_PAGES);
		EXPECT_EQ(0, _test_map(self->fd, iova + 2 * i * psz,
				       self->buf + i * psz, psz, RW, prefetch))
			TH_LOG("prefetch %u", prefetch);
		total += psz;
	}
	EXPECT_EQ(11, i);
	EXPECT_EQ(total, unmap_ok(_metadata, self->fd, iova, 2 * i * psz));
}

/*
 * A fault maps the naturally aligned window of prefetch_pages pages
 * around it, clipped to the range. IOVA and VA are both aligned to the
 * window, so it is the same window whichever the module aligns.
 */
TEST_F(sim, map_prefetch_window)
{
	const __u64 iova = 2 * SZ_2M;
	char *buf = alloc_aligned(16, 16, 5);
	struct iopfmap_stats st;
	__u64 bits[2] = { 0 };
	char c;

	ASSERT_TRUE(buf != NULL);
	map_ok(_metadata, self->fd, iova, buf, 16 * psz, RW, 4);
	/* A fault on page 5: pages 4 to 7. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 5 * psz, &c, 1));
	EXPECT_EQ(pattern_byte(5, 5 * psz), (unsigned char)c);
	EXPECT_EQ(4, query(self->fd, 0, iova, 16 * psz, bits));
	EXPECT_EQ(0xf0ULL, bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, 16 * psz, NULL));
	st = iopfmap_get_stats(_metadata, self->fd, iova);
	EXPECT_EQ(1ULL, st.out_faults);
	EXPECT_EQ(4ULL, st.out_pages_mapped);
	EXPECT_EQ(3ULL, st.out_pages_prefetched);
	/* Pages 4 to 7 are there: no fault for them. */
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova + 4 * psz, &c, 1));
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova + 7 * psz, &c, 1));
	EXPECT_EQ(16 * psz, unmap_ok(_metadata, self->fd, iova, 16 * psz));

	/* A range of pages 2 to 7 of an 8-page window: clipped. */
	map_ok(_metadata, self->fd, iova + 2 * psz, buf + 2 * psz, 6 * psz, RW, 8);
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 3 * psz, &c, 1));
	bits[0] = 0;
	EXPECT_EQ(6, query(self->fd, 0, iova, 8 * psz, bits));
	EXPECT_EQ(0xfcULL, bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, 16 * psz, NULL));
	st = iopfmap_get_stats(_metadata, self->fd, iova + 2 * psz);
	EXPECT_EQ(6ULL, st.out_pages_mapped);
	EXPECT_EQ(5ULL, st.out_pages_prefetched);
}

/*
 * The window is best effort: a read-only page in it does not fail a
 * device write to a writable page of it. The window shrinks to the
 * faulting page, which is mapped writable; the read-only page is not.
 */
TEST_F(sim, prefetch_window_with_a_readonly_page)
{
	const __u64 iova = 2 * SZ_2M;
	char *buf = alloc_aligned(8, 8, 5), *src = alloc_buf(1, 9);
	__u64 bits[2] = { 0 };

	ASSERT_TRUE(buf && src);
	ASSERT_EQ(0, mprotect(buf + 2 * psz, psz, PROT_READ));
	map_ok(_metadata, self->fd, iova, buf, 8 * psz, RW, 4);
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_WRITE, iova, src, psz));
	EXPECT_EQ(-1, pattern_diff(buf, psz, 9, 0));
	EXPECT_EQ(1, query(self->fd, 0, iova, 8 * psz, bits));
	EXPECT_EQ(0x1ULL, bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, 8 * psz, NULL));
	/* The read-only page itself still refuses the device's writes. */
	dma_stops(_metadata, self->fd, DMA_WRITE, iova + 2 * psz, src, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	/* And reads it. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 2 * psz,
			     src, psz));
	EXPECT_EQ(-1, pattern_diff(src, psz, 5, 2 * psz));
	munmap(src, psz);
}

/* 2 MiB of private hugetlb memory at a 2 MiB aligned address, or NULL. */
static char *alloc_hugetlb(void)
{
	char *p = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * hugetlb's page walk reads the request flags of a huge page's first page
 * only: a fault whose window does not cover it must still fault the huge
 * page in, empty (after MADV_DONTNEED) or read-only (after a CPU read).
 */
TEST_F(sim, hugetlb_window_off_the_first_page)
{
	const __u64 iova = 4 * SZ_2M;
	char *h = alloc_hugetlb(), *src = alloc_buf(1, 11);
	char out[64];

	if (!h)
		SKIP(return, "no free 2 MiB hugetlb page (boot with hugepages=32)");
	ASSERT_TRUE(src != NULL);
	map_ok(_metadata, self->fd, iova, h, SZ_2M, RW, 0);

	/* Empty: a device read of page 100 faults the huge page in. */
	EXPECT_LE(1U, dma_ok(_metadata, self->fd, DMA_READ,
			     iova + 100 * psz, out, sizeof(out)));
	all_zero(_metadata, "a new huge page", out, sizeof(out));
	unmap_ok(_metadata, self->fd, iova, SZ_2M);

	/* Read-only after a CPU read: a device write of page 100 works. */
	ASSERT_EQ(0, madvise(h, SZ_2M, MADV_DONTNEED));
	EXPECT_EQ(0, *(volatile char *)h);
	map_ok(_metadata, self->fd, iova, h, SZ_2M, RW, 0);
	EXPECT_LE(1U, dma_ok(_metadata, self->fd, DMA_WRITE,
			     iova + 100 * psz, src, psz));
	EXPECT_EQ(-1, pattern_diff(h + 100 * psz, psz, 11, 0));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, SZ_2M, NULL));
	munmap(src, psz);
	munmap(h, SZ_2M);
}

/*
 * A device write to a page of a read-only 2 MiB entry (hugetlb memory the
 * CPU only read, which becomes writable without a copy) replaces the
 * entry with a writable one: all 512 pages stay mapped, not only those
 * from the faulting page on, and no page left for anything but that.
 */
TEST_F(sim, write_upgrade_keeps_the_whole_huge_entry)
{
	const __u64 iova = 6 * SZ_2M;
	char *h = alloc_hugetlb(), *src = alloc_buf(1, 13);
	struct iopfmap_stats st0, st1;
	char c;

	if (!h)
		SKIP(return, "no free 2 MiB hugetlb page (boot with hugepages=32)");
	ASSERT_TRUE(src != NULL);
	EXPECT_EQ(0, *(volatile char *)h);	/* a read-only huge page */
	map_ok(_metadata, self->fd, iova, h, SZ_2M, RW, 0);
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova, &c, 1));
	st0 = iopfmap_get_stats(_metadata, self->fd, iova);
	EXPECT_EQ(1ULL, st0.out_huge_mappings);
	EXPECT_EQ(512, query(self->fd, 0, iova, SZ_2M, NULL));

	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_WRITE,
			     iova + 100 * psz, src, psz));
	EXPECT_EQ(-1, pattern_diff(h + 100 * psz, psz, 13, 0));
	EXPECT_EQ(512, query(self->fd, 0, iova, SZ_2M, NULL));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, SZ_2M, NULL));
	st1 = iopfmap_get_stats(_metadata, self->fd, iova);
	EXPECT_EQ(st0.out_invalidations, st1.out_invalidations);
	EXPECT_EQ(2ULL, st1.out_huge_mappings);
	/* Every page is writable now: no fault for page 0 or 511. */
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_WRITE, iova, src, psz));
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_WRITE,
			     iova + 511 * psz, src, psz));
	munmap(src, psz);
	munmap(h, SZ_2M);
}

/*
 * A cgroup v2 that gets @quota_us of CPU time per 50 ms, or why not. A
 * short period cuts any piece of work longer than the quota into slices
 * 50 ms apart, so nothing longer than the quota runs in one go.
 */
static const char *slow_cgroup(char *dir, size_t len, long quota_us)
{
	static const char root[] = "/sys/fs/cgroup";
	char path[PATH_MAX + 32], val[64];
	int fd;

	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK)) {
		mkdir(root, 0755);
		if (mount("cgroup2", root, "cgroup2", 0, NULL))
			return "cannot mount cgroup2";
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "+cpu", 4) != 4) {
		if (fd >= 0)
			close(fd);
		return "no cpu controller in cgroup2";
	}
	close(fd);
	snprintf(dir, len, "%s/iopfmap-slow-%d", root, (int)getpid());
	if (mkdir(dir, 0755) && errno != EEXIST)
		return "cannot make a cgroup";
	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	snprintf(val, sizeof(val), "%ld 50000", quota_us);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		if (fd >= 0)
			close(fd);
		return "cannot set cpu.max";
	}
	close(fd);
	return NULL;
}

static volatile bool storm_stop;
static volatile unsigned long storm_rounds;

/*
 * Drops @arg's 2 MiB every 10 ms until told to stop. A fault retries at
 * most once per drop, so 4 s of storm stay well under
 * IOPFMAP_FAULT_RETRIES_MAX (unpaced, 7.3 reached 827).
 */
static void *storm_thread(void *arg)
{
	while (!storm_stop) {
		madvise(arg, SZ_2M, MADV_DONTNEED);
		storm_rounds++;
		usleep(10000);
	}
	return NULL;
}

/*
 * The retry limit counts attempts, not time: on a host so slow that a
 * fault's attempts take seconds, a fault that a storm of invalidations of
 * its range keeps retrying for longer than 2 s still succeeds once the
 * storm ends, well within IOPFMAP_FAULT_RETRIES_MAX attempts. Here the
 * faulting process is held to 1 ms of CPU per 50 ms, and each attempt
 * write-faults a 512-page window (512 pages to allocate and clear) that
 * the storm keeps dropping: an attempt is cut into slices 50 ms apart,
 * between which the storm drops the window again, and the storm lasts
 * 4 s; then the throttle goes, and the last attempt succeeds. (Held,
 * it outlasted the test's 90 s on 7.3 under TCG; with read faults, which
 * map the zero page, at 20 ms per second a 6.1 attempt fitted in one
 * slice and saw no storm.)
 */
/*
 * One slow fault on page 0 of the range at @iova (prefetch 512) while the
 * storm drops its window: the child's exit status, -1 if the test
 * failed before.
 */
static int slow_fault_run(struct __test_metadata *_metadata, int fd,
			  __u64 iova, char *buf, const char *dir)
{
	char out[16], procs[PATH_MAX + 16];
	pthread_t storm;
	int status, cfd;
	pid_t pid;

	map_ok(_metadata, fd, iova, buf, SZ_2M, RW, 512);
	storm_stop = false;
	storm_rounds = 0;
	EXPECT_EQ(0, pthread_create(&storm, NULL, storm_thread, buf));
	/* The window is empty when the fault starts: it faults 512 pages. */
	while (storm_rounds < 2)
		sched_yield();

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		struct iopfmap_sim_dma d;
		char me[16];

		/* A test killed on its timeout takes the slow child along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		snprintf(me, sizeof(me), "%d", (int)getpid());
		cfd = open(procs, O_WRONLY | O_CLOEXEC);
		if (cfd < 0 || write(cfd, me, strlen(me)) < 0)
			_exit(2);
		close(cfd);
		/* The fault on page 0 retries while its window is dropped. */
		memset(out, 0x5a, sizeof(out));
		if (_test_sim_dma(fd, &d, DMA_WRITE, iova, out, sizeof(out)))
			_exit(3);
		_exit(d.out_status == IOPFMAP_SIM_DMA_OK ? 0 : 1);
	}
	sleep(4);
	storm_stop = true;
	pthread_join(storm, NULL);
	/* The storm is over: the last attempt may run at full speed. */
	snprintf(procs, sizeof(procs), "%s/cpu.max", dir);
	cfd = open(procs, O_WRONLY | O_CLOEXEC);
	EXPECT_LE(0, cfd);
	if (cfd >= 0) {
		EXPECT_EQ(9, write(cfd, "max 50000", 9));
		close(cfd);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

TEST_F_TIMEOUT(sim, slow_fault_outlasts_a_storm, 90)
{
	const __u64 iova = 2 * SZ_2M;
	char *buf = alloc_aligned(512, 512, 5), dir[PATH_MAX];
	struct iopfmap_stats st = { 0 };
	unsigned int run;
	const char *no;
	int status;

	ASSERT_TRUE(buf != NULL);
	/*
	 * A host fast enough resolves a whole attempt within one 1 ms slice,
	 * between two drops: then no retry happened, and the run proves
	 * nothing. A few runs, each from a fresh range.
	 */
	for (run = 0; run < 3 && !st.out_retries; run++) {
		no = slow_cgroup(dir, sizeof(dir), 1000);
		if (no)
			SKIP(return, "%s: cannot slow a process down", no);
		status = slow_fault_run(_metadata, self->fd, iova, buf, dir);
		rmdir(dir);
		ASSERT_NE(-1, status);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("the slow fault: status %#x (exit 1: the DMA failed)",
			       status);
		st = iopfmap_get_stats(_metadata, self->fd, iova);
		EXPECT_GE((__u64)IOPFMAP_FAULT_RETRIES_MAX, st.out_retries);
		TH_LOG("run %u: %llu retries", run,
		       (unsigned long long)st.out_retries);
		ASSERT_EQ(0, _test_unmap(self->fd, iova, SZ_2M));
	}
	if (!st.out_retries)
		SKIP(return, "in %u runs every attempt of the slow fault fitted in one 1 ms CPU slice: no invalidation reached it",
		     run);
}

#define KPF_DIRTY	4
#define KPF_THP		22

/* The /proc/kpageflags bits of @pfn, or 0. */
static __u64 kpageflags(__u64 pfn)
{
	__u64 flags = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) !=
	    sizeof(flags))
		flags = 0;
	close(fd);
	return flags;
}

/*
 * A device write into a 2 MiB entry reaches the page's own folio: when the
 * entry leaves the IO page table, every folio it maps is marked dirty, not
 * only the first. The block here is a THP split into 512 folios that stay
 * physically contiguous, made clean (lazily freeable) with MADV_FREE: a
 * page the device wrote and the kernel did not mark dirty would be thrown
 * away by reclaim, and the device's data with it.
 */
TEST_F(sim, dirty_every_folio_of_a_huge_entry)
{
	const __u64 iova = 8 * SZ_2M;
	char *region, *mem, *src = alloc_buf(1, 17), cmd[128];
	__u64 pfn0;
	unsigned int i;
	int fd;

	ASSERT_TRUE(src != NULL);
	if (access("/sys/kernel/debug/split_huge_pages", W_OK))
		SKIP(return, "no /sys/kernel/debug/split_huge_pages (debugfs)");
	region = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, region);
	mem = (char *)(((uintptr_t)region + SZ_2M - 1) & ~(SZ_2M - 1));
	ASSERT_EQ(0, madvise(mem, SZ_2M, MADV_HUGEPAGE));
	fill(mem, SZ_2M, 3);
	pfn0 = iopfmap_pagemap_pfn(mem);
	if (!(kpageflags(pfn0) & (1ULL << KPF_THP)) || pfn0 % 512)
		SKIP(return, "no THP for the test (transparent_hugepage off?)");

	/* Split the folio: 512 folios, contiguous, one per page. */
	fd = open("/sys/kernel/debug/split_huge_pages", O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	snprintf(cmd, sizeof(cmd), "%d,%#lx,%#lx", (int)getpid(),
		 (unsigned long)mem, (unsigned long)(mem + SZ_2M));
	ASSERT_LT(0, write(fd, cmd, strlen(cmd)));
	close(fd);
	ASSERT_FALSE(!!(kpageflags(iopfmap_pagemap_pfn(mem)) & (1ULL << KPF_THP)))
		TH_LOG("the THP was not split");
	/*
	 * Compaction may move the 512 small folios at once: the test needs
	 * them where the THP was.
	 */
	for (i = 0; i < 512; i++)
		if (iopfmap_pagemap_pfn(mem + i * psz) != pfn0 + i)
			SKIP(return, "page %u of the split THP moved (compaction) before the test could map it",
			     i);
	/* Clean, lazily freeable, but still mapped writable. */
	ASSERT_EQ(0, madvise(mem, SZ_2M, MADV_FREE));
	ASSERT_FALSE(!!(kpageflags(pfn0 + 100) & (1ULL << KPF_DIRTY)));

	/* The 512-page window becomes one 2 MiB entry; the device writes. */
	map_ok(_metadata, self->fd, iova, mem, SZ_2M, RW, 512);
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_WRITE, iova + 100 * psz,
			     src, psz));
	EXPECT_EQ(1ULL, iopfmap_get_stats(_metadata, self->fd,
					  iova).out_huge_mappings);
	ASSERT_EQ(pfn0 + 100, iopfmap_pagemap_pfn(mem + 100 * psz));
	/* The entry leaves (mprotect): page 100's folio is dirty. */
	ASSERT_EQ(0, mprotect(mem, SZ_2M, PROT_READ));
	EXPECT_EQ(0, query(self->fd, 0, iova, SZ_2M, NULL));
	EXPECT_TRUE(!!(kpageflags(pfn0 + 100) & (1ULL << KPF_DIRTY)))
		TH_LOG("the folio the device wrote was not marked dirty");
	EXPECT_EQ(-1, pattern_diff(mem + 100 * psz, psz, 17, 0));
	munmap(region, 2 * SZ_2M);
	munmap(src, psz);
}

/*
 * The window is aligned in the address space, not to the range's start:
 * a range that starts in the middle of a window gets that window clipped
 * at its start.
 */
TEST_F(sim, map_prefetch_window_unaligned_range)
{
	const __u64 iova = 2 * SZ_2M;
	char *buf = alloc_aligned(16, 16, 5);
	struct iopfmap_stats st;
	__u64 bits[1];
	char c;

	ASSERT_TRUE(buf != NULL);
	/* Pages 2 to 9 of the 4-page windows [0, 4), [4, 8), [8, 12). */
	map_ok(_metadata, self->fd, iova + 2 * psz, buf + 2 * psz, 8 * psz, RW, 4);

	/* A fault on window page 2 maps pages 2 and 3: range pages 0 and 1. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 2 * psz, &c, 1));
	EXPECT_EQ(pattern_byte(5, 2 * psz), (unsigned char)c);
	bits[0] = 0;
	EXPECT_EQ(2, query(self->fd, IOPFMAP_QUERY_IOPT, iova, 16 * psz, bits))
		TH_LOG("IO page table bits %#llx", (unsigned long long)bits[0]);
	EXPECT_EQ(0xcULL, bits[0]);

	/* A fault on page 7 maps the whole window 4 to 7. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 7 * psz, &c, 1));
	bits[0] = 0;
	EXPECT_EQ(6, query(self->fd, IOPFMAP_QUERY_IOPT, iova, 16 * psz, bits))
		TH_LOG("IO page table bits %#llx", (unsigned long long)bits[0]);
	EXPECT_EQ(0xfcULL, bits[0]);

	/* A fault on page 9 maps 8 and 9 and stops at the range's end. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova + 9 * psz, &c, 1));
	bits[0] = 0;
	EXPECT_EQ(8, query(self->fd, IOPFMAP_QUERY_IOPT, iova, 16 * psz, bits));
	EXPECT_EQ(0x3fcULL, bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, 16 * psz, NULL));
	st = iopfmap_get_stats(_metadata, self->fd, iova + 2 * psz);
	EXPECT_EQ(3ULL, st.out_faults);
	EXPECT_EQ(8ULL, st.out_pages_mapped);
	EXPECT_EQ(5ULL, st.out_pages_prefetched);
}

/* The IOVA span must be inside [0, 1 GiB): its first and last pages are. */
TEST_F(sim, map_erange)
{
	char *out = alloc_buf(2, 0);

	ASSERT_TRUE(out != NULL);
	EXPECT_EQ(-ERANGE, _test_map(self->fd, SZ_1G - psz, self->buf, 2 * psz, RW, 0));
	EXPECT_EQ(-ERANGE, _test_map(self->fd, SZ_1G, self->buf, psz, RW, 0));
	EXPECT_EQ(-ERANGE, _test_map(self->fd, 4 * SZ_1G, self->buf, psz, RW, 0));
	EXPECT_EQ(-ERANGE, _test_map(self->fd, 0, self->buf, 2 * SZ_1G, RW, 0));
	EXPECT_EQ(-ERANGE, _test_map(self->fd, SZ_1G - psz, self->buf, 2 * psz,
				     RW | IOPFMAP_MAP_PIN, 0));
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	expect_no_range(_metadata, self->fd, SZ_1G - psz, psz);

	/* The last and the first page of the aperture. */
	map_ok(_metadata, self->fd, SZ_1G - psz, self->buf + psz, psz, RW, 0);
	map_ok(_metadata, self->fd, 0, self->buf, psz, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, SZ_1G - psz, out, psz);
	dma_ok(_metadata, self->fd, DMA_READ, 0, out + psz, psz);
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, psz));
	EXPECT_EQ(-1, pattern_diff(out + psz, psz, 1, 0));
	/* A DMA running off the end of the aperture stops there. */
	EXPECT_EQ(psz, dma_stops(_metadata, self->fd, DMA_READ, SZ_1G - psz, out,
				 2 * psz, IOPFMAP_SIM_DMA_INVALID));
}

/* Ranges never overlap; touching is not overlapping. */
TEST_F(sim, map_eexist)
{
	const __u64 b = IOVA_A;
	char *other = alloc_buf(12, 9);
	char *out = alloc_buf(8, 0);
	const struct {
		const char *what;
		__u64 iova, pages;
	} bad[] = {
		{ "overlap at the start", b - 2 * psz, 4 },
		{ "overlap at the end", b + 6 * psz, 4 },
		{ "inside", b + 2 * psz, 2 },
		{ "containing", b - 2 * psz, 12 },
		{ "identical", b, 8 },
		{ "first page", b, 1 },
		{ "last page", b + 7 * psz, 1 },
	};
	size_t i;

	ASSERT_TRUE(other && out);
	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EEXIST, _test_map(self->fd, bad[i].iova, other,
					     bad[i].pages * psz, RW, 0))
			TH_LOG("%s", bad[i].what);
		EXPECT_EQ(-EEXIST, _test_map(self->fd, bad[i].iova, other,
					     bad[i].pages * psz,
					     RW | IOPFMAP_MAP_PIN, 0))
			TH_LOG("%s, PIN", bad[i].what);
	}
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	/* Nothing was created next to the range ... */
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b - 2 * psz, 2 * psz));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b + 8 * psz, 2 * psz));
	/* ... and the range still translates to its own memory. */
	dma_ok(_metadata, self->fd, DMA_READ, b, out, 8 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 8 * psz, 1, 0));

	/* Neighbours that touch it are fine. */
	map_ok(_metadata, self->fd, b - 2 * psz, other, 2 * psz, RW, 0);
	map_ok(_metadata, self->fd, b + 8 * psz, other + 2 * psz, 2 * psz, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, b - 2 * psz, out, 2 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 2 * psz, 9, 0));
	dma_ok(_metadata, self->fd, DMA_READ, b + 8 * psz, out, 2 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 2 * psz, 9, 2 * psz));
	EXPECT_EQ(12 * psz, unmap_ok(_metadata, self->fd, b - 2 * psz, 12 * psz));
}

/* A VA span that is not a user address range. */
TEST_F(sim, map_efault_kernel_va)
{
	long v0 = vmlck_kb();

	EXPECT_EQ(-EFAULT, _test_map(self->fd, IOVA_A, (void *)(uintptr_t)KERNEL_VA,
				     4 * psz, RW, 0));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, IOVA_A, (void *)(uintptr_t)KERNEL_VA,
				     4 * psz, RW | IOPFMAP_MAP_PIN, 0));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, IOVA_A,
				     (void *)(uintptr_t)(KERNEL_VA - psz),
				     4 * psz, RW, 0));
	EXPECT_EQ(v0, vmlck_kb());
	expect_no_range(_metadata, self->fd, IOVA_A, 4 * psz);
	map_ok(_metadata, self->fd, IOVA_A, self->buf, 4 * psz, RW, 0);
}

/*
 * PIN of memory that is not there or lacks the permission fails as a
 * whole: what was pinned before the bad page is released again.
 */
TEST_F(sim, map_pin_efault)
{
	const __u64 iova = IOVA_A;
	char *ro = alloc_buf(4, 11), *hole, *out = alloc_buf(4, 0);
	long v0 = vmlck_kb();

	ASSERT_TRUE(ro && out);
	ASSERT_EQ(0, mprotect(ro, 4 * psz, PROT_READ));

	/* The second half of the span has no access. */
	ASSERT_EQ(0, mprotect(self->buf + 8 * psz, 8 * psz, PROT_NONE));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, iova, self->buf, self->len,
				     RW | IOPFMAP_MAP_PIN, 0));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, iova, self->buf, self->len,
				     IOPFMAP_MAP_READ | IOPFMAP_MAP_PIN, 0));
	/* Write permission on read-only memory. */
	EXPECT_EQ(-EFAULT, _test_map(self->fd, iova, ro, 4 * psz,
				     RW | IOPFMAP_MAP_PIN, 0));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, iova, ro, 4 * psz,
				     IOPFMAP_MAP_WRITE | IOPFMAP_MAP_PIN, 0));
	/* Nothing mapped at all. */
	hole = alloc_buf(4, 0);
	ASSERT_TRUE(hole != NULL);
	ASSERT_EQ(0, munmap(hole, 4 * psz));
	EXPECT_EQ(-EFAULT, _test_map(self->fd, iova, hole, 4 * psz,
				     RW | IOPFMAP_MAP_PIN, 0));

	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	expect_no_range(_metadata, self->fd, iova, self->len);

	/* Read-only memory can be pinned for device reads. */
	map_ok(_metadata, self->fd, iova, ro, 4 * psz,
	       IOPFMAP_MAP_READ | IOPFMAP_MAP_PIN, 0);
	EXPECT_EQ(v0 + kb(4), vmlck_kb());
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova, out, 4 * psz));
	EXPECT_EQ(-1, pattern_diff(out, 4 * psz, 11, 0));
	EXPECT_EQ(4 * psz, unmap_ok(_metadata, self->fd, iova, 4 * psz));
	EXPECT_EQ(v0, vmlck_kb());
}

/*
 * A FAULT range over memory that is not there is accepted (nothing is
 * looked at until a fault); the device's access then gets INVALID.
 */
TEST_F(sim, map_fault_no_cpu_page)
{
	char *hole = alloc_buf(4, 0);
	struct iopfmap_stats st;
	char c = 0;

	ASSERT_TRUE(hole != NULL);
	ASSERT_EQ(0, munmap(hole, 4 * psz));
	map_ok(_metadata, self->fd, IOVA_A, hole, 4 * psz, RW, 0);
	dma_stops(_metadata, self->fd, DMA_READ, IOVA_A + psz, &c, 1,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(0, iopt_mapped(self->fd, IOVA_A, 4 * psz));
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
	EXPECT_EQ(1ULL, st.out_faults);
	EXPECT_EQ(1ULL, st.out_faults_invalid);
	EXPECT_EQ(0ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_pages_mapped);
}

/* PIN: pinned, charged and mapped at once; DMA never faults. */
TEST_F(sim, map_pin)
{
	const __u64 iova = IOVA_B;
	char *out = alloc_buf(BUF_PAGES, 0), *src = alloc_buf(2, 13);
	struct iopfmap_stats st;
	struct iopfmap_sim_dma d;
	long v0 = vmlck_kb(), mapped = -1;

	ASSERT_TRUE(out && src);
	ASSERT_LE(0, v0);
	map_ok(_metadata, self->fd, iova, self->buf, self->len,
	       RW | IOPFMAP_MAP_PIN, 0);
	EXPECT_EQ(v0 + kb(BUF_PAGES), vmlck_kb());
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, self->len, &mapped));
	EXPECT_EQ(BUF_PAGES, mapped);
	EXPECT_EQ(BUF_PAGES, iopt_mapped(self->fd, iova, self->len));

	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ((__u64)BUF_PAGES, st.out_pages_pinned);
	EXPECT_EQ((__u64)BUF_PAGES, st.out_pages_mapped);
	EXPECT_EQ(0ULL, st.out_faults);
	st = iopfmap_get_stats(_metadata, self->fd, iova);
	EXPECT_EQ((__u64)BUF_PAGES, st.out_pages_pinned);

	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len));
	EXPECT_EQ(-1, pattern_diff(out, self->len, 1, 0));
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_WRITE, iova + 3 * psz, src,
			     2 * psz));
	EXPECT_EQ(-1, pattern_diff(self->buf + 3 * psz, 2 * psz, 13, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf, 3 * psz, 1, 0));
	/* What the CPU writes, the device reads: the same pages. */
	fill(self->buf, self->len, 14);
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len));
	EXPECT_EQ(-1, pattern_diff(out, self->len, 14, 0));
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);

	/* UNMAP unpins, uncharges, and the device loses the pages. */
	EXPECT_EQ(self->len, unmap_ok(_metadata, self->fd, iova, self->len));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));
	ASSERT_EQ(0, _test_sim_dma(self->fd, &d, DMA_READ, iova, out, psz));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, d.out_status);
}

/* What the RLIMIT_MEMLOCK child checks; the step that failed is its exit status. */
enum rlimit_step {
	RL_CAPGET = 1, RL_CAPSET, RL_SETRLIMIT, RL_ALLOC, RL_PIN_CAP,
	RL_PIN_CAP_VMLCK, RL_UNMAP_CAP, RL_MLOCK,
	RL_PIN_BIG, RL_PIN_BIG_VMLCK, RL_PIN_SMALL, RL_PIN_SMALL_VMLCK,
	RL_PIN_OVER, RL_PIN_OVER_VMLCK, RL_UNMAP_SMALL, RL_UNMAP_SMALL_VMLCK,
	RL_MAP_FAULT, RL_MAP_FAULT_VMLCK, RL_SET_MODE, RL_SET_MODE_VMLCK,
	RL_SET_MODE_PINNED, RL_SET_MODE_MAPPED, RL_DMA, RL_DMA_FAULTS,
	RL_DMA_DATA, RL_UNMAP,
};

#define CHILD_CHECK(cond, step, fmt, ...)					\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "# child: step %d: " fmt "\n", step,	\
				##__VA_ARGS__);					\
			return step;						\
		}								\
	} while (0)

/* Drops CAP_IPC_LOCK from the effective set: 0 or a step number. */
static int drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	CHILD_CHECK(!syscall(SYS_capget, &hdr, data), RL_CAPGET, "capget: %s",
		    strerror(errno));
	data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	CHILD_CHECK(!syscall(SYS_capset, &hdr, data), RL_CAPSET, "capset: %s",
		    strerror(errno));
	return 0;
}

/*
 * In a child with RLIMIT_MEMLOCK at 64 KiB: with CAP_IPC_LOCK the limit
 * does not apply. Without it, PIN beyond the limit fails with ENOMEM and
 * charges nothing, within it works; a FAULT range is not charged, and
 * switching it to PIN over the limit fails and leaves it in FAULT mode.
 */
static int rlimit_child(int fd)
{
	const struct rlimit lim = { 64 * 1024, 64 * 1024 };
	const size_t big = 256 * 1024 / psz, small = 32 * 1024 / psz;
	struct iopfmap_sim_dma d;
	struct iopfmap_stats st;
	char *buf, *out;
	long v0;
	int ret;

	CHILD_CHECK(!setrlimit(RLIMIT_MEMLOCK, &lim), RL_SETRLIMIT,
		    "setrlimit: %s", strerror(errno));
	buf = alloc_buf(big, 21);
	out = alloc_buf(big, 0);
	CHILD_CHECK(buf && out, RL_ALLOC, "out of memory");
	v0 = vmlck_kb();

	/* Root with CAP_IPC_LOCK: charged, but not limited. */
	ret = _test_map(fd, IOVA_A, buf, big * psz, RW | IOPFMAP_MAP_PIN, 0);
	CHILD_CHECK(!ret, RL_PIN_CAP,
		    "MAP PIN of 256 KiB with CAP_IPC_LOCK, limit 64 KiB: %s",
		    strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0 + 256, RL_PIN_CAP_VMLCK,
		    "VmLck %ld kB, expected %ld", vmlck_kb(), v0 + 256);
	ret = _test_unmap(fd, IOVA_A, big * psz);
	CHILD_CHECK(!ret && vmlck_kb() == v0, RL_UNMAP_CAP,
		    "UNMAP: %s, VmLck %ld kB, was %ld", strerror(-ret),
		    vmlck_kb(), v0);

	ret = drop_cap_ipc_lock();
	if (ret)
		return ret;
	/* Proof that the limit applies to this process now. */
	ret = mlock(buf, big * psz);
	if (!ret)
		munlock(buf, big * psz);
	CHILD_CHECK(ret, RL_MLOCK, "mlock of 256 KiB beyond RLIMIT_MEMLOCK worked");

	ret = _test_map(fd, IOVA_A, buf, big * psz, RW | IOPFMAP_MAP_PIN, 0);
	CHILD_CHECK(ret == -ENOMEM, RL_PIN_BIG,
		    "MAP PIN of 256 KiB, limit 64 KiB: %s", strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0, RL_PIN_BIG_VMLCK, "VmLck %ld kB, was %ld",
		    vmlck_kb(), v0);

	ret = _test_map(fd, IOVA_B, buf, small * psz, RW | IOPFMAP_MAP_PIN, 0);
	CHILD_CHECK(!ret, RL_PIN_SMALL, "MAP PIN of 32 KiB, limit 64 KiB: %s",
		    strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0 + 32, RL_PIN_SMALL_VMLCK,
		    "VmLck %ld kB, expected %ld", vmlck_kb(), v0 + 32);
	ret = _test_map(fd, IOVA_B + SZ_2M, buf + small * psz, 2 * small * psz,
			RW | IOPFMAP_MAP_PIN, 0);
	CHILD_CHECK(ret == -ENOMEM, RL_PIN_OVER,
		    "MAP PIN of 64 KiB more, limit 64 KiB: %s", strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0 + 32, RL_PIN_OVER_VMLCK,
		    "VmLck %ld kB, expected %ld", vmlck_kb(), v0 + 32);
	ret = _test_unmap(fd, IOVA_B, small * psz);
	CHILD_CHECK(!ret, RL_UNMAP_SMALL, "UNMAP: %s", strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0, RL_UNMAP_SMALL_VMLCK, "VmLck %ld kB, was %ld",
		    vmlck_kb(), v0);

	ret = _test_map(fd, IOVA_A, buf, big * psz, RW, 0);
	CHILD_CHECK(!ret, RL_MAP_FAULT, "MAP FAULT of 256 KiB: %s", strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0, RL_MAP_FAULT_VMLCK, "VmLck %ld kB, was %ld",
		    vmlck_kb(), v0);
	ret = set_mode(fd, IOVA_A, IOPFMAP_MODE_PIN);
	CHILD_CHECK(ret == -ENOMEM, RL_SET_MODE, "SET_MODE PIN of 256 KiB: %s",
		    strerror(-ret));
	CHILD_CHECK(vmlck_kb() == v0, RL_SET_MODE_VMLCK, "VmLck %ld kB, was %ld",
		    vmlck_kb(), v0);
	ret = _test_stats(fd, IOVA_A, &st);
	CHILD_CHECK(!ret && !st.out_pages_pinned, RL_SET_MODE_PINNED,
		    "GET_STATS: %d, %llu pages pinned", ret,
		    (unsigned long long)st.out_pages_pinned);
	ret = iopt_mapped(fd, IOVA_A, big * psz);
	CHILD_CHECK(ret == 0, RL_SET_MODE_MAPPED, "%d pages mapped", ret);

	/* Still a FAULT range: the device faults its pages in. */
	ret = _test_sim_dma(fd, &d, DMA_READ, IOVA_A, out, 4 * psz);
	CHILD_CHECK(!ret && d.out_status == IOPFMAP_SIM_DMA_OK, RL_DMA,
		    "DMA: %d, status %s", ret, iopfmap_dma_status_name(d.out_status));
	CHILD_CHECK(d.out_faults == 4, RL_DMA_FAULTS, "%u faults, expected 4",
		    d.out_faults);
	CHILD_CHECK(pattern_diff(out, 4 * psz, 21, 0) == -1, RL_DMA_DATA,
		    "DMA read the wrong data");
	ret = _test_unmap(fd, IOVA_A, big * psz);
	CHILD_CHECK(!ret, RL_UNMAP, "UNMAP: %s", strerror(-ret));
	return 0;
}

TEST_F(sim, map_pin_rlimit)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(rlimit_child(self->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("the child failed at step %d (its message is above)",
		       WEXITSTATUS(status));
	/* The child's pins died with it: nothing pinned in the context. */
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
}

/* VmLck of process @pid in kB, or -1. */
static long vmlck_kb_of(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * A child that maps @npages of its memory at IOVA_A in the shared context
 * @fd (PIN if @pin), tells the parent MAP's result, and, unless @stay is
 * false, waits for the parent before it exits.
 */
static int mapper_child(int fd, bool pin, size_t npages, int to_parent,
			int from_parent, bool stay, bool limited)
{
	const struct rlimit lim = { 16 * 1024, 16 * 1024 };
	char *buf;
	char go;
	int ret;

	if (limited) {
		CHILD_CHECK(!setrlimit(RLIMIT_MEMLOCK, &lim), RL_SETRLIMIT,
			    "setrlimit: %s", strerror(errno));
		ret = drop_cap_ipc_lock();
		if (ret)
			return ret;
	}
	buf = alloc_buf(npages, 51);
	CHILD_CHECK(buf != NULL, RL_ALLOC, "out of memory");
	ret = _test_map(fd, IOVA_A, buf, npages * psz,
			RW | (pin ? IOPFMAP_MAP_PIN : 0), 0);
	CHILD_CHECK(write(to_parent, &ret, sizeof(ret)) == sizeof(ret),
		    RL_PIN_SMALL, "write: %s", strerror(errno));
	if (stay)
		CHILD_CHECK(read(from_parent, &go, 1) == 1, RL_PIN_SMALL,
			    "read: %s", strerror(errno));
	return 0;
}

enum mapper_end { END_UNMAP, END_CLOSE };

/*
 * Runs this thread once on every CPU: an idle CPU keeps the last mm it
 * ran borrowed (lazy TLB) until a user task runs there, and that would
 * keep an exited child's mm_struct alive behind the test's back.
 */
static void visit_every_cpu(void)
{
	cpu_set_t all, one;
	int cpu;

	if (sched_getaffinity(0, sizeof(all), &all))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (!sched_setaffinity(0, sizeof(one), &one))
			iopfmap_sleep_ms(20);
	}
	sched_setaffinity(0, sizeof(all), &all);
}

/*
 * A PIN range outlives the process that mapped it: the context is shared
 * (fork), the mapper exits with the range pinned, and the other process
 * then ends the range. The range holds the mapper's mm_struct to the end,
 * so the pages are unpinned without touching a freed mm.
 */
static void pin_mapper_exits(struct __test_metadata *_metadata, int *fd,
			     enum mapper_end end)
{
	int to_parent[2], status, ret;
	struct iopfmap_stats st;
	long v0 = vmlck_kb();
	pid_t pid;

	ASSERT_EQ(0, pipe(to_parent));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(mapper_child(*fd, true, 4, to_parent[1], -1, false,
				   false));
	ASSERT_EQ((ssize_t)sizeof(ret), read(to_parent[0], &ret, sizeof(ret)));
	ASSERT_EQ(0, ret) TH_LOG("the child's MAP PIN: %s", strerror(-ret));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child status %#x", status);
	close(to_parent[0]);
	close(to_parent[1]);
	visit_every_cpu();

	/* The mapper is gone; its pages are still pinned and mapped. */
	st = iopfmap_get_stats(_metadata, *fd, ~0ULL);
	EXPECT_EQ(4ULL, st.out_pages_pinned);
	EXPECT_EQ(4, iopt_mapped(*fd, IOVA_A, 4 * psz));
	if (end == END_UNMAP) {
		EXPECT_EQ(4 * psz, unmap_ok(_metadata, *fd, IOVA_A, 4 * psz));
		st = iopfmap_get_stats(_metadata, *fd, ~0ULL);
		EXPECT_EQ(0ULL, st.out_pages_pinned);
		EXPECT_EQ(0, iopt_mapped(*fd, IOVA_A, 4 * psz));
	} else {
		EXPECT_EQ(0, close(*fd));
		*fd = -1;
	}
	/* Nothing was charged to, or uncharged from, this process. */
	EXPECT_EQ(v0, vmlck_kb());
}

TEST_F(sim, pin_mapper_exits_then_unmap)
{
	pin_mapper_exits(_metadata, &self->fd, END_UNMAP);
}

TEST_F(sim, pin_mapper_exits_then_close)
{
	pin_mapper_exits(_metadata, &self->fd, END_CLOSE);
}

/*
 * SET_MODE to PIN from another process than the mapper: the pages are
 * charged to the mapper's locked_vm, against the mapper's RLIMIT_MEMLOCK
 * (16 KiB, no CAP_IPC_LOCK), not the caller's (root, CAP_IPC_LOCK).
 */
TEST_F(sim, set_mode_pin_charges_the_mapper)
{
	int to_parent[2], from_parent[2], status, ret, i;
	long mine = vmlck_kb();
	const size_t npages[2] = { 8, 4 };	/* 32 KiB: over; 16 KiB: within */
	struct iopfmap_stats st;
	char go = 1;
	pid_t pid;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pipe(to_parent));
		ASSERT_EQ(0, pipe(from_parent));
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(mapper_child(self->fd, false, npages[i],
					   to_parent[1], from_parent[0], true,
					   true));
		ASSERT_EQ((ssize_t)sizeof(ret),
			  read(to_parent[0], &ret, sizeof(ret)));
		ASSERT_EQ(0, ret) TH_LOG("the child's MAP: %s", strerror(-ret));
		EXPECT_EQ(0, vmlck_kb_of(pid));

		ret = set_mode(self->fd, IOVA_A, IOPFMAP_MODE_PIN);
		st = iopfmap_get_stats(_metadata, self->fd, IOVA_A);
		if (i == 0) {
			EXPECT_EQ(-ENOMEM, ret)
				TH_LOG("SET_MODE PIN of 32 KiB over the mapper's 16 KiB limit: %s",
				       strerror(-ret));
			EXPECT_EQ(0, vmlck_kb_of(pid));
			EXPECT_EQ(0ULL, st.out_pages_pinned);
		} else {
			EXPECT_EQ(0, ret) TH_LOG("SET_MODE PIN of 16 KiB: %s",
						 strerror(-ret));
			EXPECT_EQ((long)(npages[i] * psz / 1024),
				  vmlck_kb_of(pid));
			EXPECT_EQ(npages[i], st.out_pages_pinned);
		}
		EXPECT_EQ(mine, vmlck_kb());
		unmap_ok(_metadata, self->fd, IOVA_A, npages[i] * psz);
		EXPECT_EQ(0, vmlck_kb_of(pid));

		ASSERT_EQ(1, write(from_parent[1], &go, 1));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("child status %#x", status);
		close(to_parent[0]);
		close(to_parent[1]);
		close(from_parent[0]);
		close(from_parent[1]);
	}
}

/*
 * ---------------------------------------------------------------------
 * UNMAP
 * ---------------------------------------------------------------------
 */

/* After UNMAP the device cannot reach the pages; the CPU's memory is intact. */
TEST_F(sim, unmap_whole_range)
{
	const __u64 iova = IOVA_A;
	char *out = alloc_buf(BUF_PAGES, 0);
	struct iopfmap_stats st;

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, iova, self->buf, self->len, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len);
	EXPECT_EQ(BUF_PAGES, iopt_mapped(self->fd, iova, self->len));

	EXPECT_EQ(self->len, unmap_ok(_metadata, self->fd, iova, self->len));
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));
	EXPECT_EQ(0, query(self->fd, 0, iova, self->len, NULL));
	/* The simulated IOTLB held every page: it was flushed too. */
	memset(out, 0, self->len);
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_READ, iova, out,
				  self->len, IOPFMAP_SIM_DMA_INVALID));
	dma_stops(_metadata, self->fd, DMA_WRITE, iova + 5 * psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-1, pattern_diff(self->buf, self->len, 1, 0));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, iova, self->len));
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ((__u64)BUF_PAGES, st.out_pages_unmapped);
}

/* One span removes every range inside it; out_unmapped is their sum. */
TEST_F(sim, unmap_several_ranges)
{
	const __u64 b = IOVA_A;
	char *out = alloc_buf(BUF_PAGES, 0);
	struct iopfmap_unmap cmd = {
		.size = sizeof(cmd), .iova = b, .length = 64 * psz,
	};

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, b, self->buf, 4 * psz, RW, 0);
	map_ok(_metadata, self->fd, b + 8 * psz, self->buf + 4 * psz, 8 * psz, RW, 0);
	map_ok(_metadata, self->fd, b + 32 * psz, self->buf + 12 * psz, 2 * psz,
	       IOPFMAP_MAP_READ, 0);
	/* Outside the span. */
	map_ok(_metadata, self->fd, b + 64 * psz, self->buf + 14 * psz, 2 * psz,
	       RW | IOPFMAP_MAP_PIN, 0);
	dma_ok(_metadata, self->fd, DMA_READ, b, out, 4 * psz);
	dma_ok(_metadata, self->fd, DMA_READ, b + 8 * psz, out, 8 * psz);
	dma_ok(_metadata, self->fd, DMA_READ, b + 32 * psz, out, 2 * psz);
	EXPECT_EQ(16, iopt_mapped(self->fd, b, 66 * psz));

	test_cmd(unmap, self->fd, &cmd);
	EXPECT_EQ(14 * psz, cmd.out_unmapped);
	EXPECT_EQ(0, iopt_mapped(self->fd, b, 64 * psz));
	EXPECT_EQ(0, query(self->fd, 0, b, 64 * psz, NULL));
	EXPECT_EQ(2, iopt_mapped(self->fd, b + 64 * psz, 2 * psz));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b, 64 * psz));
	dma_stops(_metadata, self->fd, DMA_READ, b + 8 * psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	dma_stops(_metadata, self->fd, DMA_READ, b + 32 * psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);

	/* The range outside the span is untouched. */
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, b + 64 * psz, out,
			     2 * psz));
	EXPECT_EQ(-1, pattern_diff(out, 2 * psz, 1, 14 * psz));
	EXPECT_EQ(2 * psz, unmap_ok(_metadata, self->fd, b + 64 * psz, 2 * psz));
}

/* A span that cuts a range unmaps nothing, not even the whole ranges in it. */
TEST_F(sim, unmap_cut_range)
{
	const __u64 b = IOVA_A;
	const struct {
		const char *what;
		__s64 start, pages;	/* in pages from b */
	} cut[] = {
		{ "first half of A", 0, 4 },
		{ "second half of A and all of B", 4, 8 },
		{ "before and into A", -4, 8 },
		{ "inside A", 2, 2 },
		{ "all of A, first page of B", 0, 9 },
		{ "last page of A to the end of B", 7, 5 },
	};
	char *out = alloc_buf(12, 0);
	struct iopfmap_unmap cmd;
	size_t i;

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);		/* A */
	map_ok(_metadata, self->fd, b + 8 * psz, self->buf + 8 * psz, 4 * psz,
	       RW, 0);								/* B */
	dma_ok(_metadata, self->fd, DMA_READ, b, out, 12 * psz);

	for (i = 0; i < ARRAY_SIZE(cut); i++) {
		cmd = (struct iopfmap_unmap){
			.size = sizeof(cmd),
			.iova = b + cut[i].start * (__s64)psz,
			.length = cut[i].pages * psz,
			.out_unmapped = 0xA5A5A5A5A5A5A5A5ULL,
		};
		EXPECT_EQ(-EINVAL, _test_cmd_unmap(self->fd, &cmd))
			TH_LOG("%s", cut[i].what);
		EXPECT_EQ(0xA5A5A5A5A5A5A5A5ULL, cmd.out_unmapped)
			TH_LOG("%s: out_unmapped written", cut[i].what);
		EXPECT_EQ(12, iopt_mapped(self->fd, b, 12 * psz))
			TH_LOG("%s", cut[i].what);
	}
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_unmapped);

	/* Both ranges still there, still mapped, still the right memory. */
	memset(out, 0, 12 * psz);
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, b, out, 12 * psz));
	EXPECT_EQ(-1, pattern_diff(out, 12 * psz, 1, 0));
	EXPECT_EQ(12 * psz, unmap_ok(_metadata, self->fd, b, 12 * psz));
}

TEST_F(sim, unmap_enoent)
{
	const __u64 b = IOVA_A;

	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b, self->len));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, 0, SZ_1G));
	map_ok(_metadata, self->fd, b, self->buf, 4 * psz, RW, 0);
	/* Next to it, and in a gap that holds nothing. */
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b + 4 * psz, 8 * psz));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, b - 8 * psz, 8 * psz));
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, 0, psz));
	EXPECT_EQ(4 * psz, unmap_ok(_metadata, self->fd, b, 4 * psz));
}

TEST_F(sim, unmap_einval)
{
	const __u64 b = IOVA_A, wrap = -(__u64)psz;
	const struct {
		const char *what;
		__u64 iova, length;
	} bad[] = {
		{ "iova + 1", b + 1, 8 * psz },
		{ "length + 1", b, 8 * psz + 1 },
		{ "length half a page", b, psz / 2 },
		{ "length 0", b, 0 },
		{ "iova wraps", wrap, 2 * psz },
		{ "length wraps", b, wrap },
		{ "length ~0", 0, ~0ULL },
	};
	struct iopfmap_unmap cmd;
	size_t i;

	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		cmd = (struct iopfmap_unmap){
			.size = sizeof(cmd),
			.iova = bad[i].iova,
			.length = bad[i].length,
			.out_unmapped = 0xA5A5A5A5A5A5A5A5ULL,
		};
		EXPECT_EQ(-EINVAL, _test_cmd_unmap(self->fd, &cmd))
			TH_LOG("%s", bad[i].what);
		EXPECT_EQ(0xA5A5A5A5A5A5A5A5ULL, cmd.out_unmapped)
			TH_LOG("%s: out_unmapped written", bad[i].what);
	}
	EXPECT_EQ(8 * psz, unmap_ok(_metadata, self->fd, b, 8 * psz));
}

/* UNMAP_ALL takes no span, and empties the context. */
TEST_F(sim, unmap_all)
{
	const __u64 b = IOVA_A;
	const struct {
		__u64 iova, length;
	} bad[] = {
		{ psz, 0 }, { 0, psz }, { b, 4 * psz }, { 0, SZ_1G },
	};
	struct iopfmap_unmap cmd;
	char *out = alloc_buf(BUF_PAGES, 0);
	size_t i;

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, b, self->buf, 4 * psz, RW, 0);
	map_ok(_metadata, self->fd, b + SZ_2M, self->buf + 4 * psz, 8 * psz,
	       RW | IOPFMAP_MAP_PIN, 0);
	map_ok(_metadata, self->fd, SZ_1G - 4 * psz, self->buf + 12 * psz,
	       4 * psz, IOPFMAP_MAP_READ, 0);
	dma_ok(_metadata, self->fd, DMA_READ, b, out, 4 * psz);
	dma_ok(_metadata, self->fd, DMA_READ, SZ_1G - 4 * psz, out, 4 * psz);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		cmd = (struct iopfmap_unmap){
			.size = sizeof(cmd),
			.flags = IOPFMAP_UNMAP_ALL,
			.iova = bad[i].iova,
			.length = bad[i].length,
		};
		EXPECT_EQ(-EINVAL, _test_cmd_unmap(self->fd, &cmd))
			TH_LOG("UNMAP_ALL with iova %#llx length %#llx",
			       (unsigned long long)bad[i].iova,
			       (unsigned long long)bad[i].length);
	}
	EXPECT_EQ(16, iopt_mapped(self->fd, 0, SZ_1G));
	EXPECT_EQ((__u64)8, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);

	cmd = (struct iopfmap_unmap){
		.size = sizeof(cmd), .flags = IOPFMAP_UNMAP_ALL,
	};
	test_cmd(unmap, self->fd, &cmd);
	EXPECT_EQ(16 * psz, cmd.out_unmapped);
	EXPECT_EQ(0, iopt_mapped(self->fd, 0, SZ_1G));
	EXPECT_EQ(0, query(self->fd, 0, 0, SZ_1G, NULL));
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	dma_stops(_metadata, self->fd, DMA_READ, b, out, psz, IOPFMAP_SIM_DMA_INVALID);
	dma_stops(_metadata, self->fd, DMA_READ, b + SZ_2M, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	dma_stops(_metadata, self->fd, DMA_READ, SZ_1G - psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-ENOENT, _test_unmap(self->fd, 0, SZ_1G));

	/* The context is as good as new. */
	map_ok(_metadata, self->fd, b, self->buf, self->len, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, b, out, self->len);
	EXPECT_EQ(-1, pattern_diff(out, self->len, 1, 0));
}

/*
 * ---------------------------------------------------------------------
 * SET_MODE
 * ---------------------------------------------------------------------
 */

TEST_F(sim, set_mode_errors)
{
	const __u64 b = IOVA_A, f = IOVA_B;
	struct iopfmap_set_mode cmd = {
		.size = sizeof(cmd), .iova = b, .mode = IOPFMAP_MODE_PIN,
		.__reserved = 1,
	};
	long v0 = vmlck_kb();

	EXPECT_EQ(-ENOENT, set_mode(self->fd, b, IOPFMAP_MODE_PIN));
	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	map_ok(_metadata, self->fd, f, self->buf + 8 * psz, 4 * psz,
	       RW | IOPFMAP_MAP_FORWARD, 0);

	/* Not the first IOVA of a range. */
	EXPECT_EQ(-ENOENT, set_mode(self->fd, b + psz, IOPFMAP_MODE_PIN));
	EXPECT_EQ(-ENOENT, set_mode(self->fd, b + 1, IOPFMAP_MODE_PIN));
	EXPECT_EQ(-ENOENT, set_mode(self->fd, b + 8 * psz, IOPFMAP_MODE_PIN));
	EXPECT_EQ(-ENOENT, set_mode(self->fd, b - psz, IOPFMAP_MODE_PIN));
	EXPECT_EQ(-ENOENT, set_mode(self->fd, 0, IOPFMAP_MODE_FAULT));
	/* Unknown modes; PIN on a FORWARD range. */
	EXPECT_EQ(-EINVAL, set_mode(self->fd, b, 2));
	EXPECT_EQ(-EINVAL, set_mode(self->fd, b, ~0U));
	EXPECT_EQ(-EINVAL, set_mode(self->fd, f, IOPFMAP_MODE_PIN));
	EXPECT_EQ(-EOPNOTSUPP, _test_cmd_set_mode(self->fd, &cmd));

	/* Nothing was pinned or mapped by any of them. */
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(0, iopt_mapped(self->fd, b, 8 * psz));
	EXPECT_EQ(0, iopt_mapped(self->fd, f, 4 * psz));
}

/* FAULT -> PIN -> PIN -> FAULT -> FAULT, with content checked on the way. */
TEST_F(sim, set_mode_pin_and_back)
{
	const __u64 iova = IOVA_A;
	char *out = alloc_buf(BUF_PAGES, 0);
	struct iopfmap_stats st;
	long v0 = vmlck_kb(), mapped = -1;

	ASSERT_TRUE(out != NULL);
	ASSERT_LE(0, v0);
	map_ok(_metadata, self->fd, iova, self->buf, self->len, RW, 0);
	/* Asking for the current mode changes nothing. */
	EXPECT_EQ(0, set_mode(self->fd, iova, IOPFMAP_MODE_FAULT));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));
	/* Two pages faulted in before the switch. */
	EXPECT_EQ(2U, dma_ok(_metadata, self->fd, DMA_READ, iova + 4 * psz, out,
			     2 * psz));

	ASSERT_EQ(0, set_mode(self->fd, iova, IOPFMAP_MODE_PIN));
	EXPECT_EQ(v0 + kb(BUF_PAGES), vmlck_kb());
	st = iopfmap_get_stats(_metadata, self->fd, iova);
	EXPECT_EQ((__u64)BUF_PAGES, st.out_pages_pinned);
	EXPECT_EQ((__u64)BUF_PAGES, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, self->len, &mapped));
	EXPECT_EQ(BUF_PAGES, mapped);
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len));
	EXPECT_EQ(-1, pattern_diff(out, self->len, 1, 0));

	/* PIN again: not pinned or charged twice. */
	EXPECT_EQ(0, set_mode(self->fd, iova, IOPFMAP_MODE_PIN));
	EXPECT_EQ(v0 + kb(BUF_PAGES), vmlck_kb());
	EXPECT_EQ((__u64)BUF_PAGES,
		  iopfmap_get_stats(_metadata, self->fd, iova).out_pages_pinned);
	EXPECT_EQ(BUF_PAGES, iopt_mapped(self->fd, iova, self->len));

	/* Back to FAULT: unpinned, uncharged, nothing mapped. */
	ASSERT_EQ(0, set_mode(self->fd, iova, IOPFMAP_MODE_FAULT));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, iova).out_pages_pinned);
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));
	EXPECT_EQ(0, query(self->fd, 0, iova, self->len, NULL));
	/* The device faults the pages back in, IOTLB included. */
	fill(self->buf, self->len, 17);
	EXPECT_EQ((__u32)BUF_PAGES,
		  dma_ok(_metadata, self->fd, DMA_READ, iova, out, self->len));
	EXPECT_EQ(-1, pattern_diff(out, self->len, 17, 0));
	EXPECT_EQ(v0, vmlck_kb());

	EXPECT_EQ(0, set_mode(self->fd, iova, IOPFMAP_MODE_FAULT));
	EXPECT_EQ(BUF_PAGES, iopt_mapped(self->fd, iova, self->len));
	EXPECT_EQ(v0, vmlck_kb());
}

/* A PIN range switched to FAULT, then UNMAPped, is uncharged once. */
TEST_F(sim, set_mode_map_pin_to_fault)
{
	long v0 = vmlck_kb();

	map_ok(_metadata, self->fd, IOVA_A, self->buf, self->len,
	       RW | IOPFMAP_MAP_PIN, 0);
	EXPECT_EQ(v0 + kb(BUF_PAGES), vmlck_kb());
	ASSERT_EQ(0, set_mode(self->fd, IOVA_A, IOPFMAP_MODE_FAULT));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0, iopt_mapped(self->fd, IOVA_A, self->len));
	EXPECT_EQ(self->len, unmap_ok(_metadata, self->fd, IOVA_A, self->len));
	EXPECT_EQ(v0, vmlck_kb());
}

/* SET_MODE PIN over memory with a hole fails and leaves a FAULT range. */
TEST_F(sim, set_mode_pin_efault)
{
	const __u64 iova = IOVA_A;
	long v0 = vmlck_kb();
	char c;

	ASSERT_EQ(0, mprotect(self->buf + 5 * psz, psz, PROT_NONE));
	map_ok(_metadata, self->fd, iova, self->buf, self->len, RW, 0);
	EXPECT_EQ(-EFAULT, set_mode(self->fd, iova, IOPFMAP_MODE_PIN));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);
	EXPECT_EQ(0, iopt_mapped(self->fd, iova, self->len));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, iova, self->len, NULL));
	/* Still FAULT: a DMA faults, and the page without access is refused. */
	EXPECT_EQ(1U, dma_ok(_metadata, self->fd, DMA_READ, iova, &c, 1));
	EXPECT_EQ(pattern_byte(1, 0), (unsigned char)c);
	dma_stops(_metadata, self->fd, DMA_READ, iova + 5 * psz, &c, 1,
		  IOPFMAP_SIM_DMA_INVALID);
}

/*
 * ---------------------------------------------------------------------
 * GET_STATS
 * ---------------------------------------------------------------------
 */

TEST_F(sim, stats_errors)
{
	const __u64 b = IOVA_A;
	struct iopfmap_stats st, before;

	/* A refused command writes none of the counters. */
	memset(&st, 0xA5, sizeof(st));
	st.size = sizeof(st);
	st.flags = 0;
	st.iova = b;
	before = st;
	EXPECT_EQ(-EINVAL, _test_cmd_get_stats(self->fd, &st));
	EXPECT_EQ(0, memcmp(&before, &st, sizeof(st)));

	EXPECT_EQ(-ENOENT, _test_stats(self->fd, b, &st));
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, 0, &st));
	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, b - 1, &st));
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, b + 8 * psz, &st));
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, 0, &st));
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, SZ_1G, &st));
	memset(&st, 0xA5, sizeof(st));
	st.size = sizeof(st);
	st.flags = IOPFMAP_STATS_RANGE;
	st.iova = b + 8 * psz;
	before = st;
	EXPECT_EQ(-ENOENT, _test_cmd_get_stats(self->fd, &st));
	EXPECT_EQ(0, memcmp(&before, &st, sizeof(st)));

	/* Any IOVA inside the range will do, aligned or not. */
	EXPECT_EQ(0, _test_stats(self->fd, b, &st));
	EXPECT_EQ(0, _test_stats(self->fd, b + 3 * psz + 5, &st));
	EXPECT_EQ(0, _test_stats(self->fd, b + 8 * psz - 1, &st));
	/* Without IOPFMAP_STATS_RANGE, even an IOVA inside a range is refused. */
	st = (struct iopfmap_stats){ .size = sizeof(st), .iova = b };
	EXPECT_EQ(-EINVAL, _test_cmd_get_stats(self->fd, &st));
}

/* A DMA over N pages no one has mapped yet: N faults, N handled, N mapped. */
TEST_F(sim, stats_fault_counts)
{
	const __u64 a = IOVA_A, b = IOVA_B;
	char *out = alloc_buf(BUF_PAGES, 0);
	struct iopfmap_stats st;
	struct iopfmap_stats zero;

	ASSERT_TRUE(out != NULL);
	memset(&zero, 0, sizeof(zero));
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	zero.size = st.size;
	EXPECT_EQ(0, memcmp(&zero, &st, sizeof(st)))
		TH_LOG("a new context has non-zero counters");

	map_ok(_metadata, self->fd, a, self->buf, 12 * psz, RW, 0);
	map_ok(_metadata, self->fd, b, self->buf + 12 * psz, 4 * psz, RW, 0);
	st = iopfmap_get_stats(_metadata, self->fd, a);
	EXPECT_EQ(0ULL, st.out_faults);
	EXPECT_EQ(0ULL, st.out_pages_mapped);

	EXPECT_EQ(12U, dma_ok(_metadata, self->fd, DMA_READ, a, out, 12 * psz));
	EXPECT_EQ(-1, pattern_diff(out, 12 * psz, 1, 0));
	EXPECT_EQ(3U, dma_ok(_metadata, self->fd, DMA_WRITE, b + psz, out,
			     3 * psz));
	EXPECT_EQ(-1, pattern_diff(self->buf + 13 * psz, 3 * psz, 1, 0));

	st = iopfmap_get_stats(_metadata, self->fd, a);
	EXPECT_EQ(12ULL, st.out_faults);
	EXPECT_EQ(12ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_faults_invalid);
	EXPECT_EQ(0ULL, st.out_faults_forwarded);
	EXPECT_EQ(12ULL, st.out_pages_mapped);
	EXPECT_EQ(0ULL, st.out_pages_prefetched);
	EXPECT_EQ(0ULL, st.out_huge_mappings);
	EXPECT_EQ(0ULL, st.out_pages_unmapped);
	EXPECT_EQ(0ULL, st.out_pages_pinned);
	st = iopfmap_get_stats(_metadata, self->fd, b + 3 * psz);
	EXPECT_EQ(3ULL, st.out_faults);
	EXPECT_EQ(3ULL, st.out_faults_handled);
	EXPECT_EQ(3ULL, st.out_pages_mapped);

	/* A fault outside every range counts for the context only. */
	dma_stops(_metadata, self->fd, DMA_READ, IOVA_C, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(16ULL, st.out_faults);
	EXPECT_EQ(15ULL, st.out_faults_handled);
	EXPECT_EQ(1ULL, st.out_faults_invalid);
	EXPECT_EQ(15ULL, st.out_pages_mapped);
	EXPECT_EQ(12ULL, iopfmap_get_stats(_metadata, self->fd, a).out_faults);

	/* The context's counters keep what removed ranges did. */
	EXPECT_EQ(12 * psz, unmap_ok(_metadata, self->fd, a, 12 * psz));
	EXPECT_EQ(-ENOENT, _test_stats(self->fd, a, &st));
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(16ULL, st.out_faults);
	EXPECT_EQ(15ULL, st.out_faults_handled);
	EXPECT_EQ(1ULL, st.out_faults_invalid);
	EXPECT_EQ(15ULL, st.out_pages_mapped);
	EXPECT_EQ(12ULL, st.out_pages_unmapped);
	EXPECT_EQ(3ULL, iopfmap_get_stats(_metadata, self->fd, b).out_faults);
}

/*
 * ---------------------------------------------------------------------
 * QUERY_MAPPED
 * ---------------------------------------------------------------------
 */

TEST_F(sim, query_errors)
{
	const size_t words = SZ_1G / psz / 64 + 2;
	const __u64 wrap = -(__u64)psz;
	const struct {
		const char *what;
		__u64 iova, length;
		int err;
	} bad[] = {
		{ "iova + 1", IOVA_A + 1, psz, EINVAL },
		{ "length + 1", IOVA_A, psz + 1, EINVAL },
		{ "length 0", IOVA_A, 0, EINVAL },
		{ "1 GiB + a page", 0, SZ_1G + psz, EINVAL },
		{ "wraps", wrap, 2 * psz, EINVAL },
		{ "past the aperture", SZ_1G, psz, ERANGE },
		{ "across the end of the aperture", SZ_1G - psz, 2 * psz, ERANGE },
		{ "far past the aperture", 4 * SZ_1G, psz, ERANGE },
	};
	struct iopfmap_query_mapped q;
	__u64 *bits = malloc(words * sizeof(*bits));
	size_t i, j;
	__u32 flags;

	ASSERT_TRUE(bits != NULL);
	map_ok(_metadata, self->fd, IOVA_A, self->buf, 4 * psz, RW | IOPFMAP_MAP_PIN, 0);
	for (flags = 0; flags <= IOPFMAP_QUERY_IOPT; flags++) {
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			memset(bits, 0xA5, words * sizeof(*bits));
			q = (struct iopfmap_query_mapped){
				.size = sizeof(q),
				.flags = flags,
				.iova = bad[i].iova,
				.length = bad[i].length,
				.bitmap = u64_of(bits),
				.out_mapped_pages = 12345,
			};
			EXPECT_EQ(-bad[i].err, _test_cmd_query_mapped(self->fd, &q))
				TH_LOG("%s, flags %#x", bad[i].what, flags);
			EXPECT_EQ(12345ULL, q.out_mapped_pages);
			for (j = 0; j < words; j++)
				if (bits[j] != 0xA5A5A5A5A5A5A5A5ULL)
					break;
			EXPECT_EQ(words, j) TH_LOG("%s: bitmap written", bad[i].what);
		}
		/* The whole aperture is fine. */
		memset(bits, 0xA5, words * sizeof(*bits));
		EXPECT_EQ(4, query(self->fd, flags, 0, SZ_1G, bits));
		EXPECT_EQ(0xfULL << ((IOVA_A / psz) % 64), bits[IOVA_A / psz / 64]);
		EXPECT_EQ(0xA5A5A5A5A5A5A5A5ULL, bits[SZ_1G / psz / 64])
			TH_LOG("bitmap written past its end");
		/* A bitmap the kernel cannot write. */
		EXPECT_EQ(-EFAULT, query(self->fd, flags, IOVA_A, psz,
					 (__u64 *)(uintptr_t)KERNEL_VA));
	}
	free(bits);
}

/* Exactly the pages the device touched, bit N % 64 of word N / 64. */
TEST_F(sim, query_bitmap)
{
	const __u64 b = IOVA_A;
	const size_t npages = 80;
	char *buf = alloc_buf(npages, 19);
	__u64 bits[4];
	__u32 flags;
	char c;

	ASSERT_TRUE(buf != NULL);
	map_ok(_metadata, self->fd, b, buf, npages * psz, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, b, &c, 1);
	dma_ok(_metadata, self->fd, DMA_READ, b + 3 * psz + 17, &c, 1);
	dma_ok(_metadata, self->fd, DMA_WRITE, b + 7 * psz + psz - 1, &c, 1);
	dma_ok(_metadata, self->fd, DMA_READ, b + 70 * psz, &c, 1);
	EXPECT_EQ(pattern_byte(19, 70 * psz), (unsigned char)c);

	for (flags = 0; flags <= IOPFMAP_QUERY_IOPT; flags++) {
		memset(bits, 0xA5, sizeof(bits));
		EXPECT_EQ(4, query(self->fd, flags, b, npages * psz, bits));
		EXPECT_EQ((1ULL << 0) | (1ULL << 3) | (1ULL << 7), bits[0])
			TH_LOG("flags %#x: word 0 %#llx", flags,
			       (unsigned long long)bits[0]);
		EXPECT_EQ(1ULL << (70 - 64), bits[1])
			TH_LOG("flags %#x: word 1 %#llx", flags,
			       (unsigned long long)bits[1]);
		EXPECT_EQ(0xA5A5A5A5A5A5A5A5ULL, bits[2])
			TH_LOG("bitmap written past its end");

		/* A span starting at page 3 of the range. */
		memset(bits, 0xA5, sizeof(bits));
		EXPECT_EQ(2, query(self->fd, flags, b + 3 * psz, 8 * psz, bits));
		EXPECT_EQ((1ULL << 0) | (1ULL << 4), bits[0]);
		EXPECT_EQ(0xA5A5A5A5A5A5A5A5ULL, bits[1]);

		/* Pages before the range read as 0. */
		memset(bits, 0xA5, sizeof(bits));
		EXPECT_EQ(3, query(self->fd, flags, b - 8 * psz, 16 * psz, bits));
		EXPECT_EQ((1ULL << 8) | (1ULL << 11) | (1ULL << 15), bits[0]);
	}
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, b, npages * psz, NULL));

	EXPECT_EQ(npages * psz, unmap_ok(_metadata, self->fd, b, npages * psz));
	memset(bits, 0xA5, sizeof(bits));
	EXPECT_EQ(0, query(self->fd, 0, b, npages * psz, bits));
	EXPECT_EQ(0ULL, bits[0]);
	EXPECT_EQ(0ULL, bits[1]);
	EXPECT_EQ(0, iopt_mapped(self->fd, b, npages * psz));
}

/*
 * ---------------------------------------------------------------------
 * Raw page requests
 * ---------------------------------------------------------------------
 */

TEST_F(sim, prq_single)
{
	const __u64 b = IOVA_A;
	struct iopfmap_stats st;
	__u64 bits[1];
	char *out = alloc_buf(1, 0);

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	/* The low bits of the address are ignored. */
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + 2 * psz + 123, 1));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_READ | IOPFMAP_PRQ_LAST,
				       b + 5 * psz, 2));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_WRITE | IOPFMAP_PRQ_LAST,
				       b + 6 * psz, GRPID_MAX));
	bits[0] = 0;
	EXPECT_EQ(3, query(self->fd, IOPFMAP_QUERY_IOPT, b, 8 * psz, bits));
	EXPECT_EQ((1ULL << 2) | (1ULL << 5) | (1ULL << 6), bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, b, 8 * psz, NULL));
	/* The device uses the mapping: no fault, the right page. */
	EXPECT_EQ(0U, dma_ok(_metadata, self->fd, DMA_READ, b + 2 * psz, out, psz));
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, 2 * psz));

	/* Outside every range. */
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b - psz, 3));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_READ | IOPFMAP_PRQ_LAST,
				       b + 8 * psz, 4));
	EXPECT_EQ(3, iopt_mapped(self->fd, b - psz, 10 * psz));

	/* Five requests, three resolved; the DMA raised none. */
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(5ULL, st.out_faults);
	EXPECT_EQ(3ULL, st.out_faults_handled);
	EXPECT_EQ(2ULL, st.out_faults_invalid);
	EXPECT_EQ(3ULL, st.out_pages_mapped);
}

/* The range's permissions decide; a request needs every one it asks for. */
TEST_F(sim, prq_permissions)
{
	const __u64 ro = IOVA_A, wo = IOVA_B;
	char *src = alloc_buf(1, 23), *out = alloc_buf(1, 0);
	struct iopfmap_stats st;

	ASSERT_TRUE(src && out);
	map_ok(_metadata, self->fd, ro, self->buf, 4 * psz, IOPFMAP_MAP_READ, 0);
	map_ok(_metadata, self->fd, wo, self->buf + 8 * psz, 4 * psz,
	       IOPFMAP_MAP_WRITE, 0);

	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_WRITE | IOPFMAP_PRQ_LAST, ro, 1));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST, ro, 1));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_READ | IOPFMAP_PRQ_LAST,
				       ro + psz, 1));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_READ | IOPFMAP_PRQ_LAST, wo, 1));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_WRITE | IOPFMAP_PRQ_LAST,
				       wo + psz, 1));
	EXPECT_EQ(1, iopt_mapped(self->fd, ro, 4 * psz));
	EXPECT_EQ(1, iopt_mapped(self->fd, wo, 4 * psz));

	/* The same through the DMA engine; refused writes change nothing. */
	dma_stops(_metadata, self->fd, DMA_WRITE, ro + 2 * psz, src, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-1, pattern_diff(self->buf, 4 * psz, 1, 0));
	dma_ok(_metadata, self->fd, DMA_READ, ro + 3 * psz, out, psz);
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, 3 * psz));
	memset(out, 0, psz);
	dma_stops(_metadata, self->fd, DMA_READ, wo + 2 * psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	dma_ok(_metadata, self->fd, DMA_WRITE, wo + 3 * psz, src, psz);
	EXPECT_EQ(-1, pattern_diff(self->buf + 11 * psz, psz, 23, 0));

	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(9ULL, st.out_faults);
	EXPECT_EQ(4ULL, st.out_faults_handled);
	EXPECT_EQ(5ULL, st.out_faults_invalid);
}

TEST_F(sim, prq_einval)
{
	const __u64 b = IOVA_A;
	const struct {
		const char *what;
		__u32 flags, pasid, grpid;
	} bad[] = {
		{ "no permission", 0, 0, 0 },
		{ "LAST only", IOPFMAP_PRQ_LAST, 0, 0 },
		{ "PASID | LAST only", IOPFMAP_PRQ_PASID | IOPFMAP_PRQ_LAST, 1, 0 },
		{ "grpid 512", PRQ_RW_LAST, 0, GRPID_MAX + 1 },
		{ "grpid ~0", PRQ_RW_LAST, 0, ~0U },
		{ "pasid 1 << 20", PRQ_RW_LAST | IOPFMAP_PRQ_PASID, PASID_LIMIT, 0 },
		{ "pasid ~0", PRQ_RW_LAST | IOPFMAP_PRQ_PASID, ~0U, 0 },
		{ "pasid 1 << 20, not LAST", PRQ_RW | IOPFMAP_PRQ_PASID,
		  PASID_LIMIT, 0 },
	};
	struct iopfmap_sim_page_request r, before;
	size_t i;

	map_ok(_metadata, self->fd, b, self->buf, 4 * psz, RW, 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = (struct iopfmap_sim_page_request){
			.size = sizeof(r),
			.flags = bad[i].flags,
			.iova = b,
			.pasid = bad[i].pasid,
			.grpid = bad[i].grpid,
			.out_response = 0x5a5a5a5a,
		};
		before = r;
		EXPECT_EQ(-EINVAL, _test_cmd_sim_page_request(self->fd, &r))
			TH_LOG("%s", bad[i].what);
		EXPECT_EQ(0, memcmp(&before, &r, sizeof(r)))
			TH_LOG("%s: struct changed", bad[i].what);
	}
	r = (struct iopfmap_sim_page_request){
		.size = sizeof(r), .flags = PRQ_RW_LAST, .iova = b,
		.__reserved = 1,
	};
	EXPECT_EQ(-EOPNOTSUPP, _test_cmd_sim_page_request(self->fd, &r));

	/* Refused requests never arrived. */
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);
	EXPECT_EQ(0, iopt_mapped(self->fd, b, 4 * psz));

	/* The largest PASID and group index are fine. */
	r = (struct iopfmap_sim_page_request){
		.size = sizeof(r),
		.flags = PRQ_RW_LAST | IOPFMAP_PRQ_PASID,
		.iova = b + psz,
		.pasid = PASID_LIMIT - 1,
		.grpid = GRPID_MAX,
		.out_response = RESP_PENDING,
	};
	EXPECT_EQ(0, _test_cmd_sim_page_request(self->fd, &r));
	EXPECT_NE(RESP_PENDING, r.out_response);
	EXPECT_EQ(1ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);
}

/* A group is answered once, when its last request arrives. */
TEST_F(sim, prq_group)
{
	const __u64 b = IOVA_A;
	__u64 bits[1] = { 0 };

	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b, 7));
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd,
				       IOPFMAP_PRQ_READ, b + psz, 7));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + 2 * psz, 7));
	EXPECT_EQ(3, query(self->fd, IOPFMAP_QUERY_IOPT, b, 8 * psz, bits));
	EXPECT_EQ(0x7ULL, bits[0]);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, b, 8 * psz, NULL));
	EXPECT_EQ(3ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);

	/* The group index can be used again once answered. */
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b + 4 * psz, 7));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + 5 * psz, 7));
	EXPECT_EQ(5, iopt_mapped(self->fd, b, 8 * psz));
	EXPECT_EQ(5ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);
}

/* One bad page makes the whole group INVALID; other groups are their own. */
TEST_F(sim, prq_group_invalid)
{
	const __u64 b = IOVA_A, outside = IOVA_C;

	map_ok(_metadata, self->fd, b, self->buf, 8 * psz, RW, 0);
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b, 9));
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, outside, 9));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + psz, 9));

	/* The bad page last. */
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b + 2 * psz, 10));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       outside, 10));

	/* Interleaved groups: group 12's bad page is not group 11's. */
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b + 3 * psz, 11));
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, outside, 12));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + 4 * psz, 11));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       b + 5 * psz, 12));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, b, 8 * psz, NULL));

	/* Every request arrived and was counted. */
	EXPECT_EQ(9ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);
}

/* At most IOPFMAP_PRQ_GROUP_MAX requests wait for their last one. */
TEST_F(sim, prq_group_busy)
{
	const __u64 b = IOVA_A;
	__u32 resp;
	int i;

	map_ok(_metadata, self->fd, b, self->buf, self->len, RW, 0);
	for (i = 0; i < IOPFMAP_PRQ_GROUP_MAX; i++) {
		ASSERT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW,
					       b + (i % BUF_PAGES) * psz, 3))
			TH_LOG("request %d", i);
	}
	/* prq() passes out_response 0xdeadbeef: a refusal leaves it. */
	EXPECT_EQ(-EBUSY, prq(self->fd, PRQ_RW, b, 3, &resp));
	EXPECT_EQ(0xdeadbeefU, resp);
	EXPECT_EQ(-EBUSY, prq(self->fd, PRQ_RW, b, 4, &resp));
	EXPECT_EQ(0xdeadbeefU, resp);
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST, b, 3));
	EXPECT_EQ(BUF_PAGES, iopt_mapped(self->fd, b, self->len));

	/* Answered: there is room again. */
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, b, 4));
	EXPECT_EQ(RESP_SUCCESS, prq_ok(_metadata, self->fd, PRQ_RW_LAST, b + psz, 4));
}

/* Requests still waiting for their last one when the context closes. */
TEST_F(sim, prq_pending_at_close)
{
	map_ok(_metadata, self->fd, IOVA_A, self->buf, self->len, RW, 0);
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, IOVA_A, 5));
	EXPECT_EQ(RESP_PENDING, prq_ok(_metadata, self->fd, PRQ_RW, IOVA_C, 6));
	/* The teardown closes the context with them pending. */
}

/*
 * ---------------------------------------------------------------------
 * FORWARD ranges
 * ---------------------------------------------------------------------
 */

TEST_F(sim, forward_range)
{
	const __u64 f = IOVA_A;
	char *out = alloc_buf(1, 0);
	struct iopfmap_stats st;
	long v0 = vmlck_kb();

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, f, self->buf, 4 * psz,
	       RW | IOPFMAP_MAP_FORWARD, 0);
	/* No userspace handler yet: answered INVALID. */
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_READ, f + psz, out, psz,
				  IOPFMAP_SIM_DMA_INVALID));
	EXPECT_EQ(RESP_INVALID, prq_ok(_metadata, self->fd, PRQ_RW_LAST,
				       f + 2 * psz, 1));
	EXPECT_EQ(0, iopt_mapped(self->fd, f, 4 * psz));
	EXPECT_EQ(0, query(self->fd, 0, f, 4 * psz, NULL));

	st = iopfmap_get_stats(_metadata, self->fd, f);
	EXPECT_EQ(2ULL, st.out_faults);
	EXPECT_EQ(2ULL, st.out_faults_forwarded);
	EXPECT_EQ(0ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_pages_mapped);
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(2ULL, st.out_faults_forwarded);

	EXPECT_EQ(-EINVAL, set_mode(self->fd, f, IOPFMAP_MODE_PIN));
	EXPECT_EQ(v0, vmlck_kb());
	EXPECT_EQ(4 * psz, unmap_ok(_metadata, self->fd, f, 4 * psz));
}

/*
 * ---------------------------------------------------------------------
 * SIM_DMA
 * ---------------------------------------------------------------------
 */

TEST_F(sim, dma_errors)
{
	const __u64 b = IOVA_A;
	char *noaccess = alloc_buf(1, 0), *big;
	struct iopfmap_sim_dma d;
	char src[64];

	ASSERT_TRUE(noaccess != NULL);
	ASSERT_EQ(0, mprotect(noaccess, psz, PROT_NONE));
	map_ok(_metadata, self->fd, b, self->buf, self->len, RW, 0);
	fill(src, sizeof(src), 29);

	EXPECT_EQ(-EINVAL, _test_sim_dma(self->fd, &d, DMA_READ, b, src, 0));
	EXPECT_EQ(-EINVAL, _test_sim_dma(self->fd, &d, DMA_WRITE, b, src, 0));
	EXPECT_EQ(-EINVAL, _test_sim_dma(self->fd, &d, DMA_READ, b, src,
					 SIM_DMA_MAX + 1));
	EXPECT_EQ(-EINVAL, _test_sim_dma(self->fd, &d, DMA_WRITE, b, src, ~0ULL));

	memset(&d, 0, sizeof(d));
	d = (struct iopfmap_sim_dma){
		.size = sizeof(d), .flags = IOPFMAP_SIM_DMA_PASID, .iova = b,
		.length = sizeof(src), .buffer = u64_of(src), .pasid = PASID_LIMIT,
	};
	EXPECT_EQ(-EINVAL, _test_cmd_sim_dma(self->fd, &d));
	d.pasid = ~0U;
	EXPECT_EQ(-EINVAL, _test_cmd_sim_dma(self->fd, &d));
	/* The largest PASID; whatever it moved is the range's memory. */
	d.pasid = PASID_LIMIT - 1;
	EXPECT_EQ(0, _test_cmd_sim_dma(self->fd, &d));
	EXPECT_LE(d.out_done, (__u64)sizeof(src));
	EXPECT_EQ(-1, pattern_diff(src, d.out_done, 1, 0));

	/* A buffer the kernel cannot access; memory stays as it was. */
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_WRITE, b, NULL, 64));
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_WRITE, b, noaccess, 64));
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_WRITE, b,
					 (void *)(uintptr_t)KERNEL_VA, 64));
	EXPECT_EQ(-1, pattern_diff(self->buf, self->len, 1, 0));
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_READ, b, NULL, 64));
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_READ, b, noaccess, 64));
	EXPECT_EQ(-EFAULT, _test_sim_dma(self->fd, &d, DMA_READ, b,
					 (void *)(uintptr_t)KERNEL_VA, 64));

	/* 64 MiB is allowed; this one stops at its first page. */
	big = mmap(NULL, SIM_DMA_MAX, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_TRUE(big != MAP_FAILED);
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_READ, 8 * SZ_2M * 8, big,
				  SIM_DMA_MAX, IOPFMAP_SIM_DMA_INVALID));
	munmap(big, SIM_DMA_MAX);

	/* The range still works. */
	fill(src, sizeof(src), 29);
	dma_ok(_metadata, self->fd, DMA_WRITE, b + 10, src, sizeof(src));
	EXPECT_EQ(-1, pattern_diff(self->buf + 10, sizeof(src), 29, 0));
}

TEST_F(sim, s1_enodev_when_not_nested)
{
	map_ok(_metadata, self->fd, IOVA_A, self->buf, self->len, RW, 0);
	EXPECT_EQ(-ENODEV, s1_map(self->fd, RW, IOVA_C, IOVA_A, psz));
	EXPECT_EQ(-ENODEV, s1_unmap(self->fd, IOVA_C, psz, NULL));
	/* The flat device translates IOVAs directly. */
	dma_stops(_metadata, self->fd, DMA_READ, IOVA_C, self->buf, 1,
		  IOPFMAP_SIM_DMA_INVALID);
}

/*
 * ---------------------------------------------------------------------
 * Several address spaces in one context
 * ---------------------------------------------------------------------
 */

enum mm_step {
	MM_ALLOC = 1, MM_MAP, MM_PIPE, MM_OWN_COPY, MM_PARENT_WRITE,
};

/*
 * The child of several_mms: maps its own buffer (pattern 41) at IOVA_B,
 * says so, waits for the parent's DMA, then checks what landed.
 */
static int mm_child(int fd, int to_parent, int from_parent, const char *pbuf,
		    size_t plen)
{
	char *buf = alloc_buf(4, 41);
	char go;
	int ret;

	CHILD_CHECK(buf != NULL, MM_ALLOC, "out of memory");
	ret = _test_map(fd, IOVA_B, buf, 4 * psz, RW, 0);
	CHILD_CHECK(write(to_parent, &ret, sizeof(ret)) == sizeof(ret), MM_PIPE,
		    "write: %s", strerror(errno));
	CHILD_CHECK(!ret, MM_MAP, "MAP: %s", strerror(-ret));
	CHILD_CHECK(read(from_parent, &go, 1) == 1, MM_PIPE, "read: %s",
		    strerror(errno));
	/* The parent's device write after fork went to the parent's copy. */
	CHILD_CHECK(pattern_diff(pbuf, plen, 1, 0) == -1, MM_OWN_COPY,
		    "the parent's DMA changed the child's copy of its buffer");
	/* The parent's DMA write into this child's range landed here. */
	CHILD_CHECK(pattern_diff(buf + psz, psz, 43, 0) == -1 &&
		    pattern_diff(buf, psz, 41, 0) == -1, MM_PARENT_WRITE,
		    "the parent's DMA write is not in the child's memory");
	return 0;
}

/*
 * A context used by two processes: each range translates to the memory
 * of the process that created it, and goes dark when that process exits.
 */
TEST_F(sim, several_mms)
{
	const __u64 mine = IOVA_A, childs = IOVA_B;
	char *out = alloc_buf(4, 0), *src = alloc_buf(BUF_PAGES, 42);
	int to_parent[2], from_parent[2], status, ret;
	pid_t pid;
	char go = 1;

	ASSERT_TRUE(out && src);
	/* The parent's own range, mapped and in the IOTLB before fork. */
	map_ok(_metadata, self->fd, mine, self->buf, self->len, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, mine, src, self->len);
	fill(src, self->len, 42);
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(from_parent));

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(mm_child(self->fd, to_parent[1], from_parent[0], self->buf,
			       self->len));

	ASSERT_EQ((ssize_t)sizeof(ret), read(to_parent[0], &ret, sizeof(ret)));
	ASSERT_EQ(0, ret) TH_LOG("the child's MAP: %s", strerror(-ret));

	/* The child's range reads the child's memory. */
	dma_ok(_metadata, self->fd, DMA_READ, childs, out, 4 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 4 * psz, 41, 0));
	/* And writes into it. */
	fill(out, psz, 43);
	dma_ok(_metadata, self->fd, DMA_WRITE, childs + psz, out, psz);
	/* The parent's range writes into the parent's memory only. */
	dma_ok(_metadata, self->fd, DMA_WRITE, mine, src, self->len);
	EXPECT_EQ(-1, pattern_diff(self->buf, self->len, 42, 0));

	ASSERT_EQ(1, write(from_parent[1], &go, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("the child failed at step %d (its message is above)",
		       WEXITSTATUS(status));

	/* The child's address space is gone: so is the device's access. */
	EXPECT_EQ(0, iopt_mapped(self->fd, childs, 4 * psz));
	EXPECT_EQ(0, query(self->fd, 0, childs, 4 * psz, NULL));
	memset(out, 0, 4 * psz);
	dma_stops(_metadata, self->fd, DMA_READ, childs, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	dma_stops(_metadata, self->fd, DMA_WRITE, childs + 2 * psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(0, iopt_mapped(self->fd, childs, 4 * psz));

	/* The parent's range does not depend on the child. */
	dma_ok(_metadata, self->fd, DMA_READ, mine, out, 4 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 4 * psz, 42, 0));
	close(to_parent[0]);
	close(to_parent[1]);
	close(from_parent[0]);
	close(from_parent[1]);
}

/*
 * ---------------------------------------------------------------------
 * A command that fails changes nothing, even when its results cannot be
 * written back (the struct in read-only memory: EFAULT)
 * ---------------------------------------------------------------------
 */

/* One page holding a command struct, made read-only before the ioctl. */
static void *ro_cmd(const void *cmd, size_t len)
{
	void *p = mmap(NULL, psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, cmd, len);
	if (mprotect(p, psz, PROT_READ)) {
		munmap(p, psz);
		return NULL;
	}
	return p;
}

/* ioctl(@cmd) with a read-only copy of @arg: 0 or -errno. */
static int ioctl_ro(int fd, unsigned long cmd, const void *arg, size_t len)
{
	void *p = ro_cmd(arg, len);
	int ret;

	if (!p)
		return -ENOMEM;
	ret = ioctl(fd, cmd, p) ? -errno : 0;
	munmap(p, psz);
	return ret;
}

TEST_F(sim, efault_changes_nothing)
{
	struct iopfmap_unmap um = { .size = sizeof(um), .iova = IOVA_A,
				    .length = 0 };
	struct iopfmap_unmap all = { .size = sizeof(all),
				     .flags = IOPFMAP_UNMAP_ALL };
	struct iopfmap_sim_page_request pr = {
		.size = sizeof(pr),
		.flags = IOPFMAP_PRQ_READ | IOPFMAP_PRQ_LAST,
	};
	struct iopfmap_map mp = { .size = sizeof(mp), .flags = RW };
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_sim_dma d = { .size = sizeof(d) };
	struct iopfmap_stats st0, st1;
	char *src = alloc_buf(1, 7);
	int fd2;

	ASSERT_TRUE(src != NULL);
	map_ok(_metadata, self->fd, IOVA_A, self->buf, self->len, RW, 0);
	dma_ok(_metadata, self->fd, DMA_READ, IOVA_A, src, psz);
	fill(src, psz, 7);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);

	/* UNMAP and UNMAP_ALL: the range stays, mapped as it was. */
	um.length = self->len;
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_UNMAP, &um, sizeof(um)));
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_UNMAP, &all,
				    sizeof(all)));
	EXPECT_EQ(1, query(self->fd, 0, IOVA_A, self->len, NULL));
	EXPECT_EQ(1, iopt_mapped(self->fd, IOVA_A, self->len));

	/* SIM_DMA: nothing moved, no fault raised. */
	d.flags = DMA_WRITE;
	d.iova = IOVA_A + 2 * psz;
	d.buffer = u64_of(src);
	d.length = psz;
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_SIM_DMA, &d, sizeof(d)));
	EXPECT_EQ(-1, pattern_diff(self->buf, self->len, 1, 0));

	/* SIM_PAGE_REQUEST: not raised, the page not mapped. */
	pr.iova = IOVA_A + 3 * psz;
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_SIM_PAGE_REQUEST, &pr,
				    sizeof(pr)));
	EXPECT_EQ(1, query(self->fd, 0, IOVA_A, self->len, NULL));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults, st1.out_faults);
	EXPECT_EQ(st0.out_pages_mapped, st1.out_pages_mapped);

	/* MAP: no range. */
	mp.iova = IOVA_B;
	mp.vaddr = u64_of(self->buf);
	mp.length = self->len;
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_MAP, &mp, sizeof(mp)));
	expect_no_range(_metadata, self->fd, IOVA_B, self->len);

	/* QUEUE_ALLOC: no queue, so a second one can be made. */
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_QUEUE_ALLOC, &qa,
				    sizeof(qa)));
	EXPECT_EQ(0, _test_ioctl(self->fd, IOPFMAP_QUEUE_ALLOC, &qa));
	if (qa.out_fd > 0)
		close(qa.out_fd);

	/* SIM_CREATE on a new context: it stays without a table. */
	fd2 = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2) TH_LOG("open: %s", strerror(errno));
	EXPECT_EQ(-EFAULT, ioctl_ro(fd2, IOPFMAP_SIM_CREATE, &sc, sizeof(sc)));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE,
		  get_info(_metadata, fd2).out_iopt_type);
	EXPECT_EQ(0, sim_create(fd2, 0, 0, &sc));
	close(fd2);

	/* The struct in writable memory: every one of them works. */
	unmap_ok(_metadata, self->fd, IOVA_A, self->len);
	munmap(src, psz);
}

TEST_F(nested, efault_s1_unmap_changes_nothing)
{
	struct iopfmap_sim_s1_unmap cmd = {
		.size = sizeof(cmd),
		.iova = 0x10000000ULL,
		.length = 4 * SZ_4K,
	};
	char *out = alloc_buf(1, 0);

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, IOVA_B, self->buf, self->len, RW, 0);
	ASSERT_EQ(0, s1_map(self->fd, RW, 0x10000000ULL, IOVA_B, 4 * psz));
	EXPECT_EQ(-EFAULT, ioctl_ro(self->fd, IOPFMAP_SIM_S1_UNMAP, &cmd,
				    sizeof(cmd)));
	/* Stage 1 still translates: the DMA reads the buffer. */
	dma_ok(_metadata, self->fd, DMA_READ, 0x10000000ULL, out, psz);
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, 0));
	munmap(out, psz);
}

/*
 * ---------------------------------------------------------------------
 * Nested translation
 * ---------------------------------------------------------------------
 */

/* Stage-1 input addresses (the guest's IOVAs), and the IPA of the range. */
#define S1_X		0x10000000ULL	/* 256 MiB */
#define S1_IPA		IOVA_B

TEST_F(nested, s1_map_errors)
{
	const __u64 x = S1_X, y = S1_IPA, wrap = -(__u64)psz;
	const struct {
		const char *what;
		__u32 flags;
		__u64 iova, ipa, length;
		int err;
	} bad[] = {
		{ "no permission", 0, x, y, psz, EINVAL },
		{ "iova + 1", RW, x + 1, y, psz, EINVAL },
		{ "ipa + 1", RW, x, y + 1, psz, EINVAL },
		{ "length + 1", RW, x, y, psz + 1, EINVAL },
		{ "length 0", RW, x, y, 0, EINVAL },
		{ "iova wraps", RW, wrap, y, 2 * psz, EINVAL },
		{ "ipa wraps", RW, x, wrap, 2 * psz, EINVAL },
		{ "iova past the aperture", RW, SZ_1G, y, psz, ERANGE },
		{ "iova across the end", RW, SZ_1G - psz, y, 2 * psz, ERANGE },
	};
	__u64 unmapped;
	size_t i;
	char c;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-bad[i].err, s1_map(self->fd, bad[i].flags, bad[i].iova,
					      bad[i].ipa, bad[i].length))
			TH_LOG("%s", bad[i].what);
	}
	EXPECT_EQ(0, s1_unmap(self->fd, x, 4 * psz, &unmapped));
	EXPECT_EQ(0ULL, unmapped);

	map_ok(_metadata, self->fd, y, self->buf, self->len, RW, 0);
	ASSERT_EQ(0, s1_map(self->fd, RW, x, y, 4 * psz));
	EXPECT_EQ(-EEXIST, s1_map(self->fd, RW, x + 2 * psz, y, 4 * psz));
	EXPECT_EQ(-EEXIST, s1_map(self->fd, RW, x - psz, y, 2 * psz));
	EXPECT_EQ(-EEXIST, s1_map(self->fd, RW, x, y + 8 * psz, 4 * psz));
	EXPECT_EQ(-EEXIST, s1_map(self->fd, IOPFMAP_MAP_READ, x + 3 * psz, y, psz));
	/* The refused spans' free pages got no entry. */
	EXPECT_EQ(0, s1_unmap(self->fd, x + 4 * psz, 2 * psz, &unmapped));
	EXPECT_EQ(0ULL, unmapped);
	EXPECT_EQ(0, s1_unmap(self->fd, x - psz, psz, &unmapped));
	EXPECT_EQ(0ULL, unmapped);
	dma_stops(_metadata, self->fd, DMA_READ, x + 4 * psz, &c, 1,
		  IOPFMAP_SIM_DMA_S1_FAULT);
	dma_stops(_metadata, self->fd, DMA_READ, x - psz, &c, 1,
		  IOPFMAP_SIM_DMA_S1_FAULT);
	/* The existing entries still point where they did. */
	dma_ok(_metadata, self->fd, DMA_READ, x + 3 * psz, &c, 1);
	EXPECT_EQ(pattern_byte(1, 3 * psz), (unsigned char)c);

	/* S1_UNMAP's own errors. */
	EXPECT_EQ(-EINVAL, s1_unmap(self->fd, x + 1, psz, NULL));
	EXPECT_EQ(-EINVAL, s1_unmap(self->fd, x, psz + 1, NULL));
	EXPECT_EQ(-EINVAL, s1_unmap(self->fd, x, 0, NULL));
	EXPECT_EQ(-EINVAL, s1_unmap(self->fd, wrap, 2 * psz, NULL));
	EXPECT_EQ(-ERANGE, s1_unmap(self->fd, SZ_1G, psz, NULL));
	EXPECT_EQ(-ERANGE, s1_unmap(self->fd, SZ_1G - psz, 2 * psz, NULL));
	EXPECT_EQ(0, s1_unmap(self->fd, x, 4 * psz, &unmapped));
	EXPECT_EQ(4 * psz, unmapped);
}

/* Stage 1 then stage 2: a device write lands at the right byte of buf. */
TEST_F(nested, dma_through_s1)
{
	const __u64 x = S1_X, y = S1_IPA;
	char *src = alloc_buf(2, 31), *out = alloc_buf(BUF_PAGES, 0);
	const size_t off = 3 * psz + 100;
	int i;

	ASSERT_TRUE(src && out);
	map_ok(_metadata, self->fd, y, self->buf, self->len, RW, 0);
	ASSERT_EQ(0, s1_map(self->fd, RW, x, y, self->len));

	/* Stage-2 misses are resolved in the kernel: three pages fault. */
	EXPECT_EQ(3U, dma_ok(_metadata, self->fd, DMA_WRITE, x + off, src, 2 * psz));
	EXPECT_EQ(-1, pattern_diff(self->buf, off, 1, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + off, 2 * psz, 31, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + off + 2 * psz,
				   self->len - off - 2 * psz, 1, off + 2 * psz));
	/* Stage 2 holds those pages at their IPAs. */
	EXPECT_EQ(3, iopt_mapped(self->fd, y, self->len));
	EXPECT_EQ(0, iopt_mapped(self->fd, x, self->len));
	dma_ok(_metadata, self->fd, DMA_READ, x + off, out, 2 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 2 * psz, 31, 0));

	/* Stage-1 pages mapped in reverse order to the first four IPA pages. */
	fill(self->buf, self->len, 1);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, s1_map(self->fd, RW, x + SZ_2M + i * psz,
				    y + (3 - i) * psz, psz));
	}
	dma_ok(_metadata, self->fd, DMA_READ, x + SZ_2M, out, 4 * psz);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(-1, pattern_diff(out + i * psz, psz, 1, (3 - i) * psz))
			TH_LOG("stage-1 page %d", i);
	}

	/* A second window onto the second half of the range. */
	ASSERT_EQ(0, s1_map(self->fd, IOPFMAP_MAP_READ, x + 2 * SZ_2M,
			    y + 8 * psz, 8 * psz));
	dma_ok(_metadata, self->fd, DMA_READ, x + 2 * SZ_2M + psz, out, 7 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 7 * psz, 1, 9 * psz));
}

/* A stage-1 miss ends the DMA with S1_FAULT where it happened. */
TEST_F(nested, s1_fault)
{
	const __u64 x = S1_X, y = S1_IPA;
	char *src = alloc_buf(1, 33);
	struct iopfmap_stats st;
	char c;

	ASSERT_TRUE(src != NULL);
	map_ok(_metadata, self->fd, y, self->buf, self->len, RW, 0);
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_READ, x, &c, 1,
				  IOPFMAP_SIM_DMA_S1_FAULT));
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_WRITE, x + 0x123, src, 8,
				  IOPFMAP_SIM_DMA_S1_FAULT));
	/* Stage-1 misses are not stage-2 page requests. */
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(0ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_pages_mapped);

	/* The first page has an entry, the second not: it stops at the border. */
	ASSERT_EQ(0, s1_map(self->fd, RW, x, y, psz));
	EXPECT_EQ(psz - 100, dma_stops(_metadata, self->fd, DMA_WRITE, x + 100, src,
				       psz, IOPFMAP_SIM_DMA_S1_FAULT));
	EXPECT_EQ(-1, pattern_diff(self->buf, 100, 1, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + 100, psz - 100, 33, 0));
	EXPECT_EQ(-1, pattern_diff(self->buf + psz, self->len - psz, 1, psz));

	/* A stage-1 entry to an IPA that no range holds: stage 2 says INVALID. */
	ASSERT_EQ(0, s1_map(self->fd, RW, x + SZ_2M, IOVA_C, psz));
	dma_stops(_metadata, self->fd, DMA_READ, x + SZ_2M, &c, 1,
		  IOPFMAP_SIM_DMA_INVALID);
}

/* S1_UNMAP removes entries and what the IOTLB cached of them. */
TEST_F(nested, s1_unmap)
{
	const __u64 x = S1_X, y = S1_IPA;
	char *out = alloc_buf(4, 0);
	__u64 unmapped;
	char c;

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, y, self->buf, self->len, RW, 0);
	ASSERT_EQ(0, s1_map(self->fd, RW, x, y, 4 * psz));
	dma_ok(_metadata, self->fd, DMA_READ, x, out, 4 * psz);
	EXPECT_EQ(-1, pattern_diff(out, 4 * psz, 1, 0));

	ASSERT_EQ(0, s1_unmap(self->fd, x + psz, 2 * psz, &unmapped));
	EXPECT_EQ(2 * psz, unmapped);
	dma_ok(_metadata, self->fd, DMA_READ, x, &c, 1);
	dma_stops(_metadata, self->fd, DMA_READ, x + psz, &c, 1,
		  IOPFMAP_SIM_DMA_S1_FAULT);
	dma_stops(_metadata, self->fd, DMA_READ, x + 2 * psz + 9, &c, 1,
		  IOPFMAP_SIM_DMA_S1_FAULT);
	dma_ok(_metadata, self->fd, DMA_READ, x + 3 * psz, &c, 1);
	EXPECT_EQ(psz, dma_stops(_metadata, self->fd, DMA_READ, x, out, 4 * psz,
				 IOPFMAP_SIM_DMA_S1_FAULT));

	/* Only the pages that had an entry count. */
	ASSERT_EQ(0, s1_unmap(self->fd, x, 4 * psz, &unmapped));
	EXPECT_EQ(2 * psz, unmapped);
	dma_stops(_metadata, self->fd, DMA_READ, x, &c, 1, IOPFMAP_SIM_DMA_S1_FAULT);
	dma_stops(_metadata, self->fd, DMA_READ, x + 3 * psz, &c, 1,
		  IOPFMAP_SIM_DMA_S1_FAULT);
	/* Stage 2 is not stage 1's business. */
	EXPECT_EQ(4, iopt_mapped(self->fd, y, self->len));
}

/* UNMAP of the stage-2 range reaches the IOTLB's nested translations. */
TEST_F(nested, s2_unmap)
{
	const __u64 x = S1_X, y = S1_IPA;
	char *out = alloc_buf(4, 0);

	ASSERT_TRUE(out != NULL);
	map_ok(_metadata, self->fd, y, self->buf, 4 * psz, RW, 0);
	ASSERT_EQ(0, s1_map(self->fd, RW, x, y, 4 * psz));
	dma_ok(_metadata, self->fd, DMA_READ, x, out, 4 * psz);
	EXPECT_EQ(4 * psz, unmap_ok(_metadata, self->fd, y, 4 * psz));
	dma_stops(_metadata, self->fd, DMA_READ, x + psz, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	dma_stops(_metadata, self->fd, DMA_WRITE, x, out, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-1, pattern_diff(self->buf, 4 * psz, 1, 0));
}

/* Both stages' permissions apply. */
TEST_F(nested, s1_readonly)
{
	const __u64 x = S1_X, y = S1_IPA;
	char *src = alloc_buf(1, 37), *out = alloc_buf(1, 0);

	ASSERT_TRUE(src && out);
	map_ok(_metadata, self->fd, y, self->buf, 8 * psz, RW, 0);
	map_ok(_metadata, self->fd, y + 8 * psz, self->buf + 8 * psz, 8 * psz,
	       IOPFMAP_MAP_READ, 0);
	ASSERT_EQ(0, s1_map(self->fd, IOPFMAP_MAP_READ, x, y, 2 * psz));
	ASSERT_EQ(0, s1_map(self->fd, RW, x + SZ_2M, y + 8 * psz, 2 * psz));

	/* Read-only at stage 1. */
	EXPECT_EQ(0ULL, dma_stops(_metadata, self->fd, DMA_WRITE, x + psz, src, psz,
				  IOPFMAP_SIM_DMA_S1_FAULT));
	EXPECT_EQ(-1, pattern_diff(self->buf, 8 * psz, 1, 0));
	dma_ok(_metadata, self->fd, DMA_READ, x + psz, out, psz);
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, psz));

	/* Read-only at stage 2. */
	dma_stops(_metadata, self->fd, DMA_WRITE, x + SZ_2M, src, psz,
		  IOPFMAP_SIM_DMA_INVALID);
	EXPECT_EQ(-1, pattern_diff(self->buf + 8 * psz, 8 * psz, 1, 8 * psz));
	dma_ok(_metadata, self->fd, DMA_READ, x + SZ_2M + psz, out, psz);
	EXPECT_EQ(-1, pattern_diff(out, psz, 1, 9 * psz));
}

TEST_HARNESS_MAIN
