// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap_demo: what iopfmap does, shown on the simulated device (the
 * module loaded with sim=1) and told for someone who meets it for the
 * first time. `make demo` runs it in a QEMU guest per kernel.
 *
 *   1. The device streams over a large buffer. Every page it touches
 *      faults and the kernel maps it: with a 1-page and a 512-page
 *      prefetch window, and with the buffer backed by THP.
 *   2. The same buffer pinned up front (PIN MAP, as VFIO does): the
 *      time until the device may start, and the locked memory.
 *   3. Two stages: the program plays a VMM. It hands its context's fault
 *      queue to iopfd, whose rule fills the stage-1 table; stage-2
 *      misses are resolved in the kernel.
 *
 * Every DMA's data is checked against what the CPU wrote, and every
 * fault must be served the way the report says; otherwise it exits 1.
 * Fault latencies come from the iopfmap_fault_done tracepoint (faults
 * resolved in the kernel) and from iopfd's stats file (forwarded ones).
 *
 * Needs root. Usage: iopfmap_demo [--mib N] [--nested-mib N]
 *                    [--iopfd PATH] [--workdir DIR]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/iopfmap.h>

#include "iopfmap_pri.h"

#include "iopfd_proto.h"

#define PAGE		4096ULL
#define HUGE		(2ULL << 20)
#define MIB		(1ULL << 20)
#define CHUNK		(64ULL << 20)	/* SIM_DMA's largest transfer */
#define IOVA_BASE	HUGE		/* 2 MiB aligned, for THP */
#define S1_BASE		0ULL		/* stage-1 addresses of part 3 */
#define IPA_BASE	(512ULL << 20)	/* where guest RAM sits in stage 2 */
#define TRACE_EV	"events/iopfmap/iopfmap_fault_done/"

static const char *prog = "iopfmap_demo";
static unsigned long long stream_mib = 256, nested_mib = 16, pri_mib = 16;
static const char *iopfd_path = "iopfd";
static const char *workdir = "/tmp/iopfmap-demo";
static char iopfd_log[256];
static pid_t iopfd_pid;

/* What the closing summary repeats. */
static struct {
	uint64_t faults[3], huge, pin_map_ns, fault_map_ns, s1, s2;
	double lat1_us, s1_us, s2_us;
	long pin_kb;
} sum;

static const char *tracefs;
static char old_buffer_kb[32];

static void cleanup(void);

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: FAILED: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static void xioctl(int fd, unsigned long req, void *arg, const char *name)
{
	if (ioctl(fd, req, arg))
		die("%s: %s", name, strerror(errno));
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* What the CPU writes: each word names its offset, so a page mix-up shows. */
static inline uint64_t pattern(uint64_t off, uint64_t seed)
{
	return (off >> 3) * 0x9e3779b97f4a7c15ULL ^ seed;
}

static void fill(void *buf, uint64_t len, uint64_t seed)
{
	uint64_t *w = buf, i;

	for (i = 0; i < len / 8; i++)
		w[i] = pattern(i * 8, seed);
}

/* @buf holds what the CPU wrote at [@off, @off + @len) of its buffer. */
static void check(const void *buf, uint64_t off, uint64_t len,
		  uint64_t seed, uint64_t dev_addr)
{
	const uint64_t *w = buf;
	uint64_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != pattern(off + i * 8, seed))
			die("data check: the device read %#llx at %#llx, the CPU wrote %#llx there",
			    (unsigned long long)w[i],
			    (unsigned long long)(dev_addr + i * 8),
			    (unsigned long long)pattern(off + i * 8, seed));
}

/* An anonymous buffer aligned to 2 MiB, so that THP can back it. */
static void *alloc_buf(uint64_t len)
{
	char *p = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap of %llu MiB: %s", (unsigned long long)(len / MIB),
		    strerror(errno));
	return (void *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
}

/* A "Key:" line of a /proc/self file (status, smaps_rollup), in kB. */
static long proc_kb(const char *file, const char *key)
{
	FILE *f = fopen(file, "re");
	size_t klen = strlen(key);
	char line[256];
	long kb = -1;

	if (!f)
		die("%s: %s", file, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			kb = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	if (kb < 0)
		die("%s has no %s", file, key);
	return kb;
}

static long status_kb(const char *key)
{
	return proc_kb("/proc/self/status", key);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* A whole (small) file, NUL-terminated; the caller frees it. */
static char *read_all(const char *path)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0)
		die("read %s: %s", path, strerror(errno));
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len == cap) {
			buf = realloc(buf, 2 * cap + 1);
			if (!buf)
				die("read %s: out of memory", path);
			cap *= 2;
		}
	}
	close(fd);
	if (n < 0)
		die("read %s: %s", path, strerror(errno));
	buf[len] = '\0';
	return buf;
}

static const char *tpath(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tracefs, name);
	return path;
}

/*
 * Turns on iopfmap_fault_done, with a buffer big enough that no event of
 * a run is overwritten even if one CPU takes them all.
 */
static void trace_setup(uint64_t max_faults)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	unsigned long kb = max_faults * 64 / 1024 + 1024;
	char path[256], val[32];
	unsigned int i;
	char *old;

	for (i = 0; i < 2 && !tracefs; i++) {
		snprintf(path, sizeof(path), "%s/" TRACE_EV "enable", dirs[i]);
		if (!access(path, W_OK))
			tracefs = dirs[i];
	}
	if (!tracefs) {
		/* Not mounted yet (a host, not the test guest). */
		if (mount("nodev", dirs[0], "tracefs", 0, NULL))
			die("mount -t tracefs nodev %s: %s", dirs[0],
			    strerror(errno));
		tracefs = dirs[0];
		if (access(tpath(TRACE_EV "enable"), W_OK))
			die("no tracepoint iopfmap/iopfmap_fault_done in %s",
			    tracefs);
	}
	old = read_all(tpath("buffer_size_kb"));
	snprintf(old_buffer_kb, sizeof(old_buffer_kb), "%lu", strtoul(old, NULL, 10));
	free(old);
	snprintf(val, sizeof(val), "%lu", kb);
	if (strtoul(old_buffer_kb, NULL, 10) < kb &&
	    write_file(tpath("buffer_size_kb"), val))
		die("%s: %s", tpath("buffer_size_kb"), strerror(errno));
	if (write_file(tpath(TRACE_EV "enable"), "1"))
		die("%s: %s", tpath(TRACE_EV "enable"), strerror(errno));
}

static void trace_clear(void)
{
	if (write_file(tpath("trace"), ""))
		die("clear %s: %s", tpath("trace"), strerror(errno));
}

