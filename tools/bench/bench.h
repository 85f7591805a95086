/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfmap_bench: what the scenarios share. See bench.c for the harness
 * and docs/benchmarks.md for the method of each scenario.
 */
#ifndef IOPFMAP_BENCH_H
#define IOPFMAP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/iopfmap.h>

#define PAGE		4096ULL
#define HUGE		(2ULL << 20)
#define MIB		(1ULL << 20)
#define GIB		(1ULL << 30)

/* How the run is sized: --smoke proves the harness, nothing more. */
extern bool smoke;
extern const char *prog;

/* full-run count, or the smoke count */
#define ITERS(full, small) (smoke ? (small) : (full))

void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* The scenario cannot run here: reported as SKIP with @fmt. */
void skip(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xioctl(int fd, unsigned long req, void *arg, const char *name);
uint64_t now_ns(void);
int online_cpus(void);
void pin_to_cpu(int cpu);

/* Samples of one measured quantity. */
struct samples {
	double *v;
	size_t n, cap;
};

void smp_add(struct samples *s, double v);
void smp_free(struct samples *s);
double smp_pct(struct samples *s, unsigned int pct);

/*
 * One result row: the median and p99 of @s, and the ratio of the median
 * to the median of row @ref (same scenario and metric, emitted earlier in
 * this run), or none when @ref is NULL. @aim and @note may be NULL.
 */
void emit(const char *scenario, const char *cas, const char *metric,
	  const char *unit, struct samples *s, const char *ref,
	  const char *aim, const char *note);
void emit1(const char *scenario, const char *cas, const char *metric,
	   const char *unit, double v, const char *ref, const char *aim,
	   const char *note);

/* An anonymous buffer aligned to 2 MiB. */
struct buf {
	char *raw, *p;
	size_t rawlen, len;
};

enum thp { THP_OFF, THP_ON, THP_DEFAULT };
void buf_alloc(struct buf *b, size_t len, enum thp thp, bool populate);
void buf_free(struct buf *b);

/* /dev/iopfmap */
int ctx_sim(uint64_t pgsize_bitmap);
int ctx_dev(const char *bdf, struct iopfmap_device_attach *out);
uint32_t ctx_id(int fd);
uint32_t map_range(int fd, uint64_t iova, const void *va, uint64_t len,
		   uint32_t flags, uint32_t prefetch);
void unmap_range(int fd, uint64_t iova, uint64_t len);
void get_stats(int fd, struct iopfmap_stats *s);
/* One device pass over [@iova, + @len) through @bounce; returns faults. */
uint64_t dma_pass(int fd, uint64_t iova, uint64_t len, char *bounce,
		  size_t bounce_len, bool write);
uint32_t page_request(int fd, uint64_t iova, uint32_t flags, uint32_t grpid);

/* Files and the kernel's counters */
int write_file(const char *path, const char *val);
char *read_all(const char *path);
long meminfo_kb(const char *key);
long long vmalloc_module_bytes(const char *module);
const char *tracefs(void);

/* PCI and VFIO */
int edu_devices(char bdfs[][16], int max);
bool pci_has_driver(const char *bdf);

/* The scenarios */
void s_setup(void);
void s_cold(void);
void s_latency(void);
void s_forward(void);
void s_inval(void);
void s_scale(void);
void s_memory(void);
void s_sva(void);

/* VFIO type1 on one device (vfio.c) */
struct vfio {
	int container, group;
	char bdf[16];
	bool bound;
};

/* 0, or -1 with a reason in @why. */
int vfio_open(struct vfio *v, const char *bdf, char *why, size_t whylen);
void vfio_map(struct vfio *v, uint64_t iova, const void *va, uint64_t len);
void vfio_unmap(struct vfio *v, uint64_t iova, uint64_t len);
void vfio_close(struct vfio *v);

#endif /* IOPFMAP_BENCH_H */
