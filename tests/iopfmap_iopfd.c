// SPDX-License-Identifier: GPL-2.0
/*
 * iopfd end to end: this program plays the VMM. It owns a context with a
 * nested simulated device, hands the context's fault queue to a real
 * iopfd over its UNIX socket (iopfd/iopfd_proto.h), and runs DMAs whose
 * stage-1 misses only iopfd (or a client it forwards to) can answer.
 *
 * It also holds iopfd to its use of iopfmap's netlink family: the
 * contexts it lists at start, the kernel events it logs and counts, and
 * DEVICE_GONE to a client whose subscribed device the kernel detached
 * (that one needs QEMU's edu device and iopfmap_edu.ko, as iopfmap_device
 * does, and SKIPs without them). pri_group_forwarded serves real page
 * requests of iopfmap-pri (tools/qemu) through iopfd, and SKIPs where the
 * guest has no such device.
 *
 * Needs root, the iopfmap module with sim=1 and the iopfd binary: $IOPFD,
 * else /iopfmap/bin/iopfd (the test guest), else iopfd in $PATH.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "iopfmap_edu_utils.h"
#include "iopfmap_pri_utils.h"
#include "iopfd_proto.h"

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(); whether GCC warns depends on register
 * allocation, not on anything the tests do.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
/* Stage-1 input addresses, and where iopfd's rule sends them (stage 2). */
#define S1_BASE		0x10000000ULL
#define IPA_BASE	0x00200000ULL
#define NPAGES		64
#define STORM_THREADS	4

static size_t psz;

/* ---- iopfd as a child process ----------------------------------------- */

static const char *iopfd_path(void)
{
	static const char *const tries[] = { "/iopfmap/bin/iopfd" };
	const char *env = getenv("IOPFD");
	unsigned int i;

	if (env && *env)
		return env;
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (!access(tries[i], X_OK))
			return tries[i];
	return "iopfd";		/* execvp() searches $PATH */
}

struct daemon {
	pid_t pid;
	char dir[64];
	char sock[96];
	char conf[96];
	char stats[96];
	char log[96];
};

/*
 * Clients get long enough to answer that a stalled test never races
 * client_timeout_ms; client_never_answers sets a short one.
 */
#define CLIENT_TIMEOUT_MS	10000

static void daemon_write_conf(struct daemon *d, const char *serve,
			      const char *handler, unsigned int client_ms)
{
	FILE *f = fopen(d->conf, "we");

	if (!f)
		return;
	fprintf(f, "# written by iopfmap_iopfd\n"
		"socket = %s\n"
		"default_handler = %s\n"
		"serve = %s\n"
		"slots = 8\n"
		"client_timeout_ms = %u\n"
		"client_policy = invalid\n"
		"resolve_offset = %#llx\n"
		"log_level = debug\n"
		"stats_file = %s\n",
		d->sock, handler, serve, client_ms,
		(unsigned long long)(IPA_BASE - S1_BASE), d->stats);
	fclose(f);
}

/* Whether iopfd's log has a line holding both needles. */
static bool daemon_logged(struct daemon *d, const char *a, const char *b)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(d->log, "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	fclose(f);
	return found;
}

/*
 * Starts iopfd; returns 0 once it is ready: its socket accepts
 * connections (it listens early) and it logged "start", which it does
 * only after it joined the kernel's netlink events.
 */