/* The latencies the fault_done events of context @ctx recorded, in ns. */
static uint64_t *trace_collect(uint32_t ctx, size_t *nr)
{
	char *text = read_all(tpath("trace")), *line, *save = NULL;
	size_t n = 0, cap = 1024;
	uint64_t *lat = malloc(cap * sizeof(*lat));

	if (!lat)
		die("out of memory");
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *ev = strstr(line, "iopfmap_fault_done: ctx="), *l;
		unsigned long long ns;

		if (!ev || strtoul(ev + 24, NULL, 10) != ctx)
			continue;
		l = strstr(ev, "latency_ns=");
		if (!l)
			continue;
		ns = strtoull(l + 11, NULL, 10);
		/* 0: the event was enabled while this fault was running. */
		if (!ns)
			continue;
		if (n == cap) {
			cap *= 2;
			lat = realloc(lat, cap * sizeof(*lat));
			if (!lat)
				die("out of memory");
		}
		lat[n++] = ns;
	}
	free(text);
	*nr = n;
	return lat;
}

static void trace_teardown(void)
{
	if (!tracefs)
		return;
	write_file(tpath(TRACE_EV "enable"), "0");
	if (old_buffer_kb[0])
		write_file(tpath("buffer_size_kb"), old_buffer_kb);
	tracefs = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct pct {
	size_t n;
	double us[3];	/* p50, p90, p99 */
};

/* Nearest-rank percentiles of @n samples in ns; sorts them. */
static struct pct percentiles(uint64_t *ns, size_t n)
{
	static const unsigned int p[3] = { 50, 90, 99 };
	struct pct r = { .n = n };
	unsigned int i;

	qsort(ns, n, sizeof(*ns), cmp_u64);
	for (i = 0; i < 3 && n; i++) {
		size_t rank = (n * p[i] + 99) / 100;

		r.us[i] = ns[rank ? rank - 1 : 0] / 1000.0;
	}
	return r;
}

/* A latency as a table cell: us, with a decimal below 10 us. */
static const char *us_str(char *buf, size_t len, double us)
{
	snprintf(buf, len, us < 10 ? "%.1f" : "%.0f", us);
	return buf;
}

static const char *ms_str(char *buf, size_t len, uint64_t ns)
{
	double ms = ns / 1e6;

	snprintf(buf, len, ms < 1 ? "%.3f ms" : ms < 100 ? "%.1f ms" :
		 "%.0f ms", ms);
	return buf;
}

static void get_stats(int fd, struct iopfmap_stats *s)
{
	*s = (struct iopfmap_stats){ .size = sizeof(*s) };
	xioctl(fd, IOPFMAP_GET_STATS, s, "IOPFMAP_GET_STATS");
}

/* @a becomes the counters' growth since @b; pages_pinned stays a level. */
static void stats_sub(struct iopfmap_stats *a, const struct iopfmap_stats *b)
{
	a->out_faults -= b->out_faults;
	a->out_faults_handled -= b->out_faults_handled;
	a->out_faults_invalid -= b->out_faults_invalid;
	a->out_faults_forwarded -= b->out_faults_forwarded;
	a->out_pages_mapped -= b->out_pages_mapped;
	a->out_pages_prefetched -= b->out_pages_prefetched;
	a->out_huge_mappings -= b->out_huge_mappings;
	a->out_retries -= b->out_retries;
}

static void sim_stats(int fd, struct iopfmap_sim_stats *s)
{
	*s = (struct iopfmap_sim_stats){ .size = sizeof(*s) };
	xioctl(fd, IOPFMAP_SIM_GET_STATS, s, "IOPFMAP_SIM_GET_STATS");
}

/* A context with a simulated device; returns its fd, *@id its id. */
static int open_ctx(uint32_t flags, uint32_t *id)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc), .flags = flags };
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/iopfmap: %s (is iopfmap.ko loaded?)",
		    strerror(errno));
	if (ioctl(fd, IOPFMAP_SIM_CREATE, &sc))
		die("IOPFMAP_SIM_CREATE: %s (load the module with sim=1)",
		    strerror(errno));
	xioctl(fd, IOPFMAP_GET_INFO, &info, "IOPFMAP_GET_INFO");
	*id = info.out_ctx_id;
	return fd;
}

static uint64_t map_range(int fd, uint64_t iova, void *buf, uint64_t len,
			  uint32_t flags, uint32_t prefetch)
{
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE | flags,
		.iova = iova,
		.vaddr = (uintptr_t)buf,
		.length = len,
		.prefetch_pages = prefetch,
	};
	uint64_t t0 = now_ns();

	xioctl(fd, IOPFMAP_MAP, &m, "IOPFMAP_MAP");
	return now_ns() - t0;
}

static void unmap_range(int fd, uint64_t iova, uint64_t len)
{
	struct iopfmap_unmap u = {
		.size = sizeof(u), .iova = iova, .length = len,
	};

	xioctl(fd, IOPFMAP_UNMAP, &u, "IOPFMAP_UNMAP");
}

static const char *const dma_status[] = {
	[IOPFMAP_SIM_DMA_OK] = "ok",
	[IOPFMAP_SIM_DMA_INVALID] = "a page request was answered INVALID",
	[IOPFMAP_SIM_DMA_S1_FAULT] = "a stage-1 fault was not resolved",
	[IOPFMAP_SIM_DMA_NO_PROGRESS] = "no progress after SUCCESS",
	[IOPFMAP_SIM_DMA_FAILURE] = "a page request was answered FAILURE",
};

/* One device read of [@addr, + @len) into @dst; returns its faults. */
static uint32_t dma_read(int fd, uint64_t addr, void *dst, uint64_t len,
			 uint64_t *ns)
{
	struct iopfmap_sim_dma d = {
		.size = sizeof(d),
		.iova = addr,
		.length = len,
		.buffer = (uintptr_t)dst,
	};
	uint64_t t0 = now_ns();

	xioctl(fd, IOPFMAP_SIM_DMA, &d, "IOPFMAP_SIM_DMA");
	*ns = now_ns() - t0;
	if (d.out_status != IOPFMAP_SIM_DMA_OK)
		die("the device's DMA stopped at %#llx: %s",
		    (unsigned long long)d.out_fault_iova,
		    d.out_status < 5 ? dma_status[d.out_status] : "?");
	return d.out_faults;
}

/* Part 1: one run of the stream, and its numbers. */
struct run {
	const char *name;
	uint32_t prefetch;
	uint64_t seed;
	uint64_t map_ns, cold_ns, warm_ns;
	uint64_t dev_faults, warm_faults;
	struct iopfmap_stats d;
	struct pct lat;
	long vmlck_kb;
	long thp_kb;
};

/* A device read pass over the range at IOVA_BASE; checks the data. */
static uint64_t stream_pass(int fd, uint64_t len, char *bounce,
			    uint64_t seed, uint64_t *faults)
{
	uint64_t off, ns, total = 0;

	*faults = 0;
	for (off = 0; off < len; off += CHUNK) {
		uint64_t n = len - off < CHUNK ? len - off : CHUNK;

		*faults += dma_read(fd, IOVA_BASE + off, bounce, n, &ns);
		total += ns;
		check(bounce, off, n, seed, IOVA_BASE + off);
	}
	return total;
}

