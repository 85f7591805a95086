// SPDX-License-Identifier: GPL-2.0
/*
 * The data path of iopfmap through the simulated device: a device DMA
 * faults pages of a FAULT range into the IO page table, and every change
 * of the CPU's page tables (munmap, MADV_DONTNEED, mremap, mprotect,
 * copy-on-write after fork, migration, THP split, KSM merge) takes them
 * out again, so that the device always reaches the page the CPU sees, or
 * gets INVALID, never a stale page.
 *
 * One variant per kind of memory the guest offers: private anonymous,
 * memfd (shmem) MAP_SHARED, a tmpfs file MAP_SHARED, THP and hugetlb.
 * Fixture dma has all five and the tests that apply to every kind; the
 * other fixtures have the same setup and teardown and only the kinds
 * their tests apply to (see "the fixtures" below), so that a test runs
 * wherever it applies and a SKIP only ever means the machine lacks
 * something. Each test fills and checks content, and checks the counters
 * of IOPFMAP_GET_STATS; the teardown checks after every test that the
 * ranges' iopf_mapped bitmaps equal a walk of the IO page table.
 *
 * Needs the module loaded with sim=1 and root. Some tests need two NUMA
 * nodes, free hugetlb pages, THP or KSM and say SKIP with the reason when
 * the machine lacks them (tools/vm/run --numa --append hugepages=32 has
 * all of them).
 */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>

#include "iopfmap_utils.h"

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

#define SZ_2M		(2UL << 20)
#define PAGES_2M	(SZ_2M / 4096)

/* IOVAs: the fixture's range, and further ranges some tests add. */
#define IOVA_MAIN	0x200000ULL
#define IOVA_ALT	0x1000000ULL
#define IOVA_ALT2	0x2000000ULL
#define IOVA_ALT3	0x3000000ULL

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define DMA_READ	0U
#define DMA_WRITE	IOPFMAP_SIM_DMA_WRITE

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define HUGETLB_DIR	"/sys/kernel/mm/hugepages/hugepages-2048kB/"

static size_t psz;

enum mem_kind {
	KIND_ANON,	/* private anonymous, 4 KiB pages only */
	KIND_MEMFD,	/* memfd (shmem), MAP_SHARED */
	KIND_TMPFS,	/* a file on tmpfs, MAP_SHARED */
	KIND_THP,	/* private anonymous, PMD-mapped THP */
	KIND_HUGETLB,	/* private anonymous MAP_HUGETLB, 2 MiB pages */
};

#define MAX_SPANS 6

struct dma_span {
	__u64 iova, len;
};

/*
 * What a test of any of the fixtures has as *self*. A fixture's data is a
 * union of a struct dma_state, for the helpers (&self->state), and an
 * anonymous struct with the same members, for the test bodies (self->buf):
 * the same memory, read through a common initial sequence.
 *
 * fd, memfd: the device; the file of the shared kinds, else -1
 * buf, len, npages: 2 MiB aligned, variant->len bytes
 * iova: the range over buf, READ | WRITE
 * iova_last, pgsize_bitmap: of the simulated device
 * spans: IOVA spans whose bitmap must match the IO page table at the end
 * extra: further mappings the teardown unmaps
 * ksm_*: KSM settings to restore
 */
#define DMA_STATE_MEMBERS						\
	int fd;								\
	int memfd;							\
	char *buf;							\
	size_t len;							\
	size_t npages;							\
	__u64 iova;							\
	__u64 iova_last;						\
	__u64 pgsize_bitmap;						\
	struct dma_span spans[MAX_SPANS];				\
	int nspans;							\
	void *extra[2];							\
	size_t extra_len[2];						\
	bool ksm_saved;							\
	long ksm_run, ksm_pages_to_scan, ksm_sleep;

struct dma_state {
	DMA_STATE_MEMBERS
};

#define DMA_FIXTURE_DATA						\
	union {								\
		struct dma_state state;					\
		struct {						\
			DMA_STATE_MEMBERS				\
		};							\
	}

/*
 * What a test has as *variant*, the same way (&variant->desc for the
 * helpers): the kind of memory; shared: a MAP_SHARED file, no COW, and
 * DONTNEED keeps the content; huge: backed by 2 MiB pages; len: of the
 * buffer.
 */
#define MEM_DESC_MEMBERS						\
	enum mem_kind kind;						\
	bool shared;							\
	bool huge;							\
	size_t len;

struct mem_desc {
	MEM_DESC_MEMBERS
};

#define MEM_DESC_VARIANT						\
	union {								\
		struct mem_desc desc;					\
		struct {						\
			MEM_DESC_MEMBERS				\
		};							\
	}

/* The variants: FIXTURE_VARIANT_ADD(f, anon) { .desc = MEM_ANON }. */
#define MEM_ANON	{ .kind = KIND_ANON, .len = 128 << 10, }
#define MEM_MEMFD	{ .kind = KIND_MEMFD, .shared = true,		\
			  .len = 128 << 10, }
#define MEM_TMPFS	{ .kind = KIND_TMPFS, .shared = true,		\
			  .len = 128 << 10, }
#define MEM_THP		{ .kind = KIND_THP, .huge = true, .len = 4 << 20, }
#define MEM_HUGETLB	{ .kind = KIND_HUGETLB, .huge = true,		\
			  .len = 4 << 20, }

/* ---- helpers: memory ---------------------------------------------------- */

/*
 * A PROT_NONE reservation of @len bytes at a 2 MiB aligned address, to be
 * replaced with MAP_FIXED; NULL on failure.
 */
static char *reserve_aligned(size_t len)
{
	size_t span = len + SZ_2M;
	uintptr_t p, a;
	void *m;

	m = mmap(NULL, span, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	p = (uintptr_t)m;
	a = (p + SZ_2M - 1) & ~(SZ_2M - 1);
	if (a > p)
		munmap(m, a - p);
	munmap((void *)(a + len), p + span - (a + len));
	return (char *)a;
}

/*
 * Maps @len bytes of the variant's kind at @at (MAP_FIXED), at file offset
 * @off for the shared kinds: 0 or -errno.
 */
static int map_kind(const struct dma_state *self,
		    const struct mem_desc *variant, char *at, size_t len,
		    off_t off)
{
	int prot = PROT_READ | PROT_WRITE;
	void *p;

	switch (variant->kind) {
	case KIND_MEMFD:
	case KIND_TMPFS:
		p = mmap(at, len, prot, MAP_SHARED | MAP_FIXED, self->memfd,
			 off);
		break;
	case KIND_HUGETLB:
		p = mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_HUGETLB | MAP_FIXED, -1, 0);
		break;
	default:
		p = mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0);
		break;
	}
	if (p == MAP_FAILED)
		return -errno;
	if (p != at)
		return -EADDRNOTAVAIL;
	/*
	 * THP only where the variant asks for it: a small anonymous VMA
	 * could otherwise merge with a neighbour into a THP-able one.
	 */
	if (variant->kind == KIND_ANON && madvise(at, len, MADV_NOHUGEPAGE))
		return -errno;
	if (variant->kind == KIND_THP && madvise(at, len, MADV_HUGEPAGE))
		return -errno;
	return 0;
}

static long read_long(const char *path)
{
	char buf[64];
	long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", v) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/* "Field:   N kB" of /proc/self/status, or -1. */
static long status_kb(const char *field)
{
	size_t flen = strlen(field);
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* "Field:   N kB" of the /proc/self/smaps entry holding @addr, or -1. */
static long smaps_kb(const void *addr, const char *field)
{
	size_t flen = strlen(field);
	unsigned long s, e;
	bool in = false;
	char line[512];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			if (in)
				break;
			in = s <= (uintptr_t)addr && (uintptr_t)addr < e;
		} else if (in && !strncmp(line, field, flen) &&
			   line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static bool numa_two_nodes(void)
{
	return access("/sys/devices/system/node/node1", F_OK) == 0;
}

static long sys_move_pages(unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

/* Free (unreserved) 2 MiB hugetlb pages, of node @node or all if < 0. */
static long hugetlb_free(int node)
{
	char path[128];

	if (node < 0)
		return read_long(HUGETLB_DIR "free_hugepages") -
		       read_long(HUGETLB_DIR "resv_hugepages");
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/"
		 "hugepages/hugepages-2048kB/free_hugepages", node);
	return read_long(path);
}

/* ---- helpers: content --------------------------------------------------- */

/*
 * Fills @len bytes with a pattern of 64-bit words that depends on @seed
 * and on the word's index, so that data from a wrong page, a wrong offset
 * or an older fill all differ.
 */
static void pattern(void *p, size_t len, uint32_t seed)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++) {
		uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^
			     (seed + 1) * 0xC2B2AE3D27D4EB4FULL;

		w[i] = x ^ (x >> 29);
	}
}

static char *pattern_alloc(size_t len, uint32_t seed)
{
	char *p = malloc(len);

	if (p)
		pattern(p, len, seed);
	return p;
}

/* same(), all_zero() and diff_at(): iopfmap_utils.h. */

/* ---- helpers: the module ------------------------------------------------ */

/* One simulated DMA; the ioctl must succeed. */
static struct iopfmap_sim_dma do_dma(struct __test_metadata *_metadata,
				     int fd, __u32 flags, __u64 iova,
				     void *buf, size_t len)
{
	struct iopfmap_sim_dma d;
	int ret = _test_sim_dma(fd, &d, flags, iova, buf, len);

	ASSERT_EQ(0, ret)
		TH_LOG("SIM_DMA %s iova %#llx len %#zx: %s",
		       flags & DMA_WRITE ? "write" : "read",
		       (unsigned long long)iova, len, strerror(-ret));
	return d;
}

/* One simulated DMA that must move all @len bytes. */
static struct iopfmap_sim_dma dma_ok(struct __test_metadata *_metadata,
				     int fd, __u32 flags, __u64 iova,
				     void *buf, size_t len)
{
	struct iopfmap_sim_dma d = do_dma(_metadata, fd, flags, iova, buf, len);

	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status)
		TH_LOG("DMA %s iova %#llx len %#zx: %s at %#llx after %llu bytes",
		       flags & DMA_WRITE ? "write" : "read",
		       (unsigned long long)iova, len,
		       iopfmap_dma_status_name(d.out_status),
		       (unsigned long long)d.out_fault_iova,
		       (unsigned long long)d.out_done);
	ASSERT_EQ((__u64)len, d.out_done);
	return d;
}

