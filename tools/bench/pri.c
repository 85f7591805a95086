// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "sva": iopfmap against the kernel's own SVA, on one real
 * (emulated) PRI device, iopfmap-pri (tools/qemu), in the same guest.
 *
 * - iopfmap: the context's IO page table attached at a PASID, a FAULT
 *   range with a 1-page window; the device's page requests go through
 *   VT-d's page request queue and the core to iopfmap, which faults the
 *   page in (hmm_range_fault()) and maps it.
 * - SVA (the reference): the device bound to the process with
 *   iommu_sva_bind_device(); VT-d walks the CPU page tables and the core
 *   resolves each fault with handle_mm_fault().
 *
 * The device writes memory nobody touched, in 64 KiB DMAs (one 16-page
 * group each). Per case: the cost per fault, (first pass - second pass) /
 * faults; the first pass's throughput; and the invalidation, the time of
 * MADV_DONTNEED over the whole buffer once the device has mapped it
 * (iopfmap: the range's notifier unmaps and flushes; SVA: the IOMMU's mm
 * notifier flushes), against the same MADV_DONTNEED with no device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "iopfmap_pri.h"

#define PRI_NODE	"/dev/iopfmap_pri"
#define CHUNK		(64ULL << 10)	/* the device's buffer */
#define PASID		0x42
#define IOVA		0x10000000ULL