static int daemon_start(struct daemon *d)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char started[32];
	int i, fd;

	unlink(d->sock);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (!d->pid) {
		const char *path = iopfd_path();
		int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			       0600);

		/* Its log would drown the TAP output: keep it aside. */
		if (log >= 0)
			dup2(log, STDERR_FILENO);

		execlp(path, path, "--foreground", "--config", d->conf,
		       (char *)NULL);
		_exit(127);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock);
	snprintf(started, sizeof(started), "pid=%d ", d->pid);
	for (i = 0; i < 500; i++) {	/* 10 s */
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(status) && WEXITSTATUS(status) == 127 ?
			       -ENOENT : -ECHILD;
		}
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd >= 0 && !connect(fd, (void *)&sa, sizeof(sa)) &&
		    daemon_logged(d, "event=start ", started)) {
			close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

/* Stops iopfd with @sig; returns its wait status, or -1. */
static int daemon_stop(struct daemon *d, int sig)
{
	int status;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	if (waitpid(d->pid, &status, 0) != d->pid)
		status = -1;
	d->pid = 0;
	return status;
}

/* How many lines of iopfd's log hold both needles. */
static long long daemon_log_count(struct daemon *d, const char *a,
				  const char *b)
{
	char line[1024];
	long long n = 0;
	FILE *f = fopen(d->log, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, a) && strstr(line, b);
	fclose(f);
	return n;
}

/* Waits up to @ms for iopfd to log a line holding both needles. */
static bool daemon_logs(struct daemon *d, const char *a, const char *b,
			int ms)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i;

	for (i = 0; i <= ms / 20; i++) {
		if (daemon_logged(d, a, b))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The number after "@key": in iopfd's stats file, or -1. */
static long long stats_value(struct daemon *d, const char *key)
{
	char buf[8192], pat[64];
	long long v = -1;
	const char *p;
	size_t n;
	FILE *f = fopen(d->stats, "re");

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(buf, pat);
	if (p)
		v = strtoll(p + strlen(pat), NULL, 10);
	return v;
}

/* ---- the client side of the protocol ---------------------------------- */

static void hdr_init(struct iopfd_msg_hdr *h, __u16 type, size_t len,
		     __u32 seq)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->len = len;
	h->seq = seq;
}

static int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (void *)&sa, sizeof(sa))) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Sends @len bytes as one message, with @nfds descriptors attached. */
static int send_msg(int sock, const void *msg, size_t len, const int *fds,
		    int nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/* Receives one message within @ms; its length, 0 at EOF, or -errno. */
static ssize_t recv_msg(int sock, void *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t n;

	n = poll(&p, 1, ms);
	if (n <= 0)
		return n ? -errno : -ETIMEDOUT;
	n = recv(sock, buf, len, 0);
	return n < 0 ? -errno : n;
}

/* The status (ACK or ERROR) answering request @seq: its error, or -errno. */
static int recv_status(int sock, __u32 seq, __u32 *value)
{
	char buf[IOPFD_MSG_MAX];
	struct iopfd_msg_status *st = (void *)buf;
	ssize_t n;

	for (;;) {
		n = recv_msg(sock, buf, sizeof(buf), 5000);
		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		if (st->hdr.type != IOPFD_MSG_ACK &&
		    st->hdr.type != IOPFD_MSG_ERROR)
			continue;	/* a FAULT meanwhile: not ours here */
		if ((size_t)n < sizeof(*st) || st->hdr.seq != seq)
			return -EBADMSG;
		if (value)
			*value = st->value;
		return st->hdr.type == IOPFD_MSG_ACK ? 0 : st->error;
	}
}

/* HELLO; 0 or the error iopfd answered with; iopfd's features. */
static int client_hello_features(int sock, __u32 version, __u32 *features)
{
	struct iopfd_msg_hello h;
	char buf[IOPFD_MSG_MAX];
	struct iopfd_msg_hello *r = (void *)buf;
	struct iopfd_msg_status *st = (void *)buf;
	ssize_t n;

	hdr_init(&h.hdr, IOPFD_MSG_HELLO, sizeof(h), 1);
	h.version = version;
	h.features = 0;
	snprintf(h.name, sizeof(h.name), "iopfmap_iopfd");
	if (send_msg(sock, &h, sizeof(h), NULL, 0))
		return -errno;
	n = recv_msg(sock, buf, sizeof(buf), 5000);
	if (n <= 0)
		return n ? (int)n : -ECONNRESET;
	if (r->hdr.type == IOPFD_MSG_ERROR)
		return st->error;
	if (r->hdr.type != IOPFD_MSG_HELLO || r->version != IOPFD_PROTO_VERSION)
		return -EBADMSG;
	if (features)
		*features = r->features;
	return 0;
}

static int client_hello(int sock, __u32 version)
{
	return client_hello_features(sock, version, NULL);
}

static int client_handover(int sock, int qfd, int ctxfd, __u32 handler,
			   __u32 seq, __u32 *ctx_id)
{
	struct iopfd_msg_handover m;
	int fds[2] = { qfd, ctxfd };
	int ret;

	hdr_init(&m.hdr, IOPFD_MSG_HANDOVER, sizeof(m), seq);
	m.handler = handler;
	m.flags = 0;
	ret = send_msg(sock, &m, sizeof(m), fds, ctxfd >= 0 ? 2 : 1);
	return ret ? ret : recv_status(sock, seq, ctx_id);
}

static int client_subscribe_dev(int sock, __u32 ctx_id, __u32 dev_id,
				__u32 seq)
{
	struct iopfd_msg_subscribe m;
	int ret;

	hdr_init(&m.hdr, IOPFD_MSG_SUBSCRIBE, sizeof(m), seq);
	m.ctx_id = ctx_id;
	m.dev_id = dev_id;
	m.pasid = IOPFD_ANY;
	m.flags = 0;
	ret = send_msg(sock, &m, sizeof(m), NULL, 0);
	return ret ? ret : recv_status(sock, seq, NULL);
}

static int client_subscribe(int sock, __u32 ctx_id, __u32 seq)
{
	return client_subscribe_dev(sock, ctx_id, IOPFD_ANY, seq);
}

/* Waits up to @ms for DEVICE_GONE: 0 with it in *@m, or -errno. */
static int client_device_gone(int sock, struct iopfd_msg_device_gone *m,
			      int ms)
{
	char buf[IOPFD_MSG_MAX];
	struct iopfd_msg_hdr *h = (void *)buf;
	ssize_t n;

	for (;;) {
		n = recv_msg(sock, buf, sizeof(buf), ms);
		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		if (h->type != IOPFD_MSG_DEVICE_GONE)
			continue;
		if ((size_t)n != sizeof(*m) || h->len != (size_t)n)
			return -EBADMSG;
		memcpy(m, buf, sizeof(*m));
		return 0;
	}
}

static int client_respond(int sock, const struct iopfmap_fault_record *rec,
			  __u32 code)
{
	struct iopfd_msg_response m;

	hdr_init(&m.hdr, IOPFD_MSG_RESPONSE, sizeof(m), 0);
	m.ctx_id = rec->ctx_id;
	m.code = code;
	m.cookie = rec->cookie;
	return send_msg(sock, &m, sizeof(m), NULL, 0);
}

/* Waits for a FAULT; copies its first record. 0 or -errno. */
static int client_fault(int sock, struct iopfmap_fault_record *rec,
			__u32 *nr, int ms)
{
	char buf[IOPFD_MSG_MAX];
	struct iopfd_msg_fault *f = (void *)buf;
	ssize_t n;

	for (;;) {
		n = recv_msg(sock, buf, sizeof(buf), ms);
		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		if (f->hdr.type != IOPFD_MSG_FAULT)
			continue;
		if ((size_t)n < sizeof(*f) + sizeof(*rec) || !f->nr ||
		    f->hdr.len != (size_t)n ||
		    (size_t)n != sizeof(*f) + f->nr * sizeof(*rec))
			return -EBADMSG;
		*rec = f->records[0];
		*nr = f->nr;
		return 0;
	}
}

/* ---- DMAs on the simulated device, in threads ------------------------- */

struct dma_job {
	pthread_t thread;
	int fd;
	__u64 iova;
	size_t len;
	char *out;
	unsigned int rounds;	/* storm: DMAs over the span, S1 cleared */
	struct iopfmap_sim_dma dma;
	unsigned int done, ended_s1;
	int ret;
};

static int s1_unmap(int fd, __u64 iova, __u64 len)
{
	struct iopfmap_sim_s1_unmap u = {
		.size = sizeof(u), .iova = iova, .length = len,
	};

	return _test_ioctl(fd, IOPFMAP_SIM_S1_UNMAP, &u);
}

static void *dma_job_run(void *arg)
{
	struct dma_job *j = arg;
	unsigned int r;

	for (r = 0; r < (j->rounds ?: 1); r++) {
		j->ret = _test_sim_dma(j->fd, &j->dma, 0, j->iova, j->out,
				       j->len);
		if (j->ret)
			break;
		j->done++;
		if (j->dma.out_status == IOPFMAP_SIM_DMA_S1_FAULT) {
			/* Nobody serves stage 1 any more: the storm is over. */
			j->ended_s1++;
			break;
		}
		/* Fault stage 1 again next round. */
		if (j->rounds)
			s1_unmap(j->fd, j->iova, j->len);
	}
	return NULL;
}

static void dma_job_start(struct __test_metadata *_metadata,
			  struct dma_job *j, int fd, __u64 iova, size_t len,
			  unsigned int rounds)
{
	memset(j, 0, sizeof(*j));
	j->fd = fd;
	j->iova = iova;
	j->len = len;
	j->rounds = rounds;
	j->out = malloc(len);
	ASSERT_NE(NULL, j->out);
	ASSERT_EQ(0, pthread_create(&j->thread, NULL, dma_job_run, j));
}

/* Joins @j; it must end within @secs: no fault waits forever. */
static void dma_job_join(struct __test_metadata *_metadata,
			 struct dma_job *j, int secs)
{
	struct timespec deadline;
	int ret;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += secs;
	ret = pthread_timedjoin_np(j->thread, NULL, &deadline);
	ASSERT_EQ(0, ret) TH_LOG("a DMA is still waiting %d s later", secs);
	EXPECT_EQ(0, j->ret) TH_LOG("SIM_DMA: %s", strerror(-j->ret));
}

static struct iopfmap_sim_stats sim_stats(struct __test_metadata *_metadata,
					  int fd)
{
	struct iopfmap_sim_stats st = { .size = sizeof(st) };

	EXPECT_EQ(0, _test_ioctl(fd, IOPFMAP_SIM_GET_STATS, &st));
	return st;
}

/* The device got exactly one answer for each page request group. */
static void expect_all_answered(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_sim_stats st = sim_stats(_metadata, fd);

	EXPECT_EQ(st.out_page_requests, st.out_responses + st.out_withdrawn)
		TH_LOG("requests %llu, responses %llu, withdrawn %llu",
		       (unsigned long long)st.out_page_requests,
		       (unsigned long long)st.out_responses,
		       (unsigned long long)st.out_withdrawn);
	EXPECT_EQ(st.out_responses, st.out_resp_success +
		  st.out_resp_invalid + st.out_resp_failure);
	EXPECT_EQ(0ULL, st.out_withdrawn);
}

/* The context's id, as fault records and iopfd name it. */
static __u32 ctx_id_of(int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	return _test_ioctl(fd, IOPFMAP_GET_INFO, &info) ? 0 : info.out_ctx_id;
}

static long module_refcnt(void)
{
	FILE *f = fopen("/sys/module/iopfmap/refcnt", "re");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/*
 * A directory of its own for iopfd's socket, configuration (serving with
 * @serve, the resolve handler by default), stats and log, and iopfd
 * started on it: false after SKIPping the test when there is no iopfd.
 */
static bool daemon_init(struct __test_metadata *_metadata, struct daemon *d,
			const char *serve)
{
	int ret;

	snprintf(d->dir, sizeof(d->dir), "/tmp/iopfd-test.%d", getpid());
	EXPECT_EQ(0, mkdir(d->dir, 0700) && errno != EEXIST ? -1 : 0);
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	snprintf(d->conf, sizeof(d->conf), "%s/iopfd.conf", d->dir);
	snprintf(d->stats, sizeof(d->stats), "%s/stats.json", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/iopfd.log", d->dir);
	daemon_write_conf(d, serve, "resolve", CLIENT_TIMEOUT_MS);
	ret = daemon_start(d);
	if (ret == -ENOENT)
		SKIP(return false, "no iopfd binary (%s): set IOPFD",
		     iopfd_path());
	EXPECT_EQ(0, ret) TH_LOG("iopfd did not start: %s", strerror(-ret));
	return !ret;
}

/* Stops iopfd and removes what daemon_init() made. */
static void daemon_fini(struct daemon *d)
{
	char path[192];

	daemon_stop(d, SIGKILL);
	unlink(d->sock);
	unlink(d->conf);
	unlink(d->stats);
	unlink(d->log);
	snprintf(path, sizeof(path), "%s", d->dir);
	rmdir(path);
}

/* ---- the fixture ------------------------------------------------------ */

FIXTURE(iopfd)
{
	int fd;			/* the context */
	int qfd;		/* its queue, until handed over */
	char *ram;		/* stage 2: the "guest RAM" */
	struct daemon d;
};

FIXTURE_VARIANT(iopfd)
{
	const char *serve;
};

FIXTURE_VARIANT_ADD(iopfd, uring) { .serve = "uring" };
FIXTURE_VARIANT_ADD(iopfd, rw) { .serve = "rw" };

static int queue_alloc(int fd)
{
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	int ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);

	return ret ? ret : qa.out_fd;
}

FIXTURE_SETUP(iopfd)
{
	struct iopfmap_sim_create sc = {
		.size = sizeof(sc), .flags = IOPFMAP_SIM_NESTED,
	};
	unsigned int i;

	psz = getpagesize();
	self->fd = -1;
	self->qfd = -1;
	self->d.pid = 0;
	self->ram = MAP_FAILED;
	OPEN_CONTEXT(&self->fd);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "module loaded without sim=1");

	if (!daemon_init(_metadata, &self->d, variant->serve))
		return;

	ASSERT_EQ(0, _test_cmd_sim_create(self->fd, &sc));
	self->ram = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	for (i = 0; i < NPAGES; i++)
		iopfmap_fill(self->ram + i * psz, psz, i + 1);
	ASSERT_EQ(0, _test_map(self->fd, IPA_BASE, self->ram, NPAGES * psz,
			       RW, 0));
	self->qfd = queue_alloc(self->fd);
	ASSERT_LE(0, self->qfd);
}

FIXTURE_TEARDOWN(iopfd)
{
	daemon_fini(&self->d);
	if (self->qfd >= 0)
		close(self->qfd);
	if (self->fd >= 0)
		close(self->fd);
	if (self->ram != MAP_FAILED)
		munmap(self->ram, NPAGES * psz);
}

/*
 * Connects, says HELLO and hands the queue (and the context, which the
 * resolve rule needs) to iopfd, then closes our copy of the queue: from
 * then on iopfd's is the only one. Returns the connection.
 */
static int handover(struct __test_metadata *_metadata, struct daemon *d,
		    int *qfd, int fd, __u32 handler)
{
	__u32 ctx_id = 0;
	int sock, ret;

	sock = client_connect(d->sock);
	EXPECT_LE(0, sock) TH_LOG("connect %s: %s", d->sock, strerror(-sock));
	if (sock < 0)
		return sock;
	ret = client_hello(sock, IOPFD_PROTO_VERSION);
	EXPECT_EQ(0, ret) TH_LOG("HELLO: %s", strerror(ret < 0 ? -ret : ret));
	ret = client_handover(sock, *qfd, fd, handler, 2, &ctx_id);
	EXPECT_EQ(0, ret) TH_LOG("HANDOVER: %s",
				 strerror(ret < 0 ? -ret : ret));
	EXPECT_EQ(ctx_id_of(fd), ctx_id);
	close(*qfd);
	*qfd = -1;
	return sock;
}

/*
 * Hands the queue over for forwarding and connects a client subscribed
 * to @ctx_id (*@client). Returns the owner's connection, or -errno.
 */
static int forward_with_client(struct __test_metadata *_metadata,
			       struct daemon *d, int *qfd, int fd,
			       __u32 ctx_id, int *client)
{
	int sock = handover(_metadata, d, qfd, fd, IOPFD_HANDLER_FORWARD);

	*client = client_connect(d->sock);
	EXPECT_LE(0, *client);
	EXPECT_EQ(0, client_hello(*client, IOPFD_PROTO_VERSION));
	EXPECT_EQ(0, client_subscribe(*client, ctx_id, 3));
	return *client < 0 ? *client : sock;
}

/*
 * Two-stage round trip: every stage-1 miss goes to iopfd, which fills the
 * entry by its rule and answers SUCCESS; the stage-2 miss behind it is
 * resolved in the kernel; the device reads what the CPU wrote.
 */
TEST_F(iopfd, resolve_round_trip)
{
	const unsigned int n = 8;
	struct iopfmap_sim_dma dma;
	char want[32];
	struct iopfmap_stats st;
	char *out = malloc(n * psz);
	int sock;

	ASSERT_NE(NULL, out);
	sock = handover(_metadata, &self->d, &self->qfd, self->fd,
			IOPFD_HANDLER_RESOLVE);
	ASSERT_LE(0, sock);
	snprintf(want, sizeof(want), "serve=%s ", variant->serve);
	EXPECT_TRUE(daemon_logged(&self->d, "event=handover", want))
		TH_LOG("iopfd does not serve the queue with %s",
		       variant->serve);

	ASSERT_EQ(0, _test_sim_dma(self->fd, &dma, 0, S1_BASE, out, n * psz));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma.out_status)
		TH_LOG("status %u at %#llx", dma.out_status,
		       (unsigned long long)dma.out_fault_iova);
	EXPECT_EQ(0, memcmp(out, self->ram, n * psz))
		TH_LOG("the device did not read what the CPU wrote");
	/* One stage-1 and one stage-2 request per page. */
	EXPECT_EQ(2 * n, dma.out_faults);
	st = iopfmap_get_stats(_metadata, self->fd, ~0ULL);
	EXPECT_EQ((__u64)n, st.out_faults);
	EXPECT_EQ((__u64)n, st.out_faults_handled);
	EXPECT_EQ((__u64)n, sim_stats(_metadata, self->fd).out_resp_success / 2);

	/* Mapped in both stages now: no request at all. */
	ASSERT_EQ(0, _test_sim_dma(self->fd, &dma, 0, S1_BASE, out, n * psz));
	EXPECT_EQ(0U, dma.out_faults);
	expect_all_answered(_metadata, self->fd);
	close(sock);
	free(out);
}

