// SPDX-License-Identifier: GPL-2.0
/*
 * Real page requests, end to end: iopfmap-pri (tools/qemu), an emulated
 * PCIe device with ATS, PASID and PRI behind the emulated VT-d in
 * scalable mode, DMAs into memory that iopfmap maps on demand. On a
 * translation miss the device sends a page request group with its PASID;
 * it goes through VT-d's page request queue, the Intel driver and the
 * IOMMU core to iopfmap's handler, and the page response goes back the
 * same way before the device tries again. Nothing here is synthesized.
 *
 * Needs root, iopfmap with PASID attach (6.12 and later), iopfmap_pri.ko
 * in /lib/modules/$(uname -r)/extra (loaded here unless /dev/iopfmap_pri
 * is there, and then unloaded at exit) and the device (tools/vm/run
 * --iommu vtd-pri). Without them the tests SKIP and say why.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL (1 << 2)
#endif

#include "iopfmap_edu_utils.h"
#include "iopfmap_pri_utils.h"
#include "iopfmap_trace_utils.h"

#pragma GCC diagnostic ignored "-Wclobbered"

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define PASID		0x42
#define IOVA		0x10000000ULL
#define NPAGES		64
#define GROUP_PAGES	16	/* one 64 KiB DMA: the device's buffer */

static size_t psz;

/*
 * fd: the context; pfd: /dev/iopfmap_pri; dev: the device; mem: NPAGES of
 * untouched anonymous memory at IOVA; rid, pasid: the attachments.
 */
struct pri_state {
	int fd;
	int pfd;
	char dev[IOPFMAP_DEVICE_NAME_MAX];
	char *mem;
	struct iopfmap_device_attach rid;
	struct iopfmap_device_attach pasid;
};

/* One DMA of the device, tagged with PASID unless @flags says RAW. */
static struct iopfmap_pri_dma pri_dma(struct __test_metadata *_metadata,
				      struct pri_state *s, __u32 flags,
				      __u64 iova, __u32 len, void *data)
{
	struct iopfmap_pri_dma d = {
		.flags = flags | (flags & IOPFMAP_PRI_RAW ? 0 :
				  IOPFMAP_PRI_PASID),
		.pasid = flags & IOPFMAP_PRI_RAW ? 0 : PASID,
		.iova = iova,
		.length = len,
		.data = (__u64)(unsigned long)data,
	};
	int ret;

	snprintf(d.name, sizeof(d.name), "%s", s->dev);
	ret = _test_ioctl(s->pfd, IOPFMAP_PRI_DMA, &d);
	ASSERT_EQ(0, ret) TH_LOG("PRI_DMA %s %#llx+%#x: %s",
				 flags & IOPFMAP_PRI_TO_RAM ? "to" : "from",
				 (unsigned long long)iova, len,
				 strerror(-ret));
	return d;
}

/* A DMA that must complete. */
static struct iopfmap_pri_dma pri_dma_done(struct __test_metadata *_metadata,
					   struct pri_state *s, __u32 flags,
					   __u64 iova, __u32 len, void *data)
{
	struct iopfmap_pri_dma d = pri_dma(_metadata, s, flags, iova, len,
					   data);

	EXPECT_EQ((__u32)IOPFMAP_PRI_DONE, d.out_status)
		TH_LOG("DMA %#llx+%#x: %s after %u page requests, %u responses (last code %u)",
		       (unsigned long long)iova, len,
		       pri_status_name(d.out_status), d.out_page_requests,
		       d.out_responses, d.out_last_code);
	EXPECT_EQ(0U, d.out_stray) TH_LOG("a page request group was answered twice");
	return d;
}

static struct iopfmap_pri_info pri_info(struct __test_metadata *_metadata,
					struct pri_state *s)
{
	struct iopfmap_pri_info i = { 0 };
	int ret;

	snprintf(i.name, sizeof(i.name), "%s", s->dev);
	ret = _test_ioctl(s->pfd, IOPFMAP_PRI_INFO, &i);
	EXPECT_EQ(0, ret) TH_LOG("PRI_INFO: %s", strerror(-ret));
	return i;
}

