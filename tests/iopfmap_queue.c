// SPDX-License-Identifier: GPL-2.0
/*
 * The fault queue (IOPFMAP_QUEUE_ALLOC and its file descriptor), driven
 * through the simulated device: discovery, stage-1 misses and FORWARD
 * ranges served with read()/write() and with io_uring commands, one
 * answer per group whatever happens (refused responses, a full queue, a
 * timeout, close, a serving process that dies, a device that gives up),
 * poll, and a queue whose context is gone. Each test checks the records'
 * fields, what the device's DMA moved, and the counters on both sides:
 * the queue's (QUEUE_GET_INFO) and the device's (SIM_GET_STATS).
 *
 * The simulated DMA runs in its caller's thread and blocks while its page
 * request waits in the queue, so DMAs and page requests run in helper
 * threads (or child processes) while the test's thread serves the queue.
 * Every wait is bounded (WAIT_MS); no test asserts how fast anything is,
 * only that a timeout does not fire early.
 *
 * Needs root and the module loaded with sim=1 and built with fault queues
 * (IOPFMAP_FEATURE_QUEUE); without them the tests SKIP and say why.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <liburing.h>

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(); whether GCC warns about that depends
 * on register allocation, not on anything the tests do.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#include "iopfmap_fail_nth.h"

/* Stage-1 input addresses (a guest's IOVAs), and the IPAs they map to. */
#define S1_X		0x10000000ULL
#define S1_IPA		0x800000ULL
/* The flat device's FORWARD range. */
#define IOVA_F		0x100000ULL
#define BUF_PAGES	16

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define DMA_WRITE	IOPFMAP_SIM_DMA_WRITE	/* buffer -> memory */
#define DMA_READ	0			/* memory -> buffer */
#define PRQ_R		IOPFMAP_PRQ_READ
#define PRQ_W		IOPFMAP_PRQ_WRITE
#define PRQ_RW		(IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE)
#define PRQ_LAST	IOPFMAP_PRQ_LAST
#define REC_LAST	IOPFMAP_RECORD_LAST
#define REC_PASID	IOPFMAP_RECORD_PASID
#define REC_S1		(IOPFMAP_RECORD_STAGE1 | IOPFMAP_RECORD_LAST)
#define SUCCESS		IOPFMAP_PAGE_RESP_SUCCESS
#define INVALID		IOPFMAP_PAGE_RESP_INVALID
#define FAILURE		IOPFMAP_PAGE_RESP_FAILURE
#define GROUP_MAX	IOPFMAP_FAULT_GROUP_MAX
#define REC_SZ		sizeof(struct iopfmap_fault_record)
#define RESP_SZ		sizeof(struct iopfmap_fault_response)

/*
 * How long the kernel gets for anything it must do (deliver, answer,
 * cancel): generous, the guests run under TCG. QUIET_MS is how long the
 * tests watch for something that must not happen.
 */
#define WAIT_MS		20000
#define QUIET_MS	100

/* io_uring user_data: what the command was, and its slot. */
#define UD_FETCH	0x1000ULL
#define UD_COMMIT	0x2000ULL
#define UD_SLOT(ud)	((unsigned int)((ud) & 0xfff))

static size_t psz;

static void __attribute__((constructor)) init_page_size(void)
{
	psz = sysconf(_SC_PAGESIZE);
}

/*
 * Everything a helper thread or the kernel may still write after a failed
 * ASSERT has left the test function lives here, not on its stack: the
 * jobs and the io_uring slots' record buffers. Each test runs in its own
 * process, so each starts with them zeroed.
 */
#define MAX_JOBS	8
#define MAX_SLOTS	8

static struct iopfmap_fault_record slot_recs[MAX_SLOTS][GROUP_MAX];
static struct iopfmap_fault_record recs[2 * GROUP_MAX];

/* ---- time ------------------------------------------------------------- */

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- memory ----------------------------------------------------------- */

/* @npages of anonymous memory (no THP) filled with pattern @seed. */
static char *alloc_pages(size_t npages, unsigned int seed)
{
	char *p = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, npages * psz, MADV_NOHUGEPAGE);
	iopfmap_fill(p, npages * psz, seed);
	return p;
}

static char *alloc_zero(size_t npages)
{
	char *p = alloc_pages(npages, 0);

	if (p)
		memset(p, 0, npages * psz);
	return p;
}

static char *pg(char *base, unsigned int page)
{
	return base + (size_t)page * psz;
}

/* ---- context and device commands -------------------------------------- */

static int get_info(int fd, struct iopfmap_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return _test_cmd_get_info(fd, info);
}

/* SKIPs unless the module has fault queues; *@ctx_id gets the id. */
#define REQUIRE_QUEUE(fd, ctx_id)					\
	do {								\
		struct iopfmap_info __info;				\
		ASSERT_EQ(0, get_info(fd, &__info));			\
		if (!(__info.out_features & IOPFMAP_FEATURE_QUEUE))	\
			SKIP(return, "module without fault queues "	\
			     "(no IOPFMAP_FEATURE_QUEUE)");		\
		*(ctx_id) = __info.out_ctx_id;				\
	} while (0)

static int sim_create(int fd, __u32 flags)
{
	struct iopfmap_sim_create cmd = { .size = sizeof(cmd), .flags = flags };

	return _test_cmd_sim_create(fd, &cmd);
}

/* MAP: 0 or -errno; *@id gets out_range_id. */
static int map_id(int fd, __u64 iova, void *va, size_t len, __u32 flags,
		  __u32 *id)
{
	struct iopfmap_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.iova = iova,
		.vaddr = (__u64)(uintptr_t)va,
		.length = len,
	};
	int ret = _test_cmd_map(fd, &cmd);

	if (id)
		*id = cmd.out_range_id;
	return ret;
}

static int s1_map(int fd, __u64 iova, __u64 ipa, __u64 len)
{
	struct iopfmap_sim_s1_map cmd = {
		.size = sizeof(cmd),
		.flags = RW,
		.iova = iova,
		.ipa = ipa,
		.length = len,
	};

	return _test_cmd_sim_s1_map(fd, &cmd);
}

/* A raw page request from this thread: 0 or -errno; its response. */
static int prq(int fd, __u32 flags, __u64 iova, __u32 grpid, __u32 pasid,
	       __u32 *resp)
{
	struct iopfmap_sim_page_request r = {
		.size = sizeof(r),
		.flags = flags,
		.iova = iova,
		.grpid = grpid,
		.pasid = pasid,
		.out_response = 0xdeadbeef,
	};
	int ret = _test_cmd_sim_page_request(fd, &r);

	*resp = r.out_response;
	return ret;
}

static int sim_stats(int fd, struct iopfmap_sim_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return _test_ioctl(fd, IOPFMAP_SIM_GET_STATS, st);
}

static struct iopfmap_sim_stats
get_sim_stats(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_sim_stats st;
	int ret = sim_stats(fd, &st);

	EXPECT_EQ(0, ret) TH_LOG("SIM_GET_STATS: %s", strerror(-ret));
	return st;
}

/*
 * The device's side of "exactly one answer per group": every group it
 * raised was answered once or withdrawn, and the codes add up.
 */
static void expect_sim_balanced(struct __test_metadata *_metadata,
				const struct iopfmap_sim_stats *s)
{
	EXPECT_EQ(s->out_page_requests, s->out_responses + s->out_withdrawn)
		TH_LOG("%llu groups raised, %llu answered, %llu withdrawn",
		       (unsigned long long)s->out_page_requests,
		       (unsigned long long)s->out_responses,
		       (unsigned long long)s->out_withdrawn);
	EXPECT_EQ(s->out_responses, s->out_resp_success + s->out_resp_invalid +
				    s->out_resp_failure);
}

/* SIM_GET_STATS must show exactly these answers and no withdrawal. */
static void expect_sim_answers(struct __test_metadata *_metadata, int fd,
			       __u64 success, __u64 invalid, __u64 failure)
{
	struct iopfmap_sim_stats s = get_sim_stats(_metadata, fd);

	expect_sim_balanced(_metadata, &s);
	EXPECT_EQ(success + invalid + failure, s.out_page_requests);
	EXPECT_EQ(success, s.out_resp_success);
	EXPECT_EQ(invalid, s.out_resp_invalid);
	EXPECT_EQ(failure, s.out_resp_failure);
	EXPECT_EQ(0ULL, s.out_withdrawn);
}

/* Bits of QUERY_MAPPED (the IO page table's walk) over 64 pages. */
static __u64 iopt_bits(int fd, __u64 iova)
{
	__u64 bits = 0;
	struct iopfmap_query_mapped q = {
		.size = sizeof(q),
		.flags = IOPFMAP_QUERY_IOPT,
		.iova = iova,
		.length = 64 * psz,
		.bitmap = (__u64)(uintptr_t)&bits,
	};

	return _test_cmd_query_mapped(fd, &q) ? ~0ULL : bits;
}

/* ---- the queue -------------------------------------------------------- */

/* QUEUE_ALLOC: the queue's fd, or -errno; *@out gets the reply. */
static int queue_alloc(int fd, __u32 flags, __u32 depth, __u32 timeout_ms,
		       struct iopfmap_queue_alloc *out)
{
	struct iopfmap_queue_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.depth = depth,
		.timeout_ms = timeout_ms,
		.out_fd = -1,
	};
	int ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &cmd);

	if (out)
		*out = cmd;
	return ret ? ret : cmd.out_fd;
}

static int new_queue(struct __test_metadata *_metadata, int fd, __u32 flags,
		     __u32 depth, __u32 timeout_ms)
{
	int qfd = queue_alloc(fd, flags, depth, timeout_ms, NULL);

	ASSERT_LE(0, qfd) TH_LOG("QUEUE_ALLOC: %s", strerror(-qfd));
	return qfd;
}

/*
 * QUEUE_ALLOC once the old queue is gone. Its last reference may be an
 * io_uring command that the kernel cancels asynchronously (a ring's exit
 * work), so EBUSY is retried for up to WAIT_MS.
 */
static int new_queue_eventually(struct __test_metadata *_metadata, int fd)
{
	__u64 end = now_ns() + WAIT_MS * 1000000ULL;
	int qfd;

	while ((qfd = queue_alloc(fd, 0, 0, 0, NULL)) == -EBUSY &&
	       now_ns() < end)
		iopfmap_sleep_ms(5);
	ASSERT_LE(0, qfd)
		TH_LOG("QUEUE_ALLOC after the old queue's last user left: %s",
		       strerror(-qfd));
	return qfd;
}

static int queue_info(int qfd, struct iopfmap_queue_info *qi)
{
	memset(qi, 0, sizeof(*qi));
	qi->size = sizeof(*qi);
	return _test_ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, qi);
}

static struct iopfmap_queue_info qinfo(struct __test_metadata *_metadata,
				       int qfd)
{
	struct iopfmap_queue_info qi;
	int ret = queue_info(qfd, &qi);

	EXPECT_EQ(0, ret) TH_LOG("QUEUE_GET_INFO: %s", strerror(-ret));
	return qi;
}

/* Polls QUEUE_GET_INFO into @qi until @cond holds or WAIT_MS passed. */
#define WAIT_QINFO(qfd, qi, cond)					\
({									\
	__u64 __end = now_ns() + WAIT_MS * 1000000ULL;			\
	bool __ok;							\
									\
	for (;;) {							\
		__ok = !queue_info(qfd, &(qi)) && (cond);		\
		if (__ok || now_ns() > __end)				\
			break;						\
		iopfmap_sleep_ms(1);						\
	}								\
	__ok;								\
})

/*
 * The queue's side of "exactly one answer per group": every group that
 * arrived is answered, withdrawn, waiting or in flight.
 */
static void expect_balanced(struct __test_metadata *_metadata,
			    const struct iopfmap_queue_info *qi)
{
	__u64 sum = qi->out_resp_success + qi->out_resp_invalid +
		    qi->out_resp_failure + qi->out_timeouts + qi->out_closed +
		    qi->out_overflows + qi->out_withdrawn + qi->out_pending +
		    qi->out_inflight;

	EXPECT_EQ(qi->out_groups, sum)
		TH_LOG("groups %llu: success %llu invalid %llu failure %llu "
		       "timeouts %llu closed %llu overflows %llu "
		       "withdrawn %llu pending %u inflight %u",
		       (unsigned long long)qi->out_groups,
		       (unsigned long long)qi->out_resp_success,
		       (unsigned long long)qi->out_resp_invalid,
		       (unsigned long long)qi->out_resp_failure,
		       (unsigned long long)qi->out_timeouts,
		       (unsigned long long)qi->out_closed,
		       (unsigned long long)qi->out_overflows,
		       (unsigned long long)qi->out_withdrawn,
		       qi->out_pending, qi->out_inflight);
}

/*
 * Waits up to WAIT_MS for POLLIN, then read()s at most @max records into
 * @r: how many it got, or -errno (-ETIMEDOUT: nothing came).
 */
static int read_recs(int qfd, struct iopfmap_fault_record *r, size_t max)
{
	struct pollfd p = { .fd = qfd, .events = POLLIN };
	ssize_t n;
	int ret;

	ret = poll(&p, 1, WAIT_MS);
	if (ret < 0)
		return -errno;
	if (!ret)
		return -ETIMEDOUT;
	n = read(qfd, r, max * REC_SZ);
	if (n < 0)
		return -errno;
	if (n % REC_SZ)
		return -EPROTO;		/* never a part of a record */
	return n / REC_SZ;
}

/* A read() with room for @room records must return @n (whole groups). */
#define RECV_IN(qfd, r, room, n)					\
	do {								\
		int __got = read_recs(qfd, r, room);			\
		ASSERT_EQ((int)(n), __got)				\
			TH_LOG("read with room for %d records: %s",	\
			       (int)(room),				\
			       __got < 0 ? strerror(-__got) : "other count"); \
	} while (0)

/* A read() with room for any group must return @n records. */
#define RECV(qfd, r, n) RECV_IN(qfd, r, GROUP_MAX, n)