/* One simulated DMA that must stop with INVALID at @fault_iova. */
static void dma_invalid(struct __test_metadata *_metadata, int fd,
			__u32 flags, __u64 iova, void *buf, size_t len,
			__u64 fault_iova)
{
	struct iopfmap_sim_dma d = do_dma(_metadata, fd, flags, iova, buf, len);

	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID, d.out_status)
		TH_LOG("DMA %s iova %#llx: %s, want INVALID",
		       flags & DMA_WRITE ? "write" : "read",
		       (unsigned long long)iova, iopfmap_dma_status_name(d.out_status));
	EXPECT_EQ(fault_iova, d.out_fault_iova);
	EXPECT_EQ(fault_iova - iova, d.out_done);
	EXPECT_LE(1U, d.out_faults);
}

/*
 * Loads the simulated IOTLB with the translations of [iova, iova + len)
 * (up to 8 pages) right before a CPU page table change, so that a missed
 * IOTLB flush shows: the IOTLB is small and direct-mapped, and a long DMA
 * evicts entries before it comes back to them.
 */
static void prime_iotlb(struct __test_metadata *_metadata, int fd,
			__u32 flags, __u64 iova, const void *data, size_t len)
{
	char tmp[8 * 4096];

	ASSERT_LE(len, sizeof(tmp));
	if (flags & DMA_WRITE)
		memcpy(tmp, data, len);	/* writes what is there already */
	dma_ok(_metadata, fd, flags, iova, tmp, len);
}

/* The CPU page table change that just happened reached the IO page table. */
static void expect_invalidated(struct __test_metadata *_metadata,
			       const struct iopfmap_stats *before,
			       const struct iopfmap_stats *after,
			       __u64 min_pages)
{
	EXPECT_LT(before->out_invalidations, after->out_invalidations);
	EXPECT_LT(before->out_invalidations_handled,
		  after->out_invalidations_handled);
	EXPECT_LE(before->out_pages_unmapped + min_pages,
		  after->out_pages_unmapped)
		TH_LOG("pages_unmapped %llu -> %llu, want at least +%llu",
		       (unsigned long long)before->out_pages_unmapped,
		       (unsigned long long)after->out_pages_unmapped,
		       (unsigned long long)min_pages);
}

static void add_span(struct dma_state *self, __u64 iova, __u64 len)
{
	if (self->nspans < MAX_SPANS) {
		self->spans[self->nspans].iova = iova;
		self->spans[self->nspans].len = len;
		self->nspans++;
	}
}

/* MAP of a further range, remembered for the teardown's check. */
static void map_range(struct __test_metadata *_metadata,
		      struct dma_state *self, __u64 iova, void *va,
		      size_t len, __u32 prefetch)
{
	int ret = _test_map(self->fd, iova, va, len, RW, prefetch);

	ASSERT_EQ(0, ret) TH_LOG("MAP %#llx -> %p len %#zx prefetch %u: %s",
				 (unsigned long long)iova, va, len, prefetch,
				 strerror(-ret));
	add_span(self, iova, len);
}

/* The buffer's content from the device: one DMA read that must be OK. */
static struct iopfmap_sim_dma read_all(struct __test_metadata *_metadata,
				       struct dma_state *self, void *out)
{
	return dma_ok(_metadata, self->fd, DMA_READ, self->iova, out,
		      self->len);
}

/*
 * Moves the pages of [p, p + len) to the node other than the one the first
 * is on, then checks that every base page is there. One address per
 * 2 MiB for the huge kinds: move_pages() moves a whole THP or hugetlb
 * folio for its first address and reports -EBUSY for the next subpage (the
 * folio is isolated by then). Returns the node, or -1 after a SKIP.
 */
static int migrate(struct __test_metadata *_metadata,
		   const struct mem_desc *variant, char *p, size_t len)
{
	size_t step = variant->huge ? SZ_2M : psz;
	size_t i, n = len / step, nall = len / psz;
	void **pages = calloc(nall, sizeof(*pages));
	int *nodes = calloc(nall, sizeof(*nodes));
	int *status = calloc(nall, sizeof(*status));
	int target;
	long ret;

	ASSERT_TRUE(pages && nodes && status);
	for (i = 0; i < n; i++)
		pages[i] = p + i * step;
	ret = sys_move_pages(n, pages, NULL, status, 0);
	ASSERT_EQ(0, ret) TH_LOG("move_pages query: %s", strerror(errno));
	ASSERT_LE(0, status[0]) TH_LOG("page 0: %s", strerror(-status[0]));
	target = status[0] == 0 ? 1 : 0;
	if (variant->kind == KIND_HUGETLB &&
	    hugetlb_free(target) < (long)n) {
		free(pages);
		free(nodes);
		free(status);
		SKIP(return -1, "node %d has %ld free hugetlb pages, need %zu",
		     target, hugetlb_free(target), n);
	}
	for (i = 0; i < n; i++) {
		nodes[i] = target;
		status[i] = INT_MIN;
	}
	ret = sys_move_pages(n, pages, nodes, status, MPOL_MF_MOVE);
	EXPECT_EQ(0, ret) TH_LOG("move_pages to node %d: %ld, %s", target,
				 ret, ret < 0 ? strerror(errno) : "pages left");
	for (i = 0; i < n; i++) {
		EXPECT_EQ(target, status[i])
			TH_LOG("address %zu of %zu: status %d (%s)", i, n,
			       status[i], status[i] < 0 ?
			       strerror(-status[i]) : "node");
	}

	/* Where every base page is now. */
	for (i = 0; i < nall; i++) {
		pages[i] = p + i * psz;
		status[i] = INT_MIN;
	}
	ret = sys_move_pages(nall, pages, NULL, status, 0);
	ASSERT_EQ(0, ret) TH_LOG("move_pages query: %s", strerror(errno));
	for (i = 0; i < nall; i++) {
		if (status[i] == target)
			continue;
		EXPECT_EQ(target, status[i])
			TH_LOG("page %zu of %zu after the move: status %d",
			       i, nall, status[i]);
		break;
	}
	free(pages);
	free(nodes);
	free(status);
	return target;
}

/* ---- the fixtures ------------------------------------------------------- */

/*
 * The setup of every fixture: the simulated device, the buffer of the
 * variant's kind and a range over it. SKIPs when the machine cannot give
 * that kind of memory.
 */
static void dma_state_setup(struct __test_metadata *_metadata,
			    struct dma_state *self,
			    const struct mem_desc *variant)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_info info = { .size = sizeof(info) };
	char path[64];
	struct statfs sfs;
	int ret;

	psz = sysconf(_SC_PAGESIZE);
	self->fd = -1;
	self->memfd = -1;
	self->len = variant->len;
	self->npages = variant->len / psz;
	self->iova = IOVA_MAIN;

	OPEN_CONTEXT(&self->fd);
	ASSERT_EQ(0, _test_cmd_get_info(self->fd, &info));
	if (!(info.out_features & IOPFMAP_FEATURE_MAP))
		SKIP(return, "the module has no MAP feature (features %#llx)",
		     (unsigned long long)info.out_features);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "no simulated device: load iopfmap with sim=1");
	test_cmd(sim_create, self->fd, &sc);
	self->pgsize_bitmap = sc.out_pgsize_bitmap;
	self->iova_last = sc.out_iova_last;
	ASSERT_LE(IOVA_ALT3 + SZ_2M * 4, self->iova_last);

	switch (variant->kind) {
	case KIND_MEMFD:
		self->memfd = memfd_create("iopfmap_dma", MFD_CLOEXEC);
		ASSERT_LE(0, self->memfd) TH_LOG("memfd_create: %s",
						 strerror(errno));
		break;
	case KIND_TMPFS:
		strcpy(path, "/tmp/iopfmap_dma.XXXXXX");
		if (statfs("/tmp", &sfs) || sfs.f_type != TMPFS_MAGIC) {
			strcpy(path, "/dev/shm/iopfmap_dma.XXXXXX");
			if (statfs("/dev/shm", &sfs) ||
			    sfs.f_type != TMPFS_MAGIC)
				SKIP(return, "neither /tmp nor /dev/shm is tmpfs");
		}
		self->memfd = mkostemp(path, O_CLOEXEC);
		ASSERT_LE(0, self->memfd) TH_LOG("mkostemp %s: %s", path,
						 strerror(errno));
		unlink(path);
		break;
	case KIND_HUGETLB:
		if (hugetlb_free(-1) < (long)(self->len / SZ_2M))
			SKIP(return, "%ld free 2 MiB hugetlb pages, need %zu (boot with hugepages=32)",
			     hugetlb_free(-1), self->len / SZ_2M);
		break;
	default:
		break;
	}
	if (self->memfd >= 0)
		ASSERT_EQ(0, ftruncate(self->memfd, self->len));

	self->buf = reserve_aligned(self->len);
	ASSERT_NE(NULL, self->buf);
	ret = map_kind(self, variant, self->buf, self->len, 0);
	if (ret == -ENOMEM && variant->kind == KIND_HUGETLB) {
		munmap(self->buf, self->len);
		self->buf = NULL;
		SKIP(return, "MAP_HUGETLB: no hugetlb page available");
	}
	ASSERT_EQ(0, ret) TH_LOG("mmap of the buffer: %s", strerror(-ret));

	if (variant->kind == KIND_THP) {
		long kb;

		memset(self->buf, 0x5a, self->len);
		kb = smaps_kb(self->buf, "AnonHugePages");
		if (kb < (long)(self->len >> 10))
			SKIP(return, "THP not allocated: AnonHugePages %ld kB of %zu kB",
			     kb, self->len >> 10);
	}

	ret = _test_map(self->fd, self->iova, self->buf, self->len, RW, 0);
	ASSERT_EQ(0, ret) TH_LOG("MAP: %s", strerror(-ret));
	add_span(self, self->iova, self->len);
}