static void map_range(struct __test_metadata *_metadata, struct pri_state *s,
		      __u32 flags)
{
	int ret = _test_map(s->fd, IOVA, s->mem, NPAGES * psz, flags, 0);

	ASSERT_EQ(0, ret) TH_LOG("MAP: %s", strerror(-ret));
}

/* Opens, finds, loads and attaches (RID, then PASID): false if SKIPped. */
static bool pri_open(struct __test_metadata *_metadata, struct pri_state *s)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int ret;

	psz = sysconf(_SC_PAGESIZE);
	s->fd = -1;
	s->pfd = -1;
	s->mem = MAP_FAILED;
	s->fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	if (s->fd < 0)
		SKIP(return false, "cannot open " IOPFMAP_DEV ": %s",
		     strerror(errno));
	test_cmd_get_info(s->fd, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH))
		SKIP(return false, "no PASID attach in this kernel (iommu_attach_device_pasid() with a handle: 6.10), and QEMU's VT-d takes page requests with a PASID only");
	s->pfd = pri_require(_metadata, s->dev);
	if (s->pfd < 0)
		return false;

	s->mem = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s->mem);
	madvise(s->mem, NPAGES * psz, MADV_NOHUGEPAGE);

	ret = _test_attach(s->fd, s->dev, 0, &s->rid);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s requiring I/O page faults: %s",
				 s->dev, strerror(-ret));
	ret = _test_attach_pasid(s->fd, s->dev, IOPFMAP_ATTACH_PASID, PASID,
				 &s->pasid);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s at PASID %#x: %s", s->dev, PASID,
				 strerror(-ret));
	return true;
}

static void pri_close(struct pri_state *s)
{
	if (s->pfd >= 0)
		close(s->pfd);
	if (s->fd >= 0)
		close(s->fd);
	if (s->mem != MAP_FAILED)
		munmap(s->mem, NPAGES * psz);
}

FIXTURE(pri)
{
	struct pri_state s;
};

FIXTURE_SETUP(pri)
{
	pri_open(_metadata, &self->s);
}

FIXTURE_TEARDOWN(pri)
{
	pri_close(&self->s);
}

/*
 * The kernel turned on what the device needs, and iopfmap says its page
 * requests reach it.
 */
TEST_F(pri, attached_with_pri)
{
	struct pri_state *s = &self->s;
	struct iopfmap_pri_info i = pri_info(_metadata, s);
	struct iopfmap_info info = { .size = sizeof(info) };

	EXPECT_EQ((__u32)(IOPFMAP_PRI_CAP_ATS | IOPFMAP_PRI_CAP_PASID |
			  IOPFMAP_PRI_CAP_PRI), i.out_caps)
		TH_LOG("config space: caps %#x", i.out_caps);
	/* The PASID's page requests reach iopfmap on every kernel here... */
	EXPECT_EQ((__u32)(IOPFMAP_DEVICE_PASID | IOPFMAP_DEVICE_HW_IOPF),
		  s->pasid.out_flags &
		  (IOPFMAP_DEVICE_PASID | IOPFMAP_DEVICE_HW_IOPF));
	/* ...the requester ID's where the kernel delivers them (not 6.12). */
	test_cmd_get_info(s->fd, &info);
	EXPECT_NE(0ULL, info.out_features & IOPFMAP_FEATURE_CORE_FAULTS);
	EXPECT_EQ(!!(info.out_features & IOPFMAP_FEATURE_HW_IOPF),
		  !!(s->rid.out_flags & IOPFMAP_DEVICE_HW_IOPF));
	EXPECT_EQ(iopfmap_kernel_at_least(7, 0),
		  !!(info.out_features & IOPFMAP_FEATURE_HW_IOPF));
}

/*
 * A device write into untouched memory: one group of 16 page requests,
 * answered once, and the CPU reads what the device wrote. Then the device
 * reads back what the CPU wrote into the next pages.
 */
