// SPDX-License-Identifier: GPL-2.0
/*
 * iopfctl, the netlink CLI, against live objects: every command in text
 * and in JSON (-j, -p) run on contexts, ranges, fault queues and devices
 * this program creates through the ioctl ABI, checking what the output
 * says, not only that it parses. Counters must move as the simulated
 * device faults, "range set" must change what a fault maps, refusals must
 * carry the kernel's reason (its extended ack) or the permission it
 * lacks, and "monitor" must print the events this program provokes.
 *
 * iopfctl is $IOPFCTL, else /iopfmap/bin/iopfctl (where tools/vm/run puts
 * it); without it the tests SKIP. Needs root and the module loaded with
 * sim=1; the device test also needs iopfmap_edu.ko and an edu device.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <grp.h>
#include <libgen.h>

#include <json-c/json.h>

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(); whether GCC warns about that depends
 * on register allocation, not on anything the tests do.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

#include "iopfmap_edu_utils.h"

#define IOPFCTL_DEFAULT	"/iopfmap/bin/iopfctl"
#define IOVA		0x100000ULL	/* the RESOLVE range */
#define IOVA_F		0x800000ULL	/* the FORWARD range */
#define NPAGES		64
#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)

/* Bounds on what the kernel must do: generous, the guests run under TCG. */
#define WAIT_MS		10000
#define TRIES		5

static size_t psz;

static void __attribute__((constructor)) init_page_size(void)
{
	psz = sysconf(_SC_PAGESIZE);
}



/* ---- running iopfctl ---------------------------------------------------- */

static const char *iopfctl_path(void)
{
	const char *p = getenv("IOPFCTL");

	return p && *p ? p : IOPFCTL_DEFAULT;
}

#define SKIP_IF_NO_IOPFCTL(statement)					\
	do {								\
		if (access(iopfctl_path(), X_OK))			\
			SKIP(statement, "no iopfctl at %s (set IOPFCTL)", \
			     iopfctl_path());				\
	} while (0)

#define CMDLINE_MAX	512
#define ARGS_MAX	32

/* One run: its command line, exit status (128 + signal if killed), output. */
struct run {
	char cmd[CMDLINE_MAX];
	int status;
	char out[128 * 1024];
	char err[8192];
};

/* Each test runs in its own process: one run at a time is enough. */
static struct run run_buf;


/* Splits @cmd at spaces into @argv after argv[0]. */
static void split_args(char *cmd, char **argv)
{
	char *save = NULL, *tok;
	int n = 1;

	argv[0] = (char *)iopfctl_path();
	for (tok = strtok_r(cmd, " ", &save); tok && n < ARGS_MAX - 1;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
}

/*
 * Starts iopfctl with the arguments in @cmd (space-separated), its
 * stdout and stderr on pipes *@out and *@err. Returns its pid or -errno.
 */
static pid_t start_ctl(const char *cmd, bool nobody, int *out, int *err)
{
	int po[2], pe[2], ret;
	char buf[CMDLINE_MAX], *argv[ARGS_MAX];
	pid_t pid;

	if (pipe2(po, O_CLOEXEC))
		return -errno;
	if (pipe2(pe, O_CLOEXEC)) {
		ret = -errno;
		close(po[0]);
		close(po[1]);
		return ret;
	}
	snprintf(buf, sizeof(buf), "%s", cmd);
	split_args(buf, argv);
	pid = fork();
	if (pid == 0) {
		if (dup2(po[1], STDOUT_FILENO) < 0 ||
		    dup2(pe[1], STDERR_FILENO) < 0)
			_exit(125);
		ret = nobody ? iopfmap_become_nobody() : 0;
		if (ret) {
			fprintf(stderr, "dropping root: %s\n", strerror(-ret));
			_exit(125);
		}
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	ret = pid < 0 ? -errno : pid;
	close(po[1]);
	close(pe[1]);
	if (ret < 0) {
		close(po[0]);
		close(pe[0]);
		return ret;
	}
	*out = po[0];
	*err = pe[0];
	return ret;
}

/* Reads @fd into @buf (NUL-terminated) until EOF: false on EOF. */
static bool drain(int fd, char *buf, size_t size, size_t *len)
{
	ssize_t n = read(fd, buf + *len, size - 1 - *len);

	if (n > 0) {
		*len += n;
		buf[*len] = '\0';
		return true;
	}
	/* Output past the buffer is dropped: keep reading to EOF. */
	if (n < 0 && errno == EINTR)
		return true;
	if (*len == size - 1) {
		char junk[4096];

		return read(fd, junk, sizeof(junk)) > 0;
	}
	return false;
}

/* Status as the shell has it: the exit code, or 128 + the signal. */
static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Runs iopfctl with the arguments printf(@fmt, ...) makes, as root or as
 * nobody, and waits for it (at most WAIT_MS); returns what it did.
 */
static struct run *__ctl(struct __test_metadata *_metadata, bool nobody,
			 const char *fmt, ...)
{
	struct run *r = &run_buf;
	size_t olen = 0, elen = 0;
	struct pollfd pfd[2];
	__u64 end = iopfmap_now_ms() + WAIT_MS;
	int out, err, status, ret;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(r->cmd, sizeof(r->cmd), fmt, ap);
	va_end(ap);
	r->out[0] = r->err[0] = '\0';
	r->status = -1;
	pid = start_ctl(r->cmd, nobody, &out, &err);
	ASSERT_LT(0, pid) TH_LOG("iopfctl %s: %s", r->cmd, strerror(-pid));

	pfd[0] = (struct pollfd){ .fd = out, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = err, .events = POLLIN };
	while ((pfd[0].fd >= 0 || pfd[1].fd >= 0) && iopfmap_now_ms() < end) {
		ret = poll(pfd, 2, 100);
		if (ret < 0 && errno != EINTR)
			break;
		if (pfd[0].revents && !drain(out, r->out, sizeof(r->out), &olen))
			pfd[0].fd = -1;
		if (pfd[1].revents && !drain(err, r->err, sizeof(r->err), &elen))
			pfd[1].fd = -1;
	}
	close(out);
	close(err);
	if (pfd[0].fd >= 0 || pfd[1].fd >= 0)
		kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	r->status = exit_code(status);
	ASSERT_NE(125, r->status) TH_LOG("iopfctl %s: %s", r->cmd, r->err);
	ASSERT_NE(127, r->status) TH_LOG("iopfctl %s: %s", r->cmd, r->err);
	return r;
}

#define ctl(...) __ctl(_metadata, false, __VA_ARGS__)
#define ctl_nobody(...) __ctl(_metadata, true, __VA_ARGS__)

/* Runs iopfctl, which must succeed without a word on stderr. */
#define ctl_ok(...) ({							\
	struct run *_r = ctl(__VA_ARGS__);				\
	ASSERT_EQ(0, _r->status)					\
		TH_LOG("iopfctl %s: exit %d: %s", _r->cmd, _r->status,	\
		       _r->err);					\
	EXPECT_STREQ("", _r->err) TH_LOG("iopfctl %s", _r->cmd);	\
	_r;								\
})

