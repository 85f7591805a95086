// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "setup": the time to make memory DMA-ready. A FAULT MAP only
 * registers the range; a PIN MAP and VFIO's VFIO_IOMMU_MAP_DMA pin every
 * page and map it into a real IOMMU domain (QEMU's VT-d). iopfmap drives
 * one edu device (DEVICE_ATTACH), VFIO the other: same kind of domain,
 * same CPU-populated memory.
 *
 * Scenario "memory": what tracking FAULT ranges costs the kernel (growth
 * of slab and of iopfmap's vmalloc areas) against PIN ranges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

/* Above the MSI window (0xfee00000) of VT-d's reserved regions. */
#define DEV_IOVA	(4ULL << 30)

/* An edu device nobody drives, other than @not; NULL if none. */
static const char *free_edu(char bdfs[][16], int n, const char *not)
{
	int i;

	for (i = 0; i < n; i++)
		if ((!not || strcmp(bdfs[i], not)) &&
		    !pci_has_driver(bdfs[i]))
			return bdfs[i];
	return NULL;
}

/*
 * iopfmap's context for the comparison: the edu device @bdf attached,
 * or the simulated device when that is impossible. *@iova: where ranges
 * go; *@what: which it is.
 */
static int open_iopfmap(const char *bdf, uint64_t need, uint64_t *iova,
			const char **what)
{
	struct iopfmap_device_attach att;
	int fd = -ENODEV;

	if (bdf)
		fd = ctx_dev(bdf, &att);
	if (fd >= 0 && att.out_iova_start <= DEV_IOVA &&
	    att.out_iova_last >= DEV_IOVA + need - 1) {
		*iova = DEV_IOVA;
		*what = "edu behind VT-d";
		return fd;
	}
	if (fd >= 0) {
		note("%s's aperture [%#llx, %#llx] cannot hold %llu MiB at %#llx",
		     bdf, (unsigned long long)att.out_iova_start,
		     (unsigned long long)att.out_iova_last,
		     (unsigned long long)(need >> 20),
		     (unsigned long long)DEV_IOVA);
		close(fd);
	} else {
		note("no edu device for iopfmap (%s): using the simulated device",
		     bdf ? strerror(-fd) : "none free");
	}
	*iova = 0;
	*what = "simulated device";
	return ctx_sim(0);
}

void s_setup(void)
{
	static const unsigned int full_mib[] = { 64, 256, 1024 };
	static const unsigned int full_reps[] = { 15, 9, 5 };
	unsigned int nsizes = smoke ? 1 : 3, i, r;
	char bdfs[4][16], why[256], metric[32];
	const char *vbdf, *ibdf, *what;
	bool have_vfio = false;
	uint64_t iova;
	struct vfio v;
	int fd, n;

	n = edu_devices(bdfs, 4);
	vbdf = free_edu(bdfs, n, NULL);
	ibdf = free_edu(bdfs, n, vbdf);
	if (vbdf && !vfio_open(&v, vbdf, why, sizeof(why)))
		have_vfio = true;
	else
		note("no VFIO peer: %s", vbdf ? why : "no free edu device");
	fd = open_iopfmap(ibdf, GIB, &iova, &what);
	progress("iopfmap on %s%s%s, VFIO type1 on %s", what,
		 ibdf && iova ? " " : "", ibdf && iova ? ibdf : "",
		 have_vfio ? vbdf : "nothing");

	for (i = 0; i < nsizes; i++) {
		unsigned int mib = smoke ? 16 : full_mib[i];
		unsigned int reps = smoke ? 1 : full_reps[i];
		uint64_t len = (uint64_t)mib * MIB, t0;
		struct samples sf = { 0 }, sp = { 0 }, sv = { 0 };
		struct buf b;

		/* THP as the kernel defaults it: how VM memory usually is. */
		buf_alloc(&b, len, THP_DEFAULT, true);
		for (r = 0; r < reps; r++) {
			progress("%u MiB, round %u/%u", mib, r + 1, reps);
			t0 = now_ns();
			map_range(fd, iova, b.p, len, 0, 0);
			smp_add(&sf, (now_ns() - t0) / 1e6);
			unmap_range(fd, iova, len);

			t0 = now_ns();
			map_range(fd, iova, b.p, len, IOPFMAP_MAP_PIN, 0);
			smp_add(&sp, (now_ns() - t0) / 1e6);
			unmap_range(fd, iova, len);

			if (have_vfio) {
				t0 = now_ns();
				vfio_map(&v, DEV_IOVA, b.p, len);
				smp_add(&sv, (now_ns() - t0) / 1e6);
				vfio_unmap(&v, DEV_IOVA, len);
			}
		}
		snprintf(metric, sizeof(metric), "%u MiB", mib);
		if (have_vfio)
			emit("setup", "VFIO type1 MAP_DMA", metric, "ms", &sv,
			     NULL, NULL, "pins and maps every page (upstream)");
		emit("setup", "PIN MAP", metric, "ms", &sp,
		     have_vfio ? "VFIO type1 MAP_DMA" : NULL, NULL,
		     "pins and maps every page");
		emit("setup", "FAULT MAP", metric, "ms", &sf,
		     have_vfio ? "VFIO type1 MAP_DMA" : "PIN MAP", NULL,
		     "registers the range; pages map on device faults");
		smp_free(&sf);
		smp_free(&sp);
		smp_free(&sv);
		buf_free(&b);
	}
	close(fd);
	if (have_vfio)
		vfio_close(&v);
}

/* ---- memory ------------------------------------------------------------- */

struct mem_snap {
	long slab_kb, vmalloc_kb, free_kb;
};

static void mem_snap(struct mem_snap *m)
{
	/* Let RCU-freed slab objects of earlier rounds go first. */
	usleep(20000);
	m->slab_kb = meminfo_kb("Slab");
	m->vmalloc_kb = vmalloc_module_bytes("iopfmap") / 1024;
	m->free_kb = meminfo_kb("MemFree");
}

struct mem_cost {
	struct samples slab, vmalloc, freed;
};

static void mem_add(struct mem_cost *c, const struct mem_snap *a,
		    const struct mem_snap *b)
{
	smp_add(&c->slab, b->slab_kb - a->slab_kb);
	smp_add(&c->vmalloc, b->vmalloc_kb - a->vmalloc_kb);
	smp_add(&c->freed, a->free_kb - b->free_kb);
}

/*
 * The module allocates with kmalloc and kvmalloc: small objects, and
 * large ones that come from the page allocator but count as slab too,
 * or from vmalloc. MemFree also sees IO page tables, but with the noise
 * of per-CPU page lists.
 */
static void mem_emit(const char *cas, struct mem_cost *c, double gib,
		     const char *ref, const char *why)
{
	double kb = smp_pct(&c->slab, 50) + smp_pct(&c->vmalloc, 50);

	emit("memory", cas, "slab growth", "KiB", &c->slab, NULL, NULL, why);
	emit("memory", cas, "vmalloc (iopfmap)", "KiB", &c->vmalloc, NULL,
	     NULL, "areas /proc/vmallocinfo names iopfmap's");
	emit("memory", cas, "MemFree drop", "KiB", &c->freed, NULL, NULL,
	     "all kernel memory taken, IO page tables included; +-200 KiB of noise");
	emit1("memory", cas, "KiB per GiB", "KiB/GiB", kb / gib, ref,
	      NULL, "(slab + vmalloc growth) per GiB tracked");
	smp_free(&c->slab);
	smp_free(&c->vmalloc);
	smp_free(&c->freed);
}

void s_memory(void)
{
	static const unsigned int full_gib[] = { 1, 16, 64 };
	unsigned int nsizes = smoke ? 1 : 3, reps = ITERS(5, 1), i, r, k;
	unsigned int pin_mib = ITERS(256, 16);
	char bdfs[4][16], cas[64], pin_cas[64], why[160];
	const char *bdf, *what;
	struct mem_snap a, b;
	struct mem_cost c;
	uint64_t iova;
	struct buf pb;
	int fd, n;

	n = edu_devices(bdfs, 4);
	bdf = free_edu(bdfs, n, NULL);

	/* PIN: what fits in the guest, populated before the first snapshot. */
	memset(&c, 0, sizeof(c));
	buf_alloc(&pb, (uint64_t)pin_mib * MIB, THP_OFF, true);
	for (r = 0; r < reps; r++) {
		progress("PIN %u MiB, round %u/%u", pin_mib, r + 1, reps);
		fd = open_iopfmap(bdf, (uint64_t)pin_mib * MIB, &iova, &what);
		mem_snap(&a);
		map_range(fd, iova, pb.p, (uint64_t)pin_mib * MIB,
			  IOPFMAP_MAP_PIN, 0);
		mem_snap(&b);
		mem_add(&c, &a, &b);
		close(fd);
	}
	buf_free(&pb);
	snprintf(pin_cas, sizeof(pin_cas), "PIN %u MiB", pin_mib);
	snprintf(why, sizeof(why),
		 "%s; 4 KiB pages; the pinned memory itself not counted",
		 what);
	mem_emit(pin_cas, &c, pin_mib / 1024.0, NULL, why);

	for (i = 0; i < nsizes; i++) {
		unsigned int gib = smoke ? 1 : full_gib[i];
		uint64_t len = (uint64_t)gib * GIB;
		void *va;

		/* VA only: nothing is touched, so nothing is committed. */
		va = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (va == MAP_FAILED)
			die("mmap of %u GiB of VA: %s", gib, strerror(errno));
		memset(&c, 0, sizeof(c));
		for (r = 0; r < reps; r++) {
			int fds[64];

			progress("FAULT %u GiB, round %u/%u", gib, r + 1, reps);
			fd = open_iopfmap(bdf, len, &iova, &what);
			if (iova) {
				/* One range in the device's domain. */
				mem_snap(&a);
				map_range(fd, iova, va, len, 0, 0);
				mem_snap(&b);
				mem_add(&c, &a, &b);
				close(fd);
				continue;
			}
			/*
			 * The simulated device's aperture is 1 GiB: track
			 * @gib GiB as that many contexts of 1 GiB each.
			 */
			close(fd);
			for (k = 0; k < gib; k++)
				fds[k] = ctx_sim(0);
			mem_snap(&a);
			for (k = 0; k < gib; k++)
				map_range(fds[k], 0, (char *)va + k * GIB,
					  GIB, 0, 0);
			mem_snap(&b);
			mem_add(&c, &a, &b);
			for (k = 0; k < gib; k++)
				close(fds[k]);
		}
		if (munmap(va, len))
			die("munmap: %s", strerror(errno));
		snprintf(cas, sizeof(cas), "FAULT %u GiB", gib);
		snprintf(why, sizeof(why), iova ? "%s, one range" :
			 "%s, 1 GiB ranges in as many contexts", what);
		mem_emit(cas, &c, gib, pin_cas, why);
	}
}
