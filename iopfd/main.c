// SPDX-License-Identifier: GPL-2.0
/*
 * iopfd: the iopfmap fault daemon. It serves the fault queues that VMMs
 * (context owners) hand over on its UNIX socket, and answers each page
 * request group by the queue's handler. See iopfd.8 and
 * docs/iopfd-protocol.md.
 *
 * This file: options, start-up (config, device probe, socket, ring,
 * signalfd, daemonizing, netlink), the event loop and the orderly exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "iopfd.h"

#define RING_ENTRIES		256
#define RING_CQ_ENTRIES		4096
#define ACCEPT_RETRY_NS		100000000ULL	/* after EMFILE and kin */
#define EXIT_DRAIN_NS		500000000ULL	/* cancellations at exit */

struct io_uring_sqe *iopfd_sqe(struct iopfd *d)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

	if (!sqe) {
		io_uring_submit(&d->ring);
		sqe = io_uring_get_sqe(&d->ring);
	}
	if (!sqe) {
		/* Cannot happen once the SQ ring was submitted. */
		log_err("ring", "msg=\"no free submission entry\"");
		abort();
	}
	return sqe;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: iopfd [-f] [-c FILE] [-s SOCKET] [-d DEVICE] [-t] [-V] [-h]\n"
		"  -f, --foreground    stay attached and log to stderr\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  -s, --socket PATH   listening socket (overrides the config)\n"
		"  -d, --device PATH   iopfmap device (default %s)\n"
		"  -t, --test-config   check and print the configuration, exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n",
		IOPFD_CONFIG_PATH, IOPFD_DEVICE_PATH);
}

/* A context is opened to ask, then closed: iopfd owns no context. */
static int probe_device(struct iopfd *d)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	char qp[256];
	struct stat st;
	int fd, err;

	fd = open(d->device, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_err("device", "path=%s error=%s%s",
			log_quote(qp, sizeof(qp), d->device),
			log_strerror(err),
			err == ENOENT || err == ENODEV || err == ENXIO ?
			" msg=\"is the iopfmap module loaded?\"" : "");
		return err == EACCES || err == EPERM ? EX_NOPERM :
		       EX_UNAVAILABLE;
	}
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) ||
	    ioctl(fd, IOPFMAP_GET_INFO, &info)) {
		log_err("device", "path=%s msg=\"not an iopfmap device\"",
			log_quote(qp, sizeof(qp), d->device));
		close(fd);
		return EX_UNAVAILABLE;
	}
	close(fd);
	d->dev_rdev = st.st_rdev;
	if (!(info.out_features & IOPFMAP_FEATURE_QUEUE)) {
		log_err("device", "path=%s abi=%u features=%#llx msg=\"this iopfmap module has no fault queues\"",
			log_quote(qp, sizeof(qp), d->device),
			info.out_abi_version,
			(unsigned long long)info.out_features);
		return EX_UNAVAILABLE;
	}
	log_info("device", "path=%s abi=%u features=%#llx",
		 log_quote(qp, sizeof(qp), d->device), info.out_abi_version,
		 (unsigned long long)info.out_features);
	return 0;
}

/* mkdir -p of @path's directory. */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

/* A socket file nobody listens on is stale; a live one is another iopfd. */
static int socket_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, ret;

	if (lstat(sun->sun_path, &st))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ret = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (!ret) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(sun->sun_path) && errno != ENOENT ? -1 : 0;
}

static int socket_setup(struct iopfd *d, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char qp[256], qe[64];
	const char *step;
	struct stat st;
	mode_t old;
	int fd = -1, err;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	step = "mkdir";
	if (make_parent(path))
		goto fail;
	step = "stale socket";
	if (socket_stale(&sun))
		goto fail;
	step = "socket";
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		goto fail;
	/* Root only, from the first moment: no window at a wider mode. */
	old = umask(0177);
	step = "bind";
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		umask(old);
		goto fail;
	}
	umask(old);
	step = "listen";
	if (chmod(path, 0600) || listen(fd, 64) || stat(path, &st))
		goto fail;
	d->listen_fd = fd;
	d->socket_ino = st.st_ino;
	d->socket_path = strdup(path);
	if (!d->socket_path)
		goto fail;
	log_info("listen", "socket=%s", log_quote(qp, sizeof(qp), path));
	return 0;