/* ---- JSON --------------------------------------------------------------- */

/* @s as exactly one JSON value and nothing else but white space, or NULL. */
static json_object *jparse(const char *s)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *v;
	size_t off;

	if (!tok)
		return NULL;
	v = json_tokener_parse_ex(tok, s, strlen(s));
	off = json_tokener_get_parse_end(tok);
	if (v && json_tokener_get_error(tok) == json_tokener_success) {
		for (; s[off]; off++)
			if (s[off] != ' ' && s[off] != '\n' && s[off] != '\t')
				break;
		if (s[off]) {
			json_object_put(v);
			v = NULL;
		}
	} else {
		json_object_put(v);
		v = NULL;
	}
	json_tokener_free(tok);
	return v;
}

/* The -j output of @r, which must be one JSON value of @type. */
static json_object *__json_of(struct __test_metadata *_metadata,
			      const struct run *r, json_type type)
{
	json_object *v = jparse(r->out);

	ASSERT_NE(NULL, v) TH_LOG("iopfctl %s: not JSON: \"%s\"", r->cmd,
				  r->out);
	ASSERT_EQ(type, json_object_get_type(v))
		TH_LOG("iopfctl %s: \"%s\"", r->cmd, r->out);
	return v;
}

/* Runs iopfctl with -j: its output as a JSON array. */
#define json_array_of(...) \
	__json_of(_metadata, ctl_ok(__VA_ARGS__), json_type_array)

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A number member, or ~0 when there is none. */
static __u64 ju64(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_int) ?
	       json_object_get_uint64(v) : ~0ULL;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : "(none)";
}

/* A boolean member: 1, 0, or -1 when missing or not a boolean. */
static int jbool(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_boolean) ?
	       json_object_get_boolean(v) : -1;
}

/* The element of @arr whose @key is @val, or NULL. */
static json_object *jfind(json_object *arr, const char *key, __u64 val)
{
	size_t i;

	for (i = 0; i < json_object_array_length(arr); i++)
		if (ju64(json_object_array_get_idx(arr, i), key) == val)
			return json_object_array_get_idx(arr, i);
	return NULL;
}

/* Whether the array member @key of @o holds the string @s. */
static bool jarray_has(json_object *o, const char *key, const char *s)
{
	json_object *arr = jget(o, key);
	size_t i;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return false;
	for (i = 0; i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(
				json_object_array_get_idx(arr, i)), s))
			return true;
	return false;
}

/* ---- text --------------------------------------------------------------- */

/*
 * The block of the object whose line starts with @prefix followed by a
 * space or the end of the line: that line and its indented continuation
 * lines, copied into @buf. False if there is no such line.
 */
static bool text_block(const char *out, const char *prefix, char *buf,
		       size_t size)
{
	size_t plen = strlen(prefix), n;
	const char *p, *end;

	for (p = out; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, '\n');
		if (strncmp(p, prefix, plen) ||
		    (p[plen] != ' ' && p[plen] != '\n' && p[plen]))
			continue;
		for (end = strchrnul(p, '\n'); *end && end[1] == ' ';
		     end = strchrnul(end + 1, '\n'))
			;
		n = end - p < (long)size - 1 ? (size_t)(end - p) : size - 1;
		memcpy(buf, p, n);
		buf[n] = '\0';
		return true;
	}
	return false;
}

/* The number after the word @key in @block, or ~0 when there is none. */
static __u64 text_u64(const char *block, const char *key)
{
	size_t klen = strlen(key);
	const char *p;

	for (p = block; (p = strstr(p, key)); p += klen) {
		if (p != block && p[-1] != ' ')
			continue;
		if (p[klen] != ' ')
			continue;
		return strtoull(p + klen + 1, NULL, 0);
	}
	return ~0ULL;
}

/* Whether @block holds the words @words (space-separated, in a row). */
static bool text_has(const char *block, const char *words)
{
	size_t len = strlen(words);
	const char *p;

	for (p = block; (p = strstr(p, words)); p++)
		if ((p == block || p[-1] == ' ' || p[-1] == '\n') &&
		    (!p[len] || p[len] == ' ' || p[len] == '\n'))
			return true;
	return false;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- the module ----------------------------------------------------------- */

/* MAP: the range's id, or -errno. */
static int map(int fd, __u64 iova, void *va, size_t len, __u32 flags,
	       __u32 prefetch)
{
	__u32 id;
	int ret = _test_map_id(fd, iova, va, len, flags, prefetch, &id);

	return ret ? ret : (int)id;
}

/* One simulated DMA read of a byte at @iova: its out_status. */
static __u32 dma_byte(struct __test_metadata *_metadata, int fd, __u64 iova)
{
	struct iopfmap_sim_dma dma;
	char byte;
	int ret = _test_sim_dma(fd, &dma, 0, iova, &byte, 1);

	EXPECT_EQ(0, ret) TH_LOG("SIM_DMA %#llx: %s", (unsigned long long)iova,
				 strerror(-ret));
	return dma.out_status;
}

static long mapped_pages(int fd, __u64 iova, size_t npages)
{
	long mapped = -1;

	return iopfmap_bitmap_vs_iopt(fd, iova, npages * psz, &mapped) ?
	       -1 : mapped;
}

static __u32 ctx_id_of(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	test_cmd_get_info(fd, &info);
	ASSERT_NE(0U, info.out_ctx_id);
	return info.out_ctx_id;
}

static void own_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "re");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/*
 * A running "iopfctl monitor": its pid and stdout, and what it printed
 * so far.
 */
struct monitor {
	pid_t pid;
	int out, err;
	char buf[16384];
	size_t len;
};

static struct monitor mon = { .pid = -1 };

#define STORM_PARAM IOPFMAP_SYSFS_MODULE "/parameters/storm_threshold"

static int write_param(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -errno;
	close(fd);
	return ret;
}

/* The threshold before the storm test: the teardown restores it. */
static char storm_saved[32];

/*
 * @npages of anonymous memory for ranges. Every iopfctl runs in a child
 * of this process, and fork() write-protects private pages: an
 * invalidation that would unmap them and move the counters under the
 * test's feet. The children do not need the buffers.
 */