TEST_F(pri, dma_both_directions)
{
	struct pri_state *s = &self->s;
	size_t len = GROUP_PAGES * psz;
	struct iopfmap_stats st0, st1;
	struct iopfmap_pri_dma d;
	char *want = malloc(len), *got = malloc(len);

	ASSERT_TRUE(want && got);
	map_range(_metadata, s, RW);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);

	iopfmap_fill(want, len, 1);
	d = pri_dma_done(_metadata, s, IOPFMAP_PRI_TO_RAM, IOVA, len, want);
	EXPECT_EQ((__u32)GROUP_PAGES, d.out_page_requests);
	EXPECT_EQ(1U, d.out_groups);
	EXPECT_EQ(1U, d.out_responses);
	same(_metadata, "the device's write, read by the CPU", s->mem, want,
	     len);
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + GROUP_PAGES, st1.out_faults);
	EXPECT_EQ(st0.out_faults_handled + GROUP_PAGES,
		  st1.out_faults_handled);
	EXPECT_EQ(GROUP_PAGES, mapped_in(_metadata, s->fd, IOVA, len));

	/* Resident now: no page request. */
	d = pri_dma_done(_metadata, s, IOPFMAP_PRI_TO_RAM, IOVA, len, want);
	EXPECT_EQ(0U, d.out_page_requests);

	iopfmap_fill(s->mem + len, len, 2);
	memset(got, 0xee, len);
	d = pri_dma_done(_metadata, s, 0, IOVA + len, len, got);
	EXPECT_EQ((__u32)GROUP_PAGES, d.out_page_requests);
	same(_metadata, "the CPU's write, read by the device", got,
	     s->mem + len, len);
	free(want);
	free(got);
}

/*
 * The tracepoints tell the same story as the device and the counters:
 * one iopfmap_fault per page request, with the PASID; one fault_done per
 * fault; one iopfmap_respond, from the IOMMU, for the whole group.
 */
TEST_F(pri, tracepoints_match_counters)
{
	struct pri_state *s = &self->s;
	struct iopfmap_info info = { .size = sizeof(info) };
	size_t len = GROUP_PAGES * psz;
	char ctx[32], pasid[32], n[32], why[256];
	struct iopfmap_stats st0, st1;
	struct iopfmap_pri_dma d;
	char *text;

	if (!tracefs_ready(why, sizeof(why)))
		SKIP(return, "%s", why);
	test_cmd_get_info(s->fd, &info);
	snprintf(ctx, sizeof(ctx), "ctx=%u ", info.out_ctx_id);
	snprintf(pasid, sizeof(pasid), "pasid=%u ", PASID);
	snprintf(n, sizeof(n), "n=%u", GROUP_PAGES);
	map_range(_metadata, s, RW);
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "0"));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/trace", ""));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "1"));
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	d = pri_dma_done(_metadata, s, IOPFMAP_PRI_TO_RAM, IOVA, len, NULL);
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "0"));
	text = tracefs_read();
	ASSERT_NE(NULL, text);

	EXPECT_EQ((__u32)GROUP_PAGES, d.out_page_requests);
	EXPECT_EQ(st0.out_faults + d.out_page_requests, st1.out_faults);
	EXPECT_EQ((int)d.out_page_requests,
		  count_lines(text, "iopfmap_fault: ", ctx, "access=rw ",
			      pasid, NULL));
	EXPECT_EQ((int)(st1.out_faults_handled - st0.out_faults_handled),
		  count_lines(text, "iopfmap_fault_done: ", ctx,
			      "response=success", NULL));
	EXPECT_EQ((int)d.out_responses,
		  count_lines(text, "iopfmap_respond: ", ctx, "from=iommu ",
			      pasid, "resp=success", n, NULL))
		TH_LOG("the group's response, as traced:\n%s", text);
	free(text);
}

/* ---- the kernel's own SVA, the peer of iopfmap's PASID attachment ---- */

FIXTURE(sva)
{
	int pfd;
	char dev[IOPFMAP_DEVICE_NAME_MAX];
};

FIXTURE_SETUP(sva)
{
	psz = sysconf(_SC_PAGESIZE);
	self->pfd = pri_require(_metadata, self->dev);
}

FIXTURE_TEARDOWN(sva)
{
	if (self->pfd >= 0)
		close(self->pfd);
}