/* write() of @n responses: bytes written, or -errno. */
static ssize_t write_resps(int qfd, const struct iopfmap_fault_response *r,
			   size_t n)
{
	ssize_t ret = write(qfd, r, n * RESP_SZ);

	return ret < 0 ? -errno : ret;
}

/* write() of @len raw bytes: how many were taken, or -errno. */
static int write_raw(int qfd, const void *buf, size_t len)
{
	ssize_t ret = write(qfd, buf, len);

	return ret < 0 ? -errno : (int)ret;
}

/* One response: 0 once the kernel took it, or -errno. */
static int respond(int qfd, __u64 cookie, __u32 code)
{
	struct iopfmap_fault_response r = { .cookie = cookie, .code = code };
	ssize_t ret = write_resps(qfd, &r, 1);

	return ret == (ssize_t)RESP_SZ ? 0 : ret < 0 ? (int)ret : -EPROTO;
}

#define RESPOND(qfd, cookie, code)					\
	do {								\
		int __r = respond(qfd, cookie, code);			\
		ASSERT_EQ(0, __r) TH_LOG("response %u: %s", (code),	\
					 strerror(-__r));		\
	} while (0)

/*
 * Checks one record: its flags exactly, the page, the access, the ids, and
 * no PASID unless flagged.
 */
static void check_record(struct __test_metadata *_metadata,
			 const struct iopfmap_fault_record *r, __u32 ctx_id,
			 __u32 flags, __u64 addr, __u32 perm, __u32 range_id)
{
	EXPECT_EQ(flags, r->flags) TH_LOG("record at %#llx",
					  (unsigned long long)r->addr);
	EXPECT_EQ(addr, r->addr);
	EXPECT_EQ(perm, r->perm) TH_LOG("record at %#llx",
					(unsigned long long)r->addr);
	EXPECT_EQ(ctx_id, r->ctx_id);
	EXPECT_EQ(0U, r->dev_id);
	EXPECT_EQ(range_id, r->range_id);
	if (!(flags & REC_PASID))
		EXPECT_EQ(0U, r->pasid);
	EXPECT_EQ(0U, r->__reserved);
}

/* ---- helper threads: a DMA or a page request that may block ------------ */

struct job {
	int fd;
	bool is_prq;
	struct iopfmap_sim_dma dma;
	struct iopfmap_sim_page_request prq;
	int ret;		/* the ioctl's: 0 or -errno */
	int done;		/* the ioctl returned (atomic) */
	const int *gate;	/* if set, waits for *gate (atomic) first */
	pthread_t thread;
};

static struct job jobs[MAX_JOBS];

static void *job_thread(void *arg)
{
	struct job *j = arg;

	while (j->gate && !__atomic_load_n(j->gate, __ATOMIC_ACQUIRE))
		iopfmap_sleep_ms(1);
	if (j->is_prq)
		j->ret = _test_cmd_sim_page_request(j->fd, &j->prq);
	else
		j->ret = _test_cmd_sim_dma(j->fd, &j->dma);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool job_done(struct job *j)
{
	return __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

static void start_job(struct __test_metadata *_metadata, struct job *j)
{
	j->ret = 1;
	j->done = 0;
	ASSERT_EQ(0, pthread_create(&j->thread, NULL, job_thread, j));
}

/* A thread that runs one SIM_DMA of @len bytes at @iova. */
static void start_dma(struct __test_metadata *_metadata, struct job *j, int fd,
		      __u32 flags, __u64 iova, void *buf, size_t len)
{
	memset(j, 0, sizeof(*j));
	j->fd = fd;
	j->dma.size = sizeof(j->dma);
	j->dma.flags = flags;
	j->dma.iova = iova;
	j->dma.buffer = (__u64)(uintptr_t)buf;
	j->dma.length = len;
	start_job(_metadata, j);
}

/*
 * A thread that raises one page request (it blocks if it has LAST), once
 * *@gate is set if @gate is not NULL.
 */
static void start_gated_prq(struct __test_metadata *_metadata, struct job *j,
			    int fd, __u32 flags, __u64 iova, __u32 grpid,
			    __u32 pasid, const int *gate)
{
	memset(j, 0, sizeof(*j));
	j->gate = gate;
	j->fd = fd;
	j->is_prq = true;
	j->prq.size = sizeof(j->prq);
	j->prq.flags = flags;
	j->prq.iova = iova;
	j->prq.grpid = grpid;
	j->prq.pasid = pasid;
	j->prq.out_response = 0xdeadbeef;
	start_job(_metadata, j);
}

static void start_prq(struct __test_metadata *_metadata, struct job *j, int fd,
		      __u32 flags, __u64 iova, __u32 grpid, __u32 pasid)
{
	start_gated_prq(_metadata, j, fd, flags, iova, grpid, pasid, NULL);
}

/* pthread_join() within WAIT_MS: 0 or an errno (ETIMEDOUT). */
static int timed_join(pthread_t thread)
{
	struct timespec end;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += WAIT_MS / 1000;
	return pthread_timedjoin_np(thread, NULL, &end);
}

/* Joins @j within WAIT_MS; its ioctl must have succeeded. */
static void join_job(struct __test_metadata *_metadata, struct job *j)
{
	ASSERT_EQ(0, timed_join(j->thread))
		TH_LOG("the %s at %#llx is still blocked after %d s",
		       j->is_prq ? "page request" : "DMA",
		       (unsigned long long)(j->is_prq ? j->prq.iova :
						       j->dma.iova),
		       WAIT_MS / 1000);
	ASSERT_EQ(0, j->ret) TH_LOG("%s: %s", j->is_prq ? "SIM_PAGE_REQUEST" :
				    "SIM_DMA", strerror(-j->ret));
}

/*
 * Joins a DMA job, which must end with @status: OK moved every byte; any
 * other status stopped at the first page (the tests' DMAs fault on it).
 */
static void expect_dma(struct __test_metadata *_metadata, struct job *j,
		       __u32 status)
{
	join_job(_metadata, j);
	EXPECT_EQ(status, j->dma.out_status)
		TH_LOG("DMA at %#llx ended %s, expected %s",
		       (unsigned long long)j->dma.iova,
		       iopfmap_dma_status_name(j->dma.out_status), iopfmap_dma_status_name(status));
	if (status == IOPFMAP_SIM_DMA_OK) {
		EXPECT_EQ(j->dma.length, j->dma.out_done);
	} else {
		EXPECT_EQ(0ULL, j->dma.out_done);
		EXPECT_EQ(j->dma.iova, j->dma.out_fault_iova);
	}
}

/* Joins a page request job: the group's response. */
static __u32 prq_response(struct __test_metadata *_metadata, struct job *j)
{
	join_job(_metadata, j);
	return j->prq.out_response;
}

/* ---- io_uring --------------------------------------------------------- */

_Static_assert(sizeof(struct iopfmap_queue_fetch) == 16, "fetch payload");
_Static_assert(sizeof(struct iopfmap_queue_commit) == 16, "commit payload");

/*
 * liburing 2.3 has no uring_cmd helper: the SQE is filled by hand, with
 * the 16-byte payload in its command area (a normal, 64-byte SQE).
 */
static int prep_cmd(struct io_uring *ring, int qfd, __u32 op,
		    const void *payload, __u64 ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = qfd;
	sqe->cmd_op = op;
	memcpy((char *)sqe + offsetof(struct io_uring_sqe, cmd), payload, 16);
	sqe->user_data = ud;
	return 0;
}

static int prep_fetch(struct io_uring *ring, int qfd, __u16 slot, void *buf,
		      __u16 max, __u32 flags, __u64 ud)
{
	struct iopfmap_queue_fetch f = {
		.records = (__u64)(uintptr_t)buf,
		.slot = slot,
		.max_records = max,
		.flags = flags,
	};

	return prep_cmd(ring, qfd, IOPFMAP_QUEUE_FETCH, &f, ud);
}

static int prep_commit(struct io_uring *ring, int qfd, __u16 slot,
		       __u64 cookie, __u16 code, __u32 flags, __u64 ud)
{
	struct iopfmap_queue_commit c = {
		.cookie = cookie,
		.slot = slot,
		.code = code,
		.flags = flags,
	};

	return prep_cmd(ring, qfd, IOPFMAP_QUEUE_COMMIT_AND_FETCH, &c, ud);
}

/* The next completion within @ms: 0 with its user_data and res, or -errno. */
static int next_cqe(struct io_uring *ring, unsigned int ms, __u64 *ud,
		    int *res)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000LL,
	};
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret)
		return ret;
	*ud = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* Submits what was prepared: all @n SQEs must go. */
#define SUBMIT(ring, n)							\
	do {								\
		int __s = io_uring_submit(ring);			\
		ASSERT_EQ((int)(n), __s) TH_LOG("io_uring_submit: %s",	\
					 __s < 0 ? strerror(-__s) :	\
						   "short");		\
	} while (0)

#define FETCH(ring, qfd, slot, buf, max, flags, ud)			\
	do {								\
		ASSERT_EQ(0, prep_fetch(ring, qfd, slot, buf, max, flags, \
					ud));				\
		SUBMIT(ring, 1);					\
	} while (0)

#define COMMIT(ring, qfd, slot, cookie, code, flags, ud)		\
	do {								\
		ASSERT_EQ(0, prep_commit(ring, qfd, slot, cookie, code, flags, \
					 ud));				\
		SUBMIT(ring, 1);					\
	} while (0)

/* The next completion must be @ud's, with @res. */
#define EXPECT_CQE(ring, want_ud, want_res)				\
	do {								\
		__u64 __ud = 0;						\
		int __res = 0, __r = next_cqe(ring, WAIT_MS, &__ud, &__res); \
		ASSERT_EQ(0, __r) TH_LOG("no completion for %#llx: %s",	\
					 (unsigned long long)(want_ud),	\
					 strerror(-__r));		\
		EXPECT_EQ((__u64)(want_ud), __ud);			\
		EXPECT_EQ((int)(want_res), __res)			\
			TH_LOG("completion %#llx: %d (%s)",		\
			       (unsigned long long)__ud, __res,		\
			       __res < 0 ? strerror(-__res) : "records"); \
	} while (0)

/* Nothing completes for QUIET_MS: parked commands stay parked. */
#define EXPECT_NO_CQE(ring)						\
	do {								\
		__u64 __ud = 0;						\
		int __res = 0;						\
		EXPECT_EQ(-ETIME, next_cqe(ring, QUIET_MS, &__ud, &__res)) \
			TH_LOG("unexpected completion %#llx: %d",	\
			       (unsigned long long)__ud, __res);	\
	} while (0)

/* ---- fixtures --------------------------------------------------------- */

/* A context with a simulated device, a buffer, a range, maybe a queue. */
struct env {
	int fd;
	int qfd;
	__u32 ctx_id;
	__u32 range_id;
	char *buf;		/* the range's memory: pattern 1 */
	char *ref;		/* what buf must hold */
	size_t len;
	struct io_uring ring;
	bool ring_ok;
	pid_t child;		/* a forked helper, killed at teardown */
};

/*
 * nested: stage 2 maps buf at S1_IPA (a FAULT range, resolved in the
 * kernel) and stage 1 is empty. flat: buf is a FORWARD range at IOVA_F.
 */
static void env_setup(struct __test_metadata *_metadata, struct env *e,
		      bool nested)
{
	struct iopfmap_info info;
	int ret;

	e->fd = -1;
	e->qfd = -1;
	e->child = 0;
	OPEN_CONTEXT(&e->fd);
	REQUIRE_QUEUE(e->fd, &e->ctx_id);
	ASSERT_EQ(0, get_info(e->fd, &info));
	if (!(info.out_features & IOPFMAP_FEATURE_SIM))
		SKIP(return, "module loaded without sim=1");
	ret = sim_create(e->fd, nested ? IOPFMAP_SIM_NESTED : 0);
	ASSERT_EQ(0, ret) TH_LOG("SIM_CREATE: %s", strerror(-ret));

	e->len = BUF_PAGES * psz;
	e->buf = alloc_pages(BUF_PAGES, 1);
	e->ref = alloc_pages(BUF_PAGES, 1);
	ASSERT_TRUE(e->buf && e->ref);
	if (nested)
		ret = map_id(e->fd, S1_IPA, e->buf, e->len, RW, &e->range_id);
	else
		ret = map_id(e->fd, IOVA_F, e->buf, e->len,
			     RW | IOPFMAP_MAP_FORWARD, &e->range_id);
	ASSERT_EQ(0, ret) TH_LOG("MAP: %s", strerror(-ret));
}

static void env_teardown(struct env *e)
{
	if (e->child > 0) {
		kill(e->child, SIGKILL);
		waitpid(e->child, NULL, 0);
	}
	/* Answers whatever is still held: blocked helper threads end. */
	if (e->qfd >= 0)
		close(e->qfd);
	if (e->ring_ok)
		io_uring_queue_exit(&e->ring);
	if (e->fd >= 0)
		close(e->fd);
}

/* A ring for the test, or SKIP when io_uring is unavailable. */
#define RING_INIT(e)							\
	do {								\
		int __r = io_uring_queue_init(64, &(e)->ring, 0);	\
		if (__r == -ENOSYS || __r == -EPERM)			\
			SKIP(return, "io_uring unavailable: %s",	\
			     strerror(-__r));				\
		ASSERT_EQ(0, __r) TH_LOG("io_uring_queue_init: %s",	\
					 strerror(-__r));		\
		(e)->ring_ok = true;					\
	} while (0)

FIXTURE(nested)
{
	struct env e;
};

FIXTURE_SETUP(nested)
{
	env_setup(_metadata, &self->e, true);
}

FIXTURE_TEARDOWN(nested)
{
	env_teardown(&self->e);
}

FIXTURE(flat)
{
	struct env e;
};

FIXTURE_SETUP(flat)
{
	env_setup(_metadata, &self->e, false);
}

FIXTURE_TEARDOWN(flat)
{
	env_teardown(&self->e);
}

