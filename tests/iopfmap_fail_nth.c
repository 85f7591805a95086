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

#include "iopfmap_utils.h"

#pragma GCC diagnostic ignored "-Wclobbered"	/* see iopfmap_device.c */

#define DEBUGFS		"/sys/kernel/debug/"
#define NTH_MAX		400U	/* more points than any command has today */
#define IOVA		(64ULL << 20)
#define NPAGES		16

static size_t psz;

/* One debugfs knob set for the sweep, and what it was. */
struct knob {
	const char *path;
	const char *value;
	char saved[64];
	bool set;
};

static struct knob knobs[] = {
	{ .path = DEBUGFS "failslab/ignore-gfp-wait", .value = "N" },
	{ .path = DEBUGFS "failslab/verbose", .value = "0" },
	{ .path = DEBUGFS "fail_page_alloc/ignore-gfp-wait", .value = "N" },
	{ .path = DEBUGFS "fail_page_alloc/ignore-gfp-highmem", .value = "N" },
	{ .path = DEBUGFS "fail_page_alloc/min-order", .value = "0" },
	{ .path = DEBUGFS "fail_page_alloc/verbose", .value = "0" },
	{ .path = DEBUGFS "fail_usercopy/verbose", .value = "0" },
	{ .path = DEBUGFS "fail_function/verbose", .value = "0" },
};

/*
 * The module's injection points and the errno each fails with, as
 * fail_function's retval takes it: an unsigned 64-bit number.
 */
static const struct {
	const char *func;
	const char *retval;
} points[] = {
	{ "iopfmap_iopt_map_entry", "18446744073709551604" },	/* -ENOMEM */
	{ "iopfmap_domain_replay_map", "18446744073709551604" },
};

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? n : n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Why the sweep cannot run here, or NULL. */
static const char *no_fault_injection(void)
{
	if (access("/proc/thread-self/fail-nth", W_OK))
		return "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION off: make check-debug)";
	if (access(DEBUGFS "failslab", F_OK) ||
	    access(DEBUGFS "fail_page_alloc", F_OK) ||
	    access(DEBUGFS "fail_usercopy", F_OK) ||
	    access(DEBUGFS "fail_function/inject", W_OK))
		return "failslab, fail_page_alloc, fail_usercopy or fail_function missing in debugfs (make check-debug)";
	return NULL;
}

static void arm_points(struct __test_metadata *_metadata)
{
	char path[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		ASSERT_EQ(0, read_str(knobs[i].path, knobs[i].saved,
				      sizeof(knobs[i].saved)))
			TH_LOG("%s", knobs[i].path);
		ASSERT_EQ(0, write_str(knobs[i].path, knobs[i].value))
			TH_LOG("%s", knobs[i].path);
		knobs[i].set = true;
	}
	/* A space clears the list, which a test cut short may have left. */
	ASSERT_EQ(0, write_str(DEBUGFS "fail_function/inject", " "));
	for (i = 0; i < ARRAY_SIZE(points); i++) {
		ASSERT_EQ(0, write_str(DEBUGFS "fail_function/inject",
				       points[i].func))
			TH_LOG("fail_function cannot reach %s: is it ALLOW_ERROR_INJECTION?",
			       points[i].func);
		snprintf(path, sizeof(path), DEBUGFS "fail_function/%s/retval",
			 points[i].func);
		ASSERT_EQ(0, write_str(path, points[i].retval));
	}
	/* Only the nth point of a thread fails, never one at random. */
	ASSERT_EQ(0, write_str(DEBUGFS "fail_function/probability", "0"));
}

static void disarm_points(void)
{
	size_t i;

	write_str(DEBUGFS "fail_function/inject", " ");
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (knobs[i].set)
			write_str(knobs[i].path, knobs[i].saved);
}

/*
 * The per-thread counter. After a run, "0" means the nth point was reached
 * and failed; anything else means the run reached fewer points. Reading
 * and clearing it are themselves points (a user copy): an EFAULT there
 * means the run did not use up the count.
 */
struct nth {
	int fd;
	unsigned int n;
	unsigned int injected;
};

static void nth_arm(struct __test_metadata *_metadata, struct nth *nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", nth->n);

	ASSERT_EQ(len, pwrite(nth->fd, buf, len, 0));
}