static void stream_run(int fd, uint32_t ctx, char *buf, uint64_t len,
		       char *bounce, struct run *r)
{
	struct iopfmap_stats before;
	uint64_t *lat;
	size_t n;

	get_stats(fd, &before);
	trace_clear();
	r->map_ns = map_range(fd, IOVA_BASE, buf, len, 0, r->prefetch);
	r->cold_ns = stream_pass(fd, len, bounce, r->seed, &r->dev_faults);
	r->warm_ns = stream_pass(fd, len, bounce, r->seed, &r->warm_faults);
	r->vmlck_kb = status_kb("VmLck");
	r->thp_kb = proc_kb("/proc/self/smaps_rollup", "AnonHugePages");
	get_stats(fd, &r->d);
	stats_sub(&r->d, &before);
	lat = trace_collect(ctx, &n);
	r->lat = percentiles(lat, n);
	free(lat);
	unmap_range(fd, IOVA_BASE, len);

	if (r->d.out_faults != r->dev_faults + r->warm_faults)
		die("%s: the device took %llu faults, the kernel saw %llu",
		    r->name,
		    (unsigned long long)(r->dev_faults + r->warm_faults),
		    (unsigned long long)r->d.out_faults);
	if (r->d.out_faults_handled != r->d.out_faults ||
	    r->d.out_faults_forwarded)
		die("%s: of %llu faults, %llu were resolved in the kernel and %llu forwarded",
		    r->name, (unsigned long long)r->d.out_faults,
		    (unsigned long long)r->d.out_faults_handled,
		    (unsigned long long)r->d.out_faults_forwarded);
	if (r->d.out_pages_pinned || r->vmlck_kb)
		die("%s: on-demand mapping pinned %llu pages, VmLck %ld kB",
		    r->name, (unsigned long long)r->d.out_pages_pinned,
		    r->vmlck_kb);
	if (r->lat.n < r->d.out_faults)
		printf("  (the trace kept %zu of %llu %s fault events)\n",
		       r->lat.n, (unsigned long long)r->d.out_faults, r->name);
}

/* A table row: a label and up to three right-aligned cells. */
static void row(const char *label, const char *a, const char *b,
		const char *c)
{
	char line[128];
	size_t n;

	n = snprintf(line, sizeof(line), "  %-36s%13s%13s%13s", label, a, b,
		     c);
	while (n > 0 && line[n - 1] == ' ')
		n--;
	printf("%.*s\n", (int)n, line);
}

static void row_u64(const char *label, const uint64_t *v, unsigned int n)
{
	char s[3][24];
	unsigned int i;

	for (i = 0; i < 3; i++)
		snprintf(s[i], sizeof(s[i]), i < n ? "%llu" : "",
			 i < n ? (unsigned long long)v[i] : 0ULL);
	row(label, s[0], s[1], s[2]);
}

static void row1(const char *label, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	row(label, s, "", "");
}

static void row_pct(const char *label, const struct pct *p)
{
	char v[3][24];
	unsigned int i;

	for (i = 0; i < 3; i++)
		us_str(v[i], sizeof(v[i]), p->us[i]);
	row(label, v[0], v[1], v[2]);
}

#define ROW3(label, runs, expr) do {					\
	uint64_t v_[3] = { (runs)[0].expr, (runs)[1].expr, (runs)[2].expr }; \
	row_u64(label, v_, 3);						\
} while (0)

static void row_lat(const char *label, struct run *runs, unsigned int p)
{
	char s[3][24];
	unsigned int i;

	for (i = 0; i < 3; i++)
		us_str(s[i], sizeof(s[i]), runs[i].lat.us[p]);
	row(label, s[0], s[1], s[2]);
}