/*
 * The forward handler: a subscribed client gets the group, plays the
 * guest (fills stage 1 itself) and answers; iopfd passes the answer on.
 */
TEST_F(iopfd, forward_to_client)
{
	struct iopfmap_fault_record rec;
	struct iopfmap_sim_s1_map m;
	struct dma_job j;
	int sock, client;
	__u32 nr = 0;

	sock = forward_with_client(_metadata, &self->d, &self->qfd, self->fd,
				   ctx_id_of(self->fd), &client);
	ASSERT_LE(0, sock);

	dma_job_start(_metadata, &j, self->fd, S1_BASE + 5 * psz, 64, 0);
	ASSERT_EQ(0, client_fault(client, &rec, &nr, 5000));
	EXPECT_EQ(1U, nr);
	EXPECT_EQ(S1_BASE + 5 * psz, rec.addr);
	EXPECT_EQ((__u32)(IOPFMAP_RECORD_STAGE1 | IOPFMAP_RECORD_LAST),
		  rec.flags);
	EXPECT_EQ((__u32)IOPFMAP_PRQ_READ, rec.perm);
	EXPECT_EQ(ctx_id_of(self->fd), rec.ctx_id);
	EXPECT_EQ(0U, rec.dev_id);

	m = (struct iopfmap_sim_s1_map){
		.size = sizeof(m), .flags = RW, .iova = rec.addr,
		.ipa = IPA_BASE + 9 * psz, .length = psz,
	};
	ASSERT_EQ(0, _test_ioctl(self->fd, IOPFMAP_SIM_S1_MAP, &m));
	ASSERT_EQ(0, client_respond(client, &rec, IOPFMAP_PAGE_RESP_SUCCESS));
	dma_job_join(_metadata, &j, 10);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, j.dma.out_status);
	EXPECT_EQ(0, memcmp(j.out, self->ram + 9 * psz, 64));

	/* A second answer for the same group is refused. */
	ASSERT_EQ(0, client_respond(client, &rec, IOPFMAP_PAGE_RESP_SUCCESS));
	EXPECT_EQ(ENOENT, recv_status(client, 0, NULL));
	expect_all_answered(_metadata, self->fd);
	free(j.out);
	close(client);
	close(sock);
}

