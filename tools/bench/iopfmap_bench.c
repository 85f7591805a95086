// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap_bench: what on-demand mapping costs against the simulated
 * device, as ratios to references measured in the same run. Absolute
 * times under TCG mean nothing elsewhere; they are printed for context
 * only.
 *
 *   cold start   one device write pass over a freshly registered buffer,
 *                including MAP, for PIN and for FAULT with several
 *                prefetch windows and with THP; reference: the same pass
 *                over a buffer that is already mapped (no faults).
 *   fault        the latency of one DMA that takes a fault (prefetch 0),
 *                against the same DMA when the page is mapped.
 *
 * Needs root and iopfmap loaded with sim=1. Usage: iopfmap_bench [MiB]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iopfmap.h>

#define IOVA_BASE	0x200000ULL
#define HUGE_SIZE	(2UL << 20)
#define CHUNK		(1UL << 20)
#define LAT_SAMPLES	512

static size_t page_size;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "iopfmap_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A context with a simulated device. */
static int open_ctx(void)
{
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	int fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/iopfmap");
	if (ioctl(fd, IOPFMAP_SIM_CREATE, &sc))
		die("IOPFMAP_SIM_CREATE (is the module loaded with sim=1?)");
	return fd;
}

/* A 2 MiB aligned anonymous buffer, touched by the CPU. */
static char *alloc_buf(size_t len, int advice)
{
	char *p = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	p = (char *)(((uintptr_t)p + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
	madvise(p, len, advice);
	memset(p, 0x11, len);
	return p;
}

static void map_range(int fd, char *buf, size_t len, __u32 flags,
		      __u32 prefetch)
{
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE | flags,
		.iova = IOVA_BASE,
		.vaddr = (uintptr_t)buf,
		.length = len,
		.prefetch_pages = prefetch,
	};

	if (ioctl(fd, IOPFMAP_MAP, &m))
		die("IOPFMAP_MAP");
}

/* One device write pass over [IOVA_BASE, + len); returns faults taken. */
static unsigned long dma_pass(int fd, const char *src, size_t len)
{
	unsigned long faults = 0;
	size_t off;

	for (off = 0; off < len; off += CHUNK) {
		struct iopfmap_sim_dma d = {
			.size = sizeof(d),
			.flags = IOPFMAP_SIM_DMA_WRITE,
			.iova = IOVA_BASE + off,
			.length = CHUNK,
			.buffer = (uintptr_t)src,
		};

		if (ioctl(fd, IOPFMAP_SIM_DMA, &d))
			die("IOPFMAP_SIM_DMA");
		if (d.out_status != IOPFMAP_SIM_DMA_OK) {
			fprintf(stderr, "iopfmap_bench: DMA status %u at %#llx\n",
				d.out_status, (unsigned long long)d.out_fault_iova);
			exit(1);
		}
		faults += d.out_faults;
	}
	return faults;
}

struct cold_case {
	const char *name;
	__u32 flags;
	__u32 prefetch;
	int advice;
};

#define REPS 3

static double median3(double *v)
{
	qsort(v, REPS, sizeof(double), cmp_double);
	return v[REPS / 2];
}

static void cold_start(size_t len)
{
	static const struct cold_case cases[] = {
		{ "PIN (pin + map everything at MAP)", IOPFMAP_MAP_PIN, 0, MADV_NOHUGEPAGE },
		{ "FAULT, prefetch 0", 0, 0, MADV_NOHUGEPAGE },
		{ "FAULT, prefetch 16", 0, 16, MADV_NOHUGEPAGE },
		{ "FAULT, prefetch 512", 0, 512, MADV_NOHUGEPAGE },
		{ "FAULT, THP (2 MiB entries)", 0, 0, MADV_HUGEPAGE },
	};
	char *src = alloc_buf(CHUNK, MADV_NOHUGEPAGE);
	double t0, ref, refs[REPS], total[REPS], setup[REPS];
	unsigned int i, r;
	char *buf;
	int fd;

	/* Reference: a pass over a buffer that is already fully mapped. */
	fd = open_ctx();
	buf = alloc_buf(len, MADV_NOHUGEPAGE);
	map_range(fd, buf, len, IOPFMAP_MAP_PIN, 0);
	dma_pass(fd, src, len);
	for (r = 0; r < REPS; r++) {
		t0 = now_us();
		dma_pass(fd, src, len);
		refs[r] = now_us() - t0;
	}
	ref = median3(refs);
	close(fd);
	munmap(buf, len + HUGE_SIZE);

	printf("cold start: MAP + one device write pass over %zu MiB (median of %d)\n",
	       len >> 20, REPS);
	printf("  reference: the same pass, all mapped: %.0f us\n", ref);
	printf("  %-36s %8s %10s %10s %8s\n", "case", "ratio", "total us",
	       "MAP us", "faults");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cold_case *c = &cases[i];
		unsigned long faults = 0;

		for (r = 0; r < REPS; r++) {
			fd = open_ctx();
			buf = alloc_buf(len, c->advice);
			t0 = now_us();
			map_range(fd, buf, len, c->flags, c->prefetch);
			setup[r] = now_us() - t0;
			faults = dma_pass(fd, src, len);
			total[r] = now_us() - t0;
			close(fd);
			munmap(buf, len + HUGE_SIZE);
		}
		printf("  %-36s %8.2f %10.0f %10.0f %8lu\n", c->name,
		       median3(total) / ref, median3(total), median3(setup),
		       faults);
	}
}