static void dma_state_teardown(struct __test_metadata *_metadata,
			       struct dma_state *self)
{
	int i;

	if (self->fd >= 0) {
		struct iopfmap_stats st;

		for (i = 0; i < self->nspans; i++) {
			long diff = iopfmap_bitmap_vs_iopt(self->fd,
							  self->spans[i].iova,
							  self->spans[i].len,
							  NULL);

			EXPECT_EQ(0, diff)
				TH_LOG("span %#llx+%#llx: bitmap and IO page table differ (%ld)",
				       (unsigned long long)self->spans[i].iova,
				       (unsigned long long)self->spans[i].len,
				       diff);
		}
		if (self->nspans && !_test_stats(self->fd, ~0ULL, &st)) {
			/* Every page request was answered one way. */
			EXPECT_EQ(st.out_faults, st.out_faults_handled +
				  st.out_faults_invalid +
				  st.out_faults_forwarded);
			EXPECT_EQ(0ULL, st.out_pages_pinned);
		}
		close(self->fd);
	}
	if (self->buf)
		munmap(self->buf, self->len);
	for (i = 0; i < 2; i++)
		if (self->extra[i])
			munmap(self->extra[i], self->extra_len[i]);
	if (self->memfd >= 0)
		close(self->memfd);
	if (self->ksm_saved) {
		write_long(KSM_DIR "run", 2);	/* unmerge everything */
		write_long(KSM_DIR "run", self->ksm_run);
		write_long(KSM_DIR "pages_to_scan", self->ksm_pages_to_scan);
		write_long(KSM_DIR "sleep_millisecs", self->ksm_sleep);
	}
}

/* Every kind: the tests that apply to all of them. */
FIXTURE(dma)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma, anon) { .desc = MEM_ANON };
FIXTURE_VARIANT_ADD(dma, memfd) { .desc = MEM_MEMFD };
FIXTURE_VARIANT_ADD(dma, tmpfs) { .desc = MEM_TMPFS };
FIXTURE_VARIANT_ADD(dma, thp) { .desc = MEM_THP };
FIXTURE_VARIANT_ADD(dma, hugetlb) { .desc = MEM_HUGETLB };

FIXTURE_SETUP(dma)
{
	dma_state_setup(_metadata, &self->state, &variant->desc);
}

FIXTURE_TEARDOWN(dma)
{
	dma_state_teardown(_metadata, &self->state);
}

/*
 * The private kinds whose pages fork write-protects and a write fault
 * reuses: base pages and THP (write_upgrade). Not the shared kinds, which
 * fork does not write-protect, nor hugetlb, which the other two cover.
 */
FIXTURE(dma_private)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma_private)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma_private, anon) { .desc = MEM_ANON };
FIXTURE_VARIANT_ADD(dma_private, thp) { .desc = MEM_THP };

FIXTURE_SETUP(dma_private)
{
	dma_state_setup(_metadata, &self->state, &variant->desc);
}

FIXTURE_TEARDOWN(dma_private)
{
	dma_state_teardown(_metadata, &self->state);
}

/* Private anonymous base pages only: KSM merge and the stress test. */
FIXTURE(dma_anon)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma_anon)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma_anon, anon) { .desc = MEM_ANON };

FIXTURE_SETUP(dma_anon)
{
	dma_state_setup(_metadata, &self->state, &variant->desc);
}

FIXTURE_TEARDOWN(dma_anon)
{
	dma_state_teardown(_metadata, &self->state);
}

/* PMD-mapped THP only: THP split. */
FIXTURE(dma_thp)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma_thp)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma_thp, thp) { .desc = MEM_THP };

FIXTURE_SETUP(dma_thp)
{
	dma_state_setup(_metadata, &self->state, &variant->desc);
}

FIXTURE_TEARDOWN(dma_thp)
{
	dma_state_teardown(_metadata, &self->state);
}

/* The kinds backed by 4 KiB pages: prefetch of 4 KiB pages. */
FIXTURE(dma_small)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma_small)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma_small, anon) { .desc = MEM_ANON };
FIXTURE_VARIANT_ADD(dma_small, memfd) { .desc = MEM_MEMFD };
FIXTURE_VARIANT_ADD(dma_small, tmpfs) { .desc = MEM_TMPFS };

FIXTURE_SETUP(dma_small)
{
	dma_state_setup(_metadata, &self->state, &variant->desc);
}

FIXTURE_TEARDOWN(dma_small)
{
	dma_state_teardown(_metadata, &self->state);
}

/* ---- data path ---------------------------------------------------------- */

/* The device writes, the CPU reads what it wrote. */
TEST_F(dma, dma_write_cpu_read)
{
	char *a = pattern_alloc(self->len, 'W');
	char *b = pattern_alloc(self->len, 'X');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1, rst;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && b && out);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);

	d = dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, a, self->len);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "CPU after DMA write", self->buf, a, self->len);
	EXPECT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + d.out_faults, st1.out_faults);
	EXPECT_EQ(st1.out_faults, st1.out_faults_handled);
	EXPECT_EQ(0ULL, st1.out_faults_invalid);
	EXPECT_LE(st0.out_pages_mapped + self->npages, st1.out_pages_mapped);
	EXPECT_EQ(0ULL, st1.out_pages_pinned);
	rst = iopfmap_get_stats(_metadata, self->fd, self->iova);
	EXPECT_EQ(st1.out_faults, rst.out_faults);
	if (!variant->huge)
		EXPECT_EQ(0ULL, st1.out_huge_mappings);

	/* Mapped now: no page request, and the CPU sees the new data. */
	d = dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, b, self->len);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "CPU after 2nd DMA write", self->buf, b, self->len);
	d = dma_ok(_metadata, self->fd, DMA_READ, self->iova, out, self->len);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "DMA read back", out, b, self->len);
	EXPECT_EQ(st1.out_faults, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_faults);

	free(a);
	free(b);
	free(out);
}

/* The CPU writes, the device reads, aligned and unaligned. */
TEST_F(dma, cpu_write_dma_read)
{
	char *a = pattern_alloc(self->len, 'R');
	char *s = pattern_alloc(self->len, 'S');
	char *out = malloc(self->len);
	size_t off = self->len / 2 - 77, n = psz + 154;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && s && out);
	memcpy(self->buf, a, self->len);

	d = read_all(_metadata, &self->state, out);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "DMA read", out, a, self->len);
	d = read_all(_metadata, &self->state, out);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "2nd DMA read", out, a, self->len);

	/* A CPU write to mapped pages is seen without a new fault. */
	memcpy(self->buf + off, s + off, n);
	memset(out, 0, n);
	d = dma_ok(_metadata, self->fd, DMA_READ, self->iova + off, out, n);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "unaligned DMA read", out, s + off, n);

	/* Unaligned DMA write spanning three pages, around the middle. */
	d = dma_ok(_metadata, self->fd, DMA_WRITE, self->iova + off + 3,
		   a + off + 3, n - 6);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "CPU after unaligned DMA write",
	     self->buf + off + 3, a + off + 3, n - 6);
	same(_metadata, "bytes before it", self->buf + off, s + off, 3);
	same(_metadata, "bytes after it", self->buf + off + n - 3,
	     s + off + n - 3, 3);

	/* Unaligned, on pages not mapped yet (a fresh range, same VA). */
	map_range(_metadata, &self->state, IOVA_ALT, self->buf, self->len, 0);
	memset(out, 0, n);
	d = dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT + off, out, n);
	EXPECT_LE(1U, d.out_faults);
	EXPECT_GE(3U, d.out_faults);
	same(_metadata, "unaligned DMA read of unmapped pages",
	     out, self->buf + off, n);

	free(a);
	free(s);
	free(out);
}

/*
 * A FAULT range pins nothing: no locked memory, and pages the device has
 * used can migrate.
 */
TEST_F_TIMEOUT(dma, fault_range_unpinned, 60)
{
	char *a = pattern_alloc(self->len, 'P');
	char *out = malloc(self->len);

	ASSERT_TRUE(a && out);
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	EXPECT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	EXPECT_EQ(0, status_kb("VmLck"));
	EXPECT_EQ(0, status_kb("VmPin"));
	EXPECT_EQ(0ULL, iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_pages_pinned);

	if (!numa_two_nodes())
		SKIP(goto out, "one NUMA node: migration not tested (tools/vm/run --numa)");
	if (migrate(_metadata, &variant->desc, self->buf, self->len) < 0)
		goto out;
	read_all(_metadata, &self->state, out);
	same(_metadata, "DMA read after migration", out, a, self->len);
out:
	free(a);
	free(out);
}