static char *alloc_buf(size_t npages)
{
	char *p = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return p;
	/* Page by page, so that a prefetch window is what one fault maps. */
	if (madvise(p, npages * psz, MADV_NOHUGEPAGE) ||
	    madvise(p, npages * psz, MADV_DONTFORK)) {
		munmap(p, npages * psz);
		return MAP_FAILED;
	}
	return p;
}

/* A simulated context with a RESOLVE range of NPAGES at IOVA. */
FIXTURE(ctl)
{
	int fd;
	__u32 ctx_id;
	int range_id;
	char *buf;
};

FIXTURE_SETUP(ctl)
{
	struct iopfmap_sim_create sim = { .size = sizeof(sim) };

	self->fd = -1;
	self->buf = MAP_FAILED;
	SKIP_IF_NO_IOPFCTL(return);
	OPEN_CONTEXT(&self->fd);
	if (!iopfmap_sim_available(self->fd))
		SKIP(return, "no simulated device: load iopfmap with sim=1");
	test_cmd(sim_create, self->fd, &sim);
	self->ctx_id = ctx_id_of(_metadata, self->fd);

	self->buf = alloc_buf(NPAGES);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x5a, NPAGES * psz);
	self->range_id = map(self->fd, IOVA, self->buf, NPAGES * psz, RW, 1);
	ASSERT_LT(0, self->range_id) TH_LOG("MAP: %s",
					    strerror(-self->range_id));
}

FIXTURE_TEARDOWN(ctl)
{
	int status;

	/* What a failed test left behind. */
	if (mon.pid > 0) {
		kill(mon.pid, SIGKILL);
		waitpid(mon.pid, &status, 0);
	}
	if (storm_saved[0])
		write_param(STORM_PARAM, storm_saved);
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, NPAGES * psz);
}

/* ---- ctx show ------------------------------------------------------------ */

TEST_F(ctl, ctx_show_text)
{
	char want[128], comm[32], block[2048];
	struct run *r;

	own_comm(comm, sizeof(comm));
	snprintf(want, sizeof(want),
		 "ctx %u pid %d comm %s iopt sim ranges 1 devices 0",
		 self->ctx_id, getpid(), comm);

	/* The dump: our context among all. */
	r = ctl_ok("ctx show");
	snprintf(block, sizeof(block), "ctx %u", self->ctx_id);
	ASSERT_TRUE(text_block(r->out, block, block, sizeof(block)))
		TH_LOG("no ctx %u in \"%s\"", self->ctx_id, r->out);
	EXPECT_EQ(0, strncmp(block, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s ...\"", block, want);
	/* No queue yet; the counters follow on an indented line. */
	EXPECT_FALSE(text_has(block, "queue"));
	EXPECT_EQ(0ULL, text_u64(block, "faults"));
	EXPECT_EQ(0ULL, text_u64(block, "faults-handled"));
	EXPECT_EQ(0ULL, text_u64(block, "pages-pinned"));

	/* By id (a do, not a dump), and by prefixes: only ours. */
	r = ctl_ok("c s id %u", self->ctx_id);
	EXPECT_EQ(0, strncmp(r->out, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s ...\"", r->out, want);
	snprintf(block, sizeof(block), "ctx %u", self->ctx_id + 1);
	EXPECT_FALSE(text_block(r->out, block, block, sizeof(block)));
	r = ctl_ok("ctx");
	EXPECT_TRUE(strstr(r->out, want) != NULL);
}

TEST_F(ctl, ctx_show_json)
{
	json_object *arr, *c, *pretty;
	char comm[32];
	struct run *r;

	own_comm(comm, sizeof(comm));
	arr = json_array_of("-j ctx show");
	c = jfind(arr, "id", self->ctx_id);
	ASSERT_NE(NULL, c) TH_LOG("no ctx %u in %s", self->ctx_id, run_buf.out);
	EXPECT_EQ((__u64)getpid(), ju64(c, "pid"));
	EXPECT_STREQ(comm, jstr(c, "comm"));
	EXPECT_STREQ("sim", jstr(c, "iopt_type"));
	EXPECT_EQ(1, jbool(c, "sim"));
	EXPECT_EQ(0, jbool(c, "queue"));
	EXPECT_EQ(1ULL, ju64(c, "nr_ranges"));
	EXPECT_EQ(0ULL, ju64(c, "nr_devices"));
	EXPECT_EQ(0ULL, ju64(jget(c, "stats"), "faults"));
	EXPECT_EQ(0ULL, ju64(jget(c, "stats"), "faults_handled"));
	json_object_put(arr);

	/* By id: an array of exactly ours. */
	arr = json_array_of("-j ctx show id %u", self->ctx_id);
	ASSERT_EQ(1U, json_object_array_length(arr));
	EXPECT_EQ((__u64)self->ctx_id,
		  ju64(json_object_array_get_idx(arr, 0), "id"));

	/* -p: the same, indented over several lines. */
	r = ctl_ok("-p ctx show id %u", self->ctx_id);
	EXPECT_LT(3, count_lines(r->out)) TH_LOG("\"%s\"", r->out);
	pretty = __json_of(_metadata, r, json_type_array);
	EXPECT_TRUE(json_object_equal(arr, pretty));
	json_object_put(pretty);
	json_object_put(arr);
}

/* A context that does not exist: the kernel's reason, exit 1. */
TEST_F(ctl, ctx_show_missing)
{
	struct run *r;

	/* Ids are never reused while the module is loaded. */
	r = ctl("ctx show id %u", 0x7fffffff);
	EXPECT_EQ(1, r->status);
	EXPECT_EQ('\0', r->out[0]);
	EXPECT_NE(NULL, strstr(r->err, "no such context"))
		TH_LOG("stderr: \"%s\"", r->err);

	/* Id 0: the family's policy refuses it, naming the argument. */
	r = ctl("ctx show id 0");
	EXPECT_EQ(1, r->status);
	EXPECT_NE(NULL, strstr(r->err, "Error: id: "))
		TH_LOG("stderr: \"%s\"", r->err);
}

/* ---- counters -------------------------------------------------------------- */

TEST_F(ctl, counters_move)
{
	json_object *arr, *st, *g0, *g1, *rng;
	char key[32], block[2048];
	__u64 faults0;
	struct run *r;

	g0 = __json_of(_metadata, ctl_ok("-j stats"), json_type_object);
	EXPECT_LE(1ULL, ju64(g0, "contexts"));
	faults0 = ju64(jget(g0, "stats"), "faults");
	ASSERT_NE(~0ULL, faults0);

	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma_byte(_metadata, self->fd, IOVA));
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma_byte(_metadata, self->fd, IOVA + 5 * psz));
	/* Mapped now: no fault. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma_byte(_metadata, self->fd, IOVA));

	arr = json_array_of("-j ctx show id %u", self->ctx_id);
	st = jget(json_object_array_get_idx(arr, 0), "stats");
	EXPECT_EQ(2ULL, ju64(st, "faults"));
	EXPECT_EQ(2ULL, ju64(st, "faults_handled"));
	EXPECT_EQ(0ULL, ju64(st, "faults_invalid"));
	EXPECT_EQ(2ULL, ju64(st, "pages_mapped"));
	json_object_put(arr);

	arr = json_array_of("-j range show ctx %u", self->ctx_id);
	rng = jfind(arr, "id", self->range_id);
	ASSERT_NE(NULL, rng);
	EXPECT_EQ(2ULL, ju64(rng, "pages_mapped"));
	EXPECT_EQ(2ULL, ju64(jget(rng, "stats"), "faults"));
	EXPECT_EQ(2ULL, ju64(jget(rng, "stats"), "faults_handled"));
	json_object_put(arr);

	/* The module's counters include ours. */
	g1 = __json_of(_metadata, ctl_ok("-j stats"), json_type_object);
	EXPECT_LE(faults0 + 2, ju64(jget(g1, "stats"), "faults"));
	json_object_put(g0);
	json_object_put(g1);

	/* Text: the counters' lines under the object's line. */
	r = ctl_ok("ctx show id %u", self->ctx_id);
	snprintf(key, sizeof(key), "ctx %u", self->ctx_id);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)));
	EXPECT_EQ(2ULL, text_u64(block, "faults"));
	EXPECT_EQ(2ULL, text_u64(block, "faults-handled"));
	EXPECT_EQ(2ULL, text_u64(block, "pages-mapped"));
	r = ctl_ok("stats");
	EXPECT_TRUE(text_has(r->out, "contexts"));
	EXPECT_LE(faults0 + 2, text_u64(r->out, "faults"));
	EXPECT_NE(~0ULL, text_u64(r->out, "invalidations-handled"));
}