/* A context and nothing else. */
FIXTURE(ctx)
{
	int fd;
	__u32 ctx_id;
};

FIXTURE_SETUP(ctx)
{
	self->fd = -1;
	OPEN_CONTEXT(&self->fd);
	REQUIRE_QUEUE(self->fd, &self->ctx_id);
}

FIXTURE_TEARDOWN(ctx)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * ---------------------------------------------------------------------
 * Discovery: ids, QUEUE_ALLOC, QUEUE_GET_INFO
 * ---------------------------------------------------------------------
 */

/* Every context has its own non-zero id, and keeps it. */
TEST(context_ids)
{
	struct iopfmap_info a, b, again;
	int fa, fb;

	OPEN_CONTEXT(&fa);
	OPEN_CONTEXT(&fb);
	ASSERT_EQ(0, get_info(fa, &a));
	ASSERT_EQ(0, get_info(fb, &b));
	if (!(a.out_features & IOPFMAP_FEATURE_QUEUE))
		SKIP(return, "module without fault queues "
		     "(no IOPFMAP_FEATURE_QUEUE)");
	EXPECT_NE(0U, a.out_ctx_id);
	EXPECT_NE(0U, b.out_ctx_id);
	EXPECT_NE(a.out_ctx_id, b.out_ctx_id);
	EXPECT_EQ(0U, a.__reserved3);
	ASSERT_EQ(0, get_info(fa, &again));
	EXPECT_EQ(a.out_ctx_id, again.out_ctx_id);
	close(fa);
	close(fb);
}

/* MAP names every range with a distinct non-zero id. */
TEST_F(flat, range_ids)
{
	struct env *e = &self->e;
	char *more = alloc_pages(4, 2);
	__u32 ids[4];
	int i, k;

	ASSERT_TRUE(more != NULL);
	ids[0] = e->range_id;
	ASSERT_EQ(0, map_id(e->fd, 0x4000000ULL, more, psz, RW, &ids[1]));
	ASSERT_EQ(0, map_id(e->fd, 0x4000000ULL + psz, more + psz, psz,
			    IOPFMAP_MAP_READ | IOPFMAP_MAP_FORWARD, &ids[2]));
	ASSERT_EQ(0, map_id(e->fd, 0x4000000ULL + 2 * psz, more + 2 * psz,
			    2 * psz, RW | IOPFMAP_MAP_PIN, &ids[3]));
	for (i = 0; i < 4; i++) {
		EXPECT_NE(0U, ids[i]) TH_LOG("range %d", i);
		for (k = 0; k < i; k++)
			EXPECT_NE(ids[k], ids[i])
				TH_LOG("ranges %d and %d", k, i);
	}
}

TEST_F(ctx, queue_alloc)
{
	struct iopfmap_queue_alloc qa;
	struct iopfmap_queue_info qi;
	int qfd, qfd2, fl;

	qfd = queue_alloc(self->fd, 0, 0, 0, &qa);
	ASSERT_LE(0, qfd) TH_LOG("QUEUE_ALLOC: %s", strerror(-qfd));
	EXPECT_EQ(IOPFMAP_QUEUE_FEAT_RW,
		  qa.out_features & IOPFMAP_QUEUE_FEAT_RW);
	EXPECT_EQ(IOPFMAP_QUEUE_FEAT_URING_CMD,
		  qa.out_features & IOPFMAP_QUEUE_FEAT_URING_CMD);
	/* io_uring cancels parked commands itself since Linux 6.7. */
	EXPECT_EQ(iopfmap_kernel_at_least(6, 7),
		  !!(qa.out_features & IOPFMAP_QUEUE_FEAT_URING_CANCEL));
	EXPECT_EQ(0U, qa.out_features & ~(IOPFMAP_QUEUE_FEAT_RW |
					  IOPFMAP_QUEUE_FEAT_URING_CMD |
					  IOPFMAP_QUEUE_FEAT_URING_CANCEL));

	/* Close-on-exec, blocking, readable and writable. */
	fl = fcntl(qfd, F_GETFD);
	ASSERT_LE(0, fl);
	EXPECT_TRUE(fl & FD_CLOEXEC);
	fl = fcntl(qfd, F_GETFL);
	ASSERT_LE(0, fl);
	EXPECT_EQ(0, fl & O_NONBLOCK);
	EXPECT_EQ(O_RDWR, fl & O_ACCMODE);

	ASSERT_EQ(0, queue_info(qfd, &qi));
	EXPECT_EQ(self->ctx_id, qi.out_ctx_id);
	EXPECT_EQ(qa.out_features, qi.out_features);
	EXPECT_EQ((__u32)IOPFMAP_QUEUE_DEPTH_DEFAULT, qi.out_depth);
	EXPECT_EQ(0U, qi.out_timeout_ms);
	EXPECT_EQ(0U, qi.out_pending);
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_EQ(0U, qi.out_flags);
	EXPECT_EQ(0ULL, qi.out_groups | qi.out_records | qi.out_delivered |
			qi.out_resp_success | qi.out_resp_invalid |
			qi.out_resp_failure | qi.out_timeouts | qi.out_closed |
			qi.out_overflows | qi.out_withdrawn | qi.out_refused);

	/* The context is not a queue. */
	EXPECT_EQ(-ENOTTY, queue_info(self->fd, &qi));

	/* One live queue per context; closing it makes room. */
	EXPECT_EQ(-EBUSY, queue_alloc(self->fd, 0, 0, 0, NULL));
	EXPECT_EQ(-EBUSY, queue_alloc(self->fd, IOPFMAP_QUEUE_NONBLOCK, 8, 5,
				      NULL));
	ASSERT_EQ(0, close(qfd));
	qfd2 = queue_alloc(self->fd, IOPFMAP_QUEUE_NONBLOCK, 64, 1000, &qa);
	ASSERT_LE(0, qfd2) TH_LOG("QUEUE_ALLOC after close: %s",
				  strerror(-qfd2));
	fl = fcntl(qfd2, F_GETFL);
	EXPECT_EQ(O_NONBLOCK, fl & O_NONBLOCK);
	EXPECT_TRUE(fcntl(qfd2, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, queue_info(qfd2, &qi));
	EXPECT_EQ(self->ctx_id, qi.out_ctx_id);
	EXPECT_EQ(64U, qi.out_depth);
	EXPECT_EQ(1000U, qi.out_timeout_ms);
	EXPECT_EQ(0ULL, qi.out_groups);
	close(qfd2);
}

TEST_F(ctx, queue_alloc_errors)
{
	struct iopfmap_queue_info qi;
	int qfd, probe, after;

	/* A refused QUEUE_ALLOC creates no descriptor. */
	probe = dup(0);
	ASSERT_LE(0, probe);
	close(probe);

	EXPECT_EQ(-EINVAL, queue_alloc(self->fd, 0,
				       IOPFMAP_QUEUE_DEPTH_MAX + 1, 0, NULL));
	EXPECT_EQ(-EINVAL, queue_alloc(self->fd, 0, ~0U, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP, queue_alloc(self->fd, 1U << 1, 0, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP, queue_alloc(self->fd, 1U << 31, 0, 0, NULL));
	after = dup(0);
	EXPECT_EQ(probe, after) TH_LOG("a refused QUEUE_ALLOC left an fd");
	close(after);

	/* The largest depth is fine; the refusals left no queue behind. */
	qfd = queue_alloc(self->fd, 0, IOPFMAP_QUEUE_DEPTH_MAX, 0, NULL);
	ASSERT_LE(0, qfd) TH_LOG("depth max: %s", strerror(-qfd));
	ASSERT_EQ(0, queue_info(qfd, &qi));
	EXPECT_EQ((__u32)IOPFMAP_QUEUE_DEPTH_MAX, qi.out_depth);
	close(qfd);
	qfd = queue_alloc(self->fd, 0, 1, 0, NULL);
	ASSERT_LE(0, qfd) TH_LOG("depth 1: %s", strerror(-qfd));
	ASSERT_EQ(0, queue_info(qfd, &qi));
	EXPECT_EQ(1U, qi.out_depth);
	close(qfd);
}

/* A queue's holder serves faults but cannot use the context. */
TEST_F(flat, queue_fd_is_not_a_context)
{
	struct env *e = &self->e;
	struct iopfmap_sim_dma d;
	char *src = alloc_pages(1, 9);
	int ret;

	ASSERT_TRUE(src != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	ret = _test_map(e->qfd, 0x4000000ULL, src, psz, RW, 0);
	EXPECT_GT(0, ret) TH_LOG("MAP on a queue fd succeeded");
	EXPECT_EQ(-ENOENT, _test_unmap(e->fd, 0x4000000ULL, psz));
	ret = _test_sim_dma(e->qfd, &d, DMA_WRITE, IOVA_F, src, psz);
	EXPECT_GT(0, ret) TH_LOG("SIM_DMA on a queue fd succeeded");
	EXPECT_TRUE(same(_metadata, "buf", e->buf, e->ref, e->len));
	EXPECT_GT(0, queue_alloc(e->qfd, 0, 0, 0, NULL));
	EXPECT_EQ(0ULL, qinfo(_metadata, e->qfd).out_groups);
}

/*
 * ---------------------------------------------------------------------
 * Stage-1 misses through read() and write()
 * ---------------------------------------------------------------------
 */

TEST_F(nested, s1_read_write)
{
	struct env *e = &self->e;
	struct job *a = &jobs[0], *b = &jobs[1], *c = &jobs[2];
	struct iopfmap_fault_record *r = recs;
	char *out = alloc_zero(1), *src = alloc_pages(1, 7);
	struct iopfmap_queue_info qi;
	struct iopfmap_stats st;
	__u64 t0, t1;

	ASSERT_TRUE(out && src);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);

	/* A device read of 200 bytes inside stage-1 page 3: no entry. */
	t0 = now_ns();
	start_dma(_metadata, a, e->fd, DMA_READ, S1_X + 3 * psz + 100, out,
		  200);
	RECV(e->qfd, r, 1);
	t1 = now_ns();
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + 3 * psz,
		     IOPFMAP_PRQ_READ, 0);
	EXPECT_LE(t0, r->time_ns);
	EXPECT_GE(t1, r->time_ns);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(0U, qi.out_pending);
	EXPECT_EQ(1U, qi.out_inflight);
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_records);
	EXPECT_EQ(1ULL, qi.out_delivered);
	/* The device waits for its answer. */
	EXPECT_FALSE(job_done(a));

	/* The "guest" fills stage 1, then lets the device translate again. */
	ASSERT_EQ(0, s1_map(e->fd, S1_X + 3 * psz, S1_IPA + 5 * psz, psz));
	RESPOND(e->qfd, r->cookie, SUCCESS);
	expect_dma(_metadata, a, IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", out, e->ref + 5 * psz + 100, 200);
	/* Its stage-2 miss was resolved in the kernel, not forwarded. */
	st = iopfmap_get_stats(_metadata, e->fd, ~0ULL);
	EXPECT_EQ(1ULL, st.out_faults);
	EXPECT_EQ(1ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_faults_forwarded);
	EXPECT_EQ(1, mapped_in(_metadata, e->fd, S1_IPA, e->len));
	EXPECT_EQ(1ULL << 5, iopt_bits(e->fd, S1_IPA));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_EQ(1ULL, qi.out_resp_success);

	/* A device write answered INVALID: S1_FAULT, memory untouched. */
	start_dma(_metadata, b, e->fd, DMA_WRITE, S1_X + 4 * psz, src, psz);
	RECV(e->qfd, r, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + 4 * psz,
		     IOPFMAP_PRQ_WRITE, 0);
	RESPOND(e->qfd, r->cookie, INVALID);
	expect_dma(_metadata, b, IOPFMAP_SIM_DMA_S1_FAULT);
	same(_metadata, "buf", e->buf, e->ref, e->len);

	/*
	 * FAILURE is refused (it would turn a real device's page requests
	 * off); the group stays in flight until INVALID: S1_FAULT, nothing
	 * read.
	 */
	memset(out, 0, psz);
	start_dma(_metadata, c, e->fd, DMA_READ, S1_X + 6 * psz + 8, out, 16);
	RECV(e->qfd, r, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + 6 * psz,
		     IOPFMAP_PRQ_READ, 0);
	EXPECT_EQ(-EINVAL, respond(e->qfd, r->cookie, FAILURE));
	EXPECT_FALSE(job_done(c));
	EXPECT_EQ(1U, qinfo(_metadata, e->qfd).out_inflight);
	RESPOND(e->qfd, r->cookie, INVALID);
	expect_dma(_metadata, c, IOPFMAP_SIM_DMA_S1_FAULT);
	all_zero(_metadata, "out", out, psz);

	/* Three stage-1 groups, one stage-2 group, each answered once. */
	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(3ULL, qi.out_groups);
	EXPECT_EQ(3ULL, qi.out_records);
	EXPECT_EQ(3ULL, qi.out_delivered);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	EXPECT_EQ(2ULL, qi.out_resp_invalid);
	EXPECT_EQ(0ULL, qi.out_resp_failure);
	EXPECT_EQ(1ULL, qi.out_refused);
	EXPECT_EQ(0U, qi.out_pending + qi.out_inflight);
	expect_balanced(_metadata, &qi);
}

/* Without a queue a stage-1 miss fails at once, as it always did. */
TEST_F(nested, s1_without_queue)
{
	struct env *e = &self->e;
	struct iopfmap_sim_stats ss;
	struct iopfmap_sim_dma d;
	int qfd;
	char c = 0;

	ASSERT_EQ(0, _test_sim_dma(e->fd, &d, DMA_READ, S1_X, &c, 1));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, d.out_status);
	EXPECT_EQ(0ULL, d.out_done);

	/* Nor once the queue is closed again. */
	qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	close(qfd);
	ASSERT_EQ(0, _test_sim_dma(e->fd, &d, DMA_WRITE, S1_X + psz, &c, 1));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, d.out_status);
	same(_metadata, "buf", e->buf, e->ref, e->len);

	ss = get_sim_stats(_metadata, e->fd);
	expect_sim_balanced(_metadata, &ss);
	EXPECT_EQ(0ULL, ss.out_resp_success);
	EXPECT_EQ(ss.out_page_requests, ss.out_resp_invalid);
}