/* ---- invalidations ------------------------------------------------------ */

/* munmap of part of the buffer: the device gets INVALID there. */
TEST_F(dma, inval_munmap)
{
	char *a = pattern_alloc(self->len, 'M');
	char *out = malloc(self->len);
	size_t hole_off, hole_len;
	struct iopfmap_stats st0, st1;
	int ret;

	ASSERT_TRUE(a && out);
	if (variant->kind == KIND_HUGETLB) {
		hole_off = SZ_2M;
		hole_len = SZ_2M;
	} else {
		hole_off = self->len / 4;	/* inside the THP for thp */
		hole_len = 4 * psz;
	}
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova + hole_off,
		    a + hole_off, 2 * psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, munmap(self->buf + hole_off, hole_len));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, hole_len / psz);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova + hole_off,
			       hole_len));
	if (!variant->huge)	/* an exact invalidation leaves the rest */
		EXPECT_EQ((long)(self->npages - hole_len / psz),
			  mapped_in(_metadata, self->fd, self->iova,
				    self->len));

	dma_invalid(_metadata, self->fd, DMA_READ, self->iova + hole_off,
		    out, psz, self->iova + hole_off);
	dma_invalid(_metadata, self->fd, DMA_WRITE,
		    self->iova + hole_off + hole_len - 8, a, 8,
		    self->iova + hole_off + hole_len - 8);
	/* From before the hole into it: stops exactly at the hole. */
	dma_invalid(_metadata, self->fd, DMA_READ,
		    self->iova + hole_off - 100, out, 200,
		    self->iova + hole_off);
	same(_metadata, "bytes read before the hole", out,
	     a + hole_off - 100, 100);
	/* The rest still works. */
	dma_ok(_metadata, self->fd, DMA_READ, self->iova, out, hole_off);
	same(_metadata, "DMA read before the hole", out, a, hole_off);
	if (hole_off + hole_len < self->len) {
		dma_ok(_metadata, self->fd, DMA_READ,
		       self->iova + hole_off + hole_len, out,
		       self->len - hole_off - hole_len);
		same(_metadata, "DMA read after the hole", out,
		     a + hole_off + hole_len, self->len - hole_off - hole_len);
	}
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_LE(st0.out_faults_invalid + 3, st1.out_faults_invalid);

	/* A new mapping in the hole: the device sees the new page. */
	ret = map_kind(&self->state, &variant->desc, self->buf + hole_off,
		       hole_len, hole_off);
	ASSERT_EQ(0, ret) TH_LOG("re-mmap of the hole: %s", strerror(-ret));
	dma_ok(_metadata, self->fd, DMA_READ, self->iova + hole_off, out,
	       hole_len);
	if (variant->shared)	/* the file's pages again */
		same(_metadata, "DMA read of the re-mapped hole", out,
		     a + hole_off, hole_len);
	else
		all_zero(_metadata, "DMA read of the re-mapped hole", out,
			 hole_len);

	free(a);
	free(out);
}

/* MADV_DONTNEED drops the IO mapping; the next DMA faults the new page. */
TEST_F(dma, inval_dontneed)
{
	char *a = pattern_alloc(self->len, 'D');
	char *b = pattern_alloc(self->len, 'E');
	char *out = malloc(self->len);
	size_t dn_off, dn_len;
	struct iopfmap_stats st0, st1;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && b && out);
	if (variant->kind == KIND_HUGETLB) {
		dn_off = 0;
		dn_len = SZ_2M;
	} else {
		dn_off = 4 * psz;
		dn_len = 4 * psz;
	}
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova + dn_off,
		    a + dn_off, 2 * psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, madvise(self->buf + dn_off, dn_len, MADV_DONTNEED));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, dn_len / psz);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova + dn_off,
			       dn_len));

	d = read_all(_metadata, &self->state, out);
	EXPECT_LT(0U, d.out_faults);
	if (variant->shared)
		same(_metadata, "DMA read after DONTNEED (file page)",
		     out + dn_off, a + dn_off, dn_len);
	else
		all_zero(_metadata, "DMA read after DONTNEED (new page)",
			 out + dn_off, dn_len);
	same(_metadata, "DMA read before the DONTNEED range", out, a, dn_off);
	same(_metadata, "DMA read after the DONTNEED range",
	     out + dn_off + dn_len, a + dn_off + dn_len,
	     self->len - dn_off - dn_len);

	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, b, self->len);
	same(_metadata, "CPU after DMA write", self->buf, b, self->len);

	free(a);
	free(b);
	free(out);
}

/* mremap moves the pages: the old VA is empty, a range on the new VA works. */
TEST_F(dma, inval_mremap)
{
	char *a = pattern_alloc(self->len, 'm');
	char *b = pattern_alloc(self->len, 'n');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	char *to, *moved;

	ASSERT_TRUE(a && b && out);
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	/* Everything that allocates is done before the old VA is free. */
	to = reserve_aligned(self->len);
	ASSERT_NE(NULL, to);
	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova, a, 2 * psz);
	prime_iotlb(_metadata, self->fd, DMA_WRITE,
		    self->iova + self->len - psz, a + self->len - psz, psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	moved = mremap(self->buf, self->len, self->len,
		       MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (moved == MAP_FAILED) {
		munmap(to, self->len);
		ASSERT_NE(MAP_FAILED, moved) TH_LOG("mremap: %s",
						    strerror(errno));
	}
	self->buf = moved;
	ASSERT_EQ(to, moved);
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, self->npages);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova, self->len));

	dma_invalid(_metadata, self->fd, DMA_READ, self->iova, out, psz,
		    self->iova);
	dma_invalid(_metadata, self->fd, DMA_WRITE,
		    self->iova + self->len - psz, b, psz,
		    self->iova + self->len - psz);

	map_range(_metadata, &self->state, IOVA_ALT, moved, self->len, 0);
	dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT, out, self->len);
	same(_metadata, "DMA read at the new VA", out, a, self->len);
	dma_ok(_metadata, self->fd, DMA_WRITE, IOVA_ALT, b, self->len);
	same(_metadata, "CPU at the new VA after DMA write", moved, b,
	     self->len);
	/* The old range still translates nothing. */
	dma_invalid(_metadata, self->fd, DMA_READ, self->iova + psz, out, 1,
		    self->iova + psz);

	free(a);
	free(b);
	free(out);
}

/* mprotect(PROT_READ): device writes fail, reads work; RW again: writes work. */
TEST_F(dma, inval_mprotect)
{
	char *a = pattern_alloc(self->len, 'p');
	char *b = pattern_alloc(self->len, 'q');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && b && out);
	memcpy(self->buf, a, self->len);
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, a, self->len);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova, a, 2 * psz);
	prime_iotlb(_metadata, self->fd, DMA_WRITE,
		    self->iova + self->len / 2, a + self->len / 2, psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, mprotect(self->buf, self->len, PROT_READ));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, self->npages);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova, self->len));

	dma_invalid(_metadata, self->fd, DMA_WRITE, self->iova, b, self->len,
		    self->iova);
	dma_invalid(_metadata, self->fd, DMA_WRITE, self->iova + self->len / 2,
		    b, 16, self->iova + self->len / 2);
	same(_metadata, "read-only memory after DMA writes", self->buf, a,
	     self->len);

	d = read_all(_metadata, &self->state, out);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "DMA read of read-only memory", out, a, self->len);
	/* Read-only mapped: a write still fails, and changes nothing. */
	dma_invalid(_metadata, self->fd, DMA_WRITE, self->iova + psz, b, 8,
		    self->iova + psz);
	same(_metadata, "read-only memory after DMA write", self->buf, a,
	     self->len);

	ASSERT_EQ(0, mprotect(self->buf, self->len, PROT_READ | PROT_WRITE));
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, b, self->len);
	same(_metadata, "CPU after DMA write to RW memory", self->buf, b,
	     self->len);

	free(a);
	free(b);
	free(out);
}

/*
 * fork: the parent's copy-on-write gives it new pages; the device must
 * follow the parent's pages, and the child keeps the old content. With a
 * MAP_SHARED kind there is no COW: parent, child and device share pages.
 */
TEST_F(dma, inval_fork_cow)
{
	char *a = pattern_alloc(self->len, 'A');
	char *b = pattern_alloc(self->len, 'B');
	char *c = pattern_alloc(self->len, 'C');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	const char *child_want;
	int pipefd[2], status;
	char go = 1;
	pid_t pid;

	ASSERT_TRUE(a && b && c && out);
	if (variant->kind == KIND_HUGETLB && hugetlb_free(-1) <
	    (long)(self->len / SZ_2M))
		SKIP(return, "%ld free hugetlb pages: not enough for the parent's COW copies",
		     hugetlb_free(-1));
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	same(_metadata, "DMA read before fork", out, a, self->len);
	child_want = variant->shared ? c : a;
	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova, a, 2 * psz);

	ASSERT_EQ(0, pipe(pipefd));
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* No harness macros here: they would report for the parent. */
		close(pipefd[1]);
		if (read(pipefd[0], &go, 1) != 1)
			_exit(3);
		_exit(diff_at(self->buf, child_want, self->len) == self->len ?
		      0 : 1);
	}
	close(pipefd[0]);

	/* The parent's CPU write: COW for private kinds. */
	memcpy(self->buf, b, self->len);
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	if (!variant->shared) {
		expect_invalidated(_metadata, &st0, &st1, self->npages);
		EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova,
				       self->len));
	}
	read_all(_metadata, &self->state, out);
	same(_metadata, "DMA read after the parent's write (not the old page)",
	     out, b, self->len);
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, c, self->len);
	same(_metadata, "parent's CPU after DMA write", self->buf, c,
	     self->len);

	EXPECT_EQ(1, write(pipefd[1], &go, 1));
	close(pipefd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child: status %#x; it checks that its pages hold %s",
		       status, variant->shared ? "the DMA write (shared)" :
		       "the content from before fork");

	/* The child's exit changes nothing for the parent's range. */
	read_all(_metadata, &self->state, out);
	same(_metadata, "DMA read after the child's exit", out, c, self->len);

	free(a);
	free(b);
	free(c);
	free(out);
}