static double percentile(double *v, unsigned int n, double p)
{
	return v[(unsigned int)(p * (n - 1))];
}

static void fault_latency(void)
{
	size_t len = LAT_SAMPLES * page_size;
	static double miss[LAT_SAMPLES], hit[LAT_SAMPLES];
	char byte = 0;
	unsigned int i, pass;
	char *buf;
	int fd;

	fd = open_ctx();
	buf = alloc_buf(len, MADV_NOHUGEPAGE);
	map_range(fd, buf, len, 0, 0);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < LAT_SAMPLES; i++) {
			struct iopfmap_sim_dma d = {
				.size = sizeof(d),
				.flags = IOPFMAP_SIM_DMA_WRITE,
				.iova = IOVA_BASE + i * page_size,
				.length = 1,
				.buffer = (uintptr_t)&byte,
			};
			double t0 = now_us();

			if (ioctl(fd, IOPFMAP_SIM_DMA, &d) ||
			    d.out_status != IOPFMAP_SIM_DMA_OK ||
			    d.out_faults != (pass ? 0U : 1U))
				die("latency DMA");
			(pass ? hit : miss)[i] = now_us() - t0;
		}
	}
	close(fd);
	munmap(buf, len);
	qsort(miss, LAT_SAMPLES, sizeof(double), cmp_double);
	qsort(hit, LAT_SAMPLES, sizeof(double), cmp_double);
	printf("fault latency: a 1-byte device write, %u pages, prefetch 0\n",
	       LAT_SAMPLES);
	printf("  reference: the same DMA on a mapped page: p50 %.1f us\n",
	       percentile(hit, LAT_SAMPLES, 0.5));
	printf("  faulting DMA: p50 %.2fx (%.1f us), p90 %.2fx, p99 %.2fx\n",
	       percentile(miss, LAT_SAMPLES, 0.5) /
	       percentile(hit, LAT_SAMPLES, 0.5),
	       percentile(miss, LAT_SAMPLES, 0.5),
	       percentile(miss, LAT_SAMPLES, 0.9) /
	       percentile(hit, LAT_SAMPLES, 0.5),
	       percentile(miss, LAT_SAMPLES, 0.99) /
	       percentile(hit, LAT_SAMPLES, 0.5));
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;

	page_size = sysconf(_SC_PAGESIZE);
	if (!mib || mib > 512 || mib % 2) {
		fprintf(stderr, "usage: iopfmap_bench [MiB: even, 2..512]\n");
		return 2;
	}
	cold_start(mib << 20);
	fault_latency();
	return 0;
}
