// SPDX-License-Identifier: GPL-2.0
/*
 * The IOMMU itself blocks a device from pages that left the CPU's page
 * tables. edu's raw DMA (IOPFMAP_EDU_RAW) skips the test driver's
 * translation check and page requests: it goes straight to the emulated
 * VT-d, so whether it lands shows what the domain really maps.
 *
 * For each event (munmap, MADV_DONTNEED, mprotect(PROT_READ), migration
 * to the other NUMA node): a FAULT range over mapping A of a memfd page,
 * with a second mapping B of the same page keeping it alive and showing
 * its content. The device faults the page in; a raw write of pattern P1
 * lands (the positive control); the event; a raw write of P2 to the same
 * IOVA must not land, and the IOMMU must log a fault for it. The test
 * learns which IOMMU translates the device (VT-d in legacy or scalable
 * mode, AMD-Vi, virtio-iommu) and waits for that IOMMU's fault line, which
 * it declares to the runner's log scan beforehand (kmsg_expect()).
 *
 * Needs what iopfmap_device needs (root, iopfmap, iopfmap_edu.ko, an edu
 * device); the migration case needs two NUMA nodes (tools/vm/run --numa).
 */
#include <limits.h>
#include <sys/mman.h>

#include "iopfmap_edu_utils.h"

#pragma GCC diagnostic ignored "-Wclobbered"	/* see iopfmap_device.c */

#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL (1 << 2)
#endif

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
/* The page under test. */
#define IOVA_X		0x200000ULL
#define IOVA_STG	0x400000ULL
/* edu's buffer holds P1 at 0 and P2 at BUF_P2; each write is LEN bytes. */
#define BUF_P2		2048
#define LEN		1024
#define OFF		512	/* where in the page they go */

static size_t psz;

enum event { EV_MUNMAP, EV_DONTNEED, EV_MPROTECT, EV_MIGRATE };

/* /dev/kmsg, positioned after the last record: what comes next. */
static int kmsg_open_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Whether a kernel log record matching @re arrives on @fd within about
 * @ms milliseconds: the IOMMU logs a fault from its fault interrupt or
 * event queue, after the DMA has completed.
 */
static bool kmsg_wait_for(int fd, const regex_t *re, int ms)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	char rec[2048];
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n > 0) {
			rec[n] = '\0';
			if (!regexec(re, rec, 0, NULL, 0))
				return true;
			continue;
		}
		if (n < 0 && errno == EPIPE)	/* overrun: read on */
			continue;
		if (ms <= 0)
			return false;
		nanosleep(&tick, NULL);
		ms -= 10;
	}
}

static long sys_move_pages(unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

/* The NUMA node of the page at @p, or -errno. */
static int page_node(void *p)
{
	int status = INT_MIN;

	if (sys_move_pages(1, &p, NULL, &status, 0))
		return -errno;
	return status;
}

/*
 * fd: the context, with edu device dev attached; efd: /dev/iopfmap_edu.
 * a, b: two MAP_SHARED mappings of the one-page memfd; a is the range at
 * IOVA_X. stg: a pinned staging page at IOVA_STG holding P1 and P2.
 */
FIXTURE(raw)
{
	int fd;
	int efd;
	int memfd;
	char dev[IOPFMAP_DEVICE_NAME_MAX];
	struct iommu_unit iommu;
	char *a;
	char *b;
	char *stg;
};

FIXTURE_VARIANT(raw)
{
	enum event event;
};

FIXTURE_VARIANT_ADD(raw, munmap) { .event = EV_MUNMAP };
FIXTURE_VARIANT_ADD(raw, dontneed) { .event = EV_DONTNEED };
FIXTURE_VARIANT_ADD(raw, mprotect) { .event = EV_MPROTECT };
FIXTURE_VARIANT_ADD(raw, migrate) { .event = EV_MIGRATE };

FIXTURE_SETUP(raw)
{
	char edus[1][IOPFMAP_DEVICE_NAME_MAX];
	struct iopfmap_device_attach at;
	int ret;

	psz = sysconf(_SC_PAGESIZE);
	self->fd = -1;
	self->efd = -1;
	self->memfd = -1;
	self->a = MAP_FAILED;
	self->b = MAP_FAILED;
	self->stg = MAP_FAILED;

	if (variant->event == EV_MIGRATE &&
	    access("/sys/devices/system/node/node1", F_OK))
		SKIP(return, "one NUMA node: nothing to migrate to (tools/vm/run --numa)");
	OPEN_CONTEXT(&self->fd);
	if (!edu_require(_metadata, self->fd, edus, 1))
		return;
	snprintf(self->dev, sizeof(self->dev), "%s", edus[0]);
	ret = iommu_of_device(self->dev, &self->iommu);
	ASSERT_EQ(0, ret) TH_LOG("the IOMMU of %s: %s", self->dev,
				 strerror(-ret));
	TH_LOG("%s is behind %s %s", self->dev,
	       iommu_kind_name(self->iommu.kind), self->iommu.name);
	self->efd = open(EDU_NODE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->efd) TH_LOG("open " EDU_NODE ": %s",
				       strerror(errno));
	ret = _test_attach(self->fd, self->dev, 0, &at);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s: %s", self->dev, strerror(-ret));

	self->memfd = memfd_create("iopfmap_device_raw", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, psz));
	self->a = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->memfd, 0);
	self->b = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->memfd, 0);
	self->stg = mmap(NULL, psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->a);
	ASSERT_NE(MAP_FAILED, self->b);
	ASSERT_NE(MAP_FAILED, self->stg);
	iopfmap_fill(self->b, psz, 0);
	iopfmap_fill(self->stg, BUF_P2, 1);
	iopfmap_fill(self->stg + BUF_P2, psz - BUF_P2, 2);

	ret = _test_map(self->fd, IOVA_X, self->a, psz, RW, 0);
	ASSERT_EQ(0, ret) TH_LOG("MAP of A: %s", strerror(-ret));
	/* Pinned: the staging page never faults and no event touches it. */
	ret = _test_map(self->fd, IOVA_STG, self->stg, psz,
			RW | IOPFMAP_MAP_PIN, 0);
	ASSERT_EQ(0, ret) TH_LOG("MAP of the staging page: %s",
				 strerror(-ret));
}