/*
 * ---------------------------------------------------------------------
 * io_uring: FETCH and COMMIT_AND_FETCH
 * ---------------------------------------------------------------------
 */

#define NSLOTS	6
#define NBATCH	4

/* Several armed slots take a batch of faults; one submit answers them. */
TEST_F(nested, uring_batch)
{
	struct env *e = &self->e;
	char *src = alloc_pages(NBATCH, 11), *out = alloc_zero(NBATCH);
	unsigned int slot_of[NBATCH], seen_slots = 0, seen_pages = 0;
	struct iopfmap_fault_record *r;
	struct iopfmap_queue_info qi;
	__u64 cookie_of[NBATCH], ud;
	unsigned int i, slot, page;
	int res;

	ASSERT_TRUE(src && out);
	e->qfd = new_queue(_metadata, e->fd, 0, 8, 0);
	RING_INIT(e);
	for (i = 0; i < NSLOTS; i++)
		ASSERT_EQ(0, prep_fetch(&e->ring, e->qfd, i, slot_recs[i],
					GROUP_MAX, 0, UD_FETCH | i));
	SUBMIT(&e->ring, NSLOTS);
	EXPECT_NO_CQE(&e->ring);

	/* Even pages: device reads; odd pages: device writes. */
	for (i = 0; i < NBATCH; i++)
		start_dma(_metadata, &jobs[i], e->fd,
			  i & 1 ? DMA_WRITE : DMA_READ, S1_X + i * psz,
			  i & 1 ? pg(src, i) : pg(out, i), psz);
	for (i = 0; i < NBATCH; i++) {
		ASSERT_EQ(0, next_cqe(&e->ring, WAIT_MS, &ud, &res))
			TH_LOG("%u of %u faults delivered", i, NBATCH);
		EXPECT_EQ(1, res) TH_LOG("completion %#llx",
					 (unsigned long long)ud);
		ASSERT_EQ(UD_FETCH, ud & ~0xfffULL);
		slot = UD_SLOT(ud);
		ASSERT_GT(NSLOTS, (int)slot);
		EXPECT_EQ(0U, seen_slots & (1U << slot));
		seen_slots |= 1U << slot;
		r = &slot_recs[slot][0];
		page = (r->addr - S1_X) / psz;
		ASSERT_GT(NBATCH, (int)page) TH_LOG("record at %#llx",
					       (unsigned long long)r->addr);
		EXPECT_EQ(0U, seen_pages & (1U << page));
		seen_pages |= 1U << page;
		check_record(_metadata, r, e->ctx_id, REC_S1,
			     S1_X + page * psz,
			     page & 1 ? IOPFMAP_PRQ_WRITE : IOPFMAP_PRQ_READ,
			     0);
		cookie_of[page] = r->cookie;
		slot_of[page] = slot;
	}
	for (i = 1; i < NBATCH; i++)
		EXPECT_NE(cookie_of[0], cookie_of[i]);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ((__u32)NBATCH, qi.out_inflight);
	EXPECT_EQ(0U, qi.out_pending);
	EXPECT_EQ((__u64)NBATCH, qi.out_delivered);

	/* Stage-1 page i -> IPA page 8 + i; all answers in one submit. */
	for (i = 0; i < NBATCH; i++)
		ASSERT_EQ(0, s1_map(e->fd, S1_X + i * psz,
				    S1_IPA + (8 + i) * psz, psz));
	for (i = 0; i < NBATCH; i++)
		ASSERT_EQ(0, prep_commit(&e->ring, e->qfd, slot_of[i],
					 cookie_of[i], SUCCESS, 0,
					 UD_COMMIT | slot_of[i]));
	SUBMIT(&e->ring, NBATCH);
	for (i = 0; i < NBATCH; i++) {
		expect_dma(_metadata, &jobs[i], IOPFMAP_SIM_DMA_OK);
		if (i & 1)
			memcpy(pg(e->ref, 8 + i), pg(src, i), psz);
		else
			same(_metadata, "DMA read", pg(out, i),
			     pg(e->ref, 8 + i), psz);
	}
	same(_metadata, "buf", e->buf, e->ref, e->len);
	/* The commits re-armed their slots: nothing completes. */
	EXPECT_NO_CQE(&e->ring);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_EQ((__u64)NBATCH, qi.out_resp_success);

	/* One more fault lands in one of the armed slots. */
	start_dma(_metadata, &jobs[NBATCH], e->fd, DMA_READ, S1_X + 5 * psz,
		  out, 1);
	ASSERT_EQ(0, next_cqe(&e->ring, WAIT_MS, &ud, &res));
	EXPECT_EQ(1, res);
	slot = UD_SLOT(ud);
	ASSERT_GT(NSLOTS, (int)slot);
	r = &slot_recs[slot][0];
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + 5 * psz,
		     IOPFMAP_PRQ_READ, 0);
	/* Answered through write(): the two ways mix. */
	RESPOND(e->qfd, r->cookie, INVALID);
	expect_dma(_metadata, &jobs[NBATCH], IOPFMAP_SIM_DMA_S1_FAULT);

	expect_sim_answers(_metadata, e->fd, 2 * NBATCH, 1, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ((__u64)NBATCH + 1, qi.out_groups);
	EXPECT_EQ((__u64)NBATCH, qi.out_resp_success);
	EXPECT_EQ(1ULL, qi.out_resp_invalid);
	expect_balanced(_metadata, &qi);
}

/* COMMIT_AND_FETCH answers and re-arms the same slot with its buffer. */
TEST_F(nested, uring_commit_rearms)
{
	struct env *e = &self->e;
	struct job *a = &jobs[0], *b = &jobs[1];
	struct iopfmap_fault_record *r = &slot_recs[3][0];
	char *out = alloc_zero(1), *src = alloc_pages(1, 13);
	struct iopfmap_queue_info qi;
	__u64 cookie;

	ASSERT_TRUE(out && src);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	RING_INIT(e);
	FETCH(&e->ring, e->qfd, 3, slot_recs[3], GROUP_MAX, 0, UD_FETCH | 3);

	start_dma(_metadata, a, e->fd, DMA_READ, S1_X, out, psz);
	EXPECT_CQE(&e->ring, UD_FETCH | 3, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X, IOPFMAP_PRQ_READ,
		     0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X, S1_IPA + 2 * psz, psz));
	cookie = r->cookie;
	memset(slot_recs[3], 0xa5, sizeof(slot_recs[3]));
	COMMIT(&e->ring, e->qfd, 3, cookie, SUCCESS, 0, UD_COMMIT | 3);
	expect_dma(_metadata, a, IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", out, pg(e->ref, 2), psz);
	EXPECT_NO_CQE(&e->ring);

	/* The next fault is written into slot 3's buffer again. */
	start_dma(_metadata, b, e->fd, DMA_WRITE, S1_X + psz, src, psz);
	EXPECT_CQE(&e->ring, UD_COMMIT | 3, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + psz,
		     IOPFMAP_PRQ_WRITE, 0);
	EXPECT_NE(cookie, r->cookie);
	cookie = r->cookie;
	COMMIT(&e->ring, e->qfd, 3, cookie, INVALID, 0, UD_COMMIT | 0x103);
	expect_dma(_metadata, b, IOPFMAP_SIM_DMA_S1_FAULT);
	same(_metadata, "buf", e->buf, e->ref, e->len);
	/* Answered once: write() cannot answer it again. */
	EXPECT_EQ(-ENOENT, respond(e->qfd, cookie, SUCCESS));

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(2ULL, qi.out_groups);
	EXPECT_EQ(2ULL, qi.out_delivered);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	EXPECT_EQ(1ULL, qi.out_resp_invalid);
	EXPECT_EQ(1ULL, qi.out_refused);
	expect_balanced(_metadata, &qi);
	expect_sim_answers(_metadata, e->fd, 2, 1, 0);
}

TEST_F(nested, uring_errors)
{
	struct env *e = &self->e;
	struct job *a = &jobs[0], *b = &jobs[1];
	struct iopfmap_fault_record *r = &slot_recs[0][0];
	char *out = alloc_zero(1);
	struct iopfmap_queue_fetch f = {
		.records = (__u64)(uintptr_t)slot_recs[2],
		.slot = 2,
		.max_records = GROUP_MAX,
	};
	struct iopfmap_queue_info qi;
	__u64 cookie;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 4, 0);
	RING_INIT(e);

	/* FETCH: slot past the depth, too small a buffer, flags. */
	FETCH(&e->ring, e->qfd, 4, slot_recs[1], GROUP_MAX, 0, 1);
	EXPECT_CQE(&e->ring, 1, -EINVAL);
	FETCH(&e->ring, e->qfd, 0xffff, slot_recs[1], GROUP_MAX, 0, 2);
	EXPECT_CQE(&e->ring, 2, -EINVAL);
	FETCH(&e->ring, e->qfd, 1, slot_recs[1], GROUP_MAX - 1, 0, 3);
	EXPECT_CQE(&e->ring, 3, -EINVAL);
	FETCH(&e->ring, e->qfd, 1, slot_recs[1], 0, 0, 4);
	EXPECT_CQE(&e->ring, 4, -EINVAL);
	FETCH(&e->ring, e->qfd, 1, slot_recs[1], GROUP_MAX, 1, 5);
	EXPECT_CQE(&e->ring, 5, -EINVAL);
	FETCH(&e->ring, e->qfd, 1, slot_recs[1], GROUP_MAX, 1U << 31, 6);
	EXPECT_CQE(&e->ring, 6, -EINVAL);
	/* COMMIT_AND_FETCH of a slot that never had a buffer. */
	COMMIT(&e->ring, e->qfd, 1, 1, SUCCESS, 0, 7);
	EXPECT_CQE(&e->ring, 7, -EINVAL);
	/* An opcode the queue does not know. */
	ASSERT_EQ(0, prep_cmd(&e->ring, e->qfd,
			      _IOWR(IOPFMAP_TYPE, 0xaf,
				    struct iopfmap_queue_fetch),
			      &f, 8));
	SUBMIT(&e->ring, 1);
	{
		__u64 ud = 0;
		int res = 0;

		ASSERT_EQ(0, next_cqe(&e->ring, WAIT_MS, &ud, &res));
		EXPECT_EQ(8ULL, ud);
		EXPECT_GT(0, res)
			TH_LOG("unknown cmd_op completed with %d", res);
	}

	/* None of them armed a slot: a fault waits in the queue. */
	start_dma(_metadata, a, e->fd, DMA_READ, S1_X, out, 1);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1));
	EXPECT_NO_CQE(&e->ring);
	EXPECT_EQ(0ULL, qi.out_delivered);

	/* A FETCH takes a waiting group at once. */
	FETCH(&e->ring, e->qfd, 0, slot_recs[0], GROUP_MAX, 0, UD_FETCH);
	EXPECT_CQE(&e->ring, UD_FETCH, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X, IOPFMAP_PRQ_READ,
		     0);
	cookie = r->cookie;

	/* Refused commits answer nothing. */
	COMMIT(&e->ring, e->qfd, 0, cookie, 2, 0, 10);
	EXPECT_CQE(&e->ring, 10, -EINVAL);
	COMMIT(&e->ring, e->qfd, 0, cookie, FAILURE, 0, 11);
	EXPECT_CQE(&e->ring, 11, -EINVAL);
	COMMIT(&e->ring, e->qfd, 0, cookie, SUCCESS, 1, 12);
	EXPECT_CQE(&e->ring, 12, -EINVAL);
	COMMIT(&e->ring, e->qfd, 0, ~cookie, SUCCESS, 0, 13);
	EXPECT_CQE(&e->ring, 13, -ENOENT);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1U, qi.out_inflight);
	EXPECT_EQ(0ULL, qi.out_resp_success + qi.out_resp_invalid +
			qi.out_resp_failure);
	EXPECT_FALSE(job_done(a));

	/* The ENOENT did not arm slot 0: a FETCH parks, a second is EBUSY. */
	FETCH(&e->ring, e->qfd, 0, slot_recs[0], GROUP_MAX, 0, 20);
	EXPECT_NO_CQE(&e->ring);
	FETCH(&e->ring, e->qfd, 0, slot_recs[0], GROUP_MAX, 0, 21);
	EXPECT_CQE(&e->ring, 21, -EBUSY);

	RESPOND(e->qfd, cookie, INVALID);
	expect_dma(_metadata, a, IOPFMAP_SIM_DMA_S1_FAULT);

	/* The parked FETCH (20) gets the next fault. */
	start_dma(_metadata, b, e->fd, DMA_READ, S1_X + psz, out, psz);
	EXPECT_CQE(&e->ring, 20, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + psz,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X + psz, S1_IPA + 7 * psz, psz));
	RESPOND(e->qfd, r->cookie, SUCCESS);
	expect_dma(_metadata, b, IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", out, pg(e->ref, 7), psz);

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(2ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	EXPECT_EQ(1ULL, qi.out_resp_invalid);
	expect_balanced(_metadata, &qi);
	expect_sim_answers(_metadata, e->fd, 2, 1, 0);
}

/* A group whose records cannot be written goes back to the queue. */
TEST_F(nested, uring_efault_requeues)
{
	struct env *e = &self->e;
	struct job *a = &jobs[0];
	struct iopfmap_queue_info qi;
	char *out = alloc_zero(1);
	void *gone;

	ASSERT_TRUE(out != NULL);
	/*
	 * Mapped PROT_NONE rather than unmapped, so that nothing (the ring's
	 * own mmap) can take its place.
	 */
	gone = mmap(NULL, GROUP_MAX * REC_SZ, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);

	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	RING_INIT(e);
	FETCH(&e->ring, e->qfd, 0, gone, GROUP_MAX, 0, UD_FETCH);
	start_dma(_metadata, a, e->fd, DMA_READ, S1_X + 2 * psz, out, psz);
	EXPECT_CQE(&e->ring, UD_FETCH, -EFAULT);

	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1))
		TH_LOG("pending %u inflight %u", qi.out_pending,
		       qi.out_inflight);
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_FALSE(job_done(a));
	RECV(e->qfd, recs, 1);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + 2 * psz,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X + 2 * psz, S1_IPA, psz));
	RESPOND(e->qfd, recs[0].cookie, SUCCESS);
	expect_dma(_metadata, a, IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", out, e->ref, psz);

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	expect_balanced(_metadata, &qi);
	expect_sim_answers(_metadata, e->fd, 2, 0, 0);
}

