// SPDX-License-Identifier: GPL-2.0
/*
 * The scenarios on the simulated device's data path:
 *
 *   cold     throughput of the device's first pass over a buffer the CPU
 *            has populated, FAULT with prefetch windows 1, 16 and 512,
 *            with and without huge mappings, against PIN (pre-mapped);
 *   latency  one 4 KiB fault, raw page request to response, against a
 *            CPU minor fault on a page-cache page;
 *   inval    munmap of memory the device has fully mapped against the
 *            same munmap with nothing device-mapped, and the IOTLB
 *            flushes it takes;
 *   scale    faults per second of one and of two simulated devices
 *            (one context each, disjoint ranges), one thread per vCPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define BOUNCE		(4ULL << 20)
#define PG_4K		PAGE
#define PG_ALL		0ULL	/* SIM_CREATE: 4 KiB and 2 MiB entries */

static char *bounce_alloc(void)
{
	char *p = mmap(NULL, BOUNCE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	return p;
}

static double mib_per_s(uint64_t len, uint64_t ns)
{
	return (double)len / MIB / (ns / 1e9);
}

/* ---- cold --------------------------------------------------------------- */

void s_cold(void)
{
	static const unsigned int windows[] = { 1, 16, 512 };
	uint64_t len = ITERS(128, 4) * MIB, faults, t0;
	unsigned int reps = ITERS(11, 1), h, w, r;
	char *bounce = bounce_alloc(), cas[64], ref[64], why[128];

	for (h = 0; h < 2; h++) {
		const char *kind = h ? "huge" : "4K";
		struct samples pin = { 0 };
		struct iopfmap_stats st;
		struct buf b;
		int fd;

		/*
		 * Without: 4 KiB CPU pages and a 4 KiB-only IO page table.
		 * With: THP-backed memory, 2 MiB IO entries allowed.
		 */
		fd = ctx_sim(h ? PG_ALL : PG_4K);
		buf_alloc(&b, len, h ? THP_ON : THP_OFF, true);

		/* The reference: a pinned, so fully pre-mapped, range. */
		map_range(fd, 0, b.p, len, IOPFMAP_MAP_PIN, 0);
		for (r = 0; r < reps; r++) {
			progress("PIN %s, pass %u/%u", kind, r + 1, reps);
			t0 = now_ns();
			faults = dma_pass(fd, 0, len, bounce, BOUNCE, false);
			smp_add(&pin, mib_per_s(len, now_ns() - t0));
			if (faults)
				die("%llu faults on a pinned range",
				    (unsigned long long)faults);
		}
		unmap_range(fd, 0, len);
		snprintf(ref, sizeof(ref), "PIN %s", kind);
		emit("cold", ref, "first pass", "MiB/s", &pin, NULL, NULL,
		     "pre-mapped: no faults");
		smp_free(&pin);

		for (w = 0; w < 3; w++) {
			struct samples s = { 0 };
			struct iopfmap_stats before;
			uint64_t huge = 0;

			for (r = 0; r < reps; r++) {
				progress("FAULT %s window %u, pass %u/%u",
					 kind, windows[w], r + 1, reps);
				get_stats(fd, &before);
				map_range(fd, 0, b.p, len, 0, windows[w]);
				t0 = now_ns();
				faults = dma_pass(fd, 0, len, bounce, BOUNCE,
						  false);
				smp_add(&s, mib_per_s(len, now_ns() - t0));
				get_stats(fd, &st);
				huge = st.out_huge_mappings -
				       before.out_huge_mappings;
				unmap_range(fd, 0, len);
				if (!faults)
					die("a first pass took no fault");
			}
			snprintf(cas, sizeof(cas), "FAULT %s w%u", kind,
				 windows[w]);
			snprintf(why, sizeof(why),
				 "%llu faults, %llu 2 MiB entries per pass",
				 (unsigned long long)faults,
				 (unsigned long long)huge);
			emit("cold", cas, "first pass", "MiB/s", &s, ref,
			     windows[w] == 512 ? ">= 0.90 (VFIO IOPF series: 0.674)" :
			     windows[w] == 1 ? "(VFIO IOPF series: 0.366)" : NULL,
			     why);
			smp_free(&s);
		}
		close(fd);
		buf_free(&b);
	}
	if (munmap(bounce, BOUNCE))
		die("munmap: %s", strerror(errno));
}

/* ---- latency ------------------------------------------------------------ */

void s_latency(void)
{
	unsigned int n = ITERS(20000, 100), i;
	uint64_t len = n * PAGE, t0;
	struct samples dev = { 0 }, cpu = { 0 }, hit = { 0 }, sys = { 0 };
	const char *path = "/tmp/iopfmap-bench-minor";
	char *page;
	struct buf b;
	int fd, ffd;

	/* The reference: a minor fault through a fresh one-page mapping. */
	progress("CPU minor faults: %u pages of a tmpfs file", n);
	ffd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ffd < 0)
		die("open %s: %s", path, strerror(errno));
	if (unlink(path))
		die("unlink %s: %s", path, strerror(errno));
	if (ftruncate(ffd, len))
		die("ftruncate: %s", strerror(errno));
	page = malloc(PAGE);
	if (!page)
		die("out of memory");
	memset(page, 0x5a, PAGE);
	for (i = 0; i < n; i++)
		if (pwrite(ffd, page, PAGE, i * PAGE) != (ssize_t)PAGE)
			die("pwrite: %s", strerror(errno));
	free(page);
	for (i = 0; i < n; i++) {
		/* One page per mapping: no fault-around maps its neighbours. */
		volatile char *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, ffd,
					i * PAGE);

		if (p == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		t0 = now_ns();
		(void)*p;
		smp_add(&cpu, (now_ns() - t0) / 1e3);
		if (munmap((void *)p, PAGE))
			die("munmap: %s", strerror(errno));
	}
	close(ffd);

	/* The syscall floor that the device's numbers include. */
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		if (getppid() < 0)
			die("getppid");
		smp_add(&sys, (now_ns() - t0) / 1e3);
	}

	progress("device faults: %u raw page requests", n);
	fd = ctx_sim(PG_4K);
	buf_alloc(&b, len, THP_OFF, true);
	map_range(fd, 0, b.p, len, 0, 1);
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		if (page_request(fd, i * PAGE, IOPFMAP_PRQ_READ |
				 IOPFMAP_PRQ_LAST, 0) !=
		    IOPFMAP_PAGE_RESP_SUCCESS)
			die("page request %u not answered SUCCESS", i);
		smp_add(&dev, (now_ns() - t0) / 1e3);
	}
	/* The same requests again: the pages are mapped now. */
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		if (page_request(fd, i * PAGE, IOPFMAP_PRQ_READ |
				 IOPFMAP_PRQ_LAST, 0) !=
		    IOPFMAP_PAGE_RESP_SUCCESS)
			die("page request %u not answered SUCCESS", i);
		smp_add(&hit, (now_ns() - t0) / 1e3);
	}
	close(fd);
	buf_free(&b);

	emit("latency", "CPU minor fault", "4 KiB fault", "us", &cpu, NULL,
	     NULL, "first read through a fresh shared mapping of a tmpfs page");
	emit("latency", "null syscall (getppid)", "4 KiB fault", "us", &sys,
	     "CPU minor fault", NULL, "the ioctl entry the device rows include");
	emit("latency", "device fault (SIM_PAGE_REQUEST)", "4 KiB fault", "us",
	     &dev, "CPU minor fault", "<= 2.0",
	     "raw page request to response, CPU-populated page, window 1");
	emit("latency", "page request, page already mapped", "4 KiB fault",
	     "us", &hit, "CPU minor fault", NULL,
	     "the fault path with nothing to map");
	smp_free(&cpu);
	smp_free(&sys);
	smp_free(&dev);
	smp_free(&hit);
}