static void part_stream(int fd, uint32_t ctx)
{
	uint64_t len = stream_mib * MIB, pages = len / PAGE;
	struct run runs[3] = {
		{ .name = "window 1", .prefetch = 1, .seed = 0x1111 },
		{ .name = "window 512", .prefetch = 512, .seed = 0x1111 },
		{ .name = "THP", .prefetch = 1, .seed = 0x2222 },
	};
	static const char *const cols[3] = {
		"window 1", "window 512", "THP backing",
	};
	uint64_t pin_map_ns, pin_pass_ns, pin_faults, pinned;
	uint64_t maps[5], fault_map_ns;
	double ratio[3];
	char *buf = alloc_buf(len), *bounce = alloc_buf(CHUNK);
	char s[3][24];
	long lck0, lck1, lck2;
	struct iopfmap_stats st;
	unsigned int i;

	printf("[1] The device reads a %llu MiB buffer (%llu pages) that the CPU wrote\n",
	       stream_mib, (unsigned long long)pages);
	fflush(stdout);

	/*
	 * 4 KiB CPU pages first: THP would hide the prefetch window. (The
	 * bounce buffer too, so that AnonHugePages counts only @buf.)
	 */
	if (madvise(buf, len, MADV_NOHUGEPAGE) ||
	    madvise(bounce, CHUNK, MADV_NOHUGEPAGE))
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	fill(buf, len, runs[0].seed);
	stream_run(fd, ctx, buf, len, bounce, &runs[0]);
	stream_run(fd, ctx, buf, len, bounce, &runs[1]);

	/*
	 * The classic way, same buffer, same state of its pages, against
	 * the median of a few on-demand MAPs (a MAP alone is short).
	 */
	for (i = 0; i < 5; i++) {
		maps[i] = map_range(fd, IOVA_BASE, buf, len, 0, 1);
		unmap_range(fd, IOVA_BASE, len);
	}
	qsort(maps, 5, sizeof(*maps), cmp_u64);
	fault_map_ns = maps[2] ? maps[2] : 1;
	lck0 = status_kb("VmLck");
	pin_map_ns = map_range(fd, IOVA_BASE, buf, len, IOPFMAP_MAP_PIN, 0);
	lck1 = status_kb("VmLck");
	get_stats(fd, &st);
	pinned = st.out_pages_pinned;
	pin_pass_ns = stream_pass(fd, len, bounce, runs[0].seed, &pin_faults);
	unmap_range(fd, IOVA_BASE, len);
	lck2 = status_kb("VmLck");
	if (pin_faults)
		die("PIN: the device faulted %llu times on a pinned range",
		    (unsigned long long)pin_faults);
	if (pinned != pages || lck1 - lck0 != (long)(len / 1024) || lck2)
		die("PIN: %llu pages pinned, VmLck %ld -> %ld -> %ld kB",
		    (unsigned long long)pinned, lck0, lck1, lck2);

	/*
	 * New pages at the same address, backed by 2 MiB CPU pages where the
	 * guest has them. A new mapping, not MADV_DONTNEED: that would leave
	 * the PTE tables, and THP is only allocated under an empty PMD.
	 */
	if (mmap(buf, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
	    madvise(buf, len, MADV_HUGEPAGE))
		die("mmap(MAP_FIXED), madvise(MADV_HUGEPAGE): %s",
		    strerror(errno));
	fill(buf, len, runs[2].seed);
	stream_run(fd, ctx, buf, len, bounce, &runs[2]);

	row("", cols[0], cols[1], cols[2]);
	row_u64("pages the device touched",
		(uint64_t[]){ pages, pages, pages }, 3);
	ROW3("faults the device took", runs, dev_faults);
	ROW3("  served in the kernel", runs, d.out_faults_handled);
	ROW3("  forwarded to userspace", runs, d.out_faults_forwarded);
	ROW3("pages mapped", runs, d.out_pages_mapped);
	ROW3("  of them by a prefetch window", runs, d.out_pages_prefetched);
	ROW3("2 MiB IO page table entries", runs, d.out_huge_mappings);
	ROW3("pages pinned", runs, d.out_pages_pinned);
	ROW3("CPU memory in 2 MiB pages, MiB", runs, thp_kb / 1024);
	row_lat("fault latency, us: p50", runs, 0);
	row_lat("                   p90", runs, 1);
	row_lat("                   p99", runs, 2);
	for (i = 0; i < 3; i++)
		snprintf(s[i], sizeof(s[i]), "%.1fx",
			 (double)runs[i].cold_ns / runs[i].warm_ns);
	row("time, first pass / second pass", s[0], s[1], s[2]);
	ROW3("faults in the second pass", runs, warm_faults);
	row("data the device read", "ok", "ok", "ok");
	printf("  \"window N\": MAP's prefetch_pages, the pages mapped around each fault.\n"
	       "  \"THP backing\": the CPU maps the buffer with 2 MiB pages, so a fault\n"
	       "  maps its whole block as one 2 MiB entry. The second pass finds the\n"
	       "  pages mapped: they stay until the CPU's page tables change. Latency:\n"
	       "  the iopfmap_fault_done tracepoint, page request to answer.\n\n");

	printf("[2] Pinning the same buffer up front instead (PIN MAP, as VFIO does)\n");
	row("", "on demand", "pinned", "");
	row("MAP: until the device may start",
	    ms_str(s[0], sizeof(s[0]), fault_map_ns),
	    ms_str(s[1], sizeof(s[1]), pin_map_ns), "");
	snprintf(s[0], sizeof(s[0]), "%ld kB", runs[0].vmlck_kb);
	snprintf(s[1], sizeof(s[1]), "%ld kB", lck1);
	row("locked memory (VmLck)", s[0], s[1], "");
	row_u64("pages pinned", (uint64_t[]){ 0, pinned }, 2);
	row("MAP + first pass over every page:", "", "", "");
	for (i = 0; i < 3; i++) {
		char label[48];

		snprintf(label, sizeof(label), "  %s", cols[i]);
		row(label,
		    ms_str(s[0], sizeof(s[0]), runs[i].map_ns + runs[i].cold_ns),
		    ms_str(s[1], sizeof(s[1]), pin_map_ns + pin_pass_ns), "");
		ratio[i] = (double)(runs[i].map_ns + runs[i].cold_ns) /
			   (pin_map_ns + pin_pass_ns);
	}
	for (i = 0; i < 3; i++)
		sum.faults[i] = runs[i].dev_faults;
	sum.huge = runs[2].d.out_huge_mappings;
	sum.lat1_us = runs[0].lat.us[0];
	sum.pin_map_ns = pin_map_ns;
	sum.fault_map_ns = fault_map_ns;
	sum.pin_kb = lck1;
	printf("  On demand the device may start %.0fx sooner, and no memory is locked:\n"
	       "  pinning locks all %llu MiB before the first DMA. A first pass over\n"
	       "  every page then costs %.1fx (window 1), %.1fx (window 512) and %.1fx\n"
	       "  (THP) the pinned MAP + pass: faults are paid when the device touches\n"
	       "  a page, and only for the pages it touches. (Times are TCG's: compare\n"
	       "  within a row.)\n\n",
	       (double)pin_map_ns / fault_map_ns, stream_mib, ratio[0],
	       ratio[1], ratio[2]);
	munmap(bounce, CHUNK);
	munmap(buf, len);
}

/* Part 3: iopfd and its client protocol. */

/*
 * Part 4: real page requests, where the guest has iopfmap-pri (the
 * emulated PCIe device with ATS, PASID and PRI, tools/qemu) and the
 * kernel a PASID route. The same stream, 64 KiB per DMA, runs through the
 * real path and through the simulated device: the streaming cost per
 * fault is (first pass - second pass) / faults.
 */
#define PRI_CHUNK	(64ULL << 10)	/* the device's buffer */
#define PRI_PASID	0x42
#define PRI_IOVA	0x10000000ULL

struct pri_pass {
	uint64_t cold_ns, warm_ns, faults;
};

/* Part 4's streaming costs per fault (us), for the summary; 0: not run. */
static double pri_real_us, pri_sim_us, pri_wreal_us, pri_sva_us;


/* (first pass - second pass) / faults, in microseconds */
static double pri_cost_us(const struct pri_pass *p)
{
	return p->faults ? (p->cold_ns - p->warm_ns) / 1e3 / p->faults : 0;
}

/* Scans sysfs for the PRI device: its PCI name into @name, or false. */
static bool pri_find(char *name, size_t len)
{
	char path[320], id[32];
	bool found = false;
	struct dirent *e;
	DIR *d = opendir("/sys/bus/pci/devices");
	FILE *f;

	while (d && !found && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(id, sizeof(id), f) && !strncmp(id, "0x11e9", 6)) {
			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/vendor", e->d_name);
			fclose(f);
			f = fopen(path, "re");
			found = f && fgets(id, sizeof(id), f) &&
				!strncmp(id, "0x1234", 6) &&
				strlen(e->d_name) < len;
			if (found)
				memcpy(name, e->d_name, strlen(e->d_name) + 1);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * One pass of the PRI device over [@base, + @len) at @pasid (@base is
 * PRI_IOVA in iopfmap's range, the buffer's own address with SVA): reads
 * checked against the pattern, or, with @flags IOPFMAP_PRI_TO_RAM, writes
 * of @bounce to every chunk.
 */
static uint64_t pri_pass(int pfd, const char *dev, uint32_t flags,
			 uint32_t pasid, uint64_t base, uint64_t len,
			 char *bounce,
			 uint64_t seed, uint64_t *faults)
{
	uint64_t off, t0, total = 0;

	for (off = 0; off < len; off += PRI_CHUNK) {
		struct iopfmap_pri_dma d = {
			.flags = IOPFMAP_PRI_PASID | flags,
			.pasid = pasid,
			.iova = base + off,
			.length = PRI_CHUNK,
			.data = (uintptr_t)bounce,
		};

		snprintf(d.name, sizeof(d.name), "%s", dev);
		t0 = now_ns();
		xioctl(pfd, IOPFMAP_PRI_DMA, &d, "IOPFMAP_PRI_DMA");
		total += now_ns() - t0;
		if (d.out_status != IOPFMAP_PRI_DONE || d.out_stray)
			die("the PRI device's DMA at %#llx ended with status %u (%u stray responses)",
			    (unsigned long long)d.iova, d.out_status,
			    d.out_stray);
		*faults += d.out_page_requests;
		if (!(flags & IOPFMAP_PRI_TO_RAM))
			check(bounce, off, PRI_CHUNK, seed, base + off);
	}
	return total;
}

static void attach_pri(int fd, const char *dev, uint32_t flags,
		       uint32_t pasid)
{
	struct iopfmap_device_attach a = {
		.size = sizeof(a), .flags = flags, .pasid = pasid,
	};

	snprintf(a.name, sizeof(a.name), "%s", dev);
	xioctl(fd, IOPFMAP_DEVICE_ATTACH, &a, "IOPFMAP_DEVICE_ATTACH");
}

/* Every chunk of @buf holds what pri_pass() wrote from the bounce. */
static void pri_check_written(const char *buf, uint64_t len, uint64_t seed)
{
	uint64_t off;

	for (off = 0; off < len; off += PRI_CHUNK)
		check(buf + off, 0, PRI_CHUNK, seed, PRI_IOVA + off);
}

/* The simulated device's pass, with the same DMA size. */
static uint64_t sim_pass(int fd, uint64_t len, char *bounce, uint64_t seed,
			 uint64_t *faults)
{
	uint64_t off, ns, total = 0;

	for (off = 0; off < len; off += PRI_CHUNK) {
		*faults += dma_read(fd, IOVA_BASE + off, bounce, PRI_CHUNK,
				    &ns);
		total += ns;
		check(bounce, off, PRI_CHUNK, seed, IOVA_BASE + off);
	}
	return total;
}

static void part_pri(void)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	uint64_t len = pri_mib * MIB, seed = 0x4444;
	struct pri_pass real = { 0 }, sim = { 0 }, wreal = { 0 }, wsva = { 0 };
	struct iopfmap_pri_sva sva = { 0 };
	int sva_err = 0;
	char *wbuf;
	char dev[IOPFMAP_PRI_NAME_MAX], a[32], b[32], c[32];
	char *buf, *bounce;
	uint32_t ctx;
	int fd, pfd;

	printf("4. Real page requests: iopfmap-pri, a PCIe device with ATS, PASID and\n"
	       "   PRI, behind the emulated VT-d; next to the simulated device\n\n");
	if (!pri_find(dev, sizeof(dev))) {
		printf("  no iopfmap-pri device in this guest (make demo boots one where\n"
		       "  QEMU was built with it: tools/qemu/build.sh): real path not shown\n\n");
		return;
	}
	fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/iopfmap: %s", strerror(errno));
	xioctl(fd, IOPFMAP_GET_INFO, &info, "IOPFMAP_GET_INFO");
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH)) {
		printf("  this kernel has no PASID route (iommu_attach_device_pasid() with\n"
		       "  a handle: 6.10), and QEMU's VT-d sends page requests with a PASID\n"
		       "  only: real path not shown\n\n");
		close(fd);
		return;
	}
	pfd = open("/dev/iopfmap_pri", O_RDWR | O_CLOEXEC);
	if (pfd < 0)
		die("open /dev/iopfmap_pri: %s (iopfmap_pri.ko)", strerror(errno));
	buf = alloc_buf(len);
	bounce = alloc_buf(PRI_CHUNK);
	madvise(buf, len, MADV_NOHUGEPAGE);
	fill(buf, len, seed);

	/* The real path: page requests through VT-d's queue and the core. */
	attach_pri(fd, dev, 0, 0);
	attach_pri(fd, dev, IOPFMAP_ATTACH_PASID, PRI_PASID);
	map_range(fd, PRI_IOVA, buf, len, 0, 1);
	real.cold_ns = pri_pass(pfd, dev, 0, PRI_PASID, PRI_IOVA, len, bounce,
				seed, &real.faults);
	real.warm_ns = pri_pass(pfd, dev, 0, PRI_PASID, PRI_IOVA, len, bounce,
				seed, &real.faults);
	close(fd);

	/* The simulated device, in a context of its own. */
	fd = open_ctx(0, &ctx);
	map_range(fd, IOVA_BASE, buf, len, 0, 1);
	sim.cold_ns = sim_pass(fd, len, bounce, seed, &sim.faults);
	sim.warm_ns = sim_pass(fd, len, bounce, seed, &sim.faults);
	close(fd);

	/*
	 * Writes into memory nobody touched, where the two differ least:
	 * iopfmap (the page faulted in by hmm_range_fault(), then mapped)
	 * against the kernel's SVA on the same device (bound to this process
	 * with iommu_sva_bind_device(): VT-d walks the CPU page tables and
	 * the core resolves the fault with handle_mm_fault()).
	 */
	fill(bounce, PRI_CHUNK, seed);
	wbuf = alloc_buf(len);
	madvise(wbuf, len, MADV_NOHUGEPAGE);
	fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/iopfmap: %s", strerror(errno));
	attach_pri(fd, dev, 0, 0);
	attach_pri(fd, dev, IOPFMAP_ATTACH_PASID, PRI_PASID);
	map_range(fd, PRI_IOVA, wbuf, len, 0, 1);
	wreal.cold_ns = pri_pass(pfd, dev, IOPFMAP_PRI_TO_RAM, PRI_PASID,
				 PRI_IOVA, len, bounce, seed, &wreal.faults);
	wreal.warm_ns = pri_pass(pfd, dev, IOPFMAP_PRI_TO_RAM, PRI_PASID,
				 PRI_IOVA, len, bounce, seed, &wreal.faults);
	close(fd);
	pri_check_written(wbuf, len, seed);
	wbuf = alloc_buf(len);
	madvise(wbuf, len, MADV_NOHUGEPAGE);
	snprintf(sva.name, sizeof(sva.name), "%s", dev);
	if (!ioctl(pfd, IOPFMAP_PRI_SVA_BIND, &sva)) {
		wsva.cold_ns = pri_pass(pfd, dev, IOPFMAP_PRI_TO_RAM, sva.out_pasid,
					(uintptr_t)wbuf, len, bounce, seed,
					&wsva.faults);
		wsva.warm_ns = pri_pass(pfd, dev, IOPFMAP_PRI_TO_RAM, sva.out_pasid,
					(uintptr_t)wbuf, len, bounce, seed,
					&wsva.faults);
		xioctl(pfd, IOPFMAP_PRI_SVA_UNBIND, &sva,
		       "IOPFMAP_PRI_SVA_UNBIND");
		pri_check_written(wbuf, len, seed);
	} else {
		sva_err = errno;
	}

	row("device reads CPU-written memory", "real PRI", "simulated", "");
	snprintf(a, sizeof(a), "%llu", (unsigned long long)real.faults);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)sim.faults);
	row("faults (1-page window)", a, b, "");
	row("first pass", ms_str(a, sizeof(a), real.cold_ns),
	    ms_str(b, sizeof(b), sim.cold_ns), "");
	row("second pass (all resident)", ms_str(a, sizeof(a), real.warm_ns),
	    ms_str(b, sizeof(b), sim.warm_ns), "");
	row("streaming cost per fault, us",
	    us_str(a, sizeof(a), pri_cost_us(&real)),
	    us_str(b, sizeof(b), pri_cost_us(&sim)), "");
	pri_real_us = pri_cost_us(&real);
	pri_sim_us = pri_cost_us(&sim);
	snprintf(c, sizeof(c), "%.2fx", (double)(real.cold_ns - real.warm_ns) /
		 real.faults / ((double)(sim.cold_ns - sim.warm_ns) /
				sim.faults));
	row("real / simulated", c, "", "");
	printf("\n");
	row("device writes untouched memory", "iopfmap", "SVA", "");
	snprintf(a, sizeof(a), "%llu", (unsigned long long)wreal.faults);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)wsva.faults);
	row("faults (1-page window)", a, wsva.faults ? b : "-", "");
	row("first pass", ms_str(a, sizeof(a), wreal.cold_ns),
	    wsva.faults ? ms_str(b, sizeof(b), wsva.cold_ns) : "-", "");
	row("second pass (all resident)", ms_str(a, sizeof(a), wreal.warm_ns),
	    wsva.faults ? ms_str(b, sizeof(b), wsva.warm_ns) : "-", "");
	row("streaming cost per fault, us",
	    us_str(a, sizeof(a), pri_cost_us(&wreal)),
	    wsva.faults ? us_str(b, sizeof(b), pri_cost_us(&wsva)) : "-", "");
	if (wsva.faults) {
		pri_wreal_us = pri_cost_us(&wreal);
		pri_sva_us = pri_cost_us(&wsva);
		snprintf(c, sizeof(c), "%.2fx", pri_wreal_us / pri_sva_us);
		row("iopfmap / SVA", c, "", "");
	} else {
		printf("  (no SVA peer: IOPFMAP_PRI_SVA_BIND: %s)\n",
		       strerror(sva_err));
	}
	printf("  real PRI: PASID %#x page request group (16 pages per DMA) -> VT-d's\n"
	       "  page request queue -> the Intel driver -> the IOMMU core -> iopfmap's\n"
	       "  handler -> page group response -> the device retries (ATS).\n"
	       "  simulated: the device's request goes straight to iopfmap (SIM_DMA).\n"
	       "  SVA: the same device bound to this process (iommu_sva_bind_device()):\n"
	       "  VT-d walks the CPU page tables, the core resolves the faults itself.\n\n",
	       PRI_PASID);
	/* alloc_buf()'s mappings stay until exit, as the other parts' do. */
	close(pfd);
}