/*
 * ---------------------------------------------------------------------
 * FORWARD ranges
 * ---------------------------------------------------------------------
 */

/* A DMA's fault on a FORWARD range goes to the queue; its answer decides. */
TEST_F(flat, forward_dma)
{
	static const struct {
		__u32 dir, code, status;
	} c[] = {
		{ DMA_READ, SUCCESS, IOPFMAP_SIM_DMA_OK },
		{ DMA_WRITE, SUCCESS, IOPFMAP_SIM_DMA_OK },
		{ DMA_READ, INVALID, IOPFMAP_SIM_DMA_INVALID },
		{ DMA_WRITE, INVALID, IOPFMAP_SIM_DMA_INVALID },
	};
	struct env *e = &self->e;
	char *src = alloc_pages(1, 17), *out = alloc_zero(1);
	struct iopfmap_fault_record *r = recs;
	struct iopfmap_queue_info qi;
	struct iopfmap_sim_dma d;
	struct iopfmap_stats st;
	unsigned int i, page;

	ASSERT_TRUE(src && out);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		struct job *j = &jobs[i];

		page = i + 1;
		memset(out, 0, psz);
		start_dma(_metadata, j, e->fd, c[i].dir, IOVA_F + page * psz,
			  c[i].dir == DMA_WRITE ? src : out, psz);
		RECV(e->qfd, r, 1);
		check_record(_metadata, r, e->ctx_id, REC_LAST,
			     IOVA_F + page * psz,
			     c[i].dir == DMA_WRITE ? IOPFMAP_PRQ_WRITE :
						     IOPFMAP_PRQ_READ,
			     e->range_id);
		EXPECT_FALSE(job_done(j));
		/* Nothing is mapped before userspace says so. */
		EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(e->fd, IOVA_F, e->len,
						    NULL));
		RESPOND(e->qfd, r->cookie, c[i].code);
		expect_dma(_metadata, j, c[i].status);
		if (c[i].code == SUCCESS && c[i].dir == DMA_WRITE)
			memcpy(pg(e->ref, page), src, psz);
		else if (c[i].code == SUCCESS)
			same(_metadata, "DMA read", out, pg(e->ref, page), psz);
		else if (c[i].dir == DMA_READ)
			all_zero(_metadata, "refused DMA read", out, psz);
		same(_metadata, "buf", e->buf, e->ref, e->len);
	}

	/* SUCCESS mapped pages 1 and 2; the refused pages stay unmapped. */
	EXPECT_EQ(0x6ULL, iopt_bits(e->fd, IOVA_F));
	EXPECT_EQ(2, mapped_in(_metadata, e->fd, IOVA_F, e->len));
	st = iopfmap_get_stats(_metadata, e->fd, IOVA_F);
	EXPECT_EQ(4ULL, st.out_faults);
	EXPECT_EQ(4ULL, st.out_faults_forwarded);
	/* Outcomes are apart: forwarded faults are never "handled". */
	EXPECT_EQ(0ULL, st.out_faults_handled);
	EXPECT_EQ(0ULL, st.out_faults_invalid);
	EXPECT_EQ(2ULL, st.out_pages_mapped);
	st = iopfmap_get_stats(_metadata, e->fd, ~0ULL);
	EXPECT_EQ(4ULL, st.out_faults_forwarded);

	/* A mapped page no longer faults. */
	ASSERT_EQ(0, _test_sim_dma(e->fd, &d, DMA_READ, IOVA_F + psz, out,
				   psz));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, d.out_status);
	EXPECT_EQ(0U, d.out_faults);
	same(_metadata, "DMA read", out, pg(e->ref, 1), psz);

	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(4ULL, qi.out_groups);
	EXPECT_EQ(4ULL, qi.out_records);
	EXPECT_EQ(2ULL, qi.out_resp_success);
	EXPECT_EQ(2ULL, qi.out_resp_invalid);
	EXPECT_EQ(0ULL, qi.out_resp_failure);
	expect_balanced(_metadata, &qi);
}

/* Raw page request groups arrive whole, with one cookie. */
TEST_F(flat, forward_groups)
{
	struct env *e = &self->e;
	struct iopfmap_fault_response resp[2];
	struct iopfmap_fault_record *r = recs;
	struct iopfmap_queue_info qi;
	struct iopfmap_stats st;
	__u32 out;
	int i;

	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);

	/* Group 5: three requests; the last one waits for the answer. */
	ASSERT_EQ(0, prq(e->fd, PRQ_RW, IOVA_F, 5, 0, &out));
	EXPECT_EQ(IOPFMAP_PAGE_RESP_PENDING, out);
	ASSERT_EQ(0, prq(e->fd, PRQ_R, IOVA_F + psz, 5, 0, &out));
	EXPECT_EQ(IOPFMAP_PAGE_RESP_PENDING, out);
	start_prq(_metadata, &jobs[0], e->fd, PRQ_W | PRQ_LAST,
		  IOVA_F + 2 * psz + 77, 5, 0);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1));
	EXPECT_EQ(3ULL, qi.out_records);

	/* Too small a buffer for the whole group; the group stays. */
	EXPECT_EQ(-EINVAL, read_recs(e->qfd, r, 2));
	EXPECT_EQ(-EINVAL, read_recs(e->qfd, r, 1));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1U, qi.out_pending);
	EXPECT_EQ(0ULL, qi.out_delivered);

	RECV_IN(e->qfd, r, 3, 3);
	check_record(_metadata, &r[0], e->ctx_id, 0, IOVA_F, PRQ_RW,
		     e->range_id);
	check_record(_metadata, &r[1], e->ctx_id, 0, IOVA_F + psz, PRQ_R,
		     e->range_id);
	check_record(_metadata, &r[2], e->ctx_id, REC_LAST, IOVA_F + 2 * psz,
		     PRQ_W, e->range_id);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(5U, r[i].grpid);
		EXPECT_EQ(r[0].cookie, r[i].cookie);
	}
	EXPECT_LE(r[0].time_ns, r[1].time_ns);
	EXPECT_LE(r[1].time_ns, r[2].time_ns);
	EXPECT_FALSE(job_done(&jobs[0]));
	RESPOND(e->qfd, r[0].cookie, SUCCESS);
	EXPECT_EQ((__u32)SUCCESS, prq_response(_metadata, &jobs[0]));
	EXPECT_EQ(0x7ULL, iopt_bits(e->fd, IOVA_F));

	/* Group 9, with a PASID, answered INVALID: nothing mapped. */
	ASSERT_EQ(0, prq(e->fd, PRQ_RW | IOPFMAP_PRQ_PASID, IOVA_F + 4 * psz, 9,
			 0x1234, &out));
	EXPECT_EQ(IOPFMAP_PAGE_RESP_PENDING, out);
	start_prq(_metadata, &jobs[1], e->fd,
		  PRQ_R | IOPFMAP_PRQ_PASID | PRQ_LAST, IOVA_F + 5 * psz, 9,
		  0x1234);
	RECV_IN(e->qfd, r, 2, 2);
	check_record(_metadata, &r[0], e->ctx_id, REC_PASID, IOVA_F + 4 * psz,
		     PRQ_RW, e->range_id);
	check_record(_metadata, &r[1], e->ctx_id, REC_PASID | REC_LAST,
		     IOVA_F + 5 * psz, PRQ_R, e->range_id);
	EXPECT_EQ(0x1234U, r[0].pasid);
	EXPECT_EQ(0x1234U, r[1].pasid);
	EXPECT_EQ(9U, r[1].grpid);
	EXPECT_EQ(r[0].cookie, r[1].cookie);
	RESPOND(e->qfd, r[0].cookie, INVALID);
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[1]));
	EXPECT_EQ(0x7ULL, iopt_bits(e->fd, IOVA_F));

	/* Two one-request groups wait together: one read takes both whole. */
	start_prq(_metadata, &jobs[2], e->fd, PRQ_RW | PRQ_LAST,
		  IOVA_F + 6 * psz, 20, 0);
	start_prq(_metadata, &jobs[3], e->fd, PRQ_R | PRQ_LAST,
		  IOVA_F + 7 * psz, 21, 0);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 2));
	RECV_IN(e->qfd, r, 3, 2);
	EXPECT_NE(r[0].cookie, r[1].cookie);
	for (i = 0; i < 2; i++) {
		bool first = r[i].grpid == 20;

		check_record(_metadata, &r[i], e->ctx_id, REC_LAST,
			     IOVA_F + (first ? 6 : 7) * psz,
			     first ? PRQ_RW : PRQ_R, e->range_id);
		resp[i] = (struct iopfmap_fault_response){
			.cookie = r[i].cookie,
			.code = first ? SUCCESS : INVALID,
		};
	}
	EXPECT_EQ((ssize_t)(2 * RESP_SZ), write_resps(e->qfd, resp, 2));
	EXPECT_EQ((__u32)SUCCESS, prq_response(_metadata, &jobs[2]));
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[3]));
	EXPECT_EQ(0x47ULL, iopt_bits(e->fd, IOVA_F));
	EXPECT_EQ(4, mapped_in(_metadata, e->fd, IOVA_F, e->len));

	st = iopfmap_get_stats(_metadata, e->fd, IOVA_F);
	EXPECT_EQ(7ULL, st.out_faults);
	EXPECT_EQ(7ULL, st.out_faults_forwarded);
	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(4ULL, qi.out_groups);
	EXPECT_EQ(7ULL, qi.out_records);
	EXPECT_EQ(4ULL, qi.out_delivered);
	EXPECT_EQ(2ULL, qi.out_resp_success);
	EXPECT_EQ(2ULL, qi.out_resp_invalid);
	EXPECT_EQ(0ULL, qi.out_resp_failure);
	expect_balanced(_metadata, &qi);
}

/*
 * ---------------------------------------------------------------------
 * Exactly one answer per group
 * ---------------------------------------------------------------------
 */

/* Delivers one single-request group from @j (page @page): its cookie. */
static __u64 deliver_one(struct __test_metadata *_metadata, struct env *e,
			 struct job *j, unsigned int page)
{
	start_prq(_metadata, j, e->fd, PRQ_RW | PRQ_LAST, IOVA_F + page * psz,
		  page, 0);
	RECV_IN(e->qfd, recs, 1, 1);
	check_record(_metadata, recs, e->ctx_id, REC_LAST, IOVA_F + page * psz,
		     PRQ_RW, e->range_id);
	return recs[0].cookie;
}

TEST_F(flat, exactly_once)
{
	struct env *e = &self->e;
	struct iopfmap_fault_response w[3];
	struct iopfmap_queue_info qi;
	__u64 a, b, c, d, refused = 0;
	char junk[48] = { 0 };

	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);

	/* A cookie that was never delivered. */
	EXPECT_EQ(-ENOENT, respond(e->qfd, 0xdeadbeefcafef00dULL, SUCCESS));
	EXPECT_EQ(-ENOENT, respond(e->qfd, 0, INVALID));
	refused += 2;
	EXPECT_EQ(refused, qinfo(_metadata, e->qfd).out_refused);

	a = deliver_one(_metadata, e, &jobs[0], 1);
	/*
	 * Unknown codes, PENDING included, change nothing; nor does FAILURE,
	 * which only the kernel could send (it turns PRI off).
	 */
	EXPECT_EQ(-EINVAL, respond(e->qfd, a, 2));
	EXPECT_EQ(-EINVAL, respond(e->qfd, a, 0xe));
	EXPECT_EQ(-EINVAL, respond(e->qfd, a, IOPFMAP_PAGE_RESP_PENDING));
	EXPECT_EQ(-EINVAL, respond(e->qfd, a, FAILURE));
	refused += 4;
	EXPECT_EQ(refused, qinfo(_metadata, e->qfd).out_refused);
	w[0] = (struct iopfmap_fault_response){
		.cookie = a, .code = SUCCESS, .__reserved = 1,
	};
	EXPECT_EQ(-EINVAL, write_resps(e->qfd, w, 1));
	refused = qinfo(_metadata, e->qfd).out_refused;
	/* Only whole responses. */
	memcpy(junk, &(struct iopfmap_fault_response){ .cookie = a }, RESP_SZ);
	EXPECT_EQ(-EINVAL, write_raw(e->qfd, junk, RESP_SZ - 1));
	EXPECT_EQ(-EINVAL, write_raw(e->qfd, junk, RESP_SZ + 1));
	EXPECT_EQ(-EINVAL, write_raw(e->qfd, junk, RESP_SZ + 8));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1U, qi.out_inflight);
	EXPECT_EQ(0ULL, qi.out_resp_success + qi.out_resp_invalid +
			qi.out_resp_failure);
	EXPECT_FALSE(job_done(&jobs[0]));
	EXPECT_EQ(0ULL, iopt_bits(e->fd, IOVA_F));

	/* Answered once; the second answer is refused. */
	RESPOND(e->qfd, a, SUCCESS);
	EXPECT_EQ((__u32)SUCCESS, prq_response(_metadata, &jobs[0]));
	EXPECT_EQ(-ENOENT, respond(e->qfd, a, SUCCESS));
	EXPECT_EQ(-ENOENT, respond(e->qfd, a, INVALID));
	refused += 2;
	EXPECT_EQ(refused, qinfo(_metadata, e->qfd).out_refused);
	EXPECT_EQ(0x2ULL, iopt_bits(e->fd, IOVA_F));

	/* Three responses, the second bad: only the first is applied. */
	b = deliver_one(_metadata, e, &jobs[1], 2);
	c = deliver_one(_metadata, e, &jobs[2], 3);
	w[0] = (struct iopfmap_fault_response){ .cookie = b, .code = SUCCESS };
	w[1] = (struct iopfmap_fault_response){ .cookie = c, .code = 7 };
	w[2] = (struct iopfmap_fault_response){ .cookie = c, .code = SUCCESS };
	EXPECT_EQ((ssize_t)RESP_SZ, write_resps(e->qfd, w, 3));
	refused++;
	EXPECT_EQ((__u32)SUCCESS, prq_response(_metadata, &jobs[1]));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1U, qi.out_inflight);
	EXPECT_EQ(refused, qi.out_refused);
	EXPECT_FALSE(job_done(&jobs[2]));
	/* c is still unanswered: INVALID reaches it, not the SUCCESS above. */
	RESPOND(e->qfd, c, INVALID);
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[2]));

	/* A refused first response: its errno, nothing applied. */
	d = deliver_one(_metadata, e, &jobs[3], 4);
	w[0] = (struct iopfmap_fault_response){ .cookie = c, .code = SUCCESS };
	w[1] = (struct iopfmap_fault_response){ .cookie = d, .code = SUCCESS };
	EXPECT_EQ(-ENOENT, write_resps(e->qfd, w, 2));
	refused++;
	EXPECT_FALSE(job_done(&jobs[3]));
	EXPECT_EQ(1U, qinfo(_metadata, e->qfd).out_inflight);
	RESPOND(e->qfd, d, INVALID);
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[3]));
	EXPECT_EQ(0x6ULL, iopt_bits(e->fd, IOVA_F));

	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(4ULL, qi.out_groups);
	EXPECT_EQ(2ULL, qi.out_resp_success);
	EXPECT_EQ(2ULL, qi.out_resp_invalid);
	EXPECT_EQ(0ULL, qi.out_resp_failure);
	EXPECT_EQ(refused, qi.out_refused);
	EXPECT_EQ(0U, qi.out_pending + qi.out_inflight);
	expect_balanced(_metadata, &qi);
}