/* ---- range show, range set ---------------------------------------------- */

TEST_F(ctl, range_show)
{
	char *fbuf, want[256], key[32], block[2048];
	json_object *arr, *rng;
	struct run *r;
	int fid;

	fbuf = alloc_buf(8);
	ASSERT_NE(MAP_FAILED, fbuf);
	fid = map(self->fd, IOVA_F, fbuf, 8 * psz, RW | IOPFMAP_MAP_FORWARD,
		  8);
	ASSERT_LT(0, fid) TH_LOG("MAP FORWARD: %s", strerror(-fid));

	r = ctl_ok("range show ctx %u", self->ctx_id);
	snprintf(want, sizeof(want),
		 "range %d ctx %u iova %#llx length %#llx flags read,write mode fault policy resolve prefetch 1 pages-mapped 0",
		 self->range_id, self->ctx_id, IOVA,
		 (unsigned long long)(NPAGES * psz));
	snprintf(key, sizeof(key), "range %d", self->range_id);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)))
		TH_LOG("no range %d in \"%s\"", self->range_id, r->out);
	EXPECT_EQ(0, strncmp(block, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s\"", block, want);
	EXPECT_EQ(0ULL, text_u64(block, "faults"));
	snprintf(want, sizeof(want),
		 "range %d ctx %u iova %#llx length %#llx flags read,write,forward mode fault policy forward prefetch 8 pages-mapped 0",
		 fid, self->ctx_id, IOVA_F, (unsigned long long)(8 * psz));
	snprintf(key, sizeof(key), "range %d", fid);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)));
	EXPECT_EQ(0, strncmp(block, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s\"", block, want);

	arr = json_array_of("-j range show ctx %u", self->ctx_id);
	EXPECT_EQ(2U, json_object_array_length(arr));
	rng = jfind(arr, "id", self->range_id);
	ASSERT_NE(NULL, rng);
	EXPECT_EQ((__u64)self->ctx_id, ju64(rng, "ctx_id"));
	EXPECT_EQ(IOVA, ju64(rng, "iova"));
	EXPECT_EQ((__u64)(NPAGES * psz), ju64(rng, "length"));
	EXPECT_TRUE(jarray_has(rng, "flags", "read"));
	EXPECT_TRUE(jarray_has(rng, "flags", "write"));
	EXPECT_FALSE(jarray_has(rng, "flags", "forward"));
	EXPECT_STREQ("fault", jstr(rng, "mode"));
	EXPECT_STREQ("resolve", jstr(rng, "policy"));
	EXPECT_EQ(1ULL, ju64(rng, "prefetch"));
	EXPECT_EQ(0ULL, ju64(rng, "pages_mapped"));
	EXPECT_EQ(0ULL, ju64(jget(rng, "stats"), "faults"));
	rng = jfind(arr, "id", fid);
	ASSERT_NE(NULL, rng);
	EXPECT_EQ(IOVA_F, ju64(rng, "iova"));
	EXPECT_EQ((__u64)(8 * psz), ju64(rng, "length"));
	EXPECT_TRUE(jarray_has(rng, "flags", "forward"));
	EXPECT_STREQ("forward", jstr(rng, "policy"));
	EXPECT_EQ(8ULL, ju64(rng, "prefetch"));
	json_object_put(arr);

	/* "id" picks one; "r s" is "range show". */
	arr = json_array_of("-j r s ctx %u id %d", self->ctx_id, fid);
	ASSERT_EQ(1U, json_object_array_length(arr));
	EXPECT_EQ((__u64)fid, ju64(json_object_array_get_idx(arr, 0), "id"));
	json_object_put(arr);

	/* The dump of all contexts holds ours too. */
	arr = json_array_of("-j range show");
	EXPECT_NE(NULL, jfind(arr, "id", self->range_id));
	json_object_put(arr);
	munmap(fbuf, 8 * psz);
}