FIXTURE_TEARDOWN(raw)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->efd >= 0)
		close(self->efd);
	if (self->a != MAP_FAILED)
		munmap(self->a, psz);
	if (self->b != MAP_FAILED)
		munmap(self->b, psz);
	if (self->stg != MAP_FAILED)
		munmap(self->stg, psz);
	if (self->memfd >= 0)
		close(self->memfd);
}

TEST_F(raw, blocked_after_invalidation)
{
	char *page = malloc(psz), *want = malloc(psz);
	struct iopfmap_edu_fault f = { .flags = IOPFMAP_EDU_TO_RAM };
	struct iopfmap_stats st0, st1;
	char fault_ere[256], extra_ere[256];
	int kfd, node = -1, target = -1, status = INT_MIN;
	regex_t fault_re;
	bool logged;
	void *pages[1];
	int ret;

	ASSERT_TRUE(page && want);
	if (!iommu_fault_ere(&self->iommu, self->dev, IOVA_X, true, fault_ere,
			     extra_ere, sizeof(fault_ere)))
		SKIP(return, "%s: no known fault log line for IOMMU %s",
		     self->dev, self->iommu.name);
	ASSERT_EQ(0, regcomp(&fault_re, fault_ere, REG_EXTENDED | REG_NOSUB))
		TH_LOG("regcomp %s", fault_ere);
	/* edu's buffer: P1 at 0, P2 at BUF_P2. */
	edu_dma_done(_metadata, self->efd, self->dev, 0, IOVA_STG,
		     IOPFMAP_EDU_DMA_MAX, 0);

	/* Fault A's page in for writing, as a device with PRI would. */
	snprintf(f.name, sizeof(f.name), "%s", self->dev);
	f.iova = IOVA_X;
	f.length = psz;
	ret = _test_ioctl(self->efd, IOPFMAP_EDU_FAULT, &f);
	ASSERT_EQ(0, ret) TH_LOG("EDU_FAULT: %s", strerror(-ret));
	ASSERT_EQ((__u32)IOPFMAP_EDU_DONE, f.out_status)
		TH_LOG("EDU_FAULT: %s", edu_status_name(f.out_status));
	ASSERT_EQ(1, mapped_in(_metadata, self->fd, IOVA_X, psz));

	/* Positive control: a raw write lands while the page is mapped. */
	edu_dma_done(_metadata, self->efd, self->dev,
		     IOPFMAP_EDU_RAW | IOPFMAP_EDU_TO_RAM, IOVA_X + OFF, LEN, 0);
	iopfmap_fill(want, psz, 0);
	memcpy(want + OFF, self->stg, LEN);
	memcpy(page, self->b, psz);
	ASSERT_TRUE(same(_metadata, "the page after the raw write of P1",
			 page, want, psz));

	st0 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	switch (variant->event) {
	case EV_MUNMAP:
		ASSERT_EQ(0, munmap(self->a, psz));
		self->a = MAP_FAILED;
		break;
	case EV_DONTNEED:
		ASSERT_EQ(0, madvise(self->a, psz, MADV_DONTNEED));
		break;
	case EV_MPROTECT:
		ASSERT_EQ(0, mprotect(self->a, psz, PROT_READ));
		break;
	case EV_MIGRATE:
		node = page_node(self->a);
		ASSERT_LE(0, node) TH_LOG("page node: %s", strerror(-node));
		target = node ? 0 : 1;
		pages[0] = self->a;
		/* B maps the page too: only MOVE_ALL moves a shared page. */
		ret = sys_move_pages(1, pages, &target, &status,
				     MPOL_MF_MOVE_ALL);
		ASSERT_EQ(0, ret) TH_LOG("move_pages: %s", strerror(errno));
		ASSERT_EQ(target, status) TH_LOG("page status %d", status);
		EXPECT_EQ(target, page_node(self->b));
		break;
	}
	st1 = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_LT(st0.out_invalidations, st1.out_invalidations);
	EXPECT_LT(st0.out_invalidations_handled, st1.out_invalidations_handled);
	EXPECT_LE(st0.out_pages_unmapped + 1, st1.out_pages_unmapped);
	EXPECT_EQ(0, mapped_in(_metadata, self->fd, IOVA_X, psz));

	/*
	 * The raw write of P2: the IOMMU must block it and log the fault.
	 * The log line is what proves it for migration, where the stale
	 * entry would have written the old page, which nothing can read any
	 * more.
	 */
	ASSERT_TRUE(kmsg_expect(fault_ere));
	ASSERT_TRUE(!extra_ere[0] || kmsg_expect(extra_ere));
	kfd = kmsg_open_end();
	ASSERT_LE(0, kfd) TH_LOG("/dev/kmsg: %s", strerror(errno));
	edu_dma_done(_metadata, self->efd, self->dev,
		     IOPFMAP_EDU_RAW | IOPFMAP_EDU_TO_RAM, IOVA_X + OFF, LEN,
		     BUF_P2);
	/* The fault was reported while the DMA ran: 1 s is ample. */
	logged = kmsg_wait_for(kfd, &fault_re, 1000);
	if (!logged) {
		/*
		 * The drivers print faults under a ratelimit (VT-d's
		 * dmar_fault(): 10 per 5 s, three spent on each fault): a
		 * record may not be printed. Wait that out and fire again;
		 * the page is still unmapped, so the DMA must fault again.
		 */
		sleep(5);
		edu_dma_done(_metadata, self->efd, self->dev,
			     IOPFMAP_EDU_RAW | IOPFMAP_EDU_TO_RAM,
			     IOVA_X + OFF, LEN, BUF_P2);
		logged = kmsg_wait_for(kfd, &fault_re, 2000);
	}
	close(kfd);
	regfree(&fault_re);
	EXPECT_TRUE(logged) TH_LOG("no line matching \"%s\" in the kernel log",
				   fault_ere);

	memcpy(page, self->b, psz);
	same(_metadata, "the page after the blocked raw write of P2", page,
	     want, psz);
	if (variant->event == EV_MIGRATE) {
		memcpy(page, self->a, psz);
		same(_metadata, "the migrated page at A", page, want, psz);
	}
	free(page);
	free(want);
}