/*
 * Bound with iommu_sva_bind_device(), the device writes to the process's
 * virtual addresses: the IOMMU walks the CPU page tables and the core
 * resolves the page requests, without iopfmap. After UNBIND the PASID
 * translates nothing.
 */
TEST_F(sva, bound_device_writes_virtual_addresses)
{
	struct iopfmap_pri_sva b = { 0 };
	size_t len = GROUP_PAGES * psz;
	struct iopfmap_pri_dma d = { 0 };
	char *mem, *want = malloc(len);
	int ret;

	if (self->pfd < 0)
		return;
	ASSERT_NE(NULL, want);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	madvise(mem, len, MADV_NOHUGEPAGE);
	snprintf(b.name, sizeof(b.name), "%s", self->dev);
	ret = _test_ioctl(self->pfd, IOPFMAP_PRI_SVA_BIND, &b);
	if (ret == -EOPNOTSUPP && !iopfmap_kernel_at_least(6, 2))
		SKIP(return, "this kernel's SVA bind takes drvdata (6.1): the test driver does not bind it");
	if (ret == -EOPNOTSUPP)
		SKIP(return, "iommu_sva_bind_device() refuses: this kernel has no SVA on x86 (6.12's iommu-sva.c returns EOPNOTSUPP under CONFIG_X86)");
	ASSERT_EQ(0, ret) TH_LOG("SVA_BIND: %s", strerror(-ret));
	EXPECT_NE(0U, b.out_pasid);
	EXPECT_EQ(-EEXIST, _test_ioctl(self->pfd, IOPFMAP_PRI_SVA_BIND, &b));

	iopfmap_fill(want, len, 0x5a);
	snprintf(d.name, sizeof(d.name), "%s", self->dev);
	d.flags = IOPFMAP_PRI_TO_RAM | IOPFMAP_PRI_PASID;
	d.pasid = b.out_pasid;
	d.iova = (__u64)(unsigned long)mem;
	d.length = len;
	d.data = (__u64)(unsigned long)want;
	ASSERT_EQ(0, _test_ioctl(self->pfd, IOPFMAP_PRI_DMA, &d));
	EXPECT_EQ((__u32)IOPFMAP_PRI_DONE, d.out_status)
		TH_LOG("%s", pri_status_name(d.out_status));
	EXPECT_EQ((__u32)GROUP_PAGES, d.out_page_requests);
	EXPECT_EQ(1U, d.out_responses);
	EXPECT_EQ(0U, d.out_stray);
	same(_metadata, "the SVA device's write", mem, want, len);

	ASSERT_EQ(0, _test_ioctl(self->pfd, IOPFMAP_PRI_SVA_UNBIND, &b));
	EXPECT_EQ(-ENOENT, _test_ioctl(self->pfd, IOPFMAP_PRI_SVA_UNBIND, &b));
	memset(mem, 0, len);
	ASSERT_EQ(0, _test_ioctl(self->pfd, IOPFMAP_PRI_DMA, &d));
	EXPECT_NE((__u32)IOPFMAP_PRI_DONE, d.out_status)
		TH_LOG("the PASID still translates after UNBIND");
	all_zero(_metadata, "the page after UNBIND", mem, len);
	munmap(mem, len);
	free(want);
}

/* ---- invalidations: the device never reaches a page the CPU took ---- */