/* Whether the run just made failed at its nth point. */
static bool nth_fired(struct __test_metadata *_metadata, struct nth *nth)
{
	char buf[16] = "";
	bool fired;
	ssize_t n;

	n = pread(nth->fd, buf, sizeof(buf) - 1, 0);
	fired = n > 0 && buf[0] == '0' && buf[1] == '\n';
	if (pwrite(nth->fd, "0", 1, 0) != 1)
		EXPECT_EQ(1, pwrite(nth->fd, "0", 1, 0));
	if (fired)
		nth->injected++;
	return fired;
}

/* The errnos a command may return for a failure injected into it. */
static bool injected_errno(int ret)
{
	return ret == -ENOMEM || ret == -EFAULT;
}

/* The module's reference count, or -1. */
static long module_refcnt(void)
{
	char buf[32];

	if (read_str(IOPFMAP_SYSFS_MODULE "/refcnt", buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

FIXTURE(fail_nth)
{
	struct nth nth;
	long refcnt;
	char *buf;
};

FIXTURE_SETUP(fail_nth)
{
	const char *why = no_fault_injection();
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
	self->refcnt = module_refcnt();
	self->nth.fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->nth.fd);
	self->buf = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	madvise(self->buf, NPAGES * psz, MADV_NOHUGEPAGE);
	iopfmap_fill(self->buf, NPAGES * psz, 9);
	arm_points(_metadata);
}

FIXTURE_TEARDOWN(fail_nth)
{
	int i;

	if (self->nth.fd < 0)
		return;
	disarm_points();
	close(self->nth.fd);
	munmap(self->buf, NPAGES * psz);
	/* Every context is closed: the module is idle again. */
	for (i = 0; i < 50 && module_refcnt() != self->refcnt; i++)
		iopfmap_sleep_ms(100);
	EXPECT_EQ(self->refcnt, module_refcnt());
	TH_LOG("%u injected failures", self->nth.injected);
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

#define SWEEP(nth) for ((nth)->n = 1; (nth)->n < NTH_MAX; (nth)->n++)

TEST_F(fail_nth, open_context)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd;

	SWEEP(&self->nth) {
		nth_arm(_metadata, &self->nth);
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		if (!nth_fired(_metadata, &self->nth)) {
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
	ASSERT_LT(self->nth.n, NTH_MAX);
}

TEST_F(fail_nth, sim_create)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_sim_create sc;
	int fd, ret;

	SWEEP(&self->nth) {
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		sc = (struct iopfmap_sim_create){ .size = sizeof(sc) };
		nth_arm(_metadata, &self->nth);
		ret = _test_cmd_sim_create(fd, &sc);
		if (!nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			/* No table was left behind: the next try works. */
			EXPECT_EQ(0, _test_cmd_get_info(fd, &info));
			EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
			sc = (struct iopfmap_sim_create){ .size = sizeof(sc) };
			EXPECT_EQ(0, _test_cmd_sim_create(fd, &sc));
		}
		close(fd);
	}
	ASSERT_LT(self->nth.n, NTH_MAX);
}

/* MAP with @flags: a failed one leaves the IOVA free, VmLck as it was. */
static void sweep_map(struct __test_metadata *_metadata, struct nth *nth,
		      char *buf, __u32 flags)
{
	struct iopfmap_stats st;
	int fd, ret;

	SWEEP(nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		nth_arm(_metadata, nth);
		ret = _test_map(fd, IOVA, buf, NPAGES * psz, flags, 4);
		if (!nth_fired(_metadata, nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(injected_errno(ret))
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
	ASSERT_LT(nth->n, NTH_MAX);
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

	SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 0));
		m = (struct iopfmap_set_mode){
			.size = sizeof(m),
			.iova = IOVA,
			.mode = IOPFMAP_MODE_PIN,
		};
		nth_arm(_metadata, &self->nth);
		ret = _test_cmd_set_mode(fd, &m);
		if (!nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(fd);
			return;
		}
		ASSERT_EQ(0, _test_stats(fd, IOVA, &st));
		if (ret) {
			EXPECT_TRUE(injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			EXPECT_EQ(0ULL, st.out_pages_pinned);
		} else {
			EXPECT_EQ((__u64)NPAGES, st.out_pages_pinned);
		}
		EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA, NPAGES * psz,
						    NULL));
		close(fd);
	}
	ASSERT_LT(self->nth.n, NTH_MAX);
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
	SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 4));
		memset(out, 0, NPAGES * psz);
		nth_arm(_metadata, &self->nth);
		ret = _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz);
		if (!nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status);
			EXPECT_EQ(0, memcmp(out, self->buf, NPAGES * psz));
			close(fd);
			break;
		}
		if (ret) {
			EXPECT_TRUE(injected_errno(ret))
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
	ASSERT_LT(self->nth.n, NTH_MAX);
}