fail:
	err = errno;
	log_err("listen", "socket=%s step=%s error=%s%s",
		log_quote(qp, sizeof(qp), path),
		log_quote(qe, sizeof(qe), step), log_strerror(err),
		err == EADDRINUSE ? " msg=\"another iopfd listens there\"" :
		"");
	if (fd >= 0)
		close(fd);
	d->listen_fd = -1;
	return err == EADDRINUSE ? EX_TEMPFAIL : EX_CANTCREAT;
}

static void socket_cleanup(struct iopfd *d)
{
	struct stat st;

	if (d->listen_fd >= 0)
		close(d->listen_fd);
	d->listen_fd = -1;
	/* Only our own socket: a successor may have bound the path. */
	if (d->socket_path && !lstat(d->socket_path, &st) &&
	    st.st_ino == d->socket_ino)
		unlink(d->socket_path);
	free(d->socket_path);
	d->socket_path = NULL;
}

/*
 * Forks; the parent waits until the child says it is serving (or why it
 * failed) and exits with that status, so `iopfd && client` never races.
 */
static int daemonize(int *notify)
{
	int p[2], null;
	unsigned char st;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &st, 1) != 1)
			st = EX_OSERR;
		_exit(st);
	}
	close(p[0]);
	if (setsid() < 0 || chdir("/"))
		return -1;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
	*notify = p[1];
	return 0;
}

static void notify_parent(int *notify, unsigned char status)
{
	if (*notify < 0)
		return;
	if (write(*notify, &status, 1) != 1)
		log_warn("daemonize", "msg=\"cannot notify the parent\"");
	close(*notify);
	*notify = -1;
}

static int signals_setup(struct iopfd *d)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -1;
	d->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return d->sig_fd < 0 ? -1 : 0;
}

static int ring_setup(struct iopfd *d)
{
	struct io_uring_params p;
	int ret;

	/* COOP_TASKRUN (5.19) spares the IPIs; older kernels refuse it. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = RING_CQ_ENTRIES;
	ret = io_uring_queue_init_params(RING_ENTRIES, &d->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = RING_CQ_ENTRIES;
		ret = io_uring_queue_init_params(RING_ENTRIES, &d->ring, &p);
	}
	if (ret) {
		/* EPERM: kernel.io_uring_disabled; ENOSYS: not built in. */
		log_err("ring", "error=%s%s", log_strerror(-ret),
			ret == -EPERM || ret == -ENOSYS ?
			" msg=\"io_uring is not available\"" : "");
		return -1;
	}
	d->ring_ok = true;
	return 0;
}

static void arm_accept(struct iopfd *d)
{
	struct io_uring_sqe *sqe = iopfd_sqe(d);

	io_uring_prep_accept(sqe, d->listen_fd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data(sqe, &d->accept_op);
	d->accept_armed = true;
}

static void arm_signal(struct iopfd *d)
{
	struct io_uring_sqe *sqe = iopfd_sqe(d);

	io_uring_prep_read(sqe, d->sig_fd, &d->siginfo, sizeof(d->siginfo), 0);
	io_uring_sqe_set_data(sqe, &d->sig_op);
	d->sig_armed = true;
}

static void stats_dump(struct iopfd *d)
{
	stats_log(&d->stats, d->nr_queues, d->nr_clients);
	stats_write(&d->stats, d->cfg.stats_file, d->nr_queues,
		    d->nr_clients);
}

/* SIGHUP: a bad file keeps the old configuration; the socket stays. */
static void reload(struct iopfd *d)
{
	struct config nc;
	char qp[256];

	if (config_load(&nc, d->config_path, d->config_explicit)) {
		log_err("reload", "config=%s msg=\"keeping the old configuration\"",
			log_quote(qp, sizeof(qp), d->config_path));
		return;
	}
	if (!d->socket_opt && strcmp(nc.socket, d->socket_path))
		log_warn("reload", "socket=%s msg=\"a new socket takes a restart; keeping the current one\"",
			 log_quote(qp, sizeof(qp), nc.socket));
	config_free(&d->cfg);
	d->cfg = nc;
	log_set_level(d->cfg.log_level);
	log_info("reload", "config=%s default_handler=%s serve=%s slots=%u client_timeout_ms=%u client_policy=%s log_level=%s",
		 log_quote(qp, sizeof(qp), d->config_path),
		 handler_name(d->cfg.default_handler),
		 serve_name(d->cfg.serve), d->cfg.slots,
		 d->cfg.client_timeout_ms, resp_name(d->cfg.client_policy),
		 log_level_name(d->cfg.log_level));
}

static void on_signal(struct iopfd *d, int res)
{
	d->sig_armed = false;
	if (res != sizeof(d->siginfo)) {
		if (res != -EAGAIN && res != -EINTR)
			log_warn("signal", "error=%d", res);
	} else {
		switch (d->siginfo.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal", "signal=%s",
				 d->siginfo.ssi_signo == SIGTERM ? "TERM" :
				 "INT");
			d->stopping = true;
			break;
		case SIGHUP:
			reload(d);
			break;
		case SIGUSR1:
			stats_dump(d);
			break;
		}
	}
	if (!d->stopping)
		arm_signal(d);
}

