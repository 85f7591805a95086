// SPDX-License-Identifier: GPL-2.0
/*
 * Every error path of the module unwinds: a sweep over the commands, each
 * run with the 1st, 2nd, 3rd ... fault-injection point it reaches made to
 * fail, until a run reaches none. The points are every slab and page
 * allocation (failslab, fail_page_alloc, sleeping ones included), every
 * user copy (fail_usercopy) and the module's own ALLOW_ERROR_INJECTION
 * functions (fail_function), counted per thread through
 * /proc/thread-self/fail-nth. After each injected failure the command
 * either returned an errno that says so and changed nothing a later
 * command can see, or, where the module retries, succeeded completely.
 * Leaks show in the kmemleak scan run_tests.sh makes after the program,
 * and the module's reference count must come back to idle.
 *
 * Needs a kernel with CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB,
 * FAIL_PAGE_ALLOC, FAIL_FUNCTION and FAULT_INJECTION_USERCOPY: the debug
 * kernel of make check-debug. Elsewhere every test is a SKIP.
 */
#include <sys/mman.h>

#include "iopfmap_fail_nth.h"

#pragma GCC diagnostic ignored "-Wclobbered"	/* see iopfmap_device.c */

#define IOVA		(64ULL << 20)
#define NPAGES		16

static size_t psz;

FIXTURE(fail_nth)
{
	struct fi_nth nth;
	long refcnt;
	char *buf;
};

FIXTURE_SETUP(fail_nth)
{
	const char *why = fi_unavailable();
	int fd;

	psz = sysconf(_SC_PAGESIZE);
	self->nth.fd = -1;
	self->buf = NULL;
	if (why)
		SKIP(return, "%s", why);
	OPEN_CONTEXT(&fd);
	if (!iopfmap_sim_available(fd)) {
		close(fd);
		SKIP(return, "no simulated device: load iopfmap with sim=1");
	}
	close(fd);
	self->refcnt = fi_module_refcnt();
	self->buf = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	madvise(self->buf, NPAGES * psz, MADV_NOHUGEPAGE);
	iopfmap_fill(self->buf, NPAGES * psz, 9);
	why = fi_begin(_metadata, &self->nth);
	ASSERT_EQ(NULL, why) TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(fail_nth)
{
	if (self->nth.fd < 0)
		return;
	fi_end(_metadata, &self->nth);
	munmap(self->buf, NPAGES * psz);
	fi_expect_idle(_metadata, self->refcnt);
}

/* A context with the simulated device, made with no injection armed. */
static int sim_context(struct __test_metadata *_metadata)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	int fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);

	EXPECT_LE(0, fd);
	if (fd >= 0)
		EXPECT_EQ(0, _test_cmd_sim_create(fd, &sc));
	return fd;
}

/* Whether [IOVA, + NPAGES pages) is free: a MAP there succeeds. */
static bool iova_free(int fd, void *buf)
{
	if (_test_map(fd, IOVA, buf, NPAGES * psz, IOPFMAP_MAP_READ, 0))
		return false;
	return !_test_unmap(fd, IOVA, NPAGES * psz);
}

TEST_F(fail_nth, open_context)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd;

	FI_SWEEP(&self->nth) {
		fi_nth_arm(_metadata, &self->nth);
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_LE(0, fd);
			EXPECT_EQ(0, _test_cmd_get_info(fd, &info));
			close(fd);
			return;
		}
		if (fd >= 0) {
			EXPECT_EQ(0, _test_cmd_get_info(fd, &info));
			close(fd);
		} else {
			EXPECT_TRUE(errno == ENOMEM || errno == EFAULT)
				TH_LOG("open, point %u: %s", self->nth.n,
				       strerror(errno));
		}
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