/* UNMAP of a mapped range: it goes entirely or not at all. */
TEST_F(fail_nth, unmap)
{
	char *out = malloc(NPAGES * psz);
	struct iopfmap_sim_dma d;
	int fd, ret;

	ASSERT_TRUE(out != NULL);
	SWEEP(&self->nth) {
		fd = sim_context(_metadata);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, _test_map(fd, IOVA, self->buf, NPAGES * psz,
				       IOPFMAP_MAP_READ, 0));
		ASSERT_EQ(0, _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz));
		nth_arm(_metadata, &self->nth);
		ret = _test_unmap(fd, IOVA, NPAGES * psz);
		if (!nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			EXPECT_TRUE(iova_free(fd, self->buf));
			close(fd);
			break;
		}
		if (ret) {
			EXPECT_TRUE(injected_errno(ret))
				TH_LOG("point %u: %s", self->nth.n, strerror(-ret));
			EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(fd, IOVA,
							    NPAGES * psz, NULL));
		} else {
			EXPECT_TRUE(iova_free(fd, self->buf));
		}
		close(fd);
	}
	free(out);
	ASSERT_LT(self->nth.n, NTH_MAX);
}

/* QUEUE_ALLOC: a failed one leaves no queue (the next one works), no fd. */
TEST_F(fail_nth, queue_alloc)
{
	struct iopfmap_queue_alloc qa;
	int fd, ret, probe;

	SWEEP(&self->nth) {
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		/* The lowest free fd: a failed QUEUE_ALLOC must not take it. */
		probe = dup(0);
		ASSERT_LE(0, probe);
		close(probe);
		qa = (struct iopfmap_queue_alloc){ .size = sizeof(qa),
						   .depth = 8 };
		nth_arm(_metadata, &self->nth);
		ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);
		if (!nth_fired(_metadata, &self->nth)) {
			ASSERT_EQ(0, ret);
			close(qa.out_fd);
			close(fd);
			return;
		}
		if (ret) {
			EXPECT_TRUE(injected_errno(ret) || ret == -EMFILE)
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
	ASSERT_LT(self->nth.n, NTH_MAX);
}

/*
 * A transient failure of the IO page table's allocation (GFP_NOWAIT under
 * the range lock) is retried after memory was made with a sleeping
 * allocation: a PIN MAP and a fault succeed, once for each of the first
 * IOPFMAP_NOMEM_RETRIES failures (here: one).
 */
static void fail_map_entry_once(struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, write_str(DEBUGFS "fail_function/times", "1"));
	ASSERT_EQ(0, write_str(DEBUGFS "fail_function/probability", "100"));
}

static void fail_map_entry_never(void)
{
	write_str(DEBUGFS "fail_function/probability", "0");
	write_str(DEBUGFS "fail_function/times", "-1");
}

static int map_entry_failures_left(void)
{
	char buf[16];

	if (read_str(DEBUGFS "fail_function/times", buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

TEST_F(fail_nth, transient_nomem_is_retried)
{
	char *out = malloc(NPAGES * psz);
	struct iopfmap_sim_dma d;
	struct iopfmap_stats st;
	int fd, ret, left;
	long mapped = -1;

	ASSERT_TRUE(out != NULL);
	/* Only the module's own point: no allocation fails. */
	ASSERT_EQ(0, write_str(DEBUGFS "fail_function/inject",
			       "!iopfmap_domain_replay_map"));

	fd = sim_context(_metadata);
	ASSERT_LE(0, fd);
	fail_map_entry_once(_metadata);
	ret = _test_map(fd, IOVA, self->buf, NPAGES * psz,
			IOPFMAP_MAP_READ | IOPFMAP_MAP_PIN, 0);
	left = map_entry_failures_left();
	fail_map_entry_never();
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
	fail_map_entry_once(_metadata);
	ret = _test_sim_dma(fd, &d, 0, IOVA, out, NPAGES * psz);
	left = map_entry_failures_left();
	fail_map_entry_never();
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