/* ---- inval -------------------------------------------------------------- */

/* Events of context @ctx in the trace buffer, whose lines hold @event. */
static unsigned long trace_count(const char *tfs, const char *event,
				 uint32_t ctx)
{
	char path[128], tag[96], *text, *line, *save = NULL;
	unsigned long n = 0;

	snprintf(path, sizeof(path), "%s/trace", tfs);
	snprintf(tag, sizeof(tag), "%s: ctx=%u ", event, ctx);
	text = read_all(path);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		n += !!strstr(line, tag);
	free(text);
	return n;
}

static void trace_enable(const char *tfs, const char *event, bool on)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/events/iopfmap/%s/enable", tfs,
		 event);
	if (write_file(path, on ? "1" : "0"))
		die("write %s: %s", path, strerror(errno));
}

enum inval_case { INV_NO_RANGE, INV_UNMAPPED, INV_MAPPED, INV_CASES };

/*
 * One munmap of @len of CPU-populated memory; returns its time in us.
 * With a range, *@st gets the counters' growth over the munmap.
 */
static double inval_once(int fd, uint64_t len, bool huge, enum inval_case c,
			 struct iopfmap_stats *st, char *bounce)
{
	struct iopfmap_stats before;
	struct buf b;
	uint64_t t0;
	double us;