TEST_F(fail_nth, sim_create)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_sim_create sc;
	int fd, ret;

	FI_SWEEP(&self->nth) {
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		sc = (struct iopfmap_sim_create){ .size = sizeof(sc) };
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_cmd_sim_create(fd, &sc);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			/* No table was left behind: the next try works. */
			EXPECT_EQ(0, _test_cmd_get_info(fd, &info));
			EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
			sc = (struct iopfmap_sim_create){ .size = sizeof(sc) };
			EXPECT_EQ(0, _test_cmd_sim_create(fd, &sc));
		}
		close(fd);
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/* MAP with @flags: a failed one leaves the IOVA free, VmLck as it was. */
static void sweep_map(struct __test_metadata *_metadata, struct fi_nth *nth,
		      char *buf, __u32 flags)
{
	struct iopfmap_stats st;
	int fd, ret;

	FI_SWEEP(nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		fi_nth_arm(_metadata, nth);
		ret = _test_map(fd, IOVA, buf, NPAGES * psz, flags, 4);
		if (!fi_nth_fired(_metadata, nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("point %u: %s", nth->n, strerror(-ret));
			EXPECT_TRUE(iova_free(fd, buf))
				TH_LOG("point %u: the failed MAP left a range", nth->n);
		} else {
			ASSERT_EQ(0, _test_stats(fd, IOVA, &st));
			EXPECT_EQ(flags & IOPFMAP_MAP_PIN ? NPAGES : 0ULL,
				  st.out_pages_pinned);
		}
		EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz,
						    NULL));
		close(fd);
	}
	ASSERT_LT(nth->n, FI_NTH_MAX);
}

/* Both kinds of range: FAULT (bitmaps, notifier) and PIN (pinned pages). */
TEST_F(fail_nth, map)
{
	const __u32 rw = IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE;
	unsigned int fault_points;

	sweep_map(_metadata, &self->nth, self->buf, rw);
	fault_points = self->nth.n;
	sweep_map(_metadata, &self->nth, self->buf, rw | IOPFMAP_MAP_PIN);
	TH_LOG("MAP reaches %u points, MAP with PIN %u", fault_points - 1,
	       self->nth.n - 1);
}

/* FAULT -> PIN: a failed switch leaves the range a FAULT one, unpinned. */
TEST_F(fail_nth, set_mode_pin)
{
	struct iopfmap_set_mode m;
	struct iopfmap_stats st;
	int fd, ret;

	FI_SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 0));
		m = (struct iopfmap_set_mode){
			.size = sizeof(m),
			.iova = IOVA,
			.mode = IOPFMAP_MODE_PIN,
		};
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_cmd_set_mode(fd, &m);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		ASSERT_EQ(0, _test_stats(fd, IOVA, &st));
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			EXPECT_EQ(0ULL, st.out_pages_pinned);
		} else {
			EXPECT_EQ((__u64)NPAGES, st.out_pages_pinned);
		}
		EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz,
						    NULL));
		close(fd);
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/*
 * The fault path: a DMA over a window of 4 pages. An injected failure may
 * end the DMA INVALID, or be retried; either way the bitmap equals the IO
 * page table and whatever the device read is the memory's content.
 */