/* prefetch 16: range show says so, and one fault maps 16 pages. */
TEST_F(ctl, range_set_prefetch)
{
	json_object *arr, *rng;
	char key[32], block[2048];
	struct run *r;

	/* Prefetch 1: a fault maps its page. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma_byte(_metadata, self->fd, IOVA));
	EXPECT_EQ(1, mapped_pages(self->fd, IOVA, NPAGES));

	r = ctl_ok("range set ctx %u id %d prefetch 16", self->ctx_id,
		   self->range_id);
	EXPECT_STREQ("", r->out);

	r = ctl_ok("range show ctx %u id %d", self->ctx_id, self->range_id);
	snprintf(key, sizeof(key), "range %d", self->range_id);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)));
	EXPECT_EQ(16ULL, text_u64(block, "prefetch"));
	EXPECT_TRUE(text_has(block, "policy resolve"));

	/* One fault in page 20 maps the aligned window 16..31. */
	ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
		  dma_byte(_metadata, self->fd, IOVA + 20 * psz));
	EXPECT_EQ(17, mapped_pages(self->fd, IOVA, NPAGES));
	EXPECT_EQ(16, mapped_pages(self->fd, IOVA + 16 * psz, 16));

	arr = json_array_of("-j range show ctx %u id %d", self->ctx_id,
			    self->range_id);
	rng = json_object_array_get_idx(arr, 0);
	EXPECT_EQ(16ULL, ju64(rng, "prefetch"));
	EXPECT_EQ(17ULL, ju64(rng, "pages_mapped"));
	EXPECT_EQ(2ULL, ju64(jget(rng, "stats"), "faults"));
	EXPECT_EQ(17ULL, ju64(jget(rng, "stats"), "pages_mapped"));
	json_object_put(arr);
}

/* policy reject: the device's faults fail; resolve again: they work. */
TEST_F(ctl, range_set_policy)
{
	json_object *arr;

	ctl_ok("range set ctx %u id %d policy reject", self->ctx_id,
	       self->range_id);
	arr = json_array_of("-j range show ctx %u id %d", self->ctx_id,
			    self->range_id);
	EXPECT_STREQ("reject",
		     jstr(json_object_array_get_idx(arr, 0), "policy"));
	json_object_put(arr);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_INVALID,
		  dma_byte(_metadata, self->fd, IOVA));
	EXPECT_EQ(0, mapped_pages(self->fd, IOVA, NPAGES));

	/* Prefixes of the words and of the policy's name. */
	ctl_ok("r se ctx %u id %d pol res prefetch 4", self->ctx_id,
	       self->range_id);
	arr = json_array_of("-j range show ctx %u id %d", self->ctx_id,
			    self->range_id);
	EXPECT_STREQ("resolve",
		     jstr(json_object_array_get_idx(arr, 0), "policy"));
	EXPECT_EQ(4ULL, ju64(json_object_array_get_idx(arr, 0), "prefetch"));
	json_object_put(arr);
	EXPECT_EQ((__u32)IOPFMAP_SIM_DMA_OK, dma_byte(_metadata, self->fd, IOVA));
	EXPECT_EQ(4, mapped_pages(self->fd, IOVA, NPAGES));
}

static __u64 prefetch_of(struct __test_metadata *_metadata, __u32 ctx_id,
			 int range_id)
{
	json_object *arr = json_array_of("-j range show ctx %u id %d", ctx_id,
					 range_id);
	__u64 v = ju64(json_object_array_get_idx(arr, 0), "prefetch");

	json_object_put(arr);
	return v;
}

TEST_F(ctl, range_set_errors)
{
	struct run *r;

	/* Not a power of two: the kernel's extended ack, exit 1. */
	r = ctl("range set ctx %u id %d prefetch 3", self->ctx_id,
		self->range_id);
	EXPECT_EQ(1, r->status);
	EXPECT_NE(NULL, strstr(r->err, "Error: prefetch must be a power of two"))
		TH_LOG("stderr: \"%s\"", r->err);
	EXPECT_NE(NULL, strstr(r->err, "Invalid argument"))
		TH_LOG("stderr: \"%s\"", r->err);
	EXPECT_EQ(1ULL, prefetch_of(_metadata, self->ctx_id, self->range_id));

	/* Beyond IOPFMAP_PREFETCH_MAX: the family's policy refuses it. */
	r = ctl("range set ctx %u id %d prefetch %u", self->ctx_id,
		self->range_id, IOPFMAP_PREFETCH_MAX * 2);
	EXPECT_EQ(1, r->status);
	/* The policy's message names nothing: iopfctl names the argument. */
	EXPECT_NE(NULL, strstr(r->err, "Error: prefetch: "))
		TH_LOG("stderr: \"%s\"", r->err);

	/* No such range. */
	r = ctl("range set ctx %u id %d prefetch 2", self->ctx_id,
		self->range_id + 1000);
	EXPECT_EQ(1, r->status);
	EXPECT_NE(NULL, strstr(r->err, "no such range"))
		TH_LOG("stderr: \"%s\"", r->err);

	/* Bad command lines: usage, exit 2, nothing sent. */
	r = ctl("range set ctx %u prefetch 2", self->ctx_id);
	EXPECT_EQ(2, r->status);
	r = ctl("range set ctx %u id %d", self->ctx_id, self->range_id);
	EXPECT_EQ(2, r->status);
	r = ctl("range set ctx %u id %d policy sideways", self->ctx_id,
		self->range_id);
	EXPECT_EQ(2, r->status);
	r = ctl("range set ctx x id %d prefetch 2", self->range_id);
	EXPECT_EQ(2, r->status);
	r = ctl("range bogus");
	EXPECT_EQ(2, r->status);
	EXPECT_NE(NULL, strstr(r->err, "Usage:"));
	r = ctl("bogus");
	EXPECT_EQ(2, r->status);
	r = ctl("");
	EXPECT_EQ(2, r->status);
	EXPECT_EQ(1ULL, prefetch_of(_metadata, self->ctx_id, self->range_id));
}

/*
 * Changing a range is for CAP_NET_ADMIN only; seeing a context is for its
 * opener's uid and administrators: to anyone else it does not exist.
 */
TEST_F(ctl, range_set_not_admin)
{
	json_object *arr;
	struct run *r;

	r = ctl_nobody("range set ctx %u id %d prefetch 16", self->ctx_id,
		       self->range_id);
	EXPECT_NE(0, r->status);
	EXPECT_NE(NULL, strstr(r->err, "Operation not permitted"))
		TH_LOG("stderr: \"%s\"", r->err);
	EXPECT_NE(NULL, strstr(r->err, "CAP_NET_ADMIN"))
		TH_LOG("stderr: \"%s\"", r->err);
	EXPECT_EQ(1ULL, prefetch_of(_metadata, self->ctx_id, self->range_id));

	r = ctl_nobody("-j range show ctx %u", self->ctx_id);
	EXPECT_EQ(0, r->status) TH_LOG("stderr: \"%s\"", r->err);
	arr = __json_of(_metadata, r, json_type_array);
	EXPECT_EQ(NULL, jfind(arr, "id", self->range_id));
	json_object_put(arr);
	r = ctl_nobody("-j ctx show");
	EXPECT_EQ(0, r->status) TH_LOG("stderr: \"%s\"", r->err);
	arr = __json_of(_metadata, r, json_type_array);
	EXPECT_EQ(NULL, jfind(arr, "id", self->ctx_id));
	json_object_put(arr);
}