/* A client that never answers: iopfd answers by its policy (INVALID). */
TEST_F(iopfd, client_never_answers)
{
	struct iopfmap_fault_record rec;
	struct dma_job j;
	int sock, client;
	__u32 nr;

	/* A short client_timeout_ms, by a reload (SIGHUP). */
	daemon_write_conf(&self->d, variant->serve, "resolve", 300);
	ASSERT_EQ(0, kill(self->d.pid, SIGHUP));
	ASSERT_TRUE(daemon_logs(&self->d, "event=reload ",
				"client_timeout_ms=300 ", 5000));

	sock = forward_with_client(_metadata, &self->d, &self->qfd, self->fd,
				   IOPFD_ANY, &client);
	ASSERT_LE(0, sock);

	dma_job_start(_metadata, &j, self->fd, S1_BASE, psz, 0);
	ASSERT_EQ(0, client_fault(client, &rec, &nr, 5000));
	/* The client never answers: iopfd does after 300 ms. */
	dma_job_join(_metadata, &j, 10);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, j.dma.out_status);
	EXPECT_EQ(1ULL, sim_stats(_metadata, self->fd).out_resp_invalid);

	/* Too late now. */
	ASSERT_EQ(0, client_respond(client, &rec, IOPFMAP_PAGE_RESP_SUCCESS));
	EXPECT_EQ(ENOENT, recv_status(client, 0, NULL));

	/* With no subscriber, iopfd does not wait for anyone. */
	close(client);
	dma_job_start(_metadata, &j, self->fd, S1_BASE + psz, psz, 0);
	dma_job_join(_metadata, &j, 10);
	free(j.out);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, j.dma.out_status);
	expect_all_answered(_metadata, self->fd);
	close(sock);
}