	buf_alloc(&b, len, huge ? THP_ON : THP_OFF, true);
	if (c != INV_NO_RANGE)
		map_range(fd, 0, b.p, len, 0, IOPFMAP_PREFETCH_MAX);
	if (c == INV_MAPPED)
		dma_pass(fd, 0, len, bounce, BOUNCE, false);
	get_stats(fd, &before);
	if (c == INV_MAPPED && before.out_pages_mapped -
	    before.out_pages_unmapped < len / PAGE)
		die("only %llu of %llu pages are device-mapped",
		    (unsigned long long)(before.out_pages_mapped -
					 before.out_pages_unmapped),
		    (unsigned long long)(len / PAGE));
	/* The whole mapping goes: one VMA, so one invalidation. */
	t0 = now_ns();
	if (munmap(b.raw, b.rawlen))
		die("munmap: %s", strerror(errno));
	us = (now_ns() - t0) / 1e3;
	b.raw = NULL;
	get_stats(fd, st);
	st->out_invalidations -= before.out_invalidations;
	st->out_invalidations_handled -= before.out_invalidations_handled;
	st->out_pages_unmapped -= before.out_pages_unmapped;
	if (c != INV_NO_RANGE)
		unmap_range(fd, 0, len);
	return us;
}

void s_inval(void)
{
	static const char *const names[INV_CASES] = {
		"munmap, no range", "munmap, nothing device-mapped",
		"munmap, fully device-mapped",
	};
	uint64_t len = ITERS(64, 4) * MIB;
	unsigned int reps = ITERS(15, 1), h, c, r;
	char *bounce = bounce_alloc(), cas[80], ref[80], why[160];
	const char *tfs = tracefs();

	for (h = 0; h < 2; h++) {
		const char *kind = h ? "huge" : "4K";
		struct iopfmap_stats st = { 0 };
		int fd = ctx_sim(h ? PG_ALL : PG_4K);
		uint32_t id = ctx_id(fd);

		for (c = 0; c < INV_CASES; c++) {
			struct samples s = { 0 };

			for (r = 0; r < reps; r++) {
				progress("%s %llu MiB %s, round %u/%u",
					 names[c],
					 (unsigned long long)(len >> 20), kind,
					 r + 1, reps);
				smp_add(&s, inval_once(fd, len, h, c, &st,
						       bounce));
			}
			snprintf(cas, sizeof(cas), "%s %s", names[c], kind);
			if (c == INV_UNMAPPED)
				snprintf(ref, sizeof(ref), "%s", cas);
			snprintf(why, sizeof(why),
				 "%llu MiB; per munmap: %llu invalidations, %llu IOTLB flushes, %llu pages unmapped",
				 (unsigned long long)(len >> 20),
				 (unsigned long long)st.out_invalidations,
				 (unsigned long long)st.out_invalidations_handled,
				 (unsigned long long)st.out_pages_unmapped);
			emit("inval", cas, "munmap", "us", &s,
			     c == INV_MAPPED ? ref : NULL,
			     c == INV_MAPPED ? "<= 2.0" : NULL,
			     c == INV_NO_RANGE ? "no iopfmap range" : why);
			if (c != INV_NO_RANGE)
				emit1("inval", cas, "IOTLB flushes", "count",
				      st.out_invalidations_handled, NULL, NULL,
				      "GET_STATS invalidations_handled: one iotlb_sync each");
			smp_free(&s);
		}

		/* An untimed round with the tracepoints: unmap calls. */
		if (tfs) {
			char path[128];
			int tfd;

			/* Only an open with O_TRUNC empties the buffer. */
			snprintf(path, sizeof(path), "%s/trace", tfs);
			tfd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
			if (tfd < 0)
				die("clear %s: %s", path, strerror(errno));
			close(tfd);
			trace_enable(tfs, "iopfmap_unmap", true);
			trace_enable(tfs, "iopfmap_invalidate", true);
			inval_once(fd, len, h, INV_MAPPED, &st, bounce);
			trace_enable(tfs, "iopfmap_unmap", false);
			trace_enable(tfs, "iopfmap_invalidate", false);
			snprintf(cas, sizeof(cas), "%s %s", names[INV_MAPPED],
				 kind);
			emit1("inval", cas, "invalidate events", "count",
			      trace_count(tfs, "iopfmap_invalidate", id),
			      NULL, NULL, "tracefs iopfmap_invalidate, one munmap");
			emit1("inval", cas, "IO unmap calls", "count",
			      trace_count(tfs, "iopfmap_unmap", id), NULL,
			      NULL, "tracefs iopfmap_unmap, one munmap");
		} else {
			note("no tracefs with iopfmap events: unmap calls not counted");
		}
		close(fd);
	}
	if (munmap(bounce, BOUNCE))
		die("munmap: %s", strerror(errno));
}

