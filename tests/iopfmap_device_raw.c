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

TEST_HARNESS_MAIN