/*
 * The device reads a page whose CPU PTE fork left write-protected: it is
 * mapped read-only. After the child exits the page is the parent's alone,
 * so the device's write makes the CPU reuse it in place, with no
 * invalidation: iopfmap must replace its read-only entry by itself.
 */
TEST_F(dma_private, write_upgrade)
{
	struct iopfmap_stats st1, st2;
	struct iopfmap_sim_dma d;
	char byte = 0x5a, out = 0;
	int status;
	pid_t pid;

	memset(self->buf, 0x11, self->len);
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));

	d = dma_ok(_metadata, self->fd, DMA_READ, self->iova, &out, 1);
	EXPECT_EQ(0x11, out);
	EXPECT_EQ(1U, d.out_faults);
	st1 = iopfmap_get_stats(_metadata, self->fd, self->iova);

	d = dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, &byte, 1);
	EXPECT_EQ(1U, d.out_faults) TH_LOG("a read-only entry must fault on write");
	st2 = iopfmap_get_stats(_metadata, self->fd, self->iova);
	EXPECT_EQ(0x5a, self->buf[0]);
	EXPECT_LT(st1.out_pages_unmapped, st2.out_pages_unmapped)
		TH_LOG("the read-only entry was not replaced");
	EXPECT_LT(st1.out_pages_mapped, st2.out_pages_mapped);
	if (variant->kind == KIND_ANON)
		EXPECT_EQ(st1.out_invalidations, st2.out_invalidations)
			TH_LOG("the CPU reused the page: no invalidation expected");
	/* The upgraded entry serves later writes without a fault. */
	d = dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, &byte, 1);
	EXPECT_EQ(0U, d.out_faults);
}

/* Page migration: the device follows the pages to their new place. */
TEST_F_TIMEOUT(dma, inval_migrate, 60)
{
	char *a = pattern_alloc(self->len, 'G');
	char *b = pattern_alloc(self->len, 'H');
	char *c = pattern_alloc(self->len, 'I');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	size_t half = self->len / 2;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && b && c && out);
	if (!numa_two_nodes())
		SKIP(return, "one NUMA node: nothing to migrate to (tools/vm/run --numa)");
	memcpy(self->buf, a, self->len);
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));

	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova, a, 2 * psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	if (migrate(_metadata, &variant->desc, self->buf, self->len) < 0)
		return;
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, self->npages);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova, self->len));

	/* The CPU writes the new pages; the device reads what it wrote. */
	memcpy(self->buf, b, half);
	d = read_all(_metadata, &self->state, out);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "DMA read after migration (CPU-written half)", out, b,
	     half);
	same(_metadata, "DMA read after migration (other half)", out + half,
	     a + half, self->len - half);
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, c, self->len);
	same(_metadata, "CPU after DMA write to migrated pages", self->buf, c,
	     self->len);

	free(a);
	free(b);
	free(c);
	free(out);
}

/*
 * Automatic NUMA balancing: the one test that runs with the scanner (the
 * others opt out, see iopfmap_utils.h). The scanner turns the task's pages
 * PROT_NONE now and then to learn which node uses them, and may migrate
 * them: each pass is a real invalidation of the range. The knobs make it
 * scan at once and often; the teardown puts them back.
 */
#define NUMA_SYSCTL	"/proc/sys/kernel/numa_balancing"
#define NUMA_DEBUGFS	"/sys/kernel/debug/sched/numa_balancing/"

static const char *const numa_knobs[] = {
	NUMA_SYSCTL,
	NUMA_DEBUGFS "scan_delay_ms",
	NUMA_DEBUGFS "scan_period_min_ms",
	NUMA_DEBUGFS "scan_size_mb",
};
static const long numa_fast[] = { 1, 0, 10, 256 };
static long numa_saved[ARRAY_SIZE(numa_knobs)];

FIXTURE(dma_numa)
{
	DMA_FIXTURE_DATA;
};

FIXTURE_VARIANT(dma_numa)
{
	MEM_DESC_VARIANT;
};

FIXTURE_VARIANT_ADD(dma_numa, anon) { .desc = MEM_ANON };
FIXTURE_VARIANT_ADD(dma_numa, thp) { .desc = MEM_THP };

FIXTURE_SETUP(dma_numa)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(numa_knobs); i++)
		numa_saved[i] = -1;
	dma_state_setup(_metadata, &self->state, &variant->desc);
	if (!numa_two_nodes())
		SKIP(return, "one NUMA node: the scanner does not run (tools/vm/run --numa)");
	if (read_long(NUMA_SYSCTL) < 0)
		SKIP(return, "no %s: the kernel has no NUMA balancing",
		     NUMA_SYSCTL);
	for (i = 0; i < ARRAY_SIZE(numa_knobs); i++) {
		numa_saved[i] = read_long(numa_knobs[i]);
		if (numa_saved[i] >= 0)
			ASSERT_EQ(0, write_long(numa_knobs[i], numa_fast[i]));
	}
	ASSERT_EQ(0, iopfmap_numa_balancing_scans_me());
}

FIXTURE_TEARDOWN(dma_numa)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(numa_knobs); i++)
		if (numa_saved[i] >= 0)
			write_long(numa_knobs[i], numa_saved[i]);
	dma_state_teardown(_metadata, &self->state);
}

/*
 * While the scanner unmaps the buffer under it, rounds of CPU writes read
 * by the device and device writes read by the CPU keep seeing each other's
 * data: the device never reads a page the CPU left, and its writes land in
 * the pages the CPU reads. Runs until the range has seen several scanner
 * passes (at most 600 rounds); a scanner that never came is a SKIP.
 */
TEST_F_TIMEOUT(dma_numa, scanner_keeps_dma_coherent, 240)
{
	char *want = malloc(self->len), *out = malloc(self->len);
	struct iopfmap_stats st0, first, st1;
	struct iopfmap_sim_dma d;
	unsigned int round;
	__u64 passes = 0;

	ASSERT_TRUE(want && out);
	st0 = iopfmap_get_stats(_metadata, self->fd, self->iova);
	first = st1 = st0;
	for (round = 0; round < 600 && passes < 4; round++) {
		/* The CPU writes; the device reads it. */
		pattern(want, self->len, 2 * round);
		memcpy(self->buf, want, self->len);
		d = do_dma(_metadata, self->fd, DMA_READ, self->iova, out,
			   self->len);
		ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status)
			TH_LOG("round %u: DMA read %s at %#llx", round,
			       iopfmap_dma_status_name(d.out_status),
			       (unsigned long long)d.out_fault_iova);
		if (!same(_metadata, "DMA read of what the CPU wrote", out,
			  want, self->len))
			break;
		/* The device writes; the CPU reads it. */
		pattern(want, self->len, 2 * round + 1);
		d = do_dma(_metadata, self->fd, DMA_WRITE, self->iova, want,
			   self->len);
		ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status)
			TH_LOG("round %u: DMA write %s at %#llx", round,
			       iopfmap_dma_status_name(d.out_status),
			       (unsigned long long)d.out_fault_iova);
		if (!same(_metadata, "CPU read of what the device wrote",
			  self->buf, want, self->len))
			break;
		st1 = iopfmap_get_stats(_metadata, self->fd, self->iova);
		if (!round)
			first = st1;
		passes = st1.out_invalidations - st0.out_invalidations;
		usleep(10000);	/* the scanner runs on the way back to user */
	}
	/* A last read: the device gets back what the scanner took away. */
	d = do_dma(_metadata, self->fd, DMA_READ, self->iova, out, self->len);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status);
	same(_metadata, "the last DMA read", out, self->buf, self->len);
	st1 = iopfmap_get_stats(_metadata, self->fd, self->iova);
	TH_LOG("%u rounds, %llu invalidations, %llu pages unmapped, %llu faults",
	       round, (unsigned long long)passes,
	       (unsigned long long)(st1.out_pages_unmapped - st0.out_pages_unmapped),
	       (unsigned long long)(st1.out_faults - st0.out_faults));
	free(want);
	free(out);
	if (!passes)
		SKIP(return, "the NUMA balancing scanner did not touch the buffer in %u rounds",
		     round);
	if (st1.out_pages_unmapped > first.out_pages_unmapped)
		EXPECT_LT(first.out_faults, st1.out_faults)
			TH_LOG("pages left the IO page table, and no fault brought them back");
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(self->fd, self->iova, self->len,
					    NULL));
}