/* ---- queues and monitor ----------------------------------------------- */

static int queue_alloc(int fd, __u32 depth, __u32 timeout_ms)
{
	struct iopfmap_queue_alloc cmd = {
		.size = sizeof(cmd),
		.depth = depth,
		.timeout_ms = timeout_ms,
		.out_fd = -1,
	};
	int ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &cmd);

	return ret ? ret : cmd.out_fd;
}

/*
 * QUEUE_ALLOC; after a close the old queue may still be going away, so
 * EBUSY is retried for a while.
 */
static int new_queue(struct __test_metadata *_metadata, int fd, __u32 depth)
{
	__u64 end = iopfmap_now_ms() + WAIT_MS;
	int qfd;

	while ((qfd = queue_alloc(fd, depth, 0)) == -EBUSY && iopfmap_now_ms() < end)
		iopfmap_sleep_ms(5);
	ASSERT_LE(0, qfd) TH_LOG("QUEUE_ALLOC: %s", strerror(-qfd));
	return qfd;
}

static __u32 queue_pending(int qfd)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };

	return _test_ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi) ? ~0U :
	       qi.out_pending;
}

/* A page request in a thread: it waits while its group is queued. */
struct prq_job {
	pthread_t thread;
	int fd;
	__u64 iova;
	int ret;
	__u32 response;
};

static void *prq_thread(void *arg)
{
	struct prq_job *j = arg;
	struct iopfmap_sim_page_request r = {
		.size = sizeof(r),
		.flags = IOPFMAP_PRQ_READ | IOPFMAP_PRQ_WRITE | IOPFMAP_PRQ_LAST,
		.iova = j->iova,
		.grpid = 1,
	};

	j->ret = _test_cmd_sim_page_request(j->fd, &r);
	j->response = r.out_response;
	return NULL;
}

/* Static: the thread may outlive a failed test function's frame. */
static struct prq_job job;

/*
 * A fault queue of @fd holding one group of the FORWARD range at
 * IOVA_F, pending: the queue's fd.
 */
static int queue_with_group(struct __test_metadata *_metadata, int fd)
{
	__u64 end = iopfmap_now_ms() + WAIT_MS;
	int qfd = new_queue(_metadata, fd, 4);

	job = (struct prq_job){ .fd = fd, .iova = IOVA_F };
	ASSERT_EQ(0, pthread_create(&job.thread, NULL, prq_thread, &job));
	while (queue_pending(qfd) != 1 && iopfmap_now_ms() < end)
		iopfmap_sleep_ms(2);
	ASSERT_EQ(1U, queue_pending(qfd));
	return qfd;
}

/* Closes the queue under its group: INVALID, and a queue-close event. */
static void close_queue(struct __test_metadata *_metadata, int qfd)
{
	ASSERT_EQ(0, close(qfd));
	ASSERT_EQ(0, pthread_join(job.thread, NULL));
	EXPECT_EQ(0, job.ret);
	EXPECT_EQ((__u32)IOPFMAP_PAGE_RESP_INVALID, job.response);
}

TEST_F(ctl, queue_show)
{
	char key[32], block[2048], want[128];
	json_object *arr, *q;
	struct run *r;
	char *fbuf;
	int qfd, fid;

	/* No queue: nothing for this context. */
	r = ctl_ok("queue show ctx %u", self->ctx_id);
	EXPECT_STREQ("", r->out);
	r = ctl_ok("-j queue show ctx %u", self->ctx_id);
	EXPECT_STREQ("[]\n", r->out);

	fbuf = alloc_buf(8);
	ASSERT_NE(MAP_FAILED, fbuf);
	fid = map(self->fd, IOVA_F, fbuf, 8 * psz, RW | IOPFMAP_MAP_FORWARD, 0);
	ASSERT_LT(0, fid);
	qfd = queue_with_group(_metadata, self->fd);

	r = ctl_ok("queue show ctx %u", self->ctx_id);
	snprintf(want, sizeof(want),
		 "queue ctx %u depth 4 timeout-ms 0 pending 1 inflight 0 armed 0 attached",
		 self->ctx_id);
	snprintf(key, sizeof(key), "queue ctx %u", self->ctx_id);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)))
		TH_LOG("\"%s\"", r->out);
	EXPECT_EQ(0, strncmp(block, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s\"", block, want);
	EXPECT_EQ(1ULL, text_u64(block, "groups"));
	EXPECT_EQ(0ULL, text_u64(block, "delivered"));

	arr = json_array_of("-j queue show");
	q = jfind(arr, "ctx_id", self->ctx_id);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(4ULL, ju64(q, "depth"));
	EXPECT_EQ(0ULL, ju64(q, "timeout_ms"));
	EXPECT_EQ(1ULL, ju64(q, "pending"));
	EXPECT_EQ(0ULL, ju64(q, "inflight"));
	EXPECT_EQ(0ULL, ju64(q, "armed"));
	EXPECT_EQ(1, jbool(q, "attached"));
	EXPECT_EQ(1ULL, ju64(jget(q, "stats"), "groups"));
	EXPECT_EQ(1ULL, ju64(jget(q, "stats"), "records"));
	EXPECT_EQ(0ULL, ju64(jget(q, "stats"), "resp_success"));
	json_object_put(arr);

	/* The context says it has a queue, and counts the forwarded fault. */
	arr = json_array_of("-j ctx show id %u", self->ctx_id);
	q = json_object_array_get_idx(arr, 0);
	EXPECT_EQ(1, jbool(q, "queue"));
	EXPECT_EQ(2ULL, ju64(q, "nr_ranges"));
	json_object_put(arr);
	r = ctl_ok("ctx show id %u", self->ctx_id);
	EXPECT_TRUE(text_has(r->out, "devices 0 queue"));

	close_queue(_metadata, qfd);
	munmap(fbuf, 8 * psz);
}

static void monitor_start(struct __test_metadata *_metadata, const char *args)
{
	mon.len = 0;
	mon.buf[0] = '\0';
	mon.pid = start_ctl(args, false, &mon.out, &mon.err);
	ASSERT_LT(0, mon.pid) TH_LOG("iopfctl %s: %s", args, strerror(-mon.pid));
	/* No way to see it subscribed: the callers provoke events again. */
	iopfmap_sleep_ms(300);
}

/* Stops the monitor: it must not have died or complained. */
static void monitor_stop(struct __test_metadata *_metadata)
{
	char err[1024] = "";
	size_t elen = 0;
	int status;

	if (mon.pid <= 0)
		return;
	EXPECT_EQ(0, waitpid(mon.pid, &status, WNOHANG))
		TH_LOG("iopfctl monitor ended by itself");
	kill(mon.pid, SIGTERM);
	EXPECT_EQ(mon.pid, waitpid(mon.pid, &status, 0));
	while (drain(mon.err, err, sizeof(err), &elen))
		;
	EXPECT_STREQ("", err);
	close(mon.out);
	close(mon.err);
	mon.pid = -1;
}

