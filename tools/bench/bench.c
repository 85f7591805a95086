// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap_bench: fault-handling benchmarks of iopfmap against its peers
 * (pinning, VFIO type1, CPU page faults, userfaultfd, a pipe), each peer
 * measured in the same run, so that ratios mean something under TCG.
 * `make bench` (tools/bench.sh) runs it in a guest per kernel and turns
 * its output into a report; docs/benchmarks.md explains every scenario.
 *
 * Each scenario runs in a child process: a failure (any syscall that
 * fails does) ends that scenario loudly and the others still run.
 * Results are lines "BENCH_JSON {...}", one flat JSON object per row;
 * everything else is progress, prefixed with "# ".
 *
 * --smoke runs every scenario at a token size and prints TAP (no JSON):
 * the selftest iopfmap_bench_smoke uses it to prove the harness works.
 * Nothing here asserts a timing.
 *
 * Needs root and iopfmap loaded with sim=1.
 * Usage: iopfmap_bench [--smoke] [--json] [--only NAME,...] [--list]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/mempolicy.h>

#include "bench.h"

#define KSFT_SKIP 4

bool smoke;
static bool json = true;
const char *prog = "iopfmap_bench";
static const char *cur_scenario = "-";
static char *skip_reason;	/* shared with the parent: MAP_SHARED */
#define SKIP_REASON_LEN 512

static const struct scenario {
	const char *name;
	void (*run)(void);
	const char *what;
} scenarios[] = {
	{ "setup", s_setup, "setup cost: FAULT MAP, PIN MAP, VFIO type1" },
	{ "cold", s_cold, "cold first pass: prefetch windows, huge, PIN" },
	{ "latency", s_latency, "in-kernel fault vs CPU minor fault" },
	{ "forward", s_forward, "forwarded fault: uring_cmd, read/write, uffd, pipe" },
	{ "inval", s_inval, "munmap of device-mapped memory, IOTLB flushes" },
	{ "scale", s_scale, "faults/s with 1 and 2 simulated devices" },
	{ "memory", s_memory, "slab and vmalloc growth of FAULT vs PIN ranges" },
	{ "sva", s_sva, "the PRI device: iopfmap's PASID route vs the kernel's SVA" },
};
#define NR_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	printf("# %s: %s: FAILED: ", prog, cur_scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (skip_reason)
		vsnprintf(skip_reason, SKIP_REASON_LEN, fmt, ap);
	va_end(ap);
	printf("# %s: SKIP: %s\n", cur_scenario,
	       skip_reason ? skip_reason : "?");
	fflush(stdout);
	exit(KSFT_SKIP);
}