static void stop_iopfd(int sig)
{
	if (iopfd_pid > 0)
		kill(iopfd_pid, sig);
}

/* Shows the end of iopfd's log, for a failure that involves it. */
static void show_iopfd_log(void)
{
	char cmd[512];

	if (!iopfd_log[0] || access(iopfd_log, R_OK))
		return;
	fprintf(stderr, "%s: the last lines of iopfd's log (%s):\n", prog,
		iopfd_log);
	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' | sed 's/^/  | /' >&2",
		 iopfd_log);
	if (system(cmd))
		fprintf(stderr, "  (tail failed)\n");
}

static void cleanup(void)
{
	if (iopfd_pid > 0) {
		stop_iopfd(SIGKILL);
		waitpid(iopfd_pid, NULL, 0);
		iopfd_pid = 0;
		show_iopfd_log();
	}
	trace_teardown();
}

/* A wait() status in words. */
static const char *exit_str(int status)
{
	static char buf[48];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exit status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by signal %d",
			 WTERMSIG(status));
	else
		snprintf(buf, sizeof(buf), "wait status %#x", status);
	return buf;
}

static pid_t start_iopfd(const char *sock, const char *conf)
{
	pid_t pid;
	int fd;

	snprintf(iopfd_log, sizeof(iopfd_log), "%s/iopfd.log", workdir);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid)
		return pid;
	fd = open(iopfd_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	execlp(iopfd_path, iopfd_path, "--foreground", "--socket", sock,
	       "--config", conf, (char *)NULL);
	fprintf(stderr, "exec %s: %s\n", iopfd_path, strerror(errno));
	_exit(127);
}