/* Splitting a PMD-mapped THP drops the 2 MiB IO mapping. */
TEST_F(dma_thp, inval_thp_split)
{
	char *a = pattern_alloc(self->len, 'T');
	char *b = pattern_alloc(self->len, 'U');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	size_t zero_off = SZ_2M + 5 * psz;
	struct iopfmap_sim_dma d;

	ASSERT_TRUE(a && b && out);
	memcpy(self->buf, a, self->len);
	ASSERT_LE((long)(self->len >> 10), smaps_kb(self->buf, "AnonHugePages"));
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));
	TH_LOG("huge_mappings after the first DMA: %llu",
	       (unsigned long long)iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_huge_mappings);

	/* mprotect of one 4 KiB page splits the first PMD. */
	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova, a, 2 * psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, mprotect(self->buf + SZ_2M / 2, psz, PROT_READ));
	ASSERT_EQ(0, mprotect(self->buf + SZ_2M / 2, psz,
			      PROT_READ | PROT_WRITE));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, PAGES_2M);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova, SZ_2M));
	EXPECT_EQ((long)PAGES_2M, mapped_in(_metadata, self->fd,
					    self->iova + SZ_2M, SZ_2M));
	TH_LOG("AnonHugePages after the split: %ld kB",
	       smaps_kb(self->buf, "AnonHugePages"));

	d = dma_ok(_metadata, self->fd, DMA_READ, self->iova, out, SZ_2M);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "DMA read of the split THP", out, a, SZ_2M);
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, b, SZ_2M);
	same(_metadata, "CPU after DMA write to the split THP", self->buf, b,
	     SZ_2M);

	/* MADV_DONTNEED of one 4 KiB page splits the second one. */
	prime_iotlb(_metadata, self->fd, DMA_WRITE, self->iova + zero_off,
		    a + zero_off, psz);
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, madvise(self->buf + zero_off, psz, MADV_DONTNEED));
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, PAGES_2M);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova + SZ_2M, SZ_2M));
	d = dma_ok(_metadata, self->fd, DMA_READ, self->iova + SZ_2M, out,
		   SZ_2M);
	EXPECT_LT(0U, d.out_faults);
	same(_metadata, "DMA read before the dropped page", out, a + SZ_2M,
	     zero_off - SZ_2M);
	all_zero(_metadata, "DMA read of the dropped page",
		 out + zero_off - SZ_2M, psz);
	same(_metadata, "DMA read after the dropped page",
	     out + zero_off - SZ_2M + psz, a + zero_off + psz,
	     self->len - zero_off - psz);

	free(a);
	free(b);
	free(out);
}

/*
 * KSM merges two identical pages: the IO mapping goes, and a DMA write
 * to one of them breaks COW instead of writing the shared KSM page.
 */
TEST_F_TIMEOUT(dma_anon, inval_ksm_merge, 90)
{
	char *a = pattern_alloc(self->len, 'K');
	char *w = pattern_alloc(psz, 'L');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st1;
	struct timespec t0, t;
	__u64 pfn0 = 0, pfn1 = 0;
	bool merged = false;

	ASSERT_TRUE(a && w && out);
	if (access(KSM_DIR "run", W_OK))
		SKIP(return, KSM_DIR " is missing or not writable: no KSM");

	/* Pages 0 and 1 the same, every other page different. */
	memcpy(a + psz, a, psz);
	memcpy(self->buf, a, self->len);
	ASSERT_EQ(0, madvise(self->buf, self->len, MADV_MERGEABLE))
		TH_LOG("MADV_MERGEABLE: %s", strerror(errno));
	read_all(_metadata, &self->state, out);
	ASSERT_EQ((long)self->npages,
		  mapped_in(_metadata, self->fd, self->iova, self->len));
	ASSERT_NE(iopfmap_pagemap_pfn(self->buf),
		  iopfmap_pagemap_pfn(self->buf + psz));
	prime_iotlb(_metadata, self->fd, DMA_READ, self->iova, NULL, 2 * psz);

	self->ksm_run = read_long(KSM_DIR "run");
	self->ksm_pages_to_scan = read_long(KSM_DIR "pages_to_scan");
	self->ksm_sleep = read_long(KSM_DIR "sleep_millisecs");
	ASSERT_LE(0, self->ksm_run);
	self->ksm_saved = true;
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	ASSERT_EQ(0, write_long(KSM_DIR "pages_to_scan", 1000));
	ASSERT_EQ(0, write_long(KSM_DIR "sleep_millisecs", 0));
	ASSERT_EQ(0, write_long(KSM_DIR "run", 1));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(50 * 1000);
		pfn0 = iopfmap_pagemap_pfn(self->buf);
		pfn1 = iopfmap_pagemap_pfn(self->buf + psz);
		merged = pfn0 && pfn0 == pfn1;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (!merged && t.tv_sec - t0.tv_sec < 30);
	ASSERT_EQ(0, write_long(KSM_DIR "run", 0));	/* merged stay merged */
	if (!merged)
		SKIP(return, "KSM did not merge the two pages in 30 s (pages_shared %ld)",
		     read_long(KSM_DIR "pages_shared"));
	TH_LOG("merged after %ld s: pfn %#llx, pages_shared %ld",
	       (long)(t.tv_sec - t0.tv_sec), (unsigned long long)pfn0,
	       read_long(KSM_DIR "pages_shared"));

	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	expect_invalidated(_metadata, &st0, &st1, 2);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, self->iova, 2 * psz));

	/* The device reads the KSM page, then writes page 0: COW. */
	dma_ok(_metadata, self->fd, DMA_READ, self->iova, out, 2 * psz);
	same(_metadata, "DMA read of the merged pages", out, a, 2 * psz);
	dma_ok(_metadata, self->fd, DMA_WRITE, self->iova, w, psz);
	same(_metadata, "CPU page 0 after DMA write", self->buf, w, psz);
	same(_metadata, "CPU page 1 (merged page) after DMA write to page 0",
	     self->buf + psz, a + psz, psz);
	dma_ok(_metadata, self->fd, DMA_READ, self->iova + psz, out, psz);
	same(_metadata, "DMA read of page 1", out, a + psz, psz);
	EXPECT_NE(iopfmap_pagemap_pfn(self->buf),
		  iopfmap_pagemap_pfn(self->buf + psz));

	free(a);
	free(w);
	free(out);
}

/* ---- prefetch and huge mappings ----------------------------------------- */

TEST_F(dma_small, prefetch)
{
	char *a = pattern_alloc(self->len, 'F');
	char *out = malloc(self->len);
	struct iopfmap_stats st;
	struct iopfmap_sim_dma d;
	size_t n = self->npages;

	ASSERT_TRUE(a && out);
	ASSERT_LE(32U, n);
	memcpy(self->buf, a, self->len);

	/* Window 16: a fault on page 5 maps pages 0..15. */
	map_range(_metadata, &self->state, IOVA_ALT, self->buf, self->len, 16);
	d = dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT + 5 * psz + 7,
		   out, 1);
	EXPECT_EQ(1U, d.out_faults);
	EXPECT_EQ(a[5 * psz + 7], out[0]);
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_ALT);
	EXPECT_EQ(1ULL, st.out_faults);
	EXPECT_EQ(1ULL, st.out_faults_handled);
	EXPECT_EQ(16ULL, st.out_pages_mapped);
	EXPECT_EQ(15ULL, st.out_pages_prefetched);
	EXPECT_EQ(16, mapped_in(_metadata, self->fd, IOVA_ALT, 16 * psz));
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, IOVA_ALT + 16 * psz,
			       self->len - 16 * psz));
	d = dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT, out, 16 * psz);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "DMA read of the prefetched window", out, a, 16 * psz);

	/* The next window: a fault on page 21 maps 16..31. */
	d = dma_ok(_metadata, self->fd, DMA_WRITE, IOVA_ALT + 21 * psz,
		   a + 21 * psz, 8);
	EXPECT_EQ(1U, d.out_faults);
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_ALT);
	EXPECT_EQ(2ULL, st.out_faults);
	EXPECT_EQ(30ULL, st.out_pages_prefetched);
	EXPECT_EQ(32, mapped_in(_metadata, self->fd, IOVA_ALT, 32 * psz));

	/* Prefetch 0: the faulting page only. */
	map_range(_metadata, &self->state, IOVA_ALT2, self->buf, self->len, 0);
	d = dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT2 + 5 * psz, out, 1);
	EXPECT_EQ(1U, d.out_faults);
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_ALT2);
	EXPECT_EQ(1ULL, st.out_faults);
	EXPECT_EQ(1ULL, st.out_pages_mapped);
	EXPECT_EQ(0ULL, st.out_pages_prefetched);
	EXPECT_EQ(1, mapped_in(_metadata, self->fd, IOVA_ALT2, self->len));
	EXPECT_EQ(1, mapped_in(_metadata, self->fd, IOVA_ALT2 + 5 * psz, psz));

	/* The window is clipped to the range: 8 pages, window 16. */
	map_range(_metadata, &self->state, IOVA_ALT3, self->buf, 8 * psz, 16);
	d = dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT3 + 5 * psz, out, 1);
	EXPECT_EQ(1U, d.out_faults);
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_ALT3);
	EXPECT_EQ(8ULL, st.out_pages_mapped);
	EXPECT_EQ(7ULL, st.out_pages_prefetched);
	EXPECT_EQ(8, mapped_in(_metadata, self->fd, IOVA_ALT3, 8 * psz));

	free(a);
	free(out);
}

/*
 * 2 MiB IO mappings: for a PMD-mapped THP or a hugetlb page when IOVA and
 * VA are congruent modulo 2 MiB and the table has 2 MiB entries; never
 * otherwise.
 */