/* /dev/iopfmap_pri, loading the test driver from extra/ if need be. */
static int pri_open(void)
{
	char path[256];
	struct utsname u;
	int fd, i;

	fd = open(PRI_NODE, O_RDWR | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || uname(&u))
		return fd;
	snprintf(path, sizeof(path), "/lib/modules/%s/extra/iopfmap_pri.ko",
		 u.release);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	i = syscall(SYS_finit_module, fd, "", 0);
	close(fd);
	if (i && errno != EEXIST)
		return -1;
	/* devtmpfs creates the node shortly after the module loads. */
	for (i = 0; i < 100; i++) {
		fd = open(PRI_NODE, O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		usleep(10000);
	}
	return -1;
}

/* The PRI device's PCI name, from sysfs; false if the guest has none. */
static bool pri_device(char *bdf, size_t len)
{
	char path[128], v[16], d[16];
	bool found = false;
	FILE *f;
	int slot;

	/* tools/vm/run puts it on bus 0; slots only, functions 0. */
	for (slot = 0; slot < 32 && !found; slot++) {
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/0000:00:%02x.0/vendor", slot);
		f = fopen(path, "re");
		if (!f)
			continue;
		found = fgets(v, sizeof(v), f) && !strncmp(v, "0x1234", 6);
		fclose(f);
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/0000:00:%02x.0/device", slot);
		f = found ? fopen(path, "re") : NULL;
		found = f && fgets(d, sizeof(d), f) && !strncmp(d, "0x11e9", 6);
		if (f)
			fclose(f);
		if (found)
			snprintf(bdf, len, "0000:00:%02x.0", slot);
	}
	return found;
}

struct pass {
	uint64_t cold_ns, warm_ns, faults;
};

/* The device writes @bounce to every chunk of [@base, + @len). */
static uint64_t write_pass(int pfd, const char *bdf, uint32_t pasid,
			   uint64_t base, uint64_t len, char *bounce,
			   uint64_t *faults)
{
	uint64_t off, t0, total = 0;

	for (off = 0; off < len; off += CHUNK) {
		struct iopfmap_pri_dma d = {
			.flags = IOPFMAP_PRI_TO_RAM | IOPFMAP_PRI_PASID,
			.pasid = pasid,
			.iova = base + off,
			.length = CHUNK,
			.data = (uintptr_t)bounce,
		};

		snprintf(d.name, sizeof(d.name), "%s", bdf);
		t0 = now_ns();
		xioctl(pfd, IOPFMAP_PRI_DMA, &d, "IOPFMAP_PRI_DMA");
		total += now_ns() - t0;
		if (d.out_status != IOPFMAP_PRI_DONE || d.out_stray)
			die("PRI DMA at %#llx: status %u, %u stray responses",
			    (unsigned long long)d.iova, d.out_status,
			    d.out_stray);
		*faults += d.out_page_requests;
	}
	return total;
}

/* What the device wrote is there. */
static void check_written(const struct buf *b, const char *bounce)
{
	uint64_t off;

	for (off = 0; off < b->len; off += CHUNK)
		if (memcmp(b->p + off, bounce, CHUNK))
			die("the device's write at offset %#llx did not land",
			    (unsigned long long)off);
}

static uint64_t dontneed_ns(struct buf *b)
{
	uint64_t t0 = now_ns();

	if (madvise(b->p, b->len, MADV_DONTNEED))
		die("madvise: %s", strerror(errno));
	return now_ns() - t0;
}

static void attach_pasid(int fd, const char *bdf)
{
	struct iopfmap_device_attach a = {
		.size = sizeof(a),
		.flags = IOPFMAP_ATTACH_PASID,
		.pasid = PASID,
	};

	snprintf(a.name, sizeof(a.name), "%s", bdf);
	xioctl(fd, IOPFMAP_DEVICE_ATTACH, &a, "IOPFMAP_DEVICE_ATTACH (PASID)");
}

static void one_iopfmap(int pfd, const char *bdf, uint64_t len,
			char *bounce, struct pass *p, uint64_t *inval_ns)
{
	struct iopfmap_device_attach a;
	struct buf b;
	int fd;

	fd = ctx_dev(bdf, &a);
	if (fd < 0)
		die("DEVICE_ATTACH %s: %s", bdf, strerror(-fd));
	attach_pasid(fd, bdf);
	buf_alloc(&b, len, THP_OFF, false);
	map_range(fd, IOVA, b.p, len, 0, 1);
	p->cold_ns = write_pass(pfd, bdf, PASID, IOVA, len, bounce,
				&p->faults);
	p->warm_ns = write_pass(pfd, bdf, PASID, IOVA, len, bounce,
				&p->faults);
	check_written(&b, bounce);
	*inval_ns = dontneed_ns(&b);
	close(fd);
	buf_free(&b);
}

/* 0, or the bind's errno. */
static int one_sva(int pfd, const char *bdf, uint64_t len, char *bounce,
		   struct pass *p, uint64_t *inval_ns)
{
	struct iopfmap_pri_sva s = { 0 };
	struct buf b;

	snprintf(s.name, sizeof(s.name), "%s", bdf);
	if (ioctl(pfd, IOPFMAP_PRI_SVA_BIND, &s))
		return errno;
	buf_alloc(&b, len, THP_OFF, false);
	p->cold_ns = write_pass(pfd, bdf, s.out_pasid, (uintptr_t)b.p, len,
				bounce, &p->faults);
	p->warm_ns = write_pass(pfd, bdf, s.out_pasid, (uintptr_t)b.p, len,
				bounce, &p->faults);
	check_written(&b, bounce);
	*inval_ns = dontneed_ns(&b);
	xioctl(pfd, IOPFMAP_PRI_SVA_UNBIND, &s, "IOPFMAP_PRI_SVA_UNBIND");
	buf_free(&b);
	return 0;
}

void s_sva(void)
{
	struct samples cost[2] = { 0 }, tput[2] = { 0 }, inval[3] = { 0 };
	static const char *const cas[] = { "SVA (kernel)", "iopfmap PASID" };
	uint64_t len = ITERS(16, 1) * MIB, ns = 0;
	unsigned int rounds = ITERS(5, 1), r;
	struct iopfmap_info info = { .size = sizeof(info) };
	char bdf[16], bounce[CHUNK];
	struct pass p;
	struct buf b;
	int pfd, fd, err;

	if (!pri_device(bdf, sizeof(bdf)))
		skip("no iopfmap-pri device (tools/vm/run --iommu vtd-pri)");
	fd = open("/dev/iopfmap", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/iopfmap: %s", strerror(errno));
	xioctl(fd, IOPFMAP_GET_INFO, &info, "IOPFMAP_GET_INFO");
	close(fd);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH))
		skip("no PASID attach in this kernel (6.10), and QEMU's VT-d sends page requests with a PASID only");
	pfd = pri_open();
	if (pfd < 0)
		skip("open " PRI_NODE ": %s (iopfmap_pri.ko)", strerror(errno));
	memset(bounce, 0x5a, sizeof(bounce));

	for (r = 0; r < rounds; r++) {
		progress("sva: round %u/%u", r + 1, rounds);
		memset(&p, 0, sizeof(p));
		err = one_sva(pfd, bdf, len, bounce, &p, &ns);
		if (err == EOPNOTSUPP)
			skip("no SVA peer: this kernel's iommu_sva_bind_device() refuses (6.12: no SVA on x86)");
		if (err)
			skip("IOPFMAP_PRI_SVA_BIND: %s", strerror(err));
		smp_add(&cost[0], (p.cold_ns - p.warm_ns) / 1e3 / p.faults);
		smp_add(&tput[0], len / (double)MIB / (p.cold_ns / 1e9));
		smp_add(&inval[1], ns / 1e3);

		memset(&p, 0, sizeof(p));
		one_iopfmap(pfd, bdf, len, bounce, &p, &ns);
		smp_add(&cost[1], (p.cold_ns - p.warm_ns) / 1e3 / p.faults);
		smp_add(&tput[1], len / (double)MIB / (p.cold_ns / 1e9));
		smp_add(&inval[2], ns / 1e3);

		/* The peer of both: the same MADV_DONTNEED, no device. */
		buf_alloc(&b, len, THP_OFF, true);
		smp_add(&inval[0], dontneed_ns(&b) / 1e3);
		buf_free(&b);
	}
	close(pfd);

	emit("sva", cas[0], "cost per fault", "us", &cost[0], NULL, NULL,
	     "(first pass - second pass) / faults, device writes into untouched memory, 64 KiB DMAs");
	emit("sva", cas[1], "cost per fault", "us", &cost[1], cas[0],
	     "<= 1.2x", NULL);
	emit("sva", cas[0], "first pass", "MiB/s", &tput[0], NULL, NULL,
	     NULL);
	emit("sva", cas[1], "first pass", "MiB/s", &tput[1], cas[0], NULL,
	     NULL);
	emit("sva", "no device", "MADV_DONTNEED", "us", &inval[0], NULL, NULL,
	     "of the whole buffer, once the device has mapped it");
	emit("sva", cas[0], "MADV_DONTNEED", "us", &inval[1], "no device",
	     NULL, NULL);
	emit("sva", cas[1], "MADV_DONTNEED", "us", &inval[2], "no device",
	     NULL, NULL);
	for (r = 0; r < 2; r++) {
		smp_free(&cost[r]);
		smp_free(&tput[r]);
	}
	for (r = 0; r < 3; r++)
		smp_free(&inval[r]);
}