/* Connects to iopfd's socket, waiting up to 20 s for it to appear. */
static int connect_iopfd(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, status, tries;

	if (strlen(sock) >= sizeof(sa.sun_path))
		die("socket path too long: %s", sock);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	for (tries = 0; tries < 200; tries++) {
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		if (waitpid(iopfd_pid, &status, WNOHANG) == iopfd_pid) {
			iopfd_pid = 0;
			show_iopfd_log();
			die("iopfd exited at start-up (%s)", exit_str(status));
		}
		usleep(100000);
	}
	die("iopfd's socket %s did not accept within 20 s", sock);
}

/* Sends @msg, with @fds as SCM_RIGHTS when @nfds. */
static void send_msg(int sock, void *msg, size_t len, const int *fds,
		     unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		die("send to iopfd: %s", strerror(errno));
}

/* The answer to request @seq: HELLO into @hello, or ACK's value. */
static uint32_t recv_answer(int sock, uint32_t seq, const char *what,
			    struct iopfd_msg_hello *hello)
{
	union {
		struct iopfd_msg_hdr hdr;
		struct iopfd_msg_hello hello;
		struct iopfd_msg_status st;
		char buf[IOPFD_MSG_MAX];
	} m;
	ssize_t n;

	for (;;) {
		memset(&m, 0, sizeof(m));
		n = recv(sock, &m, sizeof(m), 0);
		if (n < 0)
			die("%s: recv from iopfd: %s", what, strerror(errno));
		if (n == 0)
			die("%s: iopfd closed the connection", what);
		if ((size_t)n < sizeof(m.hdr))
			die("%s: a short message from iopfd", what);
		if (m.hdr.seq != seq)
			continue;
		if (m.hdr.type == IOPFD_MSG_ERROR)
			die("%s: iopfd answered %s (%s)", what,
			    strerror(m.st.error), m.st.text);
		if (hello && m.hdr.type == IOPFD_MSG_HELLO &&
		    (size_t)n >= sizeof(*hello)) {
			*hello = m.hello;
			return 0;
		}
		if (!hello && m.hdr.type == IOPFD_MSG_ACK &&
		    (size_t)n >= sizeof(m.st))
			return m.st.value;
		die("%s: iopfd answered message type %u", what, m.hdr.type);
	}
}

/*
 * The VMM's side of the protocol: HELLO, then HANDOVER of the queue and
 * the context with the resolve handler.
 */