/* Malformed messages get ERROR and leave the connection usable. */
TEST_F(iopfd, malformed_messages)
{
	struct iopfd_msg_hdr h;
	struct iopfd_msg_handover ho;
	struct iopfd_msg_subscribe sub;
	char junk[3] = { 1, 2, 3 };
	int sock, ret;

	sock = client_connect(self->d.sock);
	ASSERT_LE(0, sock);
	/* Nothing but HELLO first. */
	hdr_init(&sub.hdr, IOPFD_MSG_SUBSCRIBE, sizeof(sub), 7);
	sub.ctx_id = sub.dev_id = sub.pasid = IOPFD_ANY;
	sub.flags = 0;
	ASSERT_EQ(0, send_msg(sock, &sub, sizeof(sub), NULL, 0));
	ret = recv_status(sock, 7, NULL);
	EXPECT_NE(0, ret) TH_LOG("SUBSCRIBE before HELLO was accepted");
	/* An unknown version. */
	ret = client_hello(sock, 99);
	EXPECT_EQ(EPROTONOSUPPORT, ret);

	sock = (close(sock), client_connect(self->d.sock));
	ASSERT_LE(0, sock);
	ASSERT_EQ(0, client_hello(sock, IOPFD_PROTO_VERSION));
	/* Shorter than a header. */
	ASSERT_EQ(0, send_msg(sock, junk, sizeof(junk), NULL, 0));
	ret = recv_status(sock, 0, NULL);
	EXPECT_TRUE(ret == EBADMSG || ret == EINVAL) TH_LOG("short: %d", ret);
	/* A length that is not the packet's. */
	hdr_init(&h, IOPFD_MSG_SUBSCRIBE, 200, 8);
	ASSERT_EQ(0, send_msg(sock, &h, sizeof(h), NULL, 0));
	ret = recv_status(sock, 8, NULL);
	EXPECT_TRUE(ret == EBADMSG || ret == EINVAL) TH_LOG("len: %d", ret);
	/* An unknown type. */
	hdr_init(&h, 0x7777, sizeof(h), 9);
	ASSERT_EQ(0, send_msg(sock, &h, sizeof(h), NULL, 0));
	EXPECT_NE(0, recv_status(sock, 9, NULL));
	/* Reserved fields must be zero. */
	hdr_init(&sub.hdr, IOPFD_MSG_SUBSCRIBE, sizeof(sub), 10);
	sub.flags = 1;
	ASSERT_EQ(0, send_msg(sock, &sub, sizeof(sub), NULL, 0));
	EXPECT_NE(0, recv_status(sock, 10, NULL));
	/* HANDOVER without a descriptor, and with one that is no queue. */
	hdr_init(&ho.hdr, IOPFD_MSG_HANDOVER, sizeof(ho), 11);
	ho.handler = IOPFD_HANDLER_RESOLVE;
	ho.flags = 0;
	ASSERT_EQ(0, send_msg(sock, &ho, sizeof(ho), NULL, 0));
	EXPECT_NE(0, recv_status(sock, 11, NULL));
	ho.hdr.seq = 12;
	ASSERT_EQ(0, send_msg(sock, &ho, sizeof(ho), &self->fd, 1));
	EXPECT_NE(0, recv_status(sock, 12, NULL))
		TH_LOG("a context fd was taken for a queue");
	/* A forged cookie. */
	{
		struct iopfmap_fault_record rec = {
			.cookie = 0xdead0001, .ctx_id = ctx_id_of(self->fd),
		};

		ASSERT_EQ(0, client_respond(sock, &rec,
					    IOPFMAP_PAGE_RESP_SUCCESS));
		EXPECT_NE(0, recv_status(sock, 0, NULL));
	}

	/* Still a working connection: it can hand the queue over. */
	ret = client_handover(sock, self->qfd, self->fd,
			      IOPFD_HANDLER_RESOLVE, 13, NULL);
	EXPECT_EQ(0, ret);
	close(sock);
}