TEST_F(dma, huge_mappings)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc), };
	char *a = pattern_alloc(self->len, 'Z');
	char *out = malloc(self->len);
	struct iopfmap_stats st0, st;
	struct iopfmap_sim_dma d;
	long diff, mapped = 0;
	int fd2, ret;

	ASSERT_TRUE(a && out);
	EXPECT_EQ((__u64)(psz | SZ_2M), self->pgsize_bitmap);
	memcpy(self->buf, a, self->len);

	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	if (variant->huge) {
		/* One byte: the whole 2 MiB block. */
		d = dma_ok(_metadata, self->fd, DMA_READ, self->iova + psz,
			   out, 1);
		EXPECT_EQ(1U, d.out_faults);
		st = iopfmap_get_stats(_metadata, self->fd, self->iova);
		EXPECT_LE(1ULL, st.out_huge_mappings);
		EXPECT_EQ((long)PAGES_2M, mapped_in(_metadata, self->fd,
						    self->iova, SZ_2M));
		EXPECT_EQ(0, mapped_in(_metadata, self->fd,
				       self->iova + SZ_2M, SZ_2M));
		d = dma_ok(_metadata, self->fd, DMA_READ, self->iova, out,
			   SZ_2M);
		EXPECT_EQ(0U, d.out_faults);
		same(_metadata, "DMA read of the huge block", out, a, SZ_2M);
		d = dma_ok(_metadata, self->fd, DMA_READ, self->iova, out,
			   self->len);
		EXPECT_EQ(1U, d.out_faults);
		st = iopfmap_get_stats(_metadata, self->fd, self->iova);
		EXPECT_LE(2ULL, st.out_huge_mappings);
		EXPECT_LE(st0.out_pages_mapped + self->npages,
			  st.out_pages_mapped);
	} else {
		read_all(_metadata, &self->state, out);
		st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
		EXPECT_EQ(0ULL, st.out_huge_mappings);
	}
	same(_metadata, "DMA read", out, a, self->len);

	/* IOVA not congruent to the VA modulo 2 MiB: 4 KiB entries only. */
	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	map_range(_metadata, &self->state, IOVA_ALT + psz, self->buf, self->len,
		  0);
	dma_ok(_metadata, self->fd, DMA_READ, IOVA_ALT + psz, out, self->len);
	same(_metadata, "DMA read at a non-congruent IOVA", out, a, self->len);
	st = iopfmap_get_stats(_metadata, self->fd, IOVA_ALT + psz);
	EXPECT_EQ(0ULL, st.out_huge_mappings);
	EXPECT_EQ((__u64)self->npages, st.out_pages_mapped);
	EXPECT_EQ(st0.out_huge_mappings,
		  iopfmap_get_stats(_metadata, self->fd, ~0ULL).out_huge_mappings);
	EXPECT_EQ((long)self->npages, mapped_in(_metadata, self->fd,
					       IOVA_ALT + psz, self->len));

	/* A simulated device with 4 KiB entries only. */
	fd2 = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	sc.pgsize_bitmap = psz;
	ret = _test_cmd_sim_create(fd2, &sc);
	EXPECT_EQ(0, ret) TH_LOG("SIM_CREATE pgsize %#zx: %s", psz,
				 strerror(-ret));
	EXPECT_EQ((__u64)psz, sc.out_pgsize_bitmap);
	if (!ret) {
		ret = _test_map(fd2, IOVA_MAIN, self->buf, self->len, RW, 0);
		EXPECT_EQ(0, ret) TH_LOG("MAP: %s", strerror(-ret));
	}
	if (!ret) {
		dma_ok(_metadata, fd2, DMA_READ, IOVA_MAIN, out, self->len);
		same(_metadata, "DMA read, 4 KiB table", out, a, self->len);
		st = iopfmap_get_stats(_metadata, fd2, ~0ULL);
		EXPECT_EQ(0ULL, st.out_huge_mappings);
		EXPECT_EQ((__u64)self->npages, st.out_pages_mapped);
		diff = iopfmap_bitmap_vs_iopt(fd2, IOVA_MAIN, self->len,
					      &mapped);
		EXPECT_EQ(0, diff);
		EXPECT_EQ((long)self->npages, mapped);
	}
	close(fd2);

	free(a);
	free(out);
}

/* ---- stress ------------------------------------------------------------- */

#define STRESS_SECONDS		5
#define STRESS_AREA_PAGES	8

struct stress_shared {
	int fd;
	int stop;
	int fails;
	pthread_mutex_t lock;
	char msg[512];
};

/*
 * One area of IOVA space, a DMA thread working on it and maybe a thread
 * changing it. @gen is odd while the changer is at work; a DMA thread
 * that sees the same even @gen before and after its DMA knows nothing
 * changed meanwhile, so the strict checks apply.
 */
struct stress_area {
	struct stress_shared *sh;
	const char *name;
	int id;
	char *cpu;
	__u64 iova;
	int gen;
	int ro;			/* read-only now */
	int absent;		/* no range there now */
	uint32_t *wbuf, *rbuf, *cbuf;
	unsigned long ops, ok, invalid, noprog, strict, changes;
};

static void stress_fail(struct stress_shared *sh, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&sh->lock);
	if (!sh->fails++) {
		va_start(ap, fmt);
		vsnprintf(sh->msg, sizeof(sh->msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&sh->lock);
}

static int load(int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void bump(int *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static void pause_us(long us)
{
	struct timespec ts = { .tv_nsec = us * 1000 };

	nanosleep(&ts, NULL);
}

/* The CPU's view of a page that may be unmapped meanwhile: bytes read. */
static ssize_t cpu_read_safe(void *dst, const void *src, size_t len)
{
	struct iovec l = { .iov_base = dst, .iov_len = len };
	struct iovec r = { .iov_base = (void *)src, .iov_len = len };

	return process_vm_readv(getpid(), &l, 1, &r, 1, 0);
}

static bool words_are(const uint32_t *w, size_t n, uint32_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] != v)
			return false;
	return true;
}

static bool words_are_or_zero(const uint32_t *w, size_t n, uint32_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] != v && w[i])
			return false;
	return true;
}

static bool status_ok_unstable(__u32 s)
{
	return s == IOPFMAP_SIM_DMA_OK || s == IOPFMAP_SIM_DMA_INVALID ||
	       s == IOPFMAP_SIM_DMA_NO_PROGRESS;
}

static void stress_count(struct stress_area *ar, __u32 s)
{
	if (s == IOPFMAP_SIM_DMA_OK)
		ar->ok++;
	else if (s == IOPFMAP_SIM_DMA_INVALID)
		ar->invalid++;
	else if (s == IOPFMAP_SIM_DMA_NO_PROGRESS)
		ar->noprog++;
}

/* DMA thread: write a page, check it from the CPU and read it back. */
static void *stress_dma(void *arg)
{
	struct stress_area *ar = arg;
	struct stress_shared *sh = ar->sh;
	size_t words = psz / sizeof(uint32_t);
	unsigned int seed = ar->id * 7919;
	struct iopfmap_sim_dma dw, dr;
	uint32_t iter = 0;

	while (!load(&sh->stop)) {
		size_t pg = rand_r(&seed) % STRESS_AREA_PAGES;
		uint32_t v = (uint32_t)ar->id << 24 | (++iter & 0xffffff);
		__u64 iova = ar->iova + pg * psz;
		int g1, g2, ro, absent, ret;
		bool stable;
		ssize_t n;
		size_t i;

		for (i = 0; i < words; i++)
			ar->wbuf[i] = v;
		g1 = load(&ar->gen);
		ro = load(&ar->ro);
		absent = load(&ar->absent);
		ret = _test_sim_dma(sh->fd, &dw, DMA_WRITE, iova, ar->wbuf, psz);
		if (ret) {
			stress_fail(sh, "%s: SIM_DMA write failed: %s",
				    ar->name, strerror(-ret));
			break;
		}
		ar->ops++;
		stress_count(ar, dw.out_status);
		n = -1;
		memset(&dr, 0, sizeof(dr));
		if (dw.out_status == IOPFMAP_SIM_DMA_OK) {
			n = cpu_read_safe(ar->cbuf, ar->cpu + pg * psz, psz);
			ret = _test_sim_dma(sh->fd, &dr, DMA_READ, iova,
					    ar->rbuf, psz);
			if (ret) {
				stress_fail(sh, "%s: SIM_DMA read failed: %s",
					    ar->name, strerror(-ret));
				break;
			}
			ar->ops++;
			stress_count(ar, dr.out_status);
		}
		g2 = load(&ar->gen);
		stable = g1 == g2 && !(g1 & 1);

		if (!stable) {
			if (!status_ok_unstable(dw.out_status) ||
			    (dw.out_status == IOPFMAP_SIM_DMA_OK &&
			     !status_ok_unstable(dr.out_status)))
				stress_fail(sh, "%s: DMA status %u/%u",
					    ar->name, dw.out_status,
					    dr.out_status);
			/* Only this page's write or a new zero page. */
			if (dw.out_status == IOPFMAP_SIM_DMA_OK &&
			    dr.out_status == IOPFMAP_SIM_DMA_OK &&
			    !words_are_or_zero(ar->rbuf, words, v))
				stress_fail(sh, "%s: page %zu read back neither %#x nor 0 (changing area)",
					    ar->name, pg, v);
			continue;
		}
		ar->strict++;
		if (ro || absent) {
			if (dw.out_status != IOPFMAP_SIM_DMA_INVALID)
				stress_fail(sh, "%s: DMA write to a %s page: %s, want INVALID",
					    ar->name, ro ? "read-only" :
					    "range-less",
					    iopfmap_dma_status_name(dw.out_status));
			continue;
		}
		if (dw.out_status != IOPFMAP_SIM_DMA_OK) {
			stress_fail(sh, "%s: DMA write to a stable page: %s at %#llx",
				    ar->name, iopfmap_dma_status_name(dw.out_status),
				    (unsigned long long)dw.out_fault_iova);
			continue;
		}
		if (n != (ssize_t)psz || !words_are(ar->cbuf, words, v))
			stress_fail(sh, "%s: CPU does not see DMA write %#x to stable page %zu (read %zd, word0 %#x)",
				    ar->name, v, pg, n, ar->cbuf[0]);
		if (dr.out_status != IOPFMAP_SIM_DMA_OK)
			stress_fail(sh, "%s: DMA read of a stable page: %s",
				    ar->name, iopfmap_dma_status_name(dr.out_status));
		else if (!words_are(ar->rbuf, words, v))
			stress_fail(sh, "%s: DMA read of stable page %zu: word0 %#x, want %#x",
				    ar->name, pg, ar->rbuf[0], v);
	}
	return NULL;
}