/*
 * ---------------------------------------------------------------------
 * A full queue, a timeout, close
 * ---------------------------------------------------------------------
 */

#define NFULL	3

/* How many of the first NFULL jobs ended; *@last gets the last such. */
static unsigned int ndone_of(unsigned int *last)
{
	unsigned int i, n = 0;

	for (i = 0; i < NFULL; i++)
		if (job_done(&jobs[i])) {
			n++;
			*last = i;
		}
	return n;
}

TEST_F(nested, queue_full)
{
	struct env *e = &self->e;
	char *out = alloc_zero(NFULL + 1);
	struct iopfmap_fault_record *r = recs;
	struct iopfmap_queue_info qi;
	unsigned int i, overflowed = 0, page;
	__u64 end;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 2, 0);
	for (i = 0; i < NFULL; i++)
		start_dma(_metadata, &jobs[i], e->fd, DMA_READ, S1_X + i * psz,
			  pg(out, i), psz);

	/* Two are held; the third is answered INVALID at once. */
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_groups == NFULL))
		TH_LOG("%llu groups arrived",
		       (unsigned long long)qi.out_groups);
	EXPECT_EQ(2U, qi.out_pending);
	EXPECT_EQ(1ULL, qi.out_overflows);
	/* Its DMA ends by itself; give the others time to (wrongly) end. */
	end = now_ns() + WAIT_MS * 1000000ULL;
	while (!ndone_of(&overflowed) && now_ns() < end)
		iopfmap_sleep_ms(1);
	iopfmap_sleep_ms(QUIET_MS);
	ASSERT_EQ(1U, ndone_of(&overflowed));
	expect_dma(_metadata, &jobs[overflowed], IOPFMAP_SIM_DMA_S1_FAULT);

	/* Serve the two held ones. */
	RECV(e->qfd, r, 2);
	for (i = 0; i < 2; i++) {
		page = (r[i].addr - S1_X) / psz;
		ASSERT_GT(NFULL, (int)page);
		EXPECT_NE(overflowed, page);
		check_record(_metadata, &r[i], e->ctx_id, REC_S1,
			     S1_X + page * psz, IOPFMAP_PRQ_READ, 0);
		ASSERT_EQ(0, s1_map(e->fd, S1_X + page * psz,
				    S1_IPA + page * psz, psz));
		RESPOND(e->qfd, r[i].cookie, SUCCESS);
	}
	for (i = 0; i < NFULL; i++) {
		if (i == overflowed)
			continue;
		expect_dma(_metadata, &jobs[i], IOPFMAP_SIM_DMA_OK);
		same(_metadata, "DMA read", pg(out, i), pg(e->ref, i), psz);
	}

	/* There is room again. */
	start_dma(_metadata, &jobs[NFULL], e->fd, DMA_READ,
		  S1_X + overflowed * psz, pg(out, NFULL), psz);
	RECV(e->qfd, r, 1);
	check_record(_metadata, r, e->ctx_id, REC_S1, S1_X + overflowed * psz,
		     IOPFMAP_PRQ_READ, 0);
	RESPOND(e->qfd, r->cookie, INVALID);
	expect_dma(_metadata, &jobs[NFULL], IOPFMAP_SIM_DMA_S1_FAULT);

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ((__u64)NFULL + 1, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_overflows);
	EXPECT_EQ(2ULL, qi.out_resp_success);
	EXPECT_EQ(1ULL, qi.out_resp_invalid);
	expect_balanced(_metadata, &qi);
	/* Stage 1: 2 SUCCESS, 2 INVALID; stage 2: 2 SUCCESS. */
	expect_sim_answers(_metadata, e->fd, 4, 2, 0);
}

/*
 * The test must read the group before the timeout takes it: long enough
 * for a descheduled test, short enough to wait for twice.
 */
#define EXPIRY_TEST_MS	2000

TEST_F(nested, timeout)
{
	struct env *e = &self->e;
	struct job *a = &jobs[0], *b = &jobs[1];
	char *out = alloc_zero(2);
	struct iopfmap_queue_info qi;
	__u64 t0, cookie;
	ssize_t n;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, IOPFMAP_QUEUE_NONBLOCK, 0,
			   EXPIRY_TEST_MS);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ((__u32)EXPIRY_TEST_MS, qi.out_timeout_ms);

	/* Delivered and never answered. */
	t0 = now_ns();
	start_dma(_metadata, a, e->fd, DMA_READ, S1_X, out, psz);
	/*
	 * The group or its timeout, then a read() that does not block
	 * (NONBLOCK): if the test was descheduled for the whole timeout and
	 * the group expired first, it fails at once instead of hanging.
	 */
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending || qi.out_timeouts));
	n = read(e->qfd, recs, GROUP_MAX * REC_SZ);
	ASSERT_EQ((ssize_t)REC_SZ, n)
		TH_LOG("read: %s (the group expired first? it has %d ms)",
		       n < 0 ? strerror(errno) : "other count", EXPIRY_TEST_MS);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X,
		     IOPFMAP_PRQ_READ, 0);
	cookie = recs[0].cookie;
	expect_dma(_metadata, a, IOPFMAP_SIM_DMA_S1_FAULT);
	/* Not before its time (jiffies may round it down a little). */
	EXPECT_LE((EXPIRY_TEST_MS - 100) * 1000000ULL, now_ns() - t0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1ULL, qi.out_timeouts);
	EXPECT_EQ(0U, qi.out_inflight);
	/* Too late. */
	EXPECT_EQ(-ENOENT, respond(e->qfd, cookie, SUCCESS));
	EXPECT_EQ(1ULL, qinfo(_metadata, e->qfd).out_refused);

	/* Never delivered either. */
	start_dma(_metadata, b, e->fd, DMA_READ, S1_X + psz, pg(out, 1), psz);
	expect_dma(_metadata, b, IOPFMAP_SIM_DMA_S1_FAULT);
	all_zero(_metadata, "out", out, 2 * psz);

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(2ULL, qi.out_groups);
	EXPECT_EQ(2ULL, qi.out_timeouts);
	EXPECT_EQ(0U, qi.out_pending + qi.out_inflight);
	EXPECT_EQ(0ULL, qi.out_resp_success + qi.out_resp_invalid +
			qi.out_resp_failure);
	expect_balanced(_metadata, &qi);
	expect_sim_answers(_metadata, e->fd, 0, 2, 0);
}

/* Closing the queue answers every group it holds, delivered or not. */
TEST_F(nested, close_answers_all)
{
	struct env *e = &self->e;
	char *out = alloc_zero(3);
	struct iopfmap_queue_info qi;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X, out, psz);
	start_dma(_metadata, &jobs[1], e->fd, DMA_READ, S1_X + psz,
		  pg(out, 1), psz);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 2));
	RECV_IN(e->qfd, recs, 1, 1);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1U, qi.out_pending);
	EXPECT_EQ(1U, qi.out_inflight);

	ASSERT_EQ(0, close(e->qfd));
	e->qfd = -1;
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_S1_FAULT);
	expect_dma(_metadata, &jobs[1], IOPFMAP_SIM_DMA_S1_FAULT);
	expect_sim_answers(_metadata, e->fd, 0, 2, 0);

	/* A new queue serves the next fault. */
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(0ULL, qi.out_groups);
	start_dma(_metadata, &jobs[2], e->fd, DMA_READ, S1_X + 2 * psz,
		  pg(out, 2), psz);
	RECV(e->qfd, recs, 1);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + 2 * psz,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X + 2 * psz, S1_IPA + 3 * psz, psz));
	RESPOND(e->qfd, recs[0].cookie, SUCCESS);
	expect_dma(_metadata, &jobs[2], IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", pg(out, 2), pg(e->ref, 3), psz);
	all_zero(_metadata, "refused DMAs", out, 2 * psz);
	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
}

/* The same for FORWARD groups: INVALID, and nothing mapped. */
TEST_F(flat, close_answers_forward_groups)
{
	struct env *e = &self->e;
	struct iopfmap_queue_info qi;
	struct iopfmap_stats st;

	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	start_prq(_metadata, &jobs[0], e->fd, PRQ_RW | PRQ_LAST, IOVA_F, 1, 0);
	start_prq(_metadata, &jobs[1], e->fd, PRQ_RW | PRQ_LAST,
		  IOVA_F + psz, 2, 0);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 2));
	RECV_IN(e->qfd, recs, 1, 1);
	ASSERT_EQ(0, close(e->qfd));
	e->qfd = -1;
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[0]));
	EXPECT_EQ((__u32)INVALID, prq_response(_metadata, &jobs[1]));
	EXPECT_EQ(0ULL, iopt_bits(e->fd, IOVA_F));
	st = iopfmap_get_stats(_metadata, e->fd, IOVA_F);
	EXPECT_EQ(2ULL, st.out_faults_forwarded);
	EXPECT_EQ(0ULL, st.out_faults_handled);
	expect_sim_answers(_metadata, e->fd, 0, 2, 0);
}

/*
 * ---------------------------------------------------------------------
 * A serving process that dies; a queue passed to another process
 * ---------------------------------------------------------------------
 */

/*
 * The child's half of server_exits: reads one group, takes another with an
 * io_uring FETCH and arms more, reports 'R' on @pipe_w, then exits (or
 * waits for SIGKILL) without answering anything.
 */
static int dying_server(int qfd, int pipe_w, bool wait_for_kill)
{
	struct io_uring ring;
	__u64 ud;
	int i, res;
	char c = 'R';

	if (read_recs(qfd, recs, 1) != 1)
		return 10;
	if (io_uring_queue_init(8, &ring, 0))
		return 11;
	for (i = 0; i < 4; i++)
		if (prep_fetch(&ring, qfd, i, slot_recs[i], GROUP_MAX, 0, i))
			return 12;
	if (io_uring_submit(&ring) != 4)
		return 13;
	if (next_cqe(&ring, WAIT_MS, &ud, &res) || res != 1)
		return 14;
	if (write(pipe_w, &c, 1) != 1)
		return 15;
	if (wait_for_kill)
		for (;;)
			pause();
	/* Exit with two groups in flight and three FETCHes armed. */
	return 0;
}

/* Waits up to WAIT_MS for @pid to end: its wait status, or -1. */
static int reap(pid_t pid)
{
	__u64 end = now_ns() + WAIT_MS * 1000000ULL;
	int status;
	pid_t ret;

	while ((ret = waitpid(pid, &status, WNOHANG)) == 0 && now_ns() < end)
		iopfmap_sleep_ms(2);
	return ret == pid ? status : -1;
}

static void server_exits(struct __test_metadata *_metadata, struct env *e,
			 bool sigkill)
{
	struct iopfmap_queue_info qi;
	char *out = alloc_zero(3), c = 0;
	struct pollfd p;
	int pipefd[2], status, qfd;
	pid_t pid;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 8, 0);
	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X, out, psz);
	start_dma(_metadata, &jobs[1], e->fd, DMA_WRITE, S1_X + psz,
		  pg(out, 1), psz);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 2));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(e->fd);
		close(pipefd[0]);
		_exit(dying_server(e->qfd, pipefd[1], sigkill));
	}
	e->child = pid;
	close(pipefd[1]);
	/* The child is the queue's only holder now. */
	close(e->qfd);
	e->qfd = -1;

	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, WAIT_MS))
		TH_LOG("the child never got its groups");
	EXPECT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	if (c != 'R') {
		status = reap(pid);
		e->child = 0;
		ASSERT_EQ('R', c)
			TH_LOG("child failed: wait status %#x", status);
	}
	if (sigkill)
		kill(pid, SIGKILL);
	status = reap(pid);
	ASSERT_NE(-1, status)
		TH_LOG("the serving process did not finish exiting");
	e->child = 0;
	if (sigkill) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("wait status %#x", status);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("wait status %#x", status);
	}

	/* Its groups were answered INVALID when its last fd went. */
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_S1_FAULT);
	expect_dma(_metadata, &jobs[1], IOPFMAP_SIM_DMA_S1_FAULT);
	all_zero(_metadata, "out", out, psz);
	same(_metadata, "buf", e->buf, e->ref, e->len);

	/* The armed commands went too: the context gets a new queue. */
	qfd = new_queue_eventually(_metadata, e->fd);
	e->qfd = qfd;
	start_dma(_metadata, &jobs[2], e->fd, DMA_READ, S1_X + 2 * psz,
		  pg(out, 2), psz);
	RECV(qfd, recs, 1);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + 2 * psz,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X + 2 * psz, S1_IPA + 4 * psz, psz));
	RESPOND(qfd, recs[0].cookie, SUCCESS);
	expect_dma(_metadata, &jobs[2], IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", pg(out, 2), pg(e->ref, 4), psz);
	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
}