static long sys_move_pages(unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

static int page_node(void *p)
{
	int status = INT_MIN;

	if (sys_move_pages(1, &p, NULL, &status, 0))
		return -errno;
	return status;
}

enum event { EV_MUNMAP, EV_DONTNEED, EV_MPROTECT, EV_MIGRATE };

/*
 * One page of a memfd, mapped twice: @a is the range at IOVA, @b lets the
 * CPU watch the page whatever happens to @a.
 */
FIXTURE(pri_inval)
{
	struct pri_state s;
	int memfd;
	char *a;
	char *b;
};

FIXTURE_VARIANT(pri_inval)
{
	enum event event;
};

FIXTURE_VARIANT_ADD(pri_inval, munmap) { .event = EV_MUNMAP };
FIXTURE_VARIANT_ADD(pri_inval, dontneed) { .event = EV_DONTNEED };
FIXTURE_VARIANT_ADD(pri_inval, mprotect) { .event = EV_MPROTECT };
FIXTURE_VARIANT_ADD(pri_inval, migrate) { .event = EV_MIGRATE };

FIXTURE_SETUP(pri_inval)
{
	struct pri_state *s = &self->s;
	int ret;

	self->memfd = -1;
	self->a = MAP_FAILED;
	self->b = MAP_FAILED;
	if (!pri_open(_metadata, s))
		return;
	self->memfd = memfd_create("iopfmap_pri", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, psz));
	self->a = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->memfd, 0);
	self->b = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED,
		       self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->a);
	ASSERT_NE(MAP_FAILED, self->b);
	ret = _test_map(s->fd, IOVA, self->a, psz, RW, 0);
	ASSERT_EQ(0, ret) TH_LOG("MAP: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(pri_inval)
{
	if (self->a != MAP_FAILED)
		munmap(self->a, psz);
	if (self->b != MAP_FAILED)
		munmap(self->b, psz);
	if (self->memfd >= 0)
		close(self->memfd);
	pri_close(&self->s);
}

TEST_F(pri_inval, old_page_blocked)
{
	struct pri_state *s = &self->s;
	char fault_ere[256], extra_ere[256];
	char *p1 = malloc(psz), *p2 = malloc(psz), *p3 = malloc(psz);
	struct iopfmap_stats st0, st1;
	struct iommu_unit unit;
	struct iopfmap_pri_dma d;
	int node, target, status = INT_MIN;
	void *pages[1];

	ASSERT_TRUE(p1 && p2 && p3);
	ASSERT_EQ(0, iommu_of_device(s->dev, &unit));
	ASSERT_TRUE(iommu_fault_ere(&unit, s->dev, IOVA, true, fault_ere,
				    extra_ere, sizeof(fault_ere)));
	iopfmap_fill(p1, psz, 1);
	iopfmap_fill(p2, psz, 2);
	iopfmap_fill(p3, psz, 3);

	/* The device faults the page in and writes it. */
	d = pri_dma_done(_metadata, s, IOPFMAP_PRI_TO_RAM, IOVA, psz, p1);
	EXPECT_EQ(1U, d.out_page_requests);
	ASSERT_TRUE(same(_metadata, "the device's write", self->b, p1, psz));
	/* Positive control: an untranslated write lands while mapped. */
	d = pri_dma_done(_metadata, s, IOPFMAP_PRI_RAW | IOPFMAP_PRI_TO_RAM,
			 IOVA, psz, p2);
	ASSERT_TRUE(same(_metadata, "the raw write", self->b, p2, psz));

	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
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
		ASSERT_LE(0, node) TH_LOG("the page's node: %s",
					  strerror(-node));
		target = node ? 0 : 1;
		pages[0] = self->a;
		if (sys_move_pages(1, pages, &target, &status,
				   MPOL_MF_MOVE_ALL) || status == -ENODEV)
			SKIP(return, "cannot move the page to node %d: one NUMA node? (tools/vm/run --numa)",
			     target);
		ASSERT_EQ(target, status);
		break;
	}
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_LT(st0.out_invalidations_handled, st1.out_invalidations_handled);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA, psz));

	/* The old translation is gone: the IOMMU blocks the access. */
	ASSERT_TRUE(kmsg_expect(fault_ere));
	ASSERT_TRUE(!extra_ere[0] || kmsg_expect(extra_ere));
	d = pri_dma(_metadata, s, IOPFMAP_PRI_RAW | IOPFMAP_PRI_TO_RAM, IOVA,
		    psz, p3);
	EXPECT_EQ((__u32)IOPFMAP_PRI_DMA_FAULT, d.out_status)
		TH_LOG("raw write after the event: %s",
		       pri_status_name(d.out_status));
	ASSERT_TRUE(same(_metadata, "the page after the blocked write",
			 self->b, p2, psz));

	/* With ATS and PRI the device asks again, and gets what mm says. */
	d = pri_dma(_metadata, s, IOPFMAP_PRI_TO_RAM, IOVA, psz, p3);
	EXPECT_EQ(0U, d.out_stray);
	switch (variant->event) {
	case EV_MUNMAP:
	case EV_MPROTECT:
		/* No VMA, or one the device may not write. */
		EXPECT_EQ((__u32)IOPFMAP_PRI_INVALID, d.out_status)
			TH_LOG("write after the event: %s",
			       pri_status_name(d.out_status));
		same(_metadata, "the page after the refused write", self->b,
		     p2, psz);
		break;
	case EV_DONTNEED:
	case EV_MIGRATE:
		EXPECT_EQ((__u32)IOPFMAP_PRI_DONE, d.out_status)
			TH_LOG("write after the event: %s",
			       pri_status_name(d.out_status));
		EXPECT_EQ(1U, d.out_page_requests);
		same(_metadata, "the page after the new write", self->b, p3,
		     psz);
		break;
	}
	free(p1);
	free(p2);
	free(p3);
}