static void handover(int sock, int qfd, int ctx_fd, uint32_t ctx)
{
	struct iopfd_msg_hello hello = {
		.hdr = { .type = IOPFD_MSG_HELLO, .len = sizeof(hello),
			 .seq = 1 },
		.version = IOPFD_PROTO_VERSION,
		.name = "iopfmap_demo",
	};
	struct iopfd_msg_handover ho = {
		.hdr = { .type = IOPFD_MSG_HANDOVER, .len = sizeof(ho),
			 .seq = 2 },
		.handler = IOPFD_HANDLER_RESOLVE,
	};
	int fds[2] = { qfd, ctx_fd };
	uint32_t id;

	send_msg(sock, &hello, sizeof(hello), NULL, 0);
	recv_answer(sock, 1, "HELLO", &hello);
	if (hello.version != IOPFD_PROTO_VERSION)
		die("iopfd speaks protocol %u, the demo %u", hello.version,
		    IOPFD_PROTO_VERSION);
	if (!(hello.features & IOPFD_FEAT_RESOLVE))
		die("iopfd does not offer the resolve handler (features %#x)",
		    hello.features);
	send_msg(sock, &ho, sizeof(ho), fds, 2);
	id = recv_answer(sock, 2, "HANDOVER", NULL);
	if (id != ctx)
		die("iopfd acknowledged context %u, the queue is context %u's",
		    id, ctx);
}

/* The number after "KEY": in iopfd's stats JSON, after SECTION if any. */
static uint64_t json_num(const char *text, const char *section,
			 const char *key)
{
	char k[64];
	const char *p = text;

	if (section) {
		snprintf(k, sizeof(k), "\"%s\"", section);
		p = strstr(p, k);
		if (!p)
			die("iopfd's stats file has no \"%s\"", section);
	}
	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(p, k);
	if (!p)
		die("iopfd's stats file has no \"%s\"%s%s", key,
		    section ? " in " : "", section ? section : "");
	return strtoull(p + strlen(k), NULL, 10);
}