TEST_F(nested, server_exits)
{
	server_exits(_metadata, &self->e, false);
}

TEST_F(nested, server_killed)
{
	server_exits(_metadata, &self->e, true);
}

/* What the SCM_RIGHTS test's two processes tell each other. */
enum { MSG_QUEUE = 1, MSG_GOT, MSG_MAPPED, MSG_COMMITTED, MSG_BYE };

struct msg {
	__u32 what;
	__u32 ctx_id;
	struct iopfmap_fault_record rec;
};

static int send_msg(int sock, __u32 what, __u32 ctx_id,
		    const struct iopfmap_fault_record *rec, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct msg m = { .what = what, .ctx_id = ctx_id };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (rec)
		m.rec = *rec;
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, 0) == sizeof(m) ? 0 : -EIO;
}

/* Receives one message within WAIT_MS, and a descriptor if @fd. */
static int recv_msg(int sock, struct msg *m, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cm;

	if (poll(&p, 1, WAIT_MS) != 1)
		return -ETIMEDOUT;
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != sizeof(*m))
		return -EIO;
	if (fd) {
		cm = CMSG_FIRSTHDR(&mh);
		if (!cm || cm->cmsg_type != SCM_RIGHTS)
			return -EBADF;
		memcpy(fd, CMSG_DATA(cm), sizeof(int));
	}
	return 0;
}

/*
 * The child's half of uring_scm_rights: it has no context, only the queue
 * fd it receives, and serves two faults through one io_uring slot.
 */
static int scm_server(int sock)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };
	struct iopfmap_fault_record *r = &slot_recs[0][0];
	struct io_uring ring;
	struct msg m;
	int qfd, res;
	__u64 ud;

	if (recv_msg(sock, &m, &qfd) || m.what != MSG_QUEUE)
		return 20;
	if (_test_ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi) ||
	    qi.out_ctx_id != m.ctx_id)
		return 21;
	if (io_uring_queue_init(8, &ring, 0))
		return 22;
	if (prep_fetch(&ring, qfd, 0, slot_recs[0], GROUP_MAX, 0, 1) ||
	    io_uring_submit(&ring) != 1)
		return 23;
	if (next_cqe(&ring, WAIT_MS, &ud, &res) || ud != 1 || res != 1)
		return 24;
	if (send_msg(sock, MSG_GOT, 0, r, -1))
		return 25;
	if (recv_msg(sock, &m, NULL) || m.what != MSG_MAPPED)
		return 26;
	if (prep_commit(&ring, qfd, 0, r->cookie, SUCCESS, 0, 2) ||
	    io_uring_submit(&ring) != 1)
		return 27;
	if (send_msg(sock, MSG_COMMITTED, 0, NULL, -1))
		return 28;
	/* The commit re-armed slot 0: the next fault completes it. */
	if (next_cqe(&ring, WAIT_MS, &ud, &res) || ud != 2 || res != 1)
		return 29;
	if (prep_commit(&ring, qfd, 0, r->cookie, INVALID, 0, 3) ||
	    io_uring_submit(&ring) != 1)
		return 30;
	if (send_msg(sock, MSG_GOT, 0, r, -1))
		return 31;
	if (recv_msg(sock, &m, NULL) || m.what != MSG_BYE)
		return 32;
	/* Exits with the last commit armed: exit must cancel it. */
	return 0;
}

TEST_F(nested, uring_scm_rights)
{
	struct env *e = &self->e;
	char *out = alloc_zero(1), *src = alloc_pages(1, 19);
	struct msg m;
	int sv[2], status;
	pid_t pid;

	ASSERT_TRUE(out && src);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	/* Forked before the queue exists: the child has only what it gets. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(e->fd);
		close(sv[0]);
		_exit(scm_server(sv[1]));
	}
	e->child = pid;
	close(sv[1]);

	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	ASSERT_EQ(0, send_msg(sv[0], MSG_QUEUE, e->ctx_id, NULL, e->qfd));
	close(e->qfd);
	e->qfd = -1;

	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X, out, psz);
	ASSERT_EQ(0, recv_msg(sv[0], &m, NULL))
		TH_LOG("child: wait status %#x", reap(pid));
	ASSERT_EQ((__u32)MSG_GOT, m.what);
	check_record(_metadata, &m.rec, e->ctx_id, REC_S1, S1_X,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X, S1_IPA + 9 * psz, psz));
	ASSERT_EQ(0, send_msg(sv[0], MSG_MAPPED, 0, NULL, -1));
	ASSERT_EQ(0, recv_msg(sv[0], &m, NULL));
	ASSERT_EQ((__u32)MSG_COMMITTED, m.what);
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", out, pg(e->ref, 9), psz);

	start_dma(_metadata, &jobs[1], e->fd, DMA_WRITE, S1_X + psz, src, psz);
	ASSERT_EQ(0, recv_msg(sv[0], &m, NULL))
		TH_LOG("child: wait status %#x", reap(pid));
	ASSERT_EQ((__u32)MSG_GOT, m.what);
	check_record(_metadata, &m.rec, e->ctx_id, REC_S1, S1_X + psz,
		     IOPFMAP_PRQ_WRITE, 0);
	expect_dma(_metadata, &jobs[1], IOPFMAP_SIM_DMA_S1_FAULT);
	same(_metadata, "buf", e->buf, e->ref, e->len);

	ASSERT_EQ(0, send_msg(sv[0], MSG_BYE, 0, NULL, -1));
	status = reap(pid);
	e->child = 0;
	EXPECT_TRUE(status != -1 && WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child: wait status %#x", status);
	close(sv[0]);

	/* Its armed commit was cancelled: the context can get a new queue. */
	e->qfd = new_queue_eventually(_metadata, e->fd);
	expect_sim_answers(_metadata, e->fd, 2, 1, 0);
}

/*
 * ---------------------------------------------------------------------
 * The context goes first
 * ---------------------------------------------------------------------
 */

TEST_F(nested, context_gone)
{
	struct env *e = &self->e;
	struct iopfmap_queue_info qi;
	char *out = alloc_zero(1);
	struct pollfd p;
	ssize_t n;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);
	RING_INIT(e);
	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X, out, psz);
	RECV(e->qfd, recs, 1);
	ASSERT_EQ(0, s1_map(e->fd, S1_X, S1_IPA, psz));
	RESPOND(e->qfd, recs[0].cookie, SUCCESS);
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_OK);
	EXPECT_EQ(0U, qinfo(_metadata, e->qfd).out_flags);

	ASSERT_EQ(0, close(e->fd));
	e->fd = -1;

	p = (struct pollfd){ .fd = e->qfd, .events = POLLIN | POLLOUT };
	ASSERT_EQ(1, poll(&p, 1, WAIT_MS));
	EXPECT_TRUE(p.revents & POLLHUP) TH_LOG("revents %#x", p.revents);
	n = read(e->qfd, recs, GROUP_MAX * REC_SZ);
	EXPECT_EQ(0, n) TH_LOG("read: %zd (%s)", n,
			       n < 0 ? strerror(errno) : "");
	ASSERT_EQ(0, queue_info(e->qfd, &qi));
	EXPECT_EQ((__u32)IOPFMAP_QUEUE_CTX_GONE, qi.out_flags);
	EXPECT_EQ(e->ctx_id, qi.out_ctx_id);
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	expect_balanced(_metadata, &qi);

	FETCH(&e->ring, e->qfd, 0, slot_recs[0], GROUP_MAX, 0, UD_FETCH);
	EXPECT_CQE(&e->ring, UD_FETCH, -ENODEV);
}

/*
 * ---------------------------------------------------------------------
 * poll, O_NONBLOCK, blocking read
 * ---------------------------------------------------------------------
 */

static short poll_now(int qfd)
{
	struct pollfd p = { .fd = qfd, .events = POLLIN | POLLOUT };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

struct reader {
	int qfd;
	pid_t tid;		/* atomic */
	int n;			/* records read, or -errno */
	pthread_t thread;
};

static struct reader reader;

static void *reader_thread(void *arg)
{
	struct reader *rd = arg;
	ssize_t n;

	__atomic_store_n(&rd->tid, gettid(), __ATOMIC_RELEASE);
	n = read(rd->qfd, recs, GROUP_MAX * REC_SZ);
	rd->n = n < 0 ? -errno : (int)(n / REC_SZ);
	return NULL;
}

/* Thread @tid sleeps in read() (syscall 0 on x86-64, when /proc says). */
static bool sleeps_in_read(pid_t tid)
{
	char path[64], buf[512], *s;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	s = fgets(buf, sizeof(buf), f);
	fclose(f);
	s = s ? strrchr(buf, ')') : NULL;
	if (!s || s[1] != ' ' || s[2] != 'S')
		return false;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = SYS_read;
	fclose(f);
	return nr == SYS_read;
}

/* read() without waiting: records read, or -errno. */
static int read_now(int qfd, size_t max)
{
	ssize_t n = read(qfd, recs, max * REC_SZ);

	if (n < 0)
		return -errno;
	return n % REC_SZ ? -EPROTO : (int)(n / REC_SZ);
}

TEST_F(nested, poll_and_read)
{
	struct env *e = &self->e;
	struct epoll_event ev = { .events = EPOLLIN }, got;
	struct reader *rd = &reader;
	char *out = alloc_zero(3);
	struct iopfmap_queue_info qi;
	__u64 cookie, end;
	int ep, fl;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, IOPFMAP_QUEUE_NONBLOCK, 0, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, e->qfd, &ev));

	/* Empty: writable, not readable; read() says EAGAIN. */
	EXPECT_EQ(POLLOUT, poll_now(e->qfd));
	EXPECT_EQ(0, epoll_wait(ep, &got, 1, 0));
	EXPECT_EQ(-EAGAIN, read_now(e->qfd, GROUP_MAX));

	/* Readable exactly while an undelivered group waits. */
	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X, out, psz);
	ASSERT_EQ(1, epoll_wait(ep, &got, 1, WAIT_MS));
	EXPECT_EQ((__u32)EPOLLIN, got.events & EPOLLIN);
	EXPECT_EQ(POLLIN | POLLOUT, poll_now(e->qfd));
	ASSERT_EQ(1, read_now(e->qfd, GROUP_MAX));
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X,
		     IOPFMAP_PRQ_READ, 0);
	cookie = recs[0].cookie;
	/* Delivered and unanswered is not readable. */
	EXPECT_EQ(POLLOUT, poll_now(e->qfd));
	EXPECT_EQ(0, epoll_wait(ep, &got, 1, 0));
	EXPECT_EQ(-EAGAIN, read_now(e->qfd, GROUP_MAX));

	start_dma(_metadata, &jobs[1], e->fd, DMA_READ, S1_X + psz, pg(out, 1),
		  psz);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1));
	EXPECT_EQ(POLLIN | POLLOUT, poll_now(e->qfd));
	ASSERT_EQ(1, read_now(e->qfd, GROUP_MAX));
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + psz,
		     IOPFMAP_PRQ_READ, 0);
	EXPECT_EQ(POLLOUT, poll_now(e->qfd));
	ASSERT_EQ(0, s1_map(e->fd, S1_X + psz, S1_IPA + psz, psz));
	RESPOND(e->qfd, recs[0].cookie, SUCCESS);
	RESPOND(e->qfd, cookie, INVALID);
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_S1_FAULT);
	expect_dma(_metadata, &jobs[1], IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", pg(out, 1), pg(e->ref, 1), psz);
	EXPECT_EQ(POLLOUT, poll_now(e->qfd));
	close(ep);

	/* A blocking read() sleeps until a fault arrives. */
	fl = fcntl(e->qfd, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(e->qfd, F_SETFL, fl & ~O_NONBLOCK));
	rd->qfd = e->qfd;
	ASSERT_EQ(0, pthread_create(&rd->thread, NULL, reader_thread, rd));
	end = now_ns() + WAIT_MS * 1000000ULL;
	while (!(__atomic_load_n(&rd->tid, __ATOMIC_ACQUIRE) &&
		 sleeps_in_read(rd->tid)) && now_ns() < end)
		iopfmap_sleep_ms(1);
	ASSERT_TRUE(sleeps_in_read(rd->tid))
		TH_LOG("the reader does not sleep in read()");
	start_dma(_metadata, &jobs[2], e->fd, DMA_WRITE, S1_X + 2 * psz,
		  pg(out, 2), psz);
	ASSERT_EQ(0, timed_join(rd->thread))
		TH_LOG("a fault did not wake the blocking read()");
	ASSERT_EQ(1, rd->n) TH_LOG("read: %s", rd->n < 0 ? strerror(-rd->n) :
				   "not one record");
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + 2 * psz,
		     IOPFMAP_PRQ_WRITE, 0);
	RESPOND(e->qfd, recs[0].cookie, INVALID);
	expect_dma(_metadata, &jobs[2], IOPFMAP_SIM_DMA_S1_FAULT);
	same(_metadata, "buf", e->buf, e->ref, e->len);

	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(3ULL, qi.out_groups);
	EXPECT_EQ(3ULL, qi.out_delivered);
	expect_balanced(_metadata, &qi);
	expect_sim_answers(_metadata, e->fd, 2, 2, 0);
}