/* Re-creates the area: MAP_FIXED over it, or munmap then mmap. */
static void *stress_remap(void *arg)
{
	struct stress_area *ar = arg;
	size_t len = STRESS_AREA_PAGES * psz;
	unsigned long i = 0;
	void *p;

	while (!load(&ar->sh->stop)) {
		bump(&ar->gen);
		if (i++ & 1) {
			if (munmap(ar->cpu, len))
				stress_fail(ar->sh, "munmap: %s", strerror(errno));
			pause_us(200);
			p = mmap(ar->cpu, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_FIXED_NOREPLACE, -1, 0);
		} else {
			p = mmap(ar->cpu, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0);
		}
		if (p != ar->cpu)
			stress_fail(ar->sh, "re-mmap of the area: %s",
				    p == MAP_FAILED ? strerror(errno) :
				    "wrong address");
		else
			madvise(p, len, MADV_NOHUGEPAGE);
		bump(&ar->gen);
		ar->changes++;
		pause_us(1000);
	}
	return NULL;
}

/* Toggles the area read-only and back, and drops its pages. */
static void *stress_protect(void *arg)
{
	struct stress_area *ar = arg;
	size_t len = STRESS_AREA_PAGES * psz;
	unsigned long i = 0;

	while (!load(&ar->sh->stop)) {
		bump(&ar->gen);
		switch (i++ % 3) {
		case 0:
			__atomic_store_n(&ar->ro, 1, __ATOMIC_SEQ_CST);
			if (mprotect(ar->cpu, len, PROT_READ))
				stress_fail(ar->sh, "mprotect RO: %s",
					    strerror(errno));
			break;
		case 1:
			if (mprotect(ar->cpu, len, PROT_READ | PROT_WRITE))
				stress_fail(ar->sh, "mprotect RW: %s",
					    strerror(errno));
			__atomic_store_n(&ar->ro, 0, __ATOMIC_SEQ_CST);
			break;
		default:
			if (madvise(ar->cpu, len, MADV_DONTNEED))
				stress_fail(ar->sh, "MADV_DONTNEED: %s",
					    strerror(errno));
			break;
		}
		bump(&ar->gen);
		ar->changes++;
		pause_us(1000);
	}
	/*
	 * Leave it writable, as a change like the others: a DMA thread may
	 * still be in its last iteration and must not take this for stable.
	 */
	bump(&ar->gen);
	if (mprotect(ar->cpu, len, PROT_READ | PROT_WRITE))
		stress_fail(ar->sh, "mprotect RW: %s", strerror(errno));
	__atomic_store_n(&ar->ro, 0, __ATOMIC_SEQ_CST);
	bump(&ar->gen);
	return NULL;
}

/* UNMAP and MAP of a whole range. */
static void *stress_range(void *arg)
{
	struct stress_area *ar = arg;
	size_t len = STRESS_AREA_PAGES * psz;
	struct iopfmap_unmap um;
	int ret;

	while (!load(&ar->sh->stop)) {
		bump(&ar->gen);
		um = (struct iopfmap_unmap){ .size = sizeof(um),
			.iova = ar->iova, .length = len };
		ret = _test_cmd_unmap(ar->sh->fd, &um);
		if (ret || um.out_unmapped != len)
			stress_fail(ar->sh, "UNMAP: %s, out_unmapped %llu",
				    strerror(-ret),
				    (unsigned long long)um.out_unmapped);
		__atomic_store_n(&ar->absent, 1, __ATOMIC_SEQ_CST);
		bump(&ar->gen);
		pause_us(1000);

		bump(&ar->gen);
		ret = _test_map(ar->sh->fd, ar->iova, ar->cpu, len, RW, 0);
		if (ret)
			stress_fail(ar->sh, "MAP: %s", strerror(-ret));
		__atomic_store_n(&ar->absent, 0, __ATOMIC_SEQ_CST);
		bump(&ar->gen);
		ar->changes++;
		pause_us(1000);
	}
	return NULL;
}

/*
 * DMA threads against threads that change the CPU page tables and the
 * ranges under them, for a few seconds.
 */
TEST_F_TIMEOUT(dma_anon, stress, 90)
{
	static const char * const names[] = {
		"stable area", "munmap/mmap area", "mprotect/DONTNEED area",
		"UNMAP/MAP range",
	};
	void *(*const changer[])(void *) = {
		NULL, stress_remap, stress_protect, stress_range,
	};
	size_t alen = STRESS_AREA_PAGES * psz;
	struct stress_area ar[4];
	struct stress_shared sh;
	pthread_t dth[4], cth[4];
	struct iopfmap_stats st;
	bool started[4] = {}, cstarted[4] = {};
	static const __u64 own_iova[2] = { IOVA_ALT2, IOVA_ALT };
	char *own[2];		/* the stable area's, the UNMAP/MAP area's */
	int i;

	ASSERT_LE(3 * alen, self->len);

	/*
	 * Two areas are ranges of their own: the UNMAP/MAP one, and the
	 * stable one, whose faults would otherwise retry on every change
	 * to the others, and a long enough stall of the host could run one
	 * into the fault timeout.
	 */
	for (i = 0; i < 2; i++) {
		own[i] = mmap(NULL, alen, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, own[i]);
		self->extra[i] = own[i];
		self->extra_len[i] = alen;
		map_range(_metadata, &self->state, own_iova[i], own[i], alen,
			  0);
	}

	memset(&sh, 0, sizeof(sh));
	sh.fd = self->fd;
	pthread_mutex_init(&sh.lock, NULL);
	memset(ar, 0, sizeof(ar));
	for (i = 0; i < 4; i++) {
		ar[i].sh = &sh;
		ar[i].name = names[i];
		ar[i].id = i + 1;
		ar[i].cpu = !i ? own[0] :
			    i < 3 ? self->buf + i * alen : own[1];
		ar[i].iova = !i ? own_iova[0] :
			     i < 3 ? self->iova + i * alen : own_iova[1];
		ar[i].wbuf = malloc(psz);
		ar[i].rbuf = malloc(psz);
		ar[i].cbuf = malloc(psz);
		ASSERT_TRUE(ar[i].wbuf && ar[i].rbuf && ar[i].cbuf);
	}

	for (i = 0; i < 4; i++) {
		started[i] = !pthread_create(&dth[i], NULL, stress_dma, &ar[i]);
		if (changer[i])
			cstarted[i] = !pthread_create(&cth[i], NULL,
						      changer[i], &ar[i]);
	}
	sleep(STRESS_SECONDS);
	__atomic_store_n(&sh.stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 4; i++) {
		if (started[i])
			pthread_join(dth[i], NULL);
		if (cstarted[i])
			pthread_join(cth[i], NULL);
	}

	for (i = 0; i < 4; i++) {
		TH_LOG("%-24s ops %lu ok %lu invalid %lu no_progress %lu strict %lu changes %lu",
		       ar[i].name, ar[i].ops, ar[i].ok, ar[i].invalid,
		       ar[i].noprog, ar[i].strict, ar[i].changes);
		EXPECT_TRUE(started[i]);
		EXPECT_TRUE(!changer[i] || cstarted[i]);
		EXPECT_LT(0UL, ar[i].ok) TH_LOG("%s: no DMA succeeded",
						ar[i].name);
		if (changer[i])
			EXPECT_LT(0UL, ar[i].changes);
	}
	EXPECT_LT(0UL, ar[0].strict);
	EXPECT_EQ(0UL, ar[0].invalid + ar[0].noprog);
	EXPECT_EQ(0, sh.fails) TH_LOG("%d failures, the first: %s", sh.fails,
				      sh.msg);

	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	TH_LOG("faults %llu handled %llu invalid %llu invalidations %llu unmapped %llu retries %llu",
	       (unsigned long long)st.out_faults,
	       (unsigned long long)st.out_faults_handled,
	       (unsigned long long)st.out_faults_invalid,
	       (unsigned long long)st.out_invalidations,
	       (unsigned long long)st.out_pages_unmapped,
	       (unsigned long long)st.out_retries);
	EXPECT_LT(0ULL, st.out_invalidations_handled);
	EXPECT_LT(0ULL, st.out_faults_invalid);
	/* Quiet now: the whole span is consistent, and still works. */
	mapped_in(_metadata, self->fd, self->iova, self->len);
	mapped_in(_metadata, self->fd, IOVA_ALT, alen);
	mapped_in(_metadata, self->fd, IOVA_ALT2, alen);
	for (i = 0; i < 4; i++) {
		pattern(ar[i].wbuf, psz, i);
		dma_ok(_metadata, self->fd, DMA_WRITE, ar[i].iova, ar[i].wbuf,
		       psz);
		same(_metadata, "CPU after the stress", ar[i].cpu, ar[i].wbuf,
		     psz);
		free(ar[i].wbuf);
		free(ar[i].rbuf);
		free(ar[i].cbuf);
	}
	pthread_mutex_destroy(&sh.lock);
}

TEST_HARNESS_MAIN