void progress(const char *fmt, ...)
{
	va_list ap;

	printf("# [%s] ", cur_scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void note(const char *fmt, ...)
{
	va_list ap;

	printf("# [%s] note: ", cur_scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void xioctl(int fd, unsigned long req, void *arg, const char *name)
{
	if (ioctl(fd, req, arg))
		die("%s: %s", name, strerror(errno));
}

uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		die("clock_gettime: %s", strerror(errno));
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		die("sysconf(_SC_NPROCESSORS_ONLN): %s", strerror(errno));
	return n;
}

void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
}

/* ---- statistics and rows ---------------------------------------------- */

void smp_add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = v;
}

void smp_free(struct samples *s)
{
	free(s->v);
	*s = (struct samples){ 0 };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile; sorts the samples. */
double smp_pct(struct samples *s, unsigned int pct)
{
	size_t rank;

	if (!s->n)
		die("no samples");
	qsort(s->v, s->n, sizeof(*s->v), cmp_double);
	rank = (s->n * pct + 99) / 100;
	return s->v[rank ? rank - 1 : 0];
}

/* The rows emitted so far, for the references of later ones. */
static struct row {
	char scenario[16], cas[64], metric[32];
	double median;
} rows[256];
static unsigned int nr_rows;

static double ref_median(const char *scenario, const char *metric,
			 const char *cas)
{
	unsigned int i;

	for (i = 0; i < nr_rows; i++)
		if (!strcmp(rows[i].scenario, scenario) &&
		    !strcmp(rows[i].metric, metric) &&
		    !strcmp(rows[i].cas, cas))
			return rows[i].median;
	die("row %s/%s/%s: its reference %s was not measured before it",
	    scenario, metric, cas, cas);
}

static const char *json_str(char *dst, size_t len, const char *s)
{
	size_t n = 0;

	for (; s && *s && n + 2 < len; s++) {
		if (*s == '"' || *s == '\\')
			dst[n++] = '\\';
		dst[n++] = *s;
	}
	dst[n] = '\0';
	return dst;
}

static void emit_row(const char *scenario, const char *cas,
		     const char *metric, const char *unit, double median,
		     double p99, size_t n, const char *ref, const char *aim,
		     const char *why)
{
	char e[6][256];
	double ratio = 0;
	struct row *r;

	if (ref) {
		double rm = ref_median(scenario, metric, ref);

		ratio = rm ? median / rm : 0;
	}
	if (nr_rows == sizeof(rows) / sizeof(rows[0]))
		die("too many rows");
	r = &rows[nr_rows++];
	snprintf(r->scenario, sizeof(r->scenario), "%s", scenario);
	snprintf(r->cas, sizeof(r->cas), "%s", cas);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	r->median = median;

	printf("# [%s] %-40s %-12s median %12.3f p99 %12.3f %-8s n=%zu",
	       scenario, cas, metric, median, p99, unit, n);
	if (ref)
		printf(" ratio %.3f vs %s", ratio, ref);
	printf("\n");
	if (json) {
		printf("BENCH_JSON {\"scenario\":\"%s\",\"case\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\",\"n\":%zu,\"median\":%.6g,\"p99\":%.6g",
		       json_str(e[0], sizeof(e[0]), scenario),
		       json_str(e[1], sizeof(e[1]), cas),
		       json_str(e[2], sizeof(e[2]), metric),
		       json_str(e[3], sizeof(e[3]), unit), n, median, p99);
		if (ref)
			printf(",\"ref\":\"%s\",\"ratio\":%.6g",
			       json_str(e[4], sizeof(e[4]), ref), ratio);
		if (aim)
			printf(",\"aim\":\"%s\"",
			       json_str(e[5], sizeof(e[5]), aim));
		if (why)
			printf(",\"note\":\"%s\"",
			       json_str(e[5], sizeof(e[5]), why));
		printf("}\n");
	}
	fflush(stdout);
}

void emit(const char *scenario, const char *cas, const char *metric,
	  const char *unit, struct samples *s, const char *ref,
	  const char *aim, const char *why)
{
	double p99 = smp_pct(s, 99), median = smp_pct(s, 50);

	emit_row(scenario, cas, metric, unit, median, p99, s->n, ref, aim,
		 why);
}

void emit1(const char *scenario, const char *cas, const char *metric,
	   const char *unit, double v, const char *ref, const char *aim,
	   const char *why)
{
	emit_row(scenario, cas, metric, unit, v, v, 1, ref, aim, why);
}

/* ---- memory ------------------------------------------------------------ */

void buf_alloc(struct buf *b, size_t len, enum thp thp, bool populate)
{
	b->rawlen = len + HUGE;
	b->raw = mmap(NULL, b->rawlen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->raw == MAP_FAILED)
		die("mmap of %zu MiB: %s", len >> 20, strerror(errno));
	b->p = (char *)(((uintptr_t)b->raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	b->len = len;
	if (thp != THP_DEFAULT &&
	    madvise(b->p, len, thp == THP_ON ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise(%s): %s",
		    thp == THP_ON ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE",
		    strerror(errno));
	if (populate)
		memset(b->p, 0x5a, len);
}

void buf_free(struct buf *b)
{
	if (b->raw && munmap(b->raw, b->rawlen))
		die("munmap: %s", strerror(errno));
	b->raw = NULL;
}

/* ---- /dev/iopfmap ------------------------------------------------------- */

static int ctx_open(void)
{
	int fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/iopfmap: %s (is iopfmap.ko loaded?)",
		    strerror(errno));
	return fd;
}

int ctx_sim(uint64_t pgsize_bitmap)
{
	struct iopfmap_sim_create sc = {
		.size = sizeof(sc), .pgsize_bitmap = pgsize_bitmap,
	};
	int fd = ctx_open();

	if (ioctl(fd, IOPFMAP_SIM_CREATE, &sc)) {
		if (errno == ENODEV)
			skip("no simulated device: load iopfmap with sim=1");
		die("IOPFMAP_SIM_CREATE: %s", strerror(errno));
	}
	return fd;
}

/* A context with the real device @bdf attached; -errno if it cannot. */
int ctx_dev(const char *bdf, struct iopfmap_device_attach *out)
{
	int fd = ctx_open(), err;

	*out = (struct iopfmap_device_attach){ .size = sizeof(*out) };
	snprintf(out->name, sizeof(out->name), "%s", bdf);
	if (ioctl(fd, IOPFMAP_DEVICE_ATTACH, out)) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

uint32_t ctx_id(int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	xioctl(fd, IOPFMAP_GET_INFO, &info, "IOPFMAP_GET_INFO");
	return info.out_ctx_id;
}

uint32_t map_range(int fd, uint64_t iova, const void *va, uint64_t len,
		   uint32_t flags, uint32_t prefetch)
{
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE | flags,
		.iova = iova,
		.vaddr = (uintptr_t)va,
		.length = len,
		.prefetch_pages = prefetch,
	};

	if (ioctl(fd, IOPFMAP_MAP, &m))
		die("IOPFMAP_MAP of %llu MiB at IOVA %#llx (flags %#x): %s",
		    (unsigned long long)(len >> 20), (unsigned long long)iova,
		    flags, strerror(errno));
	return m.out_range_id;
}

void unmap_range(int fd, uint64_t iova, uint64_t len)
{
	struct iopfmap_unmap u = {
		.size = sizeof(u), .iova = iova, .length = len,
	};

	xioctl(fd, IOPFMAP_UNMAP, &u, "IOPFMAP_UNMAP");
}

void get_stats(int fd, struct iopfmap_stats *s)
{
	*s = (struct iopfmap_stats){ .size = sizeof(*s) };
	xioctl(fd, IOPFMAP_GET_STATS, s, "IOPFMAP_GET_STATS");
}

uint64_t dma_pass(int fd, uint64_t iova, uint64_t len, char *bounce,
		  size_t bounce_len, bool write)
{
	uint64_t off, faults = 0;

	for (off = 0; off < len; off += bounce_len) {
		struct iopfmap_sim_dma d = {
			.size = sizeof(d),
			.flags = write ? IOPFMAP_SIM_DMA_WRITE : 0,
			.iova = iova + off,
			.length = len - off < bounce_len ? len - off : bounce_len,
			.buffer = (uintptr_t)bounce,
		};

		xioctl(fd, IOPFMAP_SIM_DMA, &d, "IOPFMAP_SIM_DMA");
		if (d.out_status != IOPFMAP_SIM_DMA_OK)
			die("SIM_DMA stopped at %#llx with status %u",
			    (unsigned long long)d.out_fault_iova,
			    d.out_status);
		faults += d.out_faults;
	}
	return faults;
}

uint32_t page_request(int fd, uint64_t iova, uint32_t flags, uint32_t grpid)
{
	struct iopfmap_sim_page_request r = {
		.size = sizeof(r),
		.flags = flags,
		.iova = iova,
		.grpid = grpid,
	};

	xioctl(fd, IOPFMAP_SIM_PAGE_REQUEST, &r, "IOPFMAP_SIM_PAGE_REQUEST");
	return r.out_response;
}

/* ---- files -------------------------------------------------------------- */

int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

char *read_all(const char *path)
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
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				die("read %s: out of memory", path);
		}
	}
	if (n < 0)
		die("read %s: %s", path, strerror(errno));
	close(fd);
	buf[len] = '\0';
	return buf;
}

long meminfo_kb(const char *key)
{
	char *text = read_all("/proc/meminfo"), *line;
	size_t klen = strlen(key);
	long kb = -1;

	for (line = text; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	free(text);
	if (kb < 0)
		die("/proc/meminfo has no %s", key);
	return kb;
}

/* Bytes of the vmalloc areas whose caller is in @module ("[iopfmap]"). */
long long vmalloc_module_bytes(const char *module)
{
	char *text = read_all("/proc/vmallocinfo"), *line, *save = NULL;
	long long total = 0;
	char tag[64];

	snprintf(tag, sizeof(tag), "[%s]", module);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');

		if (sp && strstr(line, tag))
			total += strtoll(sp + 1, NULL, 10);
	}
	free(text);
	return total;
}

/* Where tracefs is, mounting it if needed; NULL if there is none. */
const char *tracefs(void)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/events/iopfmap", dirs[i]);
		if (!access(path, F_OK))
			return dirs[i];
	}
	if (mount("nodev", dirs[0], "tracefs", 0, NULL))
		return NULL;
	snprintf(path, sizeof(path), "%s/events/iopfmap", dirs[0]);
	return access(path, F_OK) ? NULL : dirs[0];
}

