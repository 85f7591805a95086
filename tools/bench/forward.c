// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "forward": a fault the kernel hands to userspace and back.
 * Requester threads raise page requests on a FORWARD range of the
 * simulated device (each blocks until its group is answered, as a device
 * waits for its page response); a server thread in this program answers
 * SUCCESS through the fault queue, with io_uring commands (FETCH, then
 * COMMIT_AND_FETCH) or with read()/write(). The peers do the same trip
 * with userfaultfd (a missing fault resolved by UFFDIO_COPY) and with a
 * pipe between two threads. Round trips are timed by the requester with
 * one fault in flight; throughput with 1, 8 and 64 requesters.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define MAX_INFLIGHT	64

enum mode { M_URING, M_RW, M_UFFD, M_PIPE };

static const char *const mode_names[] = {
	[M_URING] = "fault queue, uring_cmd",
	[M_RW] = "fault queue, read/write",
	[M_UFFD] = "userfaultfd (UFFDIO_COPY)",
	[M_PIPE] = "pipe ping-pong (threads)",
};

struct fwd {
	enum mode mode;
	unsigned int threads, per_thread;
	int fd, qfd, uffd, pipes[2][2];
	char *region;		/* the FORWARD range, or uffd's region */
	size_t region_len;
	struct samples lat;	/* one requester only */
	pthread_barrier_t go;
	uint64_t start_ns;
};

struct requester {
	struct fwd *f;
	pthread_t thread;
	unsigned int index;
};

/* ---- requesters --------------------------------------------------------- */

static void *request_run(void *arg)
{
	struct requester *q = arg;
	struct fwd *f = q->f;
	unsigned int i;

	pthread_barrier_wait(&f->go);
	for (i = 0; i < f->per_thread; i++) {
		uint64_t page = (uint64_t)q->index * f->per_thread + i;
		uint64_t t0 = now_ns();
		char byte = 0;

		switch (f->mode) {
		case M_URING:
		case M_RW:
			if (page_request(f->fd, page * PAGE, IOPFMAP_PRQ_READ |
					 IOPFMAP_PRQ_LAST, q->index % 512) !=
			    IOPFMAP_PAGE_RESP_SUCCESS)
				die("forwarded page request not answered SUCCESS");
			break;
		case M_UFFD:
			/* A missing page: userfaultfd's server fills it. */
			byte = *(volatile char *)(f->region + page * PAGE);
			if (byte != 0x5a)
				die("userfaultfd filled %#x, not 0x5a", byte);
			break;
		case M_PIPE:
			if (write(f->pipes[0][1], "x", 1) != 1 ||
			    read(f->pipes[1][0], &byte, 1) != 1)
				die("pipe ping: %s", strerror(errno));
			break;
		}
		if (f->threads == 1)
			smp_add(&f->lat, (now_ns() - t0) / 1e3);
	}
	return NULL;
}

/* ---- servers ------------------------------------------------------------ */

/* liburing 2.3 has no uring_cmd helper: the SQE is filled by hand. */
static void prep_cmd(struct io_uring *ring, int qfd, __u32 op,
		     const void *payload, __u64 ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		die("io_uring: no free SQE");
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = qfd;
	sqe->cmd_op = op;
	memcpy((char *)sqe + offsetof(struct io_uring_sqe, cmd), payload, 16);
	sqe->user_data = ud;
}

static void submit_all(struct io_uring *ring, int n)
{
	int ret = io_uring_submit(ring);

	if (ret != n)
		die("io_uring_submit: %s", ret < 0 ? strerror(-ret) : "short");
}

static void serve_uring(struct fwd *f, unsigned int total)
{
	static struct iopfmap_fault_record recs[MAX_INFLIGHT]
					       [IOPFMAP_FAULT_GROUP_MAX];
	unsigned int slots = f->threads, slot, done = 0;
	struct io_uring ring;
	int ret;

	ret = io_uring_queue_init(2 * MAX_INFLIGHT, &ring, 0);
	if (ret)
		die("io_uring_queue_init: %s", strerror(-ret));
	for (slot = 0; slot < slots; slot++) {
		struct iopfmap_queue_fetch fe = {
			.records = (uintptr_t)recs[slot],
			.slot = slot,
			.max_records = IOPFMAP_FAULT_GROUP_MAX,
		};

		prep_cmd(&ring, f->qfd, IOPFMAP_QUEUE_FETCH, &fe, slot);
	}
	submit_all(&ring, slots);

	while (done < total) {
		struct io_uring_cqe *cqe;
		int n = 0;

		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret)
			die("io_uring_wait_cqe: %s", strerror(-ret));
		/* Answer every group that has arrived, then one submit. */
		while (!io_uring_peek_cqe(&ring, &cqe)) {
			struct iopfmap_queue_commit c = {
				.code = IOPFMAP_PAGE_RESP_SUCCESS,
			};

			slot = cqe->user_data;
			if (cqe->res <= 0)
				die("FETCH of slot %u: %s", slot,
				    strerror(-cqe->res));
			io_uring_cqe_seen(&ring, cqe);
			c.cookie = recs[slot][0].cookie;
			c.slot = slot;
			prep_cmd(&ring, f->qfd, IOPFMAP_QUEUE_COMMIT_AND_FETCH,
				 &c, slot);
			n++;
		}
		submit_all(&ring, n);
		done += n;
	}
	/* Closing the queue cancels the armed slots; then the ring can go. */
	close(f->qfd);
	f->qfd = -1;
	for (slot = 0; slot < slots; slot++) {
		struct io_uring_cqe *cqe;

		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret)
			die("io_uring_wait_cqe: %s", strerror(-ret));
		if (cqe->res != -ECANCELED && cqe->res != -ENODEV)
			die("slot %llu after close: %d, not ECANCELED",
			    (unsigned long long)cqe->user_data, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
}