/*
 * kill -9 of iopfd while DMAs fault in a loop: the kernel answers what
 * iopfd held (every request gets exactly one answer), iopfd's references
 * to the module go, and a restarted iopfd serves a new queue.
 */
TEST_F_TIMEOUT(iopfd, kill9_during_storm, 120)
{
	struct dma_job jobs[STORM_THREADS];
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	struct iopfmap_sim_stats st;
	struct iopfmap_sim_dma dma;
	long refs_before, refs;
	unsigned int i, tries;
	char out[256];
	int sock;

	refs_before = module_refcnt();
	sock = handover(_metadata, &self->d, &self->qfd, self->fd,
			IOPFD_HANDLER_RESOLVE);
	ASSERT_LE(0, sock);
	/* Each thread loops over its own stage-1 pages, clearing them. */
	for (i = 0; i < STORM_THREADS; i++)
		dma_job_start(_metadata, &jobs[i], self->fd,
			      S1_BASE + i * 8 * psz, 8 * psz, 1000);
	for (tries = 0; tries < 200; tries++) {
		if (sim_stats(_metadata, self->fd).out_responses >= 64)
			break;
		nanosleep(&ts, NULL);
	}
	EXPECT_LE(64ULL, sim_stats(_metadata, self->fd).out_responses)
		TH_LOG("the storm never got going");
	ASSERT_TRUE(WIFSIGNALED(daemon_stop(&self->d, SIGKILL)));

	/* Without iopfd the next stage-1 miss ends its DMA: all finish. */
	for (i = 0; i < STORM_THREADS; i++) {
		dma_job_join(_metadata, &jobs[i], 60);
		EXPECT_LE(1U, jobs[i].ended_s1) TH_LOG("thread %u", i);
		free(jobs[i].out);
	}
	expect_all_answered(_metadata, self->fd);
	st = sim_stats(_metadata, self->fd);
	TH_LOG("%llu page requests, %llu SUCCESS, %llu INVALID",
	       (unsigned long long)st.out_page_requests,
	       (unsigned long long)st.out_resp_success,
	       (unsigned long long)st.out_resp_invalid);
	close(sock);
	/*
	 * iopfd's queue and context descriptors are gone with it. Its ring
	 * is torn down by io_uring's exit work, after the process is reaped:
	 * wait for that, not for a timing.
	 */
	for (tries = 0; tries < 100; tries++) {
		refs = module_refcnt();
		if (refs == refs_before - 1)
			break;
		nanosleep(&ts, NULL);
	}
	EXPECT_EQ(refs_before - 1, refs) TH_LOG("module references: %ld then %ld (our queue fd was one)",
					       refs_before, refs);

	/* A restarted iopfd takes over with a new queue. */
	ASSERT_EQ(0, daemon_start(&self->d));
	self->qfd = queue_alloc(self->fd);
	ASSERT_LE(0, self->qfd);
	sock = handover(_metadata, &self->d, &self->qfd, self->fd,
			IOPFD_HANDLER_RESOLVE);
	ASSERT_LE(0, sock);
	ASSERT_EQ(0, s1_unmap(self->fd, S1_BASE, NPAGES * psz));
	ASSERT_EQ(0, _test_sim_dma(self->fd, &dma, 0, S1_BASE + 3 * psz, out,
				   sizeof(out)));
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma.out_status);
	EXPECT_EQ(0, memcmp(out, self->ram + 3 * psz, sizeof(out)));
	expect_all_answered(_metadata, self->fd);
	close(sock);
}

/* SIGTERM: iopfd answers what it holds, exits 0 and writes its counters. */
TEST_F(iopfd, sigterm_answers_and_exits)
{
	struct iopfmap_fault_record rec;
	struct stat sb;
	struct dma_job j;
	int sock, client, status;
	__u32 nr;

	sock = forward_with_client(_metadata, &self->d, &self->qfd, self->fd,
				   IOPFD_ANY, &client);
	ASSERT_LE(0, sock);
	dma_job_start(_metadata, &j, self->fd, S1_BASE, psz, 0);
	ASSERT_EQ(0, client_fault(client, &rec, &nr, 5000));

	status = daemon_stop(&self->d, SIGTERM);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("iopfd's wait status %#x", status);
	dma_job_join(_metadata, &j, 10);
	free(j.out);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, j.dma.out_status);
	expect_all_answered(_metadata, self->fd);
	EXPECT_EQ(0, stat(self->d.stats, &sb)) TH_LOG("no stats file %s",
						     self->d.stats);
	EXPECT_LT(0, (long)sb.st_size);
	close(client);
	close(sock);
}

/* ---- iopfd and iopfmap's netlink family -------------------------------- */