TEST_F(fail_nth, sim_dma_fault)
{
	char *out = malloc(NPAGES * psz);
	struct iopfmap_sim_dma d;
	int fd, ret;

	ASSERT_TRUE(out != NULL);
	FI_SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 4));
		memset(out, 0, NPAGES * psz);
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status);
			EXPECT_EQ(0, memcmp(out, self->buf, NPAGES * psz));
			close(fd);
			break;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
		} else {
			EXPECT_TRUE(d.out_status == IOPFMAP_SIM_DMA_OK ||
				    d.out_status == IOPFMAP_SIM_DMA_INVALID)
				TH_LOG("point %u: %s", self->nth.n,
				       iopfmap_dma_status_name(d.out_status));
			EXPECT_EQ(0, memcmp(out, self->buf, d.out_done));
		}
		EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz,
						    NULL));
		close(fd);
	}
	free(out);
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/* UNMAP of a mapped range: it goes entirely or not at all. */
TEST_F(fail_nth, unmap)
{
	char *out = malloc(NPAGES * psz);
	struct iopfmap_sim_dma d;
	int fd, ret;

	ASSERT_TRUE(out != NULL);
	FI_SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 0));
		ASSERT_EQ(0, _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz));
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_unmap(fd, IOVA, NPAGES * psz);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			EXPECT_TRUE(iova_free(fd, self->buf));
			close(fd);
			break;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA,
							    NPAGES * psz, NULL));
		} else {
			EXPECT_TRUE(iova_free(fd, self->buf));
		}
		close(fd);
	}
	free(out);
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/* QUEUE_ALLOC: a failed one leaves no queue (the next one works), no fd. */
TEST_F(fail_nth, queue_alloc)
{
	struct iopfmap_queue_alloc qa;
	int fd, ret, probe;

	FI_SWEEP(&self->nth) {
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		/* The lowest free fd: a failed QUEUE_ALLOC must not take it. */
		probe = dup(0);
		ASSERT_LE(0, probe);
		close(probe);
		qa = (struct iopfmap_queue_alloc){ .size = sizeof(qa),
						   .depth = 8 };
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);
		if (!fi_nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(qa.out_fd);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret) || ret == -EMFILE)
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			EXPECT_EQ(-1, fcntl(probe, F_GETFD))
				TH_LOG("point %u: fd %d left open", self->nth.n, probe);
			qa = (struct iopfmap_queue_alloc){ .size = sizeof(qa),
							   .depth = 8 };
			EXPECT_EQ(0, _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa));
		}
		if (qa.out_fd > 0)
			close(qa.out_fd);
		close(fd);
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/*
 * A transient failure of the IO page table's allocation (GFP_NOWAIT under
 * the range lock) is retried after memory was made with a sleeping
 * allocation: a PIN MAP and a fault succeed, once for each of the first
 * IOPFMAP_NOMEM_RETRIES failures (here: one).
 */
TEST_F(fail_nth, transient_nomem_is_retried)
{
	char *out = malloc(NPAGES * psz);
	struct iopfmap_sim_dma d;
	struct iopfmap_stats st;
	int fd, ret, left;
	long mapped = -1;

	ASSERT_TRUE(out != NULL);
	/* Only the module's own point: no allocation fails. */
	fi_only(_metadata, "iopfmap_iopt_map_entry");

	fd = sim_context(_metadata);
	ASSERT_LE(0, fd);
	fi_fail_next_call(_metadata);
	ret = _test_map(fd, IOVA, self->buf, NPAGES * psz,
			IOPFMAP_MAP_READ | IOPFMAP_MAP_PIN, 0);
	left = fi_calls_left();
	fi_fail_never();
	EXPECT_EQ(0, left) TH_LOG("the injected failure was not reached");
	ASSERT_EQ(0, ret) TH_LOG("PIN MAP after one failed entry: %s",
				 strerror(-ret));
	ASSERT_EQ(0, _test_stats(fd, IOVA, &st));
	EXPECT_EQ((__u64)NPAGES, st.out_pages_pinned);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz, &mapped));
	EXPECT_EQ(NPAGES, mapped);
	close(fd);

	fd = sim_context(_metadata);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
			       IOPFMAP_MAP_READ, 0));
	fi_fail_next_call(_metadata);
	ret = _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz);
	left = fi_calls_left();
	fi_fail_never();
	EXPECT_EQ(0, left) TH_LOG("the injected failure was not reached");
	ASSERT_EQ(0, ret);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status)
		TH_LOG("a fault after one failed entry: %s",
		       iopfmap_dma_status_name(d.out_status));
	EXPECT_EQ(0, memcmp(out, self->buf, NPAGES * psz));
	ASSERT_EQ(0, _test_stats(fd, IOVA, &st));
	EXPECT_EQ(0ULL, st.out_faults_invalid);
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz, NULL));
	close(fd);
	free(out);
}

TEST_HARNESS_MAIN