/* ---- outstanding groups: answered once, whatever ends the stream ---- */

struct bg_dma {
	pthread_t thread;
	int pfd;
	struct iopfmap_pri_dma d;
	int ret;
};

static void *bg_dma_run(void *arg)
{
	struct bg_dma *b = arg;

	/* No harness macros: they longjmp on the main thread's stack. */
	b->ret = _test_ioctl(b->pfd, IOPFMAP_PRI_DMA, &b->d);
	return NULL;
}

static void bg_dma_start(struct __test_metadata *_metadata,
			 struct pri_state *s, struct bg_dma *b, __u32 flags,
			 __u64 iova, __u32 len, void *data)
{
	memset(b, 0, sizeof(*b));
	b->pfd = s->pfd;
	snprintf(b->d.name, sizeof(b->d.name), "%s", s->dev);
	b->d.flags = flags | IOPFMAP_PRI_PASID;
	b->d.pasid = PASID;
	b->d.iova = iova;
	b->d.length = len;
	b->d.data = (__u64)(unsigned long)data;
	ASSERT_EQ(0, pthread_create(&b->thread, NULL, bg_dma_run, b));
}

/* A FORWARD range over mem, and the context's queue: its fd. */
static int forward_setup(struct __test_metadata *_metadata,
			 struct pri_state *s, __u32 *range_id)
{
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = RW | IOPFMAP_MAP_FORWARD,
		.iova = IOVA,
		.vaddr = (__u64)(unsigned long)s->mem,
		.length = NPAGES * psz,
	};
	int ret;

	ret = _test_ioctl(s->fd, IOPFMAP_MAP, &m);
	EXPECT_EQ(0, ret) TH_LOG("MAP FORWARD: %s", strerror(-ret));
	*range_id = m.out_range_id;
	ret = _test_ioctl(s->fd, IOPFMAP_QUEUE_ALLOC, &qa);
	EXPECT_EQ(0, ret) TH_LOG("QUEUE_ALLOC: %s", strerror(-ret));
	return ret ? -1 : qa.out_fd;
}

/* Reads the group the device's DMA sent: how many records. */
static int read_group(struct __test_metadata *_metadata, int qfd,
		      struct iopfmap_fault_record *rec, int max)
{
	struct pollfd pfd = { .fd = qfd, .events = POLLIN };
	ssize_t n;

	EXPECT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("no group in 10 s");
	n = read(qfd, rec, max * sizeof(*rec));
	EXPECT_LT(0, n) TH_LOG("read: %s", strerror(errno));
	return n > 0 ? n / (int)sizeof(*rec) : 0;
}

/*
 * A group the device sent to a FORWARD range reaches the queue with its
 * PASID, the PASID attachment's id and the last-page flag on one record;
 * userspace answers SUCCESS once, and the DMA completes with the data.
 */
