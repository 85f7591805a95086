// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap's tracepoints fire with the right content: the simulated device
 * faults on pages of a range, the CPU then drops one of them, and the
 * trace buffer (tracefs) must show one fault and one fault_done per fault
 * the counters saw, the maps, the invalidation and its unmap; a group
 * forwarded to a fault queue shows as one queue_push.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "iopfmap_trace_utils.h"

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and longjmp(); GCC then warns about a variable the test code
 * never touches.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#define IOVA		0x400000ULL
#define NPAGES		4

FIXTURE(trace)
{
	int fd;
	void *buf;
	size_t len;
};

FIXTURE_SETUP(trace)
{
	char why[256];

	self->fd = -1;
	self->buf = MAP_FAILED;
	if (!tracefs_ready(why, sizeof(why)))
		SKIP(return, "%s", why);
	OPEN_CONTEXT(&self->fd);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "module loaded without sim=1");
	self->len = NPAGES * getpagesize();
	self->buf = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x5a, self->len);
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "0"));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/trace", ""));
}

FIXTURE_TEARDOWN(trace)
{
	tracefs_write(TRACEFS "/events/iopfmap/enable", "0");
	if (self->buf != MAP_FAILED)
		munmap(self->buf, self->len);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(trace, events_match_counters)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_sim_dma dma;
	struct iopfmap_stats st;
	char out[NPAGES * 4096], iova1[32], iova0[32];
	size_t psz = getpagesize();
	char *text;

	ASSERT_EQ(0, _test_cmd_sim_create(self->fd, &sc));
	/* Prefetch 1: each page its own fault. */
	ASSERT_EQ(0, _test_map(self->fd, IOVA, self->buf, self->len,
			       IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE, 1));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "1"));

	ASSERT_EQ(0, _test_sim_dma(self->fd, &dma, 0, IOVA, out, self->len));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma.out_status);
	ASSERT_EQ((__u32)NPAGES, dma.out_faults);
	/* The CPU drops page 1: its entry must go. */
	ASSERT_EQ(0, madvise((char *)self->buf + psz, psz, MADV_DONTNEED));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "0"));

	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	text = tracefs_read();
	ASSERT_NE(NULL, text);
	snprintf(iova0, sizeof(iova0), "iova=%#llx ", IOVA);
	snprintf(iova1, sizeof(iova1), "iova=%#llx ", IOVA + psz);

	EXPECT_EQ((int)st.out_faults,
		  count_lines(text, "iopfmap_fault: ", "access=r ", NULL))
		TH_LOG("trace:\n%s", text);
	EXPECT_EQ(1, count_lines(text, "iopfmap_fault: ", iova1, NULL));
	EXPECT_EQ((int)st.out_faults_handled,
		  count_lines(text, "iopfmap_fault_done: ", "response=success",
			      NULL));
	/* The latency was measured (a decimal > 0 never starts with 0). */
	EXPECT_EQ(0, count_lines(text, "iopfmap_fault_done: ",
				 "latency_ns=0", NULL));
	/* Each page mapped once, read-write (the CPU wrote them). */
	EXPECT_EQ(NPAGES, count_lines(text, "iopfmap_map: ", "size=0x1000 ",
				      "done=0x1000 ", "prot=rw", NULL));
	EXPECT_EQ(1, count_lines(text, "iopfmap_map: ", iova0, NULL));
	/* The invalidation of page 1 unmapped exactly that page. */
	EXPECT_EQ(1, count_lines(text, "iopfmap_invalidate: ",
				 "pages_unmapped=1", NULL))
		TH_LOG("trace:\n%s", text);
	EXPECT_EQ(1, count_lines(text, "iopfmap_unmap: ", iova1,
				 "done=0x1000 ", NULL));
	EXPECT_LE(1, (int)st.out_invalidations_handled);
	free(text);
}

/* Disabled events record nothing. */
TEST_F(trace, disabled_events_stay_silent)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_sim_dma dma;
	char out[NPAGES * 4096];
	char *text;

	ASSERT_EQ(0, _test_cmd_sim_create(self->fd, &sc));
	ASSERT_EQ(0, _test_map(self->fd, IOVA, self->buf, self->len,
			       IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE, 1));
	ASSERT_EQ(0, _test_sim_dma(self->fd, &dma, 0, IOVA, out, self->len));
	ASSERT_EQ((__u32)NPAGES, dma.out_faults);
	text = tracefs_read();
	ASSERT_NE(NULL, text);
	EXPECT_EQ(0, count_lines(text, "iopfmap_", NULL))
		TH_LOG("trace:\n%s", text);
	free(text);
}

/* A SIM_DMA of one page in its own thread: it waits for the queue. */
struct bg_sim_dma {
	pthread_t thread;
	int fd;
	__u64 iova;
	struct iopfmap_sim_dma dma;
	char out[4096];
	int ret;
};

static void *bg_sim_dma_run(void *arg)
{
	struct bg_sim_dma *b = arg;

	b->ret = _test_sim_dma(b->fd, &b->dma, 0, b->iova, b->out,
			       sizeof(b->out));
	return NULL;
}

/* A forwarded group shows as one queue_push and one queue_answer. */
TEST_F(trace, queue_push)
{
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_fault_record rec;
	struct iopfmap_fault_response r = { 0 };
	struct bg_sim_dma b = { .fd = self->fd, .iova = IOVA };
	char cookie[48];
	char *text;

	ASSERT_EQ(0, _test_cmd_sim_create(self->fd, &sc));
	ASSERT_EQ(0, _test_map(self->fd, IOVA, self->buf, self->len,
			       IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE |
			       IOPFMAP_MAP_FORWARD, 1));
	ASSERT_EQ(0, _test_ioctl(self->fd, IOPFMAP_QUEUE_ALLOC, &qa));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/iopfmap_queue_push/enable",
				"1"));
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/iopfmap_queue_answer/enable",
				"1"));
	ASSERT_EQ(0, pthread_create(&b.thread, NULL, bg_sim_dma_run, &b));
	ASSERT_EQ((ssize_t)sizeof(rec), read(qa.out_fd, &rec, sizeof(rec)));
	r.cookie = rec.cookie;
	ASSERT_EQ((ssize_t)sizeof(r), write(qa.out_fd, &r, sizeof(r)));
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	ASSERT_EQ(0, b.ret);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, b.dma.out_status);
	ASSERT_EQ(0, tracefs_write(TRACEFS "/events/iopfmap/enable", "0"));
	close(qa.out_fd);

	text = tracefs_read();
	ASSERT_NE(NULL, text);
	snprintf(cookie, sizeof(cookie), "cookie=%#llx ",
		 (unsigned long long)rec.cookie);
	EXPECT_EQ(1, count_lines(text, "iopfmap_queue_push: ", "dev=0 ",
				 "n=1 ", "stage=2 ", cookie, "ret=0", NULL))
		TH_LOG("trace:\n%s", text);
	EXPECT_EQ(1, count_lines(text, "iopfmap_queue_push: ", NULL));
	/* And one answer, by userspace, after a measured wait. */
	EXPECT_EQ(1, count_lines(text, "iopfmap_queue_answer: ", cookie,
				 "resp=success ", "by=user ", NULL))
		TH_LOG("trace:\n%s", text);
	EXPECT_EQ(0, count_lines(text, "iopfmap_queue_answer: ",
				 "latency_ns=0", NULL));
	free(text);
}

TEST_HARNESS_MAIN