/*
 * At start iopfd lists the contexts the module has (ours is one), and
 * then logs and counts the kernel's events: a queue closed with a group
 * held, an invalidation storm.
 */
TEST_F(iopfd, netlink_contexts_and_events)
{
	const char *param = "/sys/module/iopfmap/parameters/storm_threshold";
	char a[64], b[64];
	unsigned int saved = 0, i;
	struct dma_job j;
	FILE *f;
	int status;

	/* The fixture opened the context before it started iopfd. */
	snprintf(a, sizeof(a), "ctx=%u ", ctx_id_of(self->fd));
	snprintf(b, sizeof(b), "pid=%d ", getpid());
	/* iopfd logs the family last, after the contexts it lists. */
	EXPECT_TRUE(daemon_logs(&self->d, "event=netlink ",
				"family=iopfmap id=", 5000))
		TH_LOG("iopfd did not find the netlink family");
	EXPECT_TRUE(daemon_logged(&self->d, "event=nl_ctx ", a))
		TH_LOG("iopfd did not list context %u at start", ctx_id_of(self->fd));
	EXPECT_TRUE(daemon_logged(&self->d, a, b));

	/* A group held by a queue whose only file we close: queue-close. */
	dma_job_start(_metadata, &j, self->fd, S1_BASE + 7 * psz, 64, 0);
	for (i = 0; i < 500; i++) {
		struct iopfmap_queue_info qi = { .size = sizeof(qi) };

		if (!_test_ioctl(self->qfd, IOPFMAP_QUEUE_GET_INFO, &qi) &&
		    qi.out_pending == 1)
			break;
		usleep(10000);
	}
	close(self->qfd);
	self->qfd = -1;
	dma_job_join(_metadata, &j, 10);
	free(j.out);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_S1_FAULT, j.dma.out_status);
	snprintf(a, sizeof(a), "ctx=%u count=1 ", ctx_id_of(self->fd));
	EXPECT_TRUE(daemon_logs(&self->d, "event=nl_event type=queue-close ",
				a, 5000))
		TH_LOG("iopfd did not log the queue-close event");

	/* Invalidations past a small threshold: inval-storm. */
	f = fopen(param, "re");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s", param, strerror(errno));
	ASSERT_EQ(1, fscanf(f, "%u", &saved));
	fclose(f);
	f = fopen(param, "we");
	ASSERT_NE(NULL, f);
	fprintf(f, "10");
	fclose(f);
	for (i = 0; i < 40; i++)
		madvise(self->ram, psz, MADV_DONTNEED);
	f = fopen(param, "we");
	if (f) {
		fprintf(f, "%u", saved);
		fclose(f);
	}
	snprintf(a, sizeof(a), "ctx=%u count=11 ", ctx_id_of(self->fd));
	EXPECT_TRUE(daemon_logs(&self->d, "event=nl_event type=inval-storm ",
				a, 5000))
		TH_LOG("iopfd did not log the inval-storm event");

	/* Counted: the stats file iopfd writes at exit. */
	status = daemon_stop(&self->d, SIGTERM);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_LE(2LL, stats_value(&self->d, "events"));
	EXPECT_EQ(1LL, stats_value(&self->d, "queue-close"));
	/*
	 * One storm a window; a stall across the window's end may make it
	 * two. Whatever came, iopfd counted what it logged.
	 */
	EXPECT_LE(1LL, stats_value(&self->d, "inval-storm"));
	EXPECT_EQ(daemon_log_count(&self->d, "event=nl_event ",
				   "type=inval-storm "),
		  stats_value(&self->d, "inval-storm"));
}

/*
 * The kernel detaches a device: the client subscribed to that device
 * gets DEVICE_GONE and loses the subscription; a client subscribed to
 * any device of the context keeps its own.
 */
TEST_F(iopfd, device_gone_on_detach)
{
	char edu[4][IOPFMAP_DEVICE_NAME_MAX];
	struct iopfmap_device_attach a;
	struct iopfd_msg_device_gone m;
	int fd2, qfd2, sock, c1, c2, ret;
	__u32 ctx2, features = 0;
	char want[64];

	OPEN_CONTEXT(&fd2);
	if (!edu_require(_metadata, fd2, edu, 4)) {
		close(fd2);
		return;
	}
	ctx2 = ctx_id_of(fd2);
	ret = _test_attach(fd2, edu[0], 0, &a);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s: %s", edu[0], strerror(-ret));
	qfd2 = queue_alloc(fd2);
	ASSERT_LE(0, qfd2);
	sock = handover(_metadata, &self->d, &qfd2, fd2,
			IOPFD_HANDLER_FORWARD);
	ASSERT_LE(0, sock);

	c1 = client_connect(self->d.sock);
	c2 = client_connect(self->d.sock);
	ASSERT_LE(0, c1);
	ASSERT_LE(0, c2);
	ASSERT_EQ(0, client_hello_features(c1, IOPFD_PROTO_VERSION,
					   &features));
	EXPECT_EQ(IOPFD_FEAT_DEVICE_GONE, features & IOPFD_FEAT_DEVICE_GONE);
	ASSERT_EQ(0, client_hello(c2, IOPFD_PROTO_VERSION));
	ASSERT_EQ(0, client_subscribe_dev(c1, ctx2, a.out_dev_id, 3));
	ASSERT_EQ(0, client_subscribe_dev(c2, ctx2, IOPFD_ANY, 3));

	ASSERT_EQ(0, _test_detach(fd2, a.out_dev_id));
	ret = client_device_gone(c1, &m, 5000);
	ASSERT_EQ(0, ret) TH_LOG("no DEVICE_GONE: %s", strerror(-ret));
	EXPECT_EQ(0U, m.hdr.seq);
	EXPECT_EQ(ctx2, m.ctx_id);
	EXPECT_EQ(a.out_dev_id, m.dev_id);
	EXPECT_EQ((__u32)IOPFD_GONE_DETACHED, m.reason);
	EXPECT_EQ(0U, m.__reserved);
	EXPECT_EQ(-ETIMEDOUT, client_device_gone(c2, &m, 300))
		TH_LOG("DEVICE_GONE to a client subscribed to any device");
	snprintf(want, sizeof(want), "ctx=%u dev=%u ", ctx2, a.out_dev_id);
	EXPECT_TRUE(daemon_logs(&self->d, "event=nl_event type=dev-detach ",
				want, 5000));
	EXPECT_TRUE(daemon_logged(&self->d, "event=device_gone ", want));
	EXPECT_TRUE(daemon_logged(&self->d, "event=nl_event type=dev-attach ",
				  want));
	/* The connection stays: it can subscribe again. */
	EXPECT_EQ(0, client_subscribe(c1, ctx2, 4));

	close(c1);
	close(c2);
	close(sock);
	close(fd2);
}