static void on_accept(struct iopfd *d, int res)
{
	d->accept_armed = false;
	if (d->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res >= 0) {
		client_accept(d, res);
	} else if (res != -EINTR && res != -ECONNABORTED &&
		   res != -EAGAIN) {
		log_warn("accept", "error=%s",
			 log_strerror(-res));
		/* EMFILE and kin: let the loop retry later, not spin. */
		d->accept_retry_ns = now_ns() + ACCEPT_RETRY_NS;
		return;
	}
	arm_accept(d);
}

static void dispatch(struct iopfd *d, __u64 user_data, int res)
{
	struct op *op = (struct op *)(uintptr_t)user_data;

	/* Cancellations and liburing's own timeouts carry no op. */
	if (!op || user_data == LIBURING_UDATA_TIMEOUT)
		return;
	switch (op->type) {
	case OP_ACCEPT:
		on_accept(d, res);
		break;
	case OP_SIGNAL:
		on_signal(d, res);
		break;
	case OP_CLIENT_RECV:
	case OP_CLIENT_POLLOUT:
		client_complete(op->owner, op, res);
		break;
	case OP_KQ_CMD:
	case OP_KQ_POLL:
		kq_complete(op->owner, op, res);
		break;
	case OP_NL_POLL:
		nl_complete(d, res);
		break;
	}
}

/* Frees what went away once none of its requests is in flight. */
static void iopfd_reap(struct iopfd *d)
{
	struct kqueue *kq, *kn;
	struct client *c, *cn;

	list_for_each_entry_safe(c, cn, &d->clients, node) {
		if (c->closing && !c->pending) {
			list_del_init(&c->node);
			client_free(c);
		}
	}
	list_for_each_entry_safe(kq, kn, &d->queues, node) {
		if (kq->draining && !kq_busy(kq)) {
			list_del_init(&kq->node);
			kq_free(kq);
		}
	}
}

/* Waits for completions up to @timeout_ns (-1: forever) and handles them. */
static int iopfd_wait(struct iopfd *d, int64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
	}
	ret = io_uring_submit_and_wait_timeout(&d->ring, &cqe, 1,
					       timeout_ns >= 0 ? &ts : NULL,
					       NULL);
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY) {
		log_err("ring", "error=%s",
			log_strerror(-ret));
		return -1;
	}
	while (!io_uring_peek_cqe(&d->ring, &cqe)) {
		__u64 data = cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(&d->ring, cqe);
		dispatch(d, data, res);
	}
	return 0;
}