/*
 * Waits up to @ms for a whole line of the monitor's output that holds
 * @needle; returns a copy in @line, or false.
 */
static bool monitor_line(const char *needle, unsigned int ms, char *line,
			 size_t size)
{
	__u64 end = iopfmap_now_ms() + ms;
	struct pollfd pfd = { .fd = mon.out, .events = POLLIN };
	const char *p, *nl;

	for (;;) {
		for (p = mon.buf; (nl = strchr(p, '\n')); p = nl + 1) {
			size_t n = nl - p;

			if (n >= size || !memmem(p, n, needle, strlen(needle)))
				continue;
			memcpy(line, p, n);
			line[n] = '\0';
			return true;
		}
		if (iopfmap_now_ms() >= end)
			return false;
		if (poll(&pfd, 1, 50) > 0 &&
		    !drain(mon.out, mon.buf, sizeof(mon.buf), &mon.len))
			return false;
	}
}

/* Every line the monitor printed with -j is one JSON object. */
static void expect_json_lines(struct __test_metadata *_metadata)
{
	char line[4096];
	const char *p, *nl;
	json_object *o;

	for (p = mon.buf; (nl = strchr(p, '\n')); p = nl + 1) {
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		o = jparse(line);
		EXPECT_NE(NULL, o) TH_LOG("not a JSON object: \"%s\"", line);
		if (o) {
			EXPECT_EQ((int)json_type_object, (int)json_object_get_type(o));
		}
		json_object_put(o);
	}
}

/* monitor -j: a queue closed with a group pending is one JSON line. */
TEST_F_TIMEOUT(ctl, monitor_queue_close, 120)
{
	char want[64], line[4096], args[64];
	json_object *ev;
	char *fbuf;
	int i, fid, qfd;
	bool seen = false;

	fbuf = alloc_buf(8);
	ASSERT_NE(MAP_FAILED, fbuf);
	fid = map(self->fd, IOVA_F, fbuf, 8 * psz, RW | IOPFMAP_MAP_FORWARD, 0);
	ASSERT_LT(0, fid);

	snprintf(args, sizeof(args), "-j monitor ctx %u", self->ctx_id);
	monitor_start(_metadata, args);
	snprintf(want, sizeof(want), "\"ctx_id\":%u", self->ctx_id);
	for (i = 0; i < TRIES && !seen; i++) {
		qfd = queue_with_group(_metadata, self->fd);
		close_queue(_metadata, qfd);
		seen = monitor_line(want, 2000, line, sizeof(line));
	}
	ASSERT_TRUE(seen) TH_LOG("no event for ctx %u: \"%s\"", self->ctx_id,
				 mon.buf);
	ev = jparse(line);
	ASSERT_NE(NULL, ev) TH_LOG("not JSON: \"%s\"", line);
	EXPECT_STREQ("queue-close", jstr(ev, "event"));
	EXPECT_EQ((__u64)self->ctx_id, ju64(ev, "ctx_id"));
	EXPECT_EQ(1ULL, ju64(ev, "count"));
	json_object_put(ev);
	expect_json_lines(_metadata);
	monitor_stop(_metadata);

	/* Text: one line per event. */
	snprintf(args, sizeof(args), "monitor ctx %u", self->ctx_id);
	monitor_start(_metadata, args);
	snprintf(want, sizeof(want), "queue-close ctx %u count 1",
		 self->ctx_id);
	for (i = 0, seen = false; i < TRIES && !seen; i++) {
		qfd = queue_with_group(_metadata, self->fd);
		close_queue(_metadata, qfd);
		seen = monitor_line(want, 2000, line, sizeof(line));
	}
	EXPECT_TRUE(seen) TH_LOG("want \"%s\": \"%s\"", want, mon.buf);
	monitor_stop(_metadata);
	munmap(fbuf, 8 * psz);
}

/* monitor -j: more invalidations than storm_threshold is an inval-storm. */
TEST_F_TIMEOUT(ctl, monitor_inval_storm, 120)
{
	FIXTURE_DATA(ctl) *c = self;
	FILE *f;
	char want[64], line[4096], args[64];
	json_object *ev;
	bool seen = false;
	int i, j, ret;

	f = fopen(STORM_PARAM, "re");
	if (!f)
		SKIP(return, "no %s", STORM_PARAM);
	if (!fgets(storm_saved, sizeof(storm_saved), f))
		storm_saved[0] = '\0';
	fclose(f);
	ret = write_param(STORM_PARAM, "3");
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", STORM_PARAM, strerror(-ret));
	snprintf(args, sizeof(args), "-j monitor ctx %u", c->ctx_id);
	monitor_start(_metadata, args);
	snprintf(want, sizeof(want), "\"event\":\"inval-storm\"");
	/* One storm a window (a second): wait it out between tries. */
	for (i = 0; i < TRIES && !seen; i++) {
		for (j = 0; j < 8; j++) {
			ASSERT_EQ((__u32)IOPFMAP_SIM_DMA_OK,
				  dma_byte(_metadata, c->fd, IOVA + j * psz));
			ASSERT_EQ(0, madvise(c->buf + j * psz, psz,
					     MADV_DONTNEED));
		}
		seen = monitor_line(want, 1500, line, sizeof(line));
	}
	ASSERT_TRUE(seen) TH_LOG("no storm: \"%s\"", mon.buf);
	ev = jparse(line);
	ASSERT_NE(NULL, ev) TH_LOG("not JSON: \"%s\"", line);
	EXPECT_EQ((__u64)c->ctx_id, ju64(ev, "ctx_id"));
	EXPECT_LT(3ULL, ju64(ev, "count"));
	EXPECT_NE(~0ULL, ju64(ev, "count"));
	EXPECT_EQ(1000ULL, ju64(ev, "window_ms"));
	json_object_put(ev);
	expect_json_lines(_metadata);
	monitor_stop(_metadata);
}

/* ---- dev show ------------------------------------------------------------ */

TEST_F(ctl, dev_show_none)
{
	struct run *r;

	r = ctl_ok("-j dev show ctx %u", self->ctx_id);
	EXPECT_STREQ("[]\n", r->out);
	r = ctl_ok("dev show ctx %u", self->ctx_id);
	EXPECT_STREQ("", r->out);
}