/* A DMA of the PRI device, run by its own thread. */
struct pri_job {
	pthread_t thread;
	int pfd;
	struct iopfmap_pri_dma d;
	int ret;
};

static void *pri_job_run(void *arg)
{
	struct pri_job *j = arg;

	j->ret = _test_ioctl(j->pfd, IOPFMAP_PRI_DMA, &j->d);
	return NULL;
}

/*
 * Real page requests through iopfd: iopfmap-pri (tools/qemu) writes into
 * a FORWARD range at a PASID; its group goes from VT-d's page request
 * queue through the core to the context's queue, which iopfd serves and
 * forwards to a client. The client's SUCCESS goes back through iopfd, the
 * kernel maps the pages, and the device's retry lands the data.
 */
TEST_F(iopfd, pri_group_forwarded)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_device_attach rid, pasid;
	struct iopfmap_fault_record rec;
	const size_t npages = 4;
	char dev[IOPFMAP_DEVICE_NAME_MAX];
	int fd2, qfd2, pfd, sock, client, ret;
	struct iopfmap_map m = { .size = sizeof(m) };
	struct pri_job j = { 0 };
	struct iopfmap_stats st;
	char *mem, *want;
	__u32 ctx2, nr = 0;

	OPEN_CONTEXT(&fd2);
	test_cmd_get_info(fd2, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH)) {
		close(fd2);
		SKIP(return, "no PASID attach in this kernel (6.10), and QEMU's VT-d takes page requests with a PASID only");
	}
	pfd = pri_require(_metadata, dev);
	if (pfd < 0) {
		close(fd2);
		return;
	}
	ctx2 = ctx_id_of(fd2);
	ret = _test_attach(fd2, dev, 0, &rid);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s: %s", dev, strerror(-ret));
	ret = _test_attach_pasid(fd2, dev, IOPFMAP_ATTACH_PASID, 0x42, &pasid);
	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s at PASID 0x42: %s", dev,
				 strerror(-ret));
	mem = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	want = malloc(npages * psz);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_NE(NULL, want);
	m.flags = RW | IOPFMAP_MAP_FORWARD;
	m.iova = S1_BASE;
	m.vaddr = (__u64)(unsigned long)mem;
	m.length = npages * psz;
	ASSERT_EQ(0, _test_ioctl(fd2, IOPFMAP_MAP, &m));
	qfd2 = queue_alloc(fd2);
	ASSERT_LE(0, qfd2);
	sock = forward_with_client(_metadata, &self->d, &qfd2, fd2, ctx2,
				   &client);
	ASSERT_LE(0, sock);

	iopfmap_fill(want, npages * psz, 0x42);
	j.pfd = pfd;
	snprintf(j.d.name, sizeof(j.d.name), "%s", dev);
	j.d.flags = IOPFMAP_PRI_TO_RAM | IOPFMAP_PRI_PASID;
	j.d.pasid = 0x42;
	j.d.iova = S1_BASE;
	j.d.length = npages * psz;
	j.d.data = (__u64)(unsigned long)want;
	ASSERT_EQ(0, pthread_create(&j.thread, NULL, pri_job_run, &j));

	ASSERT_EQ(0, client_fault(client, &rec, &nr, 10000));
	EXPECT_EQ((__u32)npages, nr);
	EXPECT_EQ(S1_BASE, rec.addr);
	EXPECT_EQ(0x42U, rec.pasid);
	EXPECT_NE(0U, rec.flags & IOPFMAP_RECORD_PASID);
	EXPECT_EQ(ctx2, rec.ctx_id);
	EXPECT_EQ(pasid.out_dev_id, rec.dev_id);
	EXPECT_EQ(m.out_range_id, rec.range_id);
	ASSERT_EQ(0, client_respond(client, &rec, IOPFMAP_PAGE_RESP_SUCCESS));
	ASSERT_EQ(0, pthread_join(j.thread, NULL));
	ASSERT_EQ(0, j.ret) TH_LOG("PRI_DMA: %s", strerror(-j.ret));
	EXPECT_EQ((__u32)IOPFMAP_PRI_DONE, j.d.out_status)
		TH_LOG("%s", pri_status_name(j.d.out_status));
	EXPECT_EQ((__u32)npages, j.d.out_page_requests);
	EXPECT_EQ(1U, j.d.out_responses);
	EXPECT_EQ(0U, j.d.out_stray);
	EXPECT_EQ(0, memcmp(mem, want, npages * psz))
		TH_LOG("the device's write did not land");
	st = iopfmap_get_stats(_metadata, fd2, ~0ULL);
	EXPECT_EQ((__u64)npages, st.out_faults);
	EXPECT_EQ(st.out_faults, st.out_faults_handled +
		  st.out_faults_invalid + st.out_faults_forwarded);

	close(client);
	close(sock);
	close(fd2);
	close(pfd);
	munmap(mem, npages * psz);
	free(want);
}

TEST_HARNESS_MAIN