static void serve_rw(struct fwd *f, unsigned int total)
{
	static struct iopfmap_fault_record recs[MAX_INFLIGHT *
						IOPFMAP_FAULT_GROUP_MAX];
	static struct iopfmap_fault_response resp[MAX_INFLIGHT *
						  IOPFMAP_FAULT_GROUP_MAX];
	unsigned int done = 0, i, n;
	ssize_t ret;

	while (done < total) {
		ret = read(f->qfd, recs, sizeof(recs));
		if (ret <= 0 || ret % sizeof(recs[0]))
			die("read of the fault queue: %zd (%s)", ret,
			    strerror(errno));
		for (i = 0, n = 0; i < ret / sizeof(recs[0]); i++)
			if (recs[i].flags & IOPFMAP_RECORD_LAST)
				resp[n++] = (struct iopfmap_fault_response){
					.cookie = recs[i].cookie,
					.code = IOPFMAP_PAGE_RESP_SUCCESS,
				};
		ret = write(f->qfd, resp, n * sizeof(resp[0]));
		if (ret != (ssize_t)(n * sizeof(resp[0])))
			die("write of %u responses: %zd (%s)", n, ret,
			    strerror(errno));
		done += n;
	}
}

static void serve_uffd(struct fwd *f, unsigned int total)
{
	struct uffd_msg msgs[MAX_INFLIGHT];
	unsigned int done = 0, i;
	char *src;
	ssize_t ret;

	src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(src, 0x5a, PAGE);
	while (done < total) {
		ret = read(f->uffd, msgs, sizeof(msgs));
		if (ret <= 0 || ret % sizeof(msgs[0]))
			die("read of the userfaultfd: %zd (%s)", ret,
			    strerror(errno));
		for (i = 0; i < ret / sizeof(msgs[0]); i++) {
			struct uffdio_copy c = {
				.dst = msgs[i].arg.pagefault.address &
				       ~(PAGE - 1),
				.src = (uintptr_t)src,
				.len = PAGE,
			};

			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				die("userfaultfd event %u", msgs[i].event);
			if (ioctl(f->uffd, UFFDIO_COPY, &c) &&
			    errno != EEXIST)
				die("UFFDIO_COPY: %s", strerror(errno));
			done++;
		}
	}
	munmap(src, PAGE);
}

static void serve_pipe(struct fwd *f, unsigned int total)
{
	unsigned int i;
	char byte;

	for (i = 0; i < total; i++)
		if (read(f->pipes[0][0], &byte, 1) != 1 ||
		    write(f->pipes[1][1], &byte, 1) != 1)
			die("pipe pong: %s", strerror(errno));
}

static void *serve_run(void *arg)
{
	struct fwd *f = arg;
	unsigned int total = f->threads * f->per_thread;

	switch (f->mode) {
	case M_URING:
		serve_uring(f, total);
		break;
	case M_RW:
		serve_rw(f, total);
		break;
	case M_UFFD:
		serve_uffd(f, total);
		break;
	case M_PIPE:
		serve_pipe(f, total);
		break;
	}
	return NULL;
}

/* ---- one run ------------------------------------------------------------ */