/* The IOMMU group number of PCI device @name, or -1. */
static long iommu_group_of(const char *name)
{
	char path[256], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	return strtol(basename(target), NULL, 10);
}

/*
 * An edu device attached to a context: dev show in text and JSON, what
 * ctx show and stats say about it, and its attach and detach events.
 */
TEST_F_TIMEOUT(ctl, dev_show_edu, 120)
{
	char edu[2][IOPFMAP_DEVICE_NAME_MAX], want[256], key[32], args[64];
	char block[2048], line[4096], aline[4096];
	struct iopfmap_device_attach a;
	json_object *arr, *d, *ev;
	__u32 ctx_id;
	long group;
	struct run *r;
	int fd, ret, i;
	bool seen = false;

	OPEN_CONTEXT(&fd);
	if (!edu_require(_metadata, fd, edu, 2)) {
		close(fd);
		return;
	}
	ctx_id = ctx_id_of(_metadata, fd);
	snprintf(args, sizeof(args), "-j monitor ctx %u", ctx_id);
	monitor_start(_metadata, args);

	ret = _test_attach(fd, edu[0], 0, &a);
	ASSERT_EQ(0, ret) TH_LOG("DEVICE_ATTACH %s: %s", edu[0],
				 strerror(-ret));
	group = iommu_group_of(edu[0]);

	r = ctl_ok("dev show ctx %u", ctx_id);
	snprintf(want, sizeof(want), "dev %u ctx %u name %s iommu-group %ld fault-path ",
		 a.out_dev_id, ctx_id, edu[0], group);
	snprintf(key, sizeof(key), "dev %u", a.out_dev_id);
	ASSERT_TRUE(text_block(r->out, key, block, sizeof(block)))
		TH_LOG("\"%s\"", r->out);
	EXPECT_EQ(0, strncmp(block, want, strlen(want)))
		TH_LOG("got \"%s\", want \"%s...\"", block, want);

	arr = json_array_of("-j dev show ctx %u", ctx_id);
	ASSERT_EQ(1U, json_object_array_length(arr));
	d = json_object_array_get_idx(arr, 0);
	EXPECT_EQ((__u64)a.out_dev_id, ju64(d, "id"));
	EXPECT_EQ((__u64)ctx_id, ju64(d, "ctx_id"));
	EXPECT_STREQ(edu[0], jstr(d, "name"));
	EXPECT_EQ((__u64)group, ju64(d, "iommu_group"));
	/* Faults come from the IOMMU exactly when it delivers them. */
	if (jbool(d, "iopf") == 1) {
		EXPECT_STREQ("iommu", jstr(d, "fault_path"));
	} else {
		EXPECT_EQ(0, jbool(d, "iopf"));
		EXPECT_STREQ("driver", jstr(d, "fault_path"));
	}
	EXPECT_EQ(0, jbool(d, "own_domain"));
	json_object_put(arr);

	arr = json_array_of("-j ctx show id %u", ctx_id);
	d = json_object_array_get_idx(arr, 0);
	EXPECT_STREQ("domain", jstr(d, "iopt_type"));
	EXPECT_EQ(0, jbool(d, "sim"));
	EXPECT_EQ(1ULL, ju64(d, "nr_devices"));
	json_object_put(arr);
	d = __json_of(_metadata, ctl_ok("-j stats"), json_type_object);
	EXPECT_LE(1ULL, ju64(d, "devices"));
	json_object_put(d);

	/*
	 * Its attach and detach: both, from one try. A monitor that joined
	 * between them sees only the detach; then both happen again.
	 */
	for (i = 0; i < TRIES && !seen; i++) {
		if (i) {
			mon.len = 0;
			mon.buf[0] = '\0';
			ret = _test_attach(fd, edu[0], 0, &a);
			ASSERT_EQ(0, ret);
		}
		ASSERT_EQ(0, _test_detach(fd, a.out_dev_id));
		seen = monitor_line("\"event\":\"dev-detach\"", 2000, line,
				    sizeof(line)) &&
		       monitor_line("\"event\":\"dev-attach\"", 0, aline,
				    sizeof(aline));
	}
	ASSERT_TRUE(seen) TH_LOG("\"%s\"", mon.buf);
	ev = jparse(line);
	ASSERT_NE(NULL, ev);
	EXPECT_EQ((__u64)ctx_id, ju64(ev, "ctx_id"));
	EXPECT_EQ((__u64)a.out_dev_id, ju64(ev, "dev_id"));
	EXPECT_STREQ(edu[0], jstr(ev, "dev_name"));
	EXPECT_STREQ("request", jstr(ev, "reason"));
	json_object_put(ev);
	ev = jparse(aline);
	EXPECT_STREQ(edu[0], jstr(ev, "dev_name"));
	json_object_put(ev);
	expect_json_lines(_metadata);
	monitor_stop(_metadata);

	r = ctl_ok("-j dev show ctx %u", ctx_id);
	EXPECT_STREQ("[]\n", r->out);
	close(fd);
}

/* ---- info show, options ---------------------------------------------------- */

TEST_F(ctl, info_show)
{
	json_object *o;
	struct run *r;

	r = ctl_ok("info show");
	EXPECT_EQ((__u64)IOPFMAP_ABI_VERSION, text_u64(r->out, "version:"));
	EXPECT_TRUE(text_has(r->out, "sim"));
	EXPECT_TRUE(text_has(r->out, "4K"));

	o = __json_of(_metadata, ctl_ok("-j i"), json_type_object);
	EXPECT_EQ((__u64)IOPFMAP_ABI_VERSION, ju64(o, "abi_version"));
	EXPECT_TRUE(jarray_has(o, "features", "map"));
	EXPECT_TRUE(jarray_has(o, "features", "sim"));
	EXPECT_TRUE(jarray_has(o, "features", "core-faults"));
	EXPECT_TRUE(jarray_has(o, "page_sizes", "4K"));
	EXPECT_NE(0ULL, ju64(o, "pgsize_bitmap") & psz);
	json_object_put(o);
}

TEST_F(ctl, options)
{
	struct run *r;

	r = ctl_ok("-V");
	EXPECT_EQ(0, strncmp(r->out, "iopfctl ", 8));
	r = ctl_ok("-h");
	EXPECT_NE(NULL, strstr(r->out, "range set"));
	EXPECT_NE(NULL, strstr(r->out, "monitor"));
	r = ctl("-x ctx");
	EXPECT_EQ(2, r->status);
	r = ctl("ctx show id");
	EXPECT_EQ(2, r->status);
	r = ctl("ctx show pid 1");
	EXPECT_EQ(2, r->status);
	r = ctl("stats show extra");
	EXPECT_EQ(2, r->status);
}

TEST_HARNESS_MAIN