/* ---- scale -------------------------------------------------------------- */

struct scale_dev {
	pthread_t thread;
	int cpu, fd;
	struct buf b;
	char *bounce;
	uint64_t len, faults, start_ns, end_ns;
	pthread_barrier_t *go;
};

static void *scale_run(void *arg)
{
	struct scale_dev *d = arg;

	pin_to_cpu(d->cpu);
	pthread_barrier_wait(d->go);
	d->start_ns = now_ns();
	/* Window 1: one fault per page, the fault path and nothing else. */
	d->faults = dma_pass(d->fd, 0, d->len, d->bounce, BOUNCE, false);
	d->end_ns = now_ns();
	return NULL;
}

struct spin {
	pthread_t thread;
	int cpu;
	unsigned long calls;
	uint64_t start_ns, end_ns;
	pthread_barrier_t *go;
};

static void *spin_run(void *arg)
{
	struct spin *s = arg;
	unsigned long i;

	pin_to_cpu(s->cpu);
	pthread_barrier_wait(s->go);
	s->start_ns = now_ns();
	for (i = 0; i < s->calls; i++)
		if (getppid() < 0)
			die("getppid");
	s->end_ns = now_ns();
	return NULL;
}

/*
 * What two vCPUs give at all under this host's TCG (other guests may
 * share its cores): the same null-syscall loop on one and on two vCPUs.
 */