/*
 * ---------------------------------------------------------------------
 * A device that gives up: its caller gets a fatal signal
 * ---------------------------------------------------------------------
 */

/* Forks a process that runs one DMA read at @iova on the context. */
static pid_t fork_dma(struct env *e, __u64 iova, char *buf)
{
	struct iopfmap_sim_dma d;
	pid_t pid = fork();

	if (pid)
		return pid;
	/* Only the context: the queue's holder is the parent. */
	close(e->qfd);
	_test_sim_dma(e->fd, &d, DMA_READ, iova, buf, psz);
	_exit(d.out_status == IOPFMAP_SIM_DMA_OK ? 0 : 1);
}

/* SIGKILLs @pid, which must then end by that signal. */
static void kill_child(struct __test_metadata *_metadata, struct env *e,
		       pid_t pid)
{
	int status;

	ASSERT_EQ(0, kill(pid, SIGKILL));
	status = reap(pid);
	e->child = 0;
	ASSERT_NE(-1, status) TH_LOG("the killed DMA did not end");
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		TH_LOG("wait status %#x", status);
}

TEST_F(nested, withdraw_on_fatal_signal)
{
	struct env *e = &self->e;
	struct iopfmap_queue_info qi;
	struct iopfmap_sim_stats ss;
	char *out = alloc_zero(3);
	__u64 cookie;

	ASSERT_TRUE(out != NULL);
	e->qfd = new_queue(_metadata, e->fd, 0, 0, 0);

	/* Waiting, not delivered yet: it leaves the queue. */
	e->child = fork_dma(e, S1_X, out);
	ASSERT_LT(0, e->child);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1));
	kill_child(_metadata, e, e->child);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_withdrawn == 1))
		TH_LOG("withdrawn %llu pending %u",
		       (unsigned long long)qi.out_withdrawn, qi.out_pending);
	EXPECT_EQ(0U, qi.out_pending);
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(POLLOUT, poll_now(e->qfd));

	/* Delivered: the answer comes too late. */
	e->child = fork_dma(e, S1_X + psz, out);
	ASSERT_LT(0, e->child);
	RECV(e->qfd, recs, 1);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + psz,
		     IOPFMAP_PRQ_READ, 0);
	cookie = recs[0].cookie;
	kill_child(_metadata, e, e->child);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_withdrawn == 2));
	EXPECT_EQ(0U, qi.out_inflight);
	EXPECT_EQ(-ENOENT, respond(e->qfd, cookie, SUCCESS));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1ULL, qi.out_refused);
	EXPECT_EQ(0ULL, qi.out_resp_success + qi.out_resp_invalid +
			qi.out_resp_failure);
	expect_balanced(_metadata, &qi);

	/* The device was never answered for them. */
	ss = get_sim_stats(_metadata, e->fd);
	expect_sim_balanced(_metadata, &ss);
	EXPECT_EQ(2ULL, ss.out_withdrawn);
	EXPECT_EQ(2ULL, ss.out_page_requests);
	EXPECT_EQ(0ULL, ss.out_responses);

	/* The queue still serves. */
	start_dma(_metadata, &jobs[0], e->fd, DMA_READ, S1_X + 2 * psz,
		  pg(out, 2), psz);
	RECV(e->qfd, recs, 1);
	check_record(_metadata, recs, e->ctx_id, REC_S1, S1_X + 2 * psz,
		     IOPFMAP_PRQ_READ, 0);
	ASSERT_EQ(0, s1_map(e->fd, S1_X + 2 * psz, S1_IPA + 6 * psz, psz));
	RESPOND(e->qfd, recs[0].cookie, SUCCESS);
	expect_dma(_metadata, &jobs[0], IOPFMAP_SIM_DMA_OK);
	same(_metadata, "DMA read", pg(out, 2), pg(e->ref, 6), psz);
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(3ULL, qi.out_groups);
	EXPECT_EQ(2ULL, qi.out_withdrawn);
	expect_balanced(_metadata, &qi);
}

/*
 * ---------------------------------------------------------------------
 * fail_nth: the queue's commands with each injection point failing
 * ---------------------------------------------------------------------
 *
 * A flat context with a FORWARD range, a fresh queue and ring each run,
 * and one page request (a helper thread) whose group the command under
 * test handles. Whatever fails, the group is answered exactly once: a
 * command that failed left it where it was (waiting, or delivered and
 * unanswered), so that the test can still take it and answer it.
 */
FIXTURE(queue_fail_nth)
{
	struct env e;
	struct fi_nth nth;
	long refcnt;
};

FIXTURE_SETUP(queue_fail_nth)
{
	const char *why = fi_unavailable();

	self->nth.fd = -1;
	self->e.fd = -1;
	self->e.qfd = -1;
	if (why)
		SKIP(return, "%s", why);
	self->refcnt = fi_module_refcnt();
	env_setup(_metadata, &self->e, false);
	why = fi_begin(_metadata, &self->nth);
	ASSERT_EQ(NULL, why) TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(queue_fail_nth)
{
	fi_end(_metadata, &self->nth);
	env_teardown(&self->e);
	if (self->refcnt > 0)
		fi_expect_idle(_metadata, self->refcnt);
}

/* The run's queue, ring and waiting page request (grpid @run). */
static void nth_run_start(struct __test_metadata *_metadata, struct env *e,
			  unsigned int run, bool request)
{
	struct iopfmap_queue_info qi;

	e->qfd = new_queue_eventually(_metadata, e->fd);
	ASSERT_EQ(0, io_uring_queue_init(8, &e->ring, 0));
	e->ring_ok = true;
	if (!request)
		return;
	start_prq(_metadata, &jobs[0], e->fd, PRQ_R | PRQ_LAST,
		  IOVA_F + (run % BUF_PAGES) * psz, run & 0x1ff, 0);
	ASSERT_TRUE(WAIT_QINFO(e->qfd, qi, qi.out_pending == 1));
}

/*
 * Submits what was prepared with the injection armed, then without it if
 * the armed io_uring_enter() took nothing: 1, or -errno.
 */
static int nth_submit(struct __test_metadata *_metadata, struct env *e,
		      struct fi_nth *nth, bool *fired)
{
	int s;

	fi_nth_arm(_metadata, nth);
	s = io_uring_submit(&e->ring);
	*fired = fi_nth_fired(_metadata, nth);
	if (s == 1)
		return 1;
	EXPECT_TRUE(*fired && (s == -ENOMEM || s == -EAGAIN || s == -EFAULT))
		TH_LOG("run %u: io_uring_submit: %d", nth->n, s);
	return io_uring_submit(&e->ring);
}

/* The run's group, answered SUCCESS once; the queue balanced; all gone. */
static void nth_run_end(struct __test_metadata *_metadata, struct env *e,
			unsigned int run, __u64 cookie, bool answered)
{
	struct iopfmap_queue_info qi;

	if (!answered) {
		EXPECT_EQ(0, respond(e->qfd, cookie, SUCCESS))
			TH_LOG("run %u: the group was answered already, or lost",
			       run);
	}
	EXPECT_EQ((__u32)SUCCESS, prq_response(_metadata, &jobs[0]));
	qi = qinfo(_metadata, e->qfd);
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_resp_success);
	EXPECT_EQ(0U, qi.out_pending);
	EXPECT_EQ(0U, qi.out_inflight);
	expect_balanced(_metadata, &qi);
	io_uring_queue_exit(&e->ring);
	e->ring_ok = false;
	close(e->qfd);
	e->qfd = -1;
}

/*
 * The records of the run's group reached userspace: from the command, or,
 * when it failed, from read() (the group went back).
 */
static __u64 nth_take_group(struct __test_metadata *_metadata, struct env *e,
			    unsigned int run, int res, bool fired)
{
	const struct iopfmap_fault_record *r = slot_recs[0];

	if (res != 1) {
		EXPECT_TRUE(fired && fi_injected_errno(res))
			TH_LOG("run %u: FETCH ended %d", run, res);
		RECV(e->qfd, recs, 1);
		r = recs;
	}
	check_record(_metadata, r, e->ctx_id, REC_LAST,
		     IOVA_F + (run % BUF_PAGES) * psz, PRQ_R, e->range_id);
	EXPECT_EQ(run & 0x1ff, r->grpid);
	return r->cookie;
}

/* FETCH with a group waiting: completed at once, in the submitter. */
TEST_F(queue_fail_nth, fetch_waiting_group)
{
	struct env *e = &self->e;
	__u64 ud, cookie;
	int res = 0;
	bool fired;

	FI_SWEEP(&self->nth) {
		nth_run_start(_metadata, e, self->nth.n, true);
		ASSERT_EQ(0, prep_fetch(&e->ring, e->qfd, 0, slot_recs[0],
					GROUP_MAX, 0, UD_FETCH));
		ASSERT_EQ(1, nth_submit(_metadata, e, &self->nth, &fired));
		ASSERT_EQ(0, next_cqe(&e->ring, WAIT_MS, &ud, &res));
		cookie = nth_take_group(_metadata, e, self->nth.n, res, fired);
		nth_run_end(_metadata, e, self->nth.n, cookie, false);
		if (!fired)
			break;
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/*
 * FETCH parked before the group comes: the records are written by task
 * work in the submitter, which the counter follows into io_uring_enter().
 */
TEST_F(queue_fail_nth, fetch_parked)
{
	struct env *e = &self->e;
	__u64 ud, cookie;
	int res = 0, gate, got;
	bool fired;

	FI_SWEEP(&self->nth) {
		nth_run_start(_metadata, e, self->nth.n, false);
		ASSERT_EQ(0, prep_fetch(&e->ring, e->qfd, 0, slot_recs[0],
					GROUP_MAX, 0, UD_FETCH));
		/*
		 * The request's thread exists before the counter is armed
		 * (creating it is a point too) and starts at the gate.
		 */
		gate = 0;
		start_gated_prq(_metadata, &jobs[0], e->fd, PRQ_R | PRQ_LAST,
				IOVA_F + (self->nth.n % BUF_PAGES) * psz,
				self->nth.n & 0x1ff, 0, &gate);
		fi_nth_arm(_metadata, &self->nth);
		res = io_uring_submit(&e->ring);
		if (res != 1)
			EXPECT_EQ(1, io_uring_submit(&e->ring));
		__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
		/*
		 * The wait itself may be what failed (copying its timeout
		 * in): then it is waited for again, the count used up.
		 */
		got = next_cqe(&e->ring, WAIT_MS, &ud, &res);
		fired = fi_nth_fired(_metadata, &self->nth);
		if (got && got != -ETIME && fired)
			got = next_cqe(&e->ring, WAIT_MS, &ud, &res);
		ASSERT_EQ(0, got) TH_LOG("run %u: no completion: %s",
					 self->nth.n, strerror(-got));
		cookie = nth_take_group(_metadata, e, self->nth.n, res, fired);
		nth_run_end(_metadata, e, self->nth.n, cookie, false);
		if (!fired)
			break;
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/*
 * COMMIT_AND_FETCH of a delivered group: it ends with an errno and the
 * group unanswered, or the group answered and the slot parked again.
 */
TEST_F(queue_fail_nth, commit_and_fetch)
{
	struct env *e = &self->e;
	__u64 ud = 0, cookie;
	int res = 0, got;
	bool fired;

	FI_SWEEP(&self->nth) {
		nth_run_start(_metadata, e, self->nth.n, true);
		FETCH(&e->ring, e->qfd, 0, slot_recs[0], GROUP_MAX, 0,
		      UD_FETCH);
		ASSERT_EQ(0, next_cqe(&e->ring, WAIT_MS, &ud, &res));
		cookie = nth_take_group(_metadata, e, self->nth.n, res, false);
		ASSERT_EQ(0, prep_commit(&e->ring, e->qfd, 0, cookie, SUCCESS,
					 0, UD_COMMIT));
		ASSERT_EQ(1, nth_submit(_metadata, e, &self->nth, &fired));
		got = next_cqe(&e->ring, QUIET_MS, &ud, &res);
		if (!got) {
			/* Ended at once: only an injected failure does. */
			EXPECT_TRUE(fired && fi_injected_errno(res))
				TH_LOG("run %u: COMMIT_AND_FETCH ended %d",
				       self->nth.n, res);
		}
		/* Parked again: the answer went; else it must be due. */
		nth_run_end(_metadata, e, self->nth.n, cookie, !!got);
		if (!fired)
			break;
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

/* read() and write() of the queue fd. */
TEST_F(queue_fail_nth, read_write)
{
	struct iopfmap_fault_response r;
	struct env *e = &self->e;
	bool fired;
	ssize_t n;

	FI_SWEEP(&self->nth) {
		nth_run_start(_metadata, e, self->nth.n, true);
		fi_nth_arm(_metadata, &self->nth);
		n = read(e->qfd, recs, GROUP_MAX * REC_SZ);
		fired = fi_nth_fired(_metadata, &self->nth);
		if (n != (ssize_t)REC_SZ) {
			EXPECT_TRUE(fired && n < 0 && fi_injected_errno(-errno))
				TH_LOG("run %u: read: %zd", self->nth.n, n);
			RECV(e->qfd, recs, 1);
		}
		check_record(_metadata, recs, e->ctx_id, REC_LAST,
			     IOVA_F + (self->nth.n % BUF_PAGES) * psz, PRQ_R,
			     e->range_id);
		r = (struct iopfmap_fault_response){ .cookie = recs[0].cookie,
						     .code = SUCCESS };
		fi_nth_arm(_metadata, &self->nth);
		n = write(e->qfd, &r, sizeof(r));
		fired |= fi_nth_fired(_metadata, &self->nth);
		if (n != (ssize_t)sizeof(r))
			EXPECT_TRUE(n < 0 && fi_injected_errno(-errno))
				TH_LOG("run %u: write: %zd", self->nth.n, n);
		nth_run_end(_metadata, e, self->nth.n, recs[0].cookie,
			    n == (ssize_t)sizeof(r));
		if (!fired)
			break;
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
}

TEST_HARNESS_MAIN