static void part_nested(void)
{
	uint64_t len = nested_mib * MIB, pages = len / PAGE, off, i;
	uint64_t *cold, *warm, *s2lat, forwarded, cold_faults = 0, ns;
	char sock[256], conf[256], stats_file[256], page[PAGE];
	struct iopfmap_sim_stats sb, sa;
	struct iopfmap_stats before, d;
	struct pct pc, pw, ps2, pd;
	uint64_t st_groups, st_rule, st_success, st_s1maps;
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa),
					  .timeout_ms = 30000 };
	int fd, sk, status;
	char *ram, *json;
	uint32_t ctx;
	FILE *f;
	size_t n;

	printf("[3] Two stages: a VMM, its guest's IOMMU table, and iopfd\n");
	fd = open_ctx(IOPFMAP_SIM_NESTED, &ctx);
	ram = alloc_buf(len);
	if (madvise(ram, len, MADV_NOHUGEPAGE))
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	fill(ram, len, 0x3333);
	map_range(fd, IPA_BASE, ram, len, 0, 1);
	xioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa, "IOPFMAP_QUEUE_ALLOC");

	snprintf(sock, sizeof(sock), "%s/iopfd.sock", workdir);
	snprintf(conf, sizeof(conf), "%s/iopfd.conf", workdir);
	snprintf(stats_file, sizeof(stats_file), "%s/iopfd-stats.json",
		 workdir);
	unlink(sock);
	unlink(stats_file);
	f = fopen(conf, "we");
	if (!f)
		die("%s: %s", conf, strerror(errno));
	fprintf(f, "# iopfmap_demo: stage-1 address X maps to IPA X + offset\n"
		"default_handler = resolve\n"
		"resolve_offset = %#llx\n"
		"stats_file = %s\n"
		"log_level = info\n",
		IPA_BASE - S1_BASE, stats_file);
	if (fclose(f))
		die("%s: %s", conf, strerror(errno));

	printf("  This program now plays a VMM whose guest drives the device through a\n"
	       "  virtual IOMMU. Stage 2 (IPA -> host memory) belongs to the VMM: %llu MiB\n"
	       "  of guest RAM at IPA %#llx, mapped on demand as above. Stage 1, the\n"
	       "  guest's own table, starts empty; only the guest can fill it, so its\n"
	       "  faults go to the context's fault queue, which the VMM hands to iopfd.\n"
	       "  iopfd's resolve rule stands in for the guest: \"resolve_offset =\n"
	       "  %#llx\" (stage-1 X -> IPA X + %#llx), written to\n"
	       "  %s.\n",
	       nested_mib, IPA_BASE, IPA_BASE - S1_BASE, IPA_BASE - S1_BASE,
	       conf);
	printf("  $ %s --foreground --socket %s \\\n"
	       "        --config %s &\n", iopfd_path, sock, conf);
	fflush(stdout);
	iopfd_pid = start_iopfd(sock, conf);
	sk = connect_iopfd(sock);
	handover(sk, qa.out_fd, fd, ctx);
	printf("  HELLO, HANDOVER (queue fd + context fd, handler resolve): ACK, context %u\n",
	       ctx);
	/* iopfd serves the queue now; the VMM keeps only the context. */
	close(qa.out_fd);

	cold = malloc(pages * sizeof(*cold));
	warm = malloc(pages * sizeof(*warm));
	if (!cold || !warm)
		die("out of memory");
	get_stats(fd, &before);
	sim_stats(fd, &sb);
	trace_clear();
	printf("  The device reads stage-1 addresses [%#llx, %#llx), one page per DMA.\n",
	       S1_BASE, S1_BASE + len);
	fflush(stdout);
	for (i = 0, off = 0; off < len; off += PAGE, i++) {
		cold_faults += dma_read(fd, S1_BASE + off, page, PAGE, &ns);
		cold[i] = ns;
		check(page, off, PAGE, 0x3333, S1_BASE + off);
	}
	for (i = 0, off = 0; off < len; off += PAGE, i++) {
		if (dma_read(fd, S1_BASE + off, page, PAGE, &ns))
			die("nested: the second pass faulted at %#llx",
			    (unsigned long long)(S1_BASE + off));
		warm[i] = ns;
		check(page, off, PAGE, 0x3333, S1_BASE + off);
	}
	get_stats(fd, &d);
	stats_sub(&d, &before);
	sim_stats(fd, &sa);
	s2lat = trace_collect(ctx, &n);
	ps2 = percentiles(s2lat, n);
	pc = percentiles(cold, pages);
	pw = percentiles(warm, pages);

	/* iopfd writes its stats file as it exits. */
	stop_iopfd(SIGTERM);
	if (waitpid(iopfd_pid, &status, 0) != iopfd_pid)
		die("waitpid(iopfd): %s", strerror(errno));
	iopfd_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		show_iopfd_log();
		die("iopfd did not exit cleanly on SIGTERM (%s)",
		    exit_str(status));
	}
	close(sk);
	json = read_all(stats_file);
	st_groups = json_num(json, NULL, "groups");
	st_rule = json_num(json, "by_decider", "rule");
	st_success = json_num(json, "responses", "success");
	st_s1maps = json_num(json, NULL, "stage1_maps");
	pd.n = json_num(json, "latency_us", "count");
	pd.us[0] = json_num(json, "latency_us", "p50");
	pd.us[1] = json_num(json, "latency_us", "p90");
	pd.us[2] = json_num(json, "latency_us", "p99");
	free(json);

	forwarded = (sa.out_page_requests - sb.out_page_requests) -
		    d.out_faults;
	if (sa.out_page_requests - sb.out_page_requests != cold_faults)
		die("nested: the device counted %llu page requests, its DMAs %llu",
		    (unsigned long long)(sa.out_page_requests -
					 sb.out_page_requests),
		    (unsigned long long)cold_faults);
	if (sa.out_resp_success - sb.out_resp_success != cold_faults)
		die("nested: %llu of %llu page requests were answered SUCCESS",
		    (unsigned long long)(sa.out_resp_success -
					 sb.out_resp_success),
		    (unsigned long long)cold_faults);
	if (d.out_faults_handled != d.out_faults)
		die("nested: %llu of %llu stage-2 faults were resolved",
		    (unsigned long long)d.out_faults_handled,
		    (unsigned long long)d.out_faults);
	if (st_groups != forwarded || st_rule != forwarded ||
	    st_success != forwarded)
		die("nested: %llu stage-1 faults forwarded; iopfd counts %llu groups, %llu by its rule, %llu SUCCESS",
		    (unsigned long long)forwarded,
		    (unsigned long long)st_groups,
		    (unsigned long long)st_rule,
		    (unsigned long long)st_success);
	if (d.out_pages_pinned || status_kb("VmLck"))
		die("nested: pages were pinned");

	sum.s1 = st_rule;
	sum.s2 = d.out_faults_handled;
	sum.s1_us = pd.us[0];
	sum.s2_us = ps2.us[0];
	row1("pages the device touched", pages);
	row1("stage-1 faults, forwarded to iopfd", forwarded);
	row1("  resolved by iopfd's rule", st_rule);
	row1("  stage-1 entries iopfd filled", st_s1maps);
	row1("stage-2 faults, served in the kernel", d.out_faults_handled);
	row1("pages pinned", d.out_pages_pinned);
	row("data the device read", "ok", "", "");
	row("latency, us", "p50", "p90", "p99");
	row_pct("  stage-1 fault via iopfd (a)", &pd);
	row_pct("  stage-2 fault in the kernel (b)", &ps2);
	row_pct("  page DMA taking both faults (c)", &pc);
	row_pct("  page DMA, pages mapped (c)", &pw);
	printf("  (a) iopfd's histogram (%llu faults): from the kernel's record to\n"
	       "      iopfd's answer, estimated within power-of-two buckets.\n"
	       "  (b) the iopfmap_fault_done tracepoint (%zu faults).\n"
	       "  (c) measured by the VMM around each SIM_DMA: the two faults (one\n"
	       "      through iopfd) make a page's DMA %.0fx slower at the median.\n\n",
	       (unsigned long long)pd.n, ps2.n, pc.us[0] / pw.us[0]);
	free(cold);
	free(warm);
	free(s2lat);
	close(fd);
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [--mib N] [--nested-mib N] [--iopfd PATH] [--workdir DIR]\n"
		"  --mib N         the streamed buffer, MiB (default 256, at most 384)\n"
		"  --nested-mib N  guest RAM of the two-stage run (default 16, at most 256)\n"
		"  --iopfd PATH    the fault daemon (default: iopfd in PATH)\n"
		"  --workdir DIR   iopfd's socket, config, log and stats (default %s)\n"
		"Needs root and iopfmap loaded with sim=1.\n", prog, workdir);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'm' },
		{ "nested-mib", required_argument, NULL, 'n' },
		{ "iopfd", required_argument, NULL, 'd' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct iopfmap_info info = { .size = sizeof(info) };
	struct utsname uts;
	uint32_t ctx;
	int c, fd;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			stream_mib = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nested_mib = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			iopfd_path = optarg;
			break;
		case 'w':
			workdir = optarg;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	/*
	 * The stream buffer, a bounce buffer and the pinned run must fit a
	 * 1 GiB guest; guest RAM must fit the aperture above IPA_BASE.
	 */
	if (optind != argc || !stream_mib || stream_mib > 384 ||
	    !nested_mib || nested_mib > 256)
		usage(2);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mkdir(workdir, 0700) && errno != EEXIST)
		die("mkdir %s: %s", workdir, strerror(errno));

	uname(&uts);
	fd = open_ctx(0, &ctx);
	xioctl(fd, IOPFMAP_GET_INFO, &info, "IOPFMAP_GET_INFO");
	if (!(info.out_features & IOPFMAP_FEATURE_QUEUE))
		die("this iopfmap has no fault queues (features %#llx)",
		    (unsigned long long)info.out_features);
	printf("iopfmap demo on Linux %s: module ABI %u, simulated device (sim=1)\n\n",
	       uts.release, info.out_abi_version);
	printf("The simulated device is a DMA engine that translates through its own\n"
	       "IO page table, like a PCIe device behind an IOMMU. Nothing is mapped\n"
	       "for it in advance: when it touches an unmapped page it sends a page\n"
	       "request (an I/O page fault), iopfmap maps the page, the device retries.\n\n");

	trace_setup(stream_mib * MIB / PAGE);
	part_stream(fd, ctx);
	close(fd);
	part_nested();
	trace_teardown();
	part_pri();
	printf("In short, on Linux %s:\n"
	       "  - %llu MiB streamed to the device with nothing pinned: %llu faults\n"
	       "    with a 1-page window, %llu with a 512-page window, %llu with THP\n"
	       "    (%llu 2 MiB entries), all served in the kernel (p50 %.0f us each\n"
	       "    with a 1-page window).\n"
	       "  - Pinning it instead: %.1f ms before the first DMA (%.0fx the\n"
	       "    on-demand MAP) and %ld kB of locked memory.\n"
	       "  - Two stages: %llu stage-1 faults resolved by iopfd's rule (p50 %.0f us),\n"
	       "    %llu stage-2 faults served in the kernel (p50 %.0f us).\n"
	       "  Every DMA read what the CPU wrote: the demo passed.\n",
	       uts.release, stream_mib, (unsigned long long)sum.faults[0],
	       (unsigned long long)sum.faults[1],
	       (unsigned long long)sum.faults[2],
	       (unsigned long long)sum.huge, sum.lat1_us,
	       sum.pin_map_ns / 1e6,
	       (double)sum.pin_map_ns / sum.fault_map_ns, sum.pin_kb,
	       (unsigned long long)sum.s1, sum.s1_us,
	       (unsigned long long)sum.s2, sum.s2_us);
	if (pri_real_us > 0)
		printf("  - Real page requests (iopfmap-pri through VT-d's page request\n"
		       "    queue): %.0f us streaming cost per fault, %.2fx the simulated\n"
		       "    device's %.0f us in the same guest.\n",
		       pri_real_us, pri_real_us / pri_sim_us, pri_sim_us);
	if (pri_sva_us > 0)
		printf("  - Writes into untouched memory: iopfmap %.0f us per fault, the\n"
		       "    kernel's SVA on the same device %.0f us (%.2fx).\n",
		       pri_wreal_us, pri_sva_us, pri_wreal_us / pri_sva_us);
	return 0;
}