static void scale_platform(unsigned int reps)
{
	unsigned long calls = ITERS(200000, 2000);
	unsigned int nt, r, i;
	struct spin sp[2];
	pthread_barrier_t go;
	char cas[64];
	int err;

	for (nt = 1; nt <= 2; nt++) {
		struct samples s = { 0 };

		for (r = 0; r < reps; r++) {
			uint64_t start = UINT64_MAX, end = 0;

			progress("null syscalls on %u vCPU(s), round %u/%u", nt,
				 r + 1, reps);
			err = pthread_barrier_init(&go, NULL, nt);
			if (err)
				die("pthread_barrier_init: %s", strerror(err));
			for (i = 0; i < nt; i++) {
				sp[i] = (struct spin){
					.cpu = i, .calls = calls, .go = &go,
				};
				err = pthread_create(&sp[i].thread, NULL,
						     spin_run, &sp[i]);
				if (err)
					die("pthread_create: %s",
					    strerror(err));
			}
			for (i = 0; i < nt; i++) {
				err = pthread_join(sp[i].thread, NULL);
				if (err)
					die("pthread_join: %s", strerror(err));
				if (sp[i].start_ns < start)
					start = sp[i].start_ns;
				if (sp[i].end_ns > end)
					end = sp[i].end_ns;
			}
			pthread_barrier_destroy(&go);
			smp_add(&s, nt * calls / ((end - start) / 1e9));
		}
		snprintf(cas, sizeof(cas), "getppid loop, %u vCPU%s", nt,
			 nt > 1 ? "s" : "");
		emit("scale", cas, "calls/s", "calls/s", &s,
		     nt > 1 ? "getppid loop, 1 vCPU" : NULL, NULL,
		     "the platform's own scaling: no iopfmap");
		smp_free(&s);
	}
}

void s_scale(void)
{
	uint64_t len = ITERS(32, 2) * MIB;
	unsigned int reps = ITERS(11, 1), nd, r, i;
	struct scale_dev devs[2];
	pthread_barrier_t go;
	char cas[64], why[128];

	if (online_cpus() < 2)
		skip("needs 2 vCPUs, the guest has %d", online_cpus());
	scale_platform(reps);
	for (i = 0; i < 2; i++) {
		devs[i] = (struct scale_dev){ .cpu = i, .len = len, .go = &go };
		devs[i].fd = ctx_sim(PG_4K);
		devs[i].bounce = bounce_alloc();
		buf_alloc(&devs[i].b, len, THP_OFF, true);
	}
	for (nd = 1; nd <= 2; nd++) {
		struct samples s = { 0 };

		for (r = 0; r < reps; r++) {
			uint64_t start = UINT64_MAX, end = 0, faults = 0;
			int err;

			progress("%u device(s), round %u/%u", nd, r + 1, reps);
			for (i = 0; i < nd; i++)
				map_range(devs[i].fd, 0, devs[i].b.p, len, 0, 1);
			err = pthread_barrier_init(&go, NULL, nd);
			if (err)
				die("pthread_barrier_init: %s", strerror(err));
			for (i = 0; i < nd; i++) {
				err = pthread_create(&devs[i].thread, NULL,
						     scale_run, &devs[i]);
				if (err)
					die("pthread_create: %s",
					    strerror(err));
			}
			for (i = 0; i < nd; i++) {
				err = pthread_join(devs[i].thread, NULL);
				if (err)
					die("pthread_join: %s", strerror(err));
				if (devs[i].start_ns < start)
					start = devs[i].start_ns;
				if (devs[i].end_ns > end)
					end = devs[i].end_ns;
				faults += devs[i].faults;
				unmap_range(devs[i].fd, 0, len);
			}
			pthread_barrier_destroy(&go);
			if (faults != nd * len / PAGE)
				die("%llu faults, expected one per page",
				    (unsigned long long)faults);
			smp_add(&s, faults / ((end - start) / 1e9));
		}
		snprintf(cas, sizeof(cas), "%u simulated device%s", nd,
			 nd > 1 ? "s" : "");
		snprintf(why, sizeof(why),
			 "%llu MiB each, window 1, one thread per vCPU",
			 (unsigned long long)(len >> 20));
		emit("scale", cas, "faults/s", "faults/s", &s,
		     nd > 1 ? "1 simulated device" : NULL,
		     nd > 1 ? "2.0 is linear" : NULL, why);
		smp_free(&s);
	}
	for (i = 0; i < 2; i++) {
		close(devs[i].fd);
		buf_free(&devs[i].b);
		if (munmap(devs[i].bounce, BOUNCE))
			die("munmap: %s", strerror(errno));
	}
}