/* ---- PCI ---------------------------------------------------------------- */

static bool pci_id_is(const char *bdf, const char *file, const char *want)
{
	char path[128], *v;
	bool ok;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	if (access(path, R_OK))
		return false;
	v = read_all(path);
	ok = !strncmp(v, want, strlen(want));
	free(v);
	return ok;
}

/* QEMU's edu devices (1234:11e8), in bus order. */
int edu_devices(char bdfs[][16], int max)
{
	struct dirent **ents;
	int i, nr, n = 0;

	nr = scandir("/sys/bus/pci/devices", &ents, NULL, alphasort);
	if (nr < 0)
		die("scandir /sys/bus/pci/devices: %s", strerror(errno));
	for (i = 0; i < nr; i++) {
		const char *bdf = ents[i]->d_name;

		if (n < max && bdf[0] != '.' && strlen(bdf) < 16 &&
		    pci_id_is(bdf, "vendor", "0x1234") &&
		    pci_id_is(bdf, "device", "0x11e8"))
			snprintf(bdfs[n++], 16, "%s", bdf);
		free(ents[i]);
	}
	free(ents);
	return n;
}

bool pci_has_driver(const char *bdf)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	return !access(path, F_OK);
}

/* ---- main --------------------------------------------------------------- */

static void usage(int rc)
{
	unsigned int i;

	printf("usage: %s [--smoke] [--json] [--only NAME[,NAME...]] [--list]\n",
	       prog);
	for (i = 0; i < NR_SCENARIOS; i++)
		printf("  %-8s %s\n", scenarios[i].name, scenarios[i].what);
	exit(rc);
}