TEST_F(pri, forwarded_group_answered_by_userspace)
{
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct iopfmap_fault_response r = { 0 };
	struct pri_state *s = &self->s;
	size_t len = 4 * psz;
	char *want = malloc(len);
	__u32 range_id, last = 0;
	struct bg_dma b;
	int qfd, n, i;

	ASSERT_TRUE(want != NULL);
	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);
	iopfmap_fill(want, len, 7);
	bg_dma_start(_metadata, s, &b, IOPFMAP_PRI_TO_RAM, IOVA + psz, len,
		     want);
	n = read_group(_metadata, qfd, rec, IOPFMAP_FAULT_GROUP_MAX);
	ASSERT_EQ(4, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(IOVA + (i + 1) * psz, rec[i].addr);
		EXPECT_EQ((__u32)PASID, rec[i].pasid);
		EXPECT_NE(0U, rec[i].flags & IOPFMAP_RECORD_PASID);
		EXPECT_EQ(s->pasid.out_dev_id, rec[i].dev_id);
		EXPECT_EQ(range_id, rec[i].range_id);
		EXPECT_EQ(rec[0].cookie, rec[i].cookie);
		EXPECT_NE(0U, rec[i].perm & IOPFMAP_PRQ_WRITE);
		last += !!(rec[i].flags & IOPFMAP_RECORD_LAST);
	}
	EXPECT_EQ(1U, last);
	EXPECT_NE(0U, rec[n - 1].flags & IOPFMAP_RECORD_LAST);
	r.cookie = rec[0].cookie;
	r.code = IOPFMAP_PAGE_RESP_SUCCESS;
	ASSERT_EQ((ssize_t)sizeof(r), write(qfd, &r, sizeof(r)));
	/* Once only: the second answer finds no group. */
	EXPECT_GT(0, write(qfd, &r, sizeof(r)));
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	ASSERT_EQ(0, b.ret) TH_LOG("PRI_DMA: %s", strerror(-b.ret));
	EXPECT_EQ((__u32)IOPFMAP_PRI_DONE, b.d.out_status)
		TH_LOG("%s", pri_status_name(b.d.out_status));
	EXPECT_EQ(1U, b.d.out_responses);
	EXPECT_EQ(0U, b.d.out_stray);
	same(_metadata, "the forwarded DMA's data", s->mem + psz, want, len);
	close(qfd);
	free(want);
}

/*
 * The device waits on a forwarded group nobody serves; DETACH of its
 * PASID (or close() of the context) answers it, INVALID, at once: not
 * the queue's device timeout, nor the device's own.
 */
static void ended_mid_stream(struct __test_metadata *_metadata,
			     struct pri_state *s, bool close_ctx)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	__u32 range_id;
	struct bg_dma b;
	int qfd, ret;

	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);
	bg_dma_start(_metadata, s, &b, 0, IOVA, 8 * psz, NULL);
	ASSERT_EQ(8, read_group(_metadata, qfd, rec,
				IOPFMAP_FAULT_GROUP_MAX));
	if (close_ctx) {
		close(s->fd);
		s->fd = -1;
	} else {
		ASSERT_EQ(0, _test_detach(s->fd, s->pasid.out_dev_id));
	}
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	ASSERT_EQ(0, b.ret) TH_LOG("PRI_DMA: %s", strerror(-b.ret));
	EXPECT_EQ((__u32)IOPFMAP_PRI_INVALID, b.d.out_status)
		TH_LOG("%s", pri_status_name(b.d.out_status));
	EXPECT_EQ(1U, b.d.out_responses);
	EXPECT_EQ(0U, b.d.out_stray);
	ret = _test_ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi);
	ASSERT_EQ(0, ret) TH_LOG("QUEUE_GET_INFO: %s", strerror(-ret));
	EXPECT_EQ(0ULL, qi.out_timeouts);
	EXPECT_EQ(0U, qi.out_pending + qi.out_inflight);
	/* Nothing the device can see answers twice, later. */
	EXPECT_EQ(0ULL, pri_info(_metadata, s).out_stray);
	close(qfd);
}

TEST_F(pri, detached_mid_stream)
{
	ended_mid_stream(_metadata, &self->s, false);
}

TEST_F(pri, closed_mid_stream)
{
	ended_mid_stream(_metadata, &self->s, true);
}

TEST_HARNESS_MAIN