static int64_t min_timeout(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int event_loop(struct iopfd *d)
{
	while (!d->stopping) {
		uint64_t now = now_ns();
		int64_t wait;

		handle_timeouts(d, now);
		if (d->accept_retry_ns && now >= d->accept_retry_ns) {
			d->accept_retry_ns = 0;
			arm_accept(d);
		}
		iopfd_reap(d);
		wait = handle_next_deadline(d, now);
		if (d->accept_retry_ns)
			wait = min_timeout(wait, d->accept_retry_ns - now);
		if (iopfd_wait(d, wait))
			return -1;
	}
	return 0;
}

static bool exit_pending(struct iopfd *d)
{
	struct kqueue *kq;
	struct client *c;

	list_for_each_entry(c, &d->clients, node)
		if (c->pending)
			return true;
	/* Closing a queue cancels the commands armed on it. */
	list_for_each_entry(kq, &d->queues, node)
		if (kq->poll_armed || kq->armed)
			return true;
	return false;
}

/*
 * Every group held is answered INVALID, the queues are closed (which
 * cancels the commands armed on them), the cancellations are collected
 * for a while, and only then the ring goes and the buffers are freed.
 */
static void iopfd_shutdown(struct iopfd *d)
{
	struct kqueue *kq, *kn;
	struct client *c, *cn;
	uint64_t end;

	d->stopping = true;
	log_info("shutdown", "queues=%u clients=%u", d->nr_queues,
		 d->nr_clients);
	list_for_each_entry_safe(kq, kn, &d->queues, node)
		kq_drop(kq, DECIDER_SHUTDOWN, false, "shutdown");
	kq_close_all(d);
	list_for_each_entry_safe(c, cn, &d->clients, node)
		client_close(c, "shutdown");
	if (d->ring_ok) {
		end = now_ns() + EXIT_DRAIN_NS;
		while (exit_pending(d)) {
			uint64_t now = now_ns();

			if (now >= end || iopfd_wait(d, end - now))
				break;
		}
	}
	iopfd_reap(d);
	stats_dump(d);
	if (d->ring_ok)
		io_uring_queue_exit(&d->ring);
	d->ring_ok = false;
	list_for_each_entry_safe(c, cn, &d->clients, node) {
		list_del_init(&c->node);
		client_free(c);
	}
	list_for_each_entry_safe(kq, kn, &d->queues, node) {
		list_del_init(&kq->node);
		kq_free(kq);
	}
}

/* Room for the queues' and clients' fds: raise the soft limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int start(struct iopfd *d, bool foreground)
{
	const char *sock = d->socket_opt ? d->socket_opt : d->cfg.socket;
	int notify = -1, ret;
	char qp[256];

	ret = probe_device(d);
	if (ret)
		return ret;
	ret = socket_setup(d, sock);
	if (ret)
		return ret;
	if (!foreground) {
		if (daemonize(&notify)) {
			log_err("daemonize", "error=%s",
				log_strerror(errno));
			return EX_OSERR;
		}
		log_init(true);
	}
	raise_nofile();
	if (signals_setup(d)) {
		log_err("signalfd", "error=%s",
			log_strerror(errno));
		ret = EX_OSERR;
		goto fail;
	}
	if (ring_setup(d)) {
		ret = EX_OSERR;
		goto fail;
	}
	d->accept_op.type = OP_ACCEPT;
	d->sig_op.type = OP_SIGNAL;
	arm_accept(d);
	arm_signal(d);
	nl_start(d);
	io_uring_submit(&d->ring);
	log_info("start", "version=%s pid=%d socket=%s default_handler=%s serve=%s slots=%u",
		 IOPFMAP_VERSION, getpid(),
		 log_quote(qp, sizeof(qp), d->socket_path),
		 handler_name(d->cfg.default_handler),
		 serve_name(d->cfg.serve), d->cfg.slots);
	notify_parent(&notify, 0);
	return 0;

fail:
	notify_parent(&notify, ret);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "device", required_argument, NULL, 'd' },
		{ "test-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct iopfd d;
	bool foreground = false, test = false;
	struct sockaddr_un sun;
	int c, ret;

	d.config_path = IOPFD_CONFIG_PATH;
	d.device = IOPFD_DEVICE_PATH;
	d.listen_fd = -1;
	d.sig_fd = -1;
	INIT_LIST_HEAD(&d.clients);
	INIT_LIST_HEAD(&d.queues);
	INIT_LIST_HEAD(&d.timeouts);
	while ((c = getopt_long(argc, argv, "fc:s:d:tVh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'c':
			d.config_path = optarg;
			d.config_explicit = true;
			break;
		case 's':
			d.socket_opt = optarg;
			break;
		case 'd':
			d.device = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'V':
			printf("iopfd %s (protocol %u)\n", IOPFMAP_VERSION,
			       IOPFD_PROTO_VERSION);
			return EX_OK;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "iopfd: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	if (d.socket_opt && (d.socket_opt[0] != '/' ||
			     strlen(d.socket_opt) >= sizeof(sun.sun_path))) {
		fprintf(stderr, "iopfd: --socket needs an absolute path shorter than %zu bytes\n",
			sizeof(sun.sun_path));
		return EX_USAGE;
	}
	log_init(false);
	if (config_load(&d.cfg, d.config_path, d.config_explicit))
		return EX_CONFIG;
	log_set_level(d.cfg.log_level);
	if (test) {
		printf("# %s: configuration OK\n", d.config_path);
		config_print(stdout, &d.cfg);
		config_free(&d.cfg);
		return EX_OK;
	}
	stats_init(&d.stats);
	ret = start(&d, foreground);
	if (!ret && event_loop(&d))
		ret = EX_SOFTWARE;
	if (d.ring_ok || !list_empty(&d.queues))
		iopfd_shutdown(&d);
	nl_stop(&d);
	socket_cleanup(&d);
	if (d.sig_fd >= 0)
		close(d.sig_fd);
	log_info("exit", "status=%d", ret);
	config_free(&d.cfg);
	return ret;
}