static bool selected(const char *only, const char *name)
{
	size_t len = strlen(name);
	const char *p = only;

	if (!only)
		return true;
	while ((p = strstr(p, name))) {
		if ((p == only || p[-1] == ',') &&
		    (p[len] == ',' || p[len] == '\0'))
			return true;
		p += len;
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	unsigned int i, n = 0, failed = 0;
	bool json_flag = false;
	struct utsname u;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--smoke"))
			smoke = true;
		else if (!strcmp(argv[a], "--json"))
			json_flag = true;
		else if (!strcmp(argv[a], "--only") && a + 1 < argc)
			only = argv[++a];
		else if (!strcmp(argv[a], "--list"))
			usage(0);
		else
			usage(2);
	}
	json = !smoke || json_flag;
	/*
	 * Out of automatic NUMA balancing: its scanner unmaps pages under a
	 * scenario at random (a policy without MPOL_F_MOF is not scanned).
	 * Its cost is an invalidation like any other, which inval measures.
	 */
	syscall(SYS_set_mempolicy, MPOL_LOCAL, NULL, 0UL);
	if (uname(&u))
		die("uname: %s", strerror(errno));
	skip_reason = mmap(NULL, SKIP_REASON_LEN, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (skip_reason == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (i = 0; i < NR_SCENARIOS; i++)
		n += selected(only, scenarios[i].name);
	if (!n)
		usage(2);
	if (smoke)
		printf("TAP version 13\n1..%u\n", n);
	if (json) {
		printf("BENCH_JSON {\"type\":\"run\",\"kernel\":\"%s\",\"vcpus\":%d,\"mem_kb\":%ld}\n",
		       u.release, online_cpus(), meminfo_kb("MemTotal"));
	}

	n = 0;
	for (i = 0; i < NR_SCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		uint64_t t0 = now_ns();
		int status;
		pid_t pid;

		if (!selected(only, s->name))
			continue;
		n++;
		skip_reason[0] = '\0';
		printf("# ==== %s: %s\n", s->name, s->what);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (!pid) {
			cur_scenario = s->name;
			s->run();
			fflush(stdout);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid: %s", strerror(errno));
		printf("# ==== %s: %.1f s\n", s->name, (now_ns() - t0) / 1e9);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			if (smoke)
				printf("ok %u %s\n", n, s->name);
		} else if (WIFEXITED(status) &&
			   WEXITSTATUS(status) == KSFT_SKIP) {
			if (smoke)
				printf("ok %u %s # SKIP %s\n", n, s->name,
				       skip_reason);
			if (json) {
				char e[SKIP_REASON_LEN * 2];

				printf("BENCH_JSON {\"type\":\"skip\",\"scenario\":\"%s\",\"note\":\"%s\"}\n",
				       s->name,
				       json_str(e, sizeof(e), skip_reason));
			}
		} else {
			failed++;
			if (smoke)
				printf("not ok %u %s\n", n, s->name);
			if (json)
				printf("BENCH_JSON {\"type\":\"fail\",\"scenario\":\"%s\"}\n",
				       s->name);
		}
		fflush(stdout);
	}
	if (failed)
		printf("# %u scenario(s) failed\n", failed);
	return failed ? 1 : 0;
}