/*
 * ---------------------------------------------------------------------
 * One page out of a prefetched run
 * ---------------------------------------------------------------------
 *
 * A prefetch window over physically contiguous pages is a run that one
 * map call could make into a single larger entry: AMD's v1 table has
 * every power of two from 4 KiB (a 16-page run at a 64 KiB boundary is one
 * 64 KiB entry), virtio-iommu makes one mapping per MAP request. When the
 * CPU then drops one page of the run, only that page may leave the IO page
 * table, and the bitmap must still equal the table: a neighbour whose bit
 * went with it would stay mapped unseen, and a later invalidation of it
 * would leave the device writing a freed page. The memory is a THP whose
 * PMD is split (mprotect of one page and back), so its pages are mapped
 * one by one but stay physically contiguous.
 */
#define RUN_IOVA	0x800000ULL	/* 64 KiB aligned */
#define RUN_PAGES	32
#define RUN_WINDOW	16
#define SZ_2M		0x200000UL

FIXTURE(raw_run)
{
	int fd;
	int efd;
	char dev[IOPFMAP_DEVICE_NAME_MAX];
	struct iommu_unit iommu;
	char *region;		/* what was mmap()ed */
	char *mem;		/* 2 MiB aligned inside it */
	char *stg;
};

/* AnonHugePages of the mapping at @addr, in kB, from smaps; -1 if none. */
static long anon_huge_kb(const void *addr)
{
	unsigned long start, end, a = (unsigned long)addr;
	char line[256];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = a >= start && a < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Whether the run's pages are physically contiguous from a 64 KiB frame. */
static bool run_contiguous(const char *mem)
{
	__u64 pfn0 = iopfmap_pagemap_pfn(mem);
	unsigned int i;

	if (!pfn0 || pfn0 % RUN_WINDOW)
		return false;
	for (i = 1; i < RUN_PAGES; i++)
		if (iopfmap_pagemap_pfn(mem + i * psz) != pfn0 + i)
			return false;
	return true;
}

FIXTURE_SETUP(raw_run)
{
	char edus[1][IOPFMAP_DEVICE_NAME_MAX];
	struct iopfmap_device_attach at;
	int ret;

	psz = sysconf(_SC_PAGESIZE);
	self->fd = -1;
	self->efd = -1;
	self->region = MAP_FAILED;
	self->stg = MAP_FAILED;
	OPEN_CONTEXT(&self->fd);
	if (!edu_require(_metadata, self->fd, edus, 1))
		return;
	snprintf(self->dev, sizeof(self->dev), "%s", edus[0]);
	ret = iommu_of_device(self->dev, &self->iommu);
	ASSERT_EQ(0, ret) TH_LOG("the IOMMU of %s: %s", self->dev,
				 strerror(-ret));
	TH_LOG("%s is behind %s %s", self->dev,
	       iommu_kind_name(self->iommu.kind), self->iommu.name);
	self->efd = open(EDU_NODE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->efd) TH_LOG("open " EDU_NODE ": %s",
				       strerror(errno));
	ret = _test_attach(self->fd, self->dev, 0, &at);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s: %s", self->dev, strerror(-ret));

	/* A THP, written so that it is one; then its PMD is split. */
	self->region = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->region);
	self->mem = (char *)(((uintptr_t)self->region + SZ_2M - 1) &
			     ~(uintptr_t)(SZ_2M - 1));
	ASSERT_EQ(0, madvise(self->mem, SZ_2M, MADV_HUGEPAGE));
	iopfmap_fill(self->mem, SZ_2M, 3);
	if (!run_contiguous(self->mem))
		SKIP(return, "no THP: the pages are not physically contiguous (transparent_hugepage disabled?)");
	ASSERT_EQ(0, mprotect(self->mem + psz, psz, PROT_READ));
	ASSERT_EQ(0, mprotect(self->mem + psz, psz, PROT_READ | PROT_WRITE));
	/* khugepaged must not make it one PMD again. */
	ASSERT_EQ(0, madvise(self->mem, SZ_2M, MADV_NOHUGEPAGE));
	ASSERT_EQ(0L, anon_huge_kb(self->mem))
		TH_LOG("the THP is still mapped with a PMD");
	ASSERT_TRUE(run_contiguous(self->mem))
		TH_LOG("the split THP's pages moved");

	self->stg = mmap(NULL, psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->stg);
	iopfmap_fill(self->stg, psz, 1);
	ret = _test_map(self->fd, IOVA_STG, self->stg, psz,
			RW | IOPFMAP_MAP_PIN, 0);
	ASSERT_EQ(0, ret) TH_LOG("MAP of the staging page: %s",
				 strerror(-ret));
	ret = _test_map(self->fd, RUN_IOVA, self->mem, RUN_PAGES * psz, RW,
			RUN_WINDOW);
	ASSERT_EQ(0, ret) TH_LOG("MAP of the run: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(raw_run)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->efd >= 0)
		close(self->efd);
	if (self->region != MAP_FAILED)
		munmap(self->region, 2 * SZ_2M);
	if (self->stg != MAP_FAILED)
		munmap(self->stg, psz);
}

/* The IO page table's walk over the run, one bit per page. */
static __u64 run_walk(struct __test_metadata *_metadata, int fd)
{
	__u64 bits = 0;
	struct iopfmap_query_mapped q = {
		.size = sizeof(q),
		.flags = IOPFMAP_QUERY_IOPT,
		.iova = RUN_IOVA,
		.length = RUN_PAGES * psz,
		.bitmap = (__u64)(uintptr_t)&bits,
	};

	EXPECT_EQ(0, _test_cmd_query_mapped(fd, &q));
	return bits;
}

/* A raw DMA of P1 (edu's buffer, from the staging page) into @page. */
static void run_raw_write(struct __test_metadata *_metadata,
			  FIXTURE_DATA(raw_run) *self, unsigned int page)
{
	edu_dma_done(_metadata, self->efd, self->dev,
		     IOPFMAP_EDU_RAW | IOPFMAP_EDU_TO_RAM,
		     RUN_IOVA + page * psz + OFF, LEN, 0);
}

TEST_F(raw_run, one_page_inside_a_prefetched_run)
{
	struct iopfmap_edu_fault f = { .flags = IOPFMAP_EDU_TO_RAM };
	char fault_ere[256], extra_ere[256];
	__u64 all = (1ULL << RUN_PAGES) - 1;
	regex_t fault_re;
	bool logged;
	int kfd, ret;

	if (!iommu_fault_ere(&self->iommu, self->dev,
			     RUN_IOVA + 20 * psz, true, fault_ere, extra_ere,
			     sizeof(fault_ere)))
		SKIP(return, "%s: no known fault log line for IOMMU %s",
		     self->dev, self->iommu.name);
	ASSERT_EQ(0, regcomp(&fault_re, fault_ere, REG_EXTENDED | REG_NOSUB));
	edu_dma_done(_metadata, self->efd, self->dev, 0, IOVA_STG,
		     IOPFMAP_EDU_DMA_MAX, 0);

	/* Two faults, two windows of 16 contiguous pages: 32 pages mapped. */
	snprintf(f.name, sizeof(f.name), "%s", self->dev);
	f.length = psz;
	f.iova = RUN_IOVA;
	ret = _test_ioctl(self->efd, IOPFMAP_EDU_FAULT, &f);
	ASSERT_EQ(0, ret) TH_LOG("EDU_FAULT: %s", strerror(-ret));
	ASSERT_EQ((__u32)IOPFMAP_EDU_DONE, f.out_status);
	f.iova = RUN_IOVA + RUN_WINDOW * psz;
	ret = _test_ioctl(self->efd, IOPFMAP_EDU_FAULT, &f);
	ASSERT_EQ(0, ret) TH_LOG("EDU_FAULT: %s", strerror(-ret));
	ASSERT_EQ((__u32)IOPFMAP_EDU_DONE, f.out_status);
	ASSERT_EQ(RUN_PAGES, mapped_in(_metadata, self->fd, RUN_IOVA,
				       RUN_PAGES * psz));
	ASSERT_EQ(all, run_walk(_metadata, self->fd));

	/* The CPU drops page 5: page 5, and only page 5, leaves. */
	ASSERT_EQ(0, madvise(self->mem + 5 * psz, psz, MADV_DONTNEED));
	EXPECT_EQ(RUN_PAGES - 1, mapped_in(_metadata, self->fd, RUN_IOVA,
					   RUN_PAGES * psz));
	EXPECT_EQ(all & ~(1ULL << 5), run_walk(_metadata, self->fd));

	/* Page 20, of the other window, still takes the device's writes. */
	run_raw_write(_metadata, self, 20);
	EXPECT_TRUE(diff_at(self->mem + 20 * psz + OFF, self->stg, LEN) == LEN)
		TH_LOG("page 20 does not hold the raw write");

	/* The CPU drops page 20: the device's next write must not land. */
	ASSERT_EQ(0, madvise(self->mem + 20 * psz, psz, MADV_DONTNEED));
	EXPECT_EQ(RUN_PAGES - 2, mapped_in(_metadata, self->fd, RUN_IOVA,
					   RUN_PAGES * psz));
	EXPECT_EQ(all & ~(1ULL << 5 | 1ULL << 20),
		  run_walk(_metadata, self->fd));
	ASSERT_TRUE(kmsg_expect(fault_ere));
	ASSERT_TRUE(!extra_ere[0] || kmsg_expect(extra_ere));
	kfd = kmsg_open_end();
	ASSERT_LE(0, kfd);
	run_raw_write(_metadata, self, 20);
	logged = kmsg_wait_for(kfd, &fault_re, 1000);
	if (!logged) {
		sleep(5);	/* the drivers' ratelimits: see above */
		run_raw_write(_metadata, self, 20);
		logged = kmsg_wait_for(kfd, &fault_re, 2000);
	}
	close(kfd);
	regfree(&fault_re);
	EXPECT_TRUE(logged)
		TH_LOG("the raw write to dropped page 20 was not blocked: no line matching \"%s\"",
		       fault_ere);

	/* Page 21 next to it still works. */
	run_raw_write(_metadata, self, 21);
	EXPECT_TRUE(diff_at(self->mem + 21 * psz + OFF, self->stg, LEN) == LEN)
		TH_LOG("page 21 does not hold the raw write");
}

TEST_HARNESS_MAIN