static void fwd_setup(struct fwd *f)
{
	size_t pages = (size_t)f->threads * f->per_thread;
	struct iopfmap_queue_alloc qa = {
		.size = sizeof(qa), .depth = 2 * MAX_INFLIGHT,
	};
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	unsigned int want;

	f->region_len = pages * PAGE;
	f->qfd = f->uffd = -1;
	switch (f->mode) {
	case M_URING:
	case M_RW:
		f->fd = ctx_sim(PAGE);
		xioctl(f->fd, IOPFMAP_QUEUE_ALLOC, &qa, "IOPFMAP_QUEUE_ALLOC");
		f->qfd = qa.out_fd;
		want = f->mode == M_URING ? IOPFMAP_QUEUE_FEAT_URING_CMD :
					    IOPFMAP_QUEUE_FEAT_RW;
		if (!(qa.out_features & want))
			skip("the fault queue lacks feature %#x", want);
		f->region = mmap(NULL, f->region_len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (f->region == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		if (madvise(f->region, f->region_len, MADV_NOHUGEPAGE))
			die("madvise: %s", strerror(errno));
		memset(f->region, 0x5a, f->region_len);
		map_range(f->fd, 0, f->region, f->region_len,
			  IOPFMAP_MAP_FORWARD, 1);
		break;
	case M_UFFD:
		f->uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
		if (f->uffd < 0)
			skip("userfaultfd: %s", strerror(errno));
		xioctl(f->uffd, UFFDIO_API, &api, "UFFDIO_API");
		f->region = mmap(NULL, f->region_len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (f->region == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		if (madvise(f->region, f->region_len, MADV_NOHUGEPAGE))
			die("madvise: %s", strerror(errno));
		reg.range.start = (uintptr_t)f->region;
		reg.range.len = f->region_len;
		xioctl(f->uffd, UFFDIO_REGISTER, &reg, "UFFDIO_REGISTER");
		break;
	case M_PIPE:
		f->region = NULL;
		if (pipe2(f->pipes[0], O_CLOEXEC) ||
		    pipe2(f->pipes[1], O_CLOEXEC))
			die("pipe2: %s", strerror(errno));
		break;
	}
}

static void fwd_teardown(struct fwd *f)
{
	if (f->qfd >= 0)
		close(f->qfd);
	if (f->mode == M_URING || f->mode == M_RW)
		close(f->fd);
	if (f->uffd >= 0)
		close(f->uffd);
	if (f->mode == M_PIPE) {
		close(f->pipes[0][0]);
		close(f->pipes[0][1]);
		close(f->pipes[1][0]);
		close(f->pipes[1][1]);
	}
	if (f->region && munmap(f->region, f->region_len))
		die("munmap: %s", strerror(errno));
}

/* Runs @threads requesters of @per_thread faults each; returns faults/s. */
static double fwd_run(struct fwd *f)
{
	struct requester q[MAX_INFLIGHT];
	pthread_t server;
	uint64_t t0;
	unsigned int i;
	int err;

	fwd_setup(f);
	err = pthread_barrier_init(&f->go, NULL, f->threads + 1);
	if (err)
		die("pthread_barrier_init: %s", strerror(err));
	err = pthread_create(&server, NULL, serve_run, f);
	if (err)
		die("pthread_create: %s", strerror(err));
	for (i = 0; i < f->threads; i++) {
		q[i] = (struct requester){ .f = f, .index = i };
		err = pthread_create(&q[i].thread, NULL, request_run, &q[i]);
		if (err)
			die("pthread_create: %s", strerror(err));
	}
	pthread_barrier_wait(&f->go);
	t0 = now_ns();
	for (i = 0; i < f->threads; i++) {
		err = pthread_join(q[i].thread, NULL);
		if (err)
			die("pthread_join: %s", strerror(err));
	}
	t0 = now_ns() - t0;
	err = pthread_join(server, NULL);
	if (err)
		die("pthread_join: %s", strerror(err));
	pthread_barrier_destroy(&f->go);
	fwd_teardown(f);
	return f->threads * f->per_thread / (t0 / 1e9);
}

void s_forward(void)
{
	static const unsigned int inflight[] = { 1, 8, 64 };
	unsigned int n = ITERS(20000, 50), total = ITERS(16384, 64);
	unsigned int reps = ITERS(5, 1), m, k, r;
	const char *ref = mode_names[M_UFFD];
	char metric[32];

	if (online_cpus() != 1)
		note("%d vCPUs: the round trips include cross-vCPU wake-ups",
		     online_cpus());
	/* Round trips, one in flight; the reference first. */
	for (m = 0; m < 4; m++) {
		static const enum mode order[] = {
			M_UFFD, M_PIPE, M_URING, M_RW,
		};
		struct fwd f = {
			.mode = order[m], .threads = 1, .per_thread = n,
		};

		progress("round trips: %s, %u faults", mode_names[order[m]],
			 n);
		fwd_run(&f);
		emit("forward", mode_names[order[m]], "round trip", "us",
		     &f.lat, order[m] == M_UFFD ? NULL : ref,
		     order[m] == M_URING ? "<= 1.0" : NULL,
		     order[m] == M_PIPE ? "1 byte each way" :
		     order[m] == M_UFFD ? "missing fault, UFFDIO_COPY of 4 KiB" :
		     "page request on a FORWARD range, answered SUCCESS, mapped");
		smp_free(&f.lat);
	}

	for (k = 0; k < 3; k++) {
		snprintf(metric, sizeof(metric), "%u in flight", inflight[k]);
		for (m = 0; m < 3; m++) {
			static const enum mode order[] = {
				M_UFFD, M_URING, M_RW,
			};
			struct samples s = { 0 };

			for (r = 0; r < reps; r++) {
				struct fwd f = {
					.mode = order[m],
					.threads = inflight[k],
					.per_thread = total / inflight[k],
				};

				progress("throughput: %s, %s, round %u/%u",
					 mode_names[order[m]], metric, r + 1,
					 reps);
				smp_add(&s, fwd_run(&f));
				smp_free(&f.lat);
			}
			emit("forward", mode_names[order[m]], metric,
			     "faults/s", &s, order[m] == M_UFFD ? NULL : ref,
			     order[m] == M_URING && inflight[k] > 1 ?
			     "well above 1" : NULL, NULL);
			smp_free(&s);
		}
	}
}
