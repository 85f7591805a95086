/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the selftests that drive QEMU's edu device through its test
 * driver iopfmap_edu.ko (kmod/testdev): loading the driver, and unloading
 * it at exit when this program loaded it; finding the edu devices; edu
 * DMA; and which IOMMU a device sits behind, with the kernel log line
 * that IOMMU's driver prints for a DMA it blocked.
 */
#ifndef IOPFMAP_EDU_UTILS_H
#define IOPFMAP_EDU_UTILS_H

#include <libgen.h>
#include <regex.h>
#include <sys/mman.h>

#include "iopfmap_utils.h"
#include "iopfmap_edu.h"

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define EDU_NODE	"/dev/iopfmap_edu"
#define EDU_DRIVER	"iopfmap_edu"

/*
 * Whether this program loaded iopfmap_edu.ko: it then unloads it at exit,
 * so that nothing keeps iopfmap from unloading. Tests run in forked
 * children, hence shared memory.
 */
static int *edu_loaded_here;

static void __attribute__((constructor)) edu_flag_init(void)
{
	void *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	edu_loaded_here = p == MAP_FAILED ? NULL : p;
}

static void __attribute__((destructor)) edu_unload(void)
{
	if (edu_loaded_here && *edu_loaded_here)
		syscall(SYS_delete_module, EDU_DRIVER, O_NONBLOCK);
}

/* Loads iopfmap_edu.ko unless it is there: NULL, or why it cannot. */
static inline const char *edu_load(char *why, size_t len)
{
	int ret = iopfmap_load_test_module(EDU_DRIVER, "IOPFMAP_EDU_KO",
					   EDU_NODE, why, len);

	if (ret == 1 && edu_loaded_here)
		*edu_loaded_here = 1;
	return ret < 0 ? why : NULL;
}

/*
 * What a test of edu devices needs besides the context @fd: iopfmap with
 * device support, iopfmap_edu.ko (loaded here if need be) and edu
 * devices, up to @max of whose names go into @names. Returns how many
 * there are; 0 after SKIPping the test, saying why.
 */
static inline int edu_require(struct __test_metadata *_metadata, int fd,
			      char (*names)[IOPFMAP_DEVICE_NAME_MAX], int max)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	char why[512];
	const char *no;
	int n;

	test_cmd_get_info(fd, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_DEVICE))
		SKIP(return 0, "module without device support (features %#llx)",
		     (unsigned long long)info.out_features);
	/* iopfmap_edu.ko needs iopfmap's exports: loaded after the check. */
	no = edu_load(why, sizeof(why));
	if (no)
		SKIP(return 0, "%s", no);
	n = iopfmap_find_pci(EDU_VENDOR, EDU_DEVICE, names, max);
	if (!n)
		SKIP(return 0, "no edu device (%04x:%04x) in /sys/bus/pci/devices: QEMU needs -device edu",
		     EDU_VENDOR, EDU_DEVICE);
	return n;
}

static inline const char *edu_status_name(__u32 status)
{
	switch (status) {
	case IOPFMAP_EDU_DONE:
		return "DONE";
	case IOPFMAP_EDU_INVALID:
		return "INVALID";
	case IOPFMAP_EDU_NO_PROGRESS:
		return "NO_PROGRESS";
	case IOPFMAP_EDU_DETACHED:
		return "DETACHED";
	}
	return "?";
}

/* How the messages below name the DMA @d. */
#define EDU_DMA_FMT	"EDU_DMA %s %s%s %#llx+%#x, buffer at %#x"
#define EDU_DMA_ARGS(d)							\
	(d).name, (d).flags & IOPFMAP_EDU_RAW ? "raw " : "",		\
	(d).flags & IOPFMAP_EDU_TO_RAM ? "to" : "from",			\
	(unsigned long long)(d).iova, (d).length, (d).offset

/*
 * One edu DMA of @len bytes between @iova and edu's buffer at @off, in
 * the direction and way @flags say; its outcome is in out_status.
 */
static inline struct iopfmap_edu_dma
edu_dma(struct __test_metadata *_metadata, int efd, const char *dev,
	__u32 flags, __u64 iova, __u32 len, __u32 off)
{
	struct iopfmap_edu_dma d = {
		.flags = flags,
		.length = len,
		.iova = iova,
		.offset = off,
	};
	int ret;

	snprintf(d.name, sizeof(d.name), "%s", dev);
	ret = _test_ioctl(efd, IOPFMAP_EDU_DMA, &d);
	ASSERT_EQ(0, ret) TH_LOG(EDU_DMA_FMT ": %s", EDU_DMA_ARGS(d),
				 strerror(-ret));
	return d;
}

/* One edu DMA, as edu_dma(), that must run. */
static inline struct iopfmap_edu_dma
edu_dma_done(struct __test_metadata *_metadata, int efd, const char *dev,
	     __u32 flags, __u64 iova, __u32 len, __u32 off)
{
	struct iopfmap_edu_dma d = edu_dma(_metadata, efd, dev, flags, iova,
					   len, off);

	ASSERT_EQ((__u32)IOPFMAP_EDU_DONE, d.out_status)
		TH_LOG(EDU_DMA_FMT ": %s after %u page requests",
		       EDU_DMA_ARGS(d), edu_status_name(d.out_status),
		       d.out_faults);
	return d;
}

/* The IOMMU models the rig emulates (tools/vm/run --iommu). */
enum iommu_kind {
	IOMMU_UNKNOWN,
	IOMMU_VTD,		/* Intel VT-d, legacy mode */
	IOMMU_VTD_SM,		/* Intel VT-d, scalable mode */
	IOMMU_AMD,		/* AMD-Vi */
	IOMMU_VIRTIO,		/* virtio-iommu */
};

struct iommu_unit {
	enum iommu_kind kind;
	char name[64];		/* in /sys/class/iommu */
};

static inline const char *iommu_kind_name(enum iommu_kind kind)
{
	switch (kind) {
	case IOMMU_VTD:
		return "VT-d";
	case IOMMU_VTD_SM:
		return "VT-d (scalable mode)";
	case IOMMU_AMD:
		return "AMD-Vi";
	case IOMMU_VIRTIO:
		return "virtio-iommu";
	case IOMMU_UNKNOWN:
		break;
	}
	return "unknown";
}

/*
 * The IOMMU unit that translates PCI device @dev, from sysfs: the
 * device's iommu link names the unit, and the unit's attribute groups
 * (intel-iommu, amd-iommu) or its driver (virtio_iommu) say its kind.
 * VT-d's scalable mode is ECAP.SMTS (bit 43). Returns 0 or -errno.
 */
static inline int iommu_of_device(const char *dev, struct iommu_unit *u)
{
	char path[PATH_MAX], link[PATH_MAX];
	unsigned long long ecap;
	ssize_t n;
	FILE *f;

	memset(u, 0, sizeof(*u));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu", dev);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	snprintf(u->name, sizeof(u->name), "%s", basename(link));

	snprintf(path, sizeof(path), "/sys/class/iommu/%s/intel-iommu/ecap",
		 u->name);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llx", &ecap) != 1)
			ecap = 0;
		fclose(f);
		u->kind = ecap & (1ULL << 43) ? IOMMU_VTD_SM : IOMMU_VTD;
		return 0;
	}
	snprintf(path, sizeof(path), "/sys/class/iommu/%s/amd-iommu", u->name);
	if (!access(path, F_OK)) {
		u->kind = IOMMU_AMD;
		return 0;
	}
	snprintf(path, sizeof(path), "/sys/class/iommu/%s/device/driver",
		 u->name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		if (!strcmp(basename(link), "virtio_iommu"))
			u->kind = IOMMU_VIRTIO;
	}
	return 0;
}

/*
 * The extended regexes of the kernel log lines that @u's driver prints
 * when it blocks a DMA of PCI device @dev ("0000:00:03.0") into the page
 * at @iova: the fault record (@fault) and, where the driver prints one, a
 * line around it (@extra, else ""). Matches the log format of every
 * kernel of the matrix (7.x adds the PCI domain to VT-d's line). What
 * each emulated IOMMU reports differs: VT-d the page address, virtio-iommu
 * the address of each blocked access and no access flags, and QEMU's
 * AMD-Vi address 0 and flags 0x000a for every one (so only the device's
 * name ties the record to the DMA). False for an IOMMU whose lines are
 * unknown here.
 */
static inline bool iommu_fault_ere(const struct iommu_unit *u,
				   const char *dev, __u64 iova, bool write,
				   char *fault, char *extra, size_t len)
{
	unsigned int seg, bus, slot, fn;
	char bdf[32], page[32];

	if (sscanf(dev, "%x:%x:%x.%x", &seg, &bus, &slot, &fn) != 4)
		return false;
	snprintf(bdf, sizeof(bdf), "(%04x:)?%02x:%02x\\.%x", seg, bus, slot,
		 fn);
	/* Any address in the page. */
	snprintf(page, sizeof(page), "%#llx[0-9a-f]{3}",
		 (unsigned long long)iova >> 12);
	extra[0] = '\0';
	switch (u->kind) {
	case IOMMU_VTD:
	case IOMMU_VTD_SM:
		snprintf(fault, len,
			 "DMAR: \\[DMA %s (NO_PASID|PASID 0x[0-9a-f]+)\\] Request device \\[%s\\] fault addr %s ",
			 write ? "Write" : "Read", bdf, page);
		snprintf(extra, len,
			 "DMAR: DRHD: handling fault status reg [0-9a-f]+$");
		return true;
	case IOMMU_AMD:
		snprintf(fault, len,
			 "%s: AMD-Vi: Event logged \\[IO_PAGE_FAULT domain=0x[0-9a-f]+ address=0x[0-9a-f]+ flags=0x[0-9a-f]+\\]",
			 dev);
		return true;
	case IOMMU_VIRTIO:
		/* The endpoint is the requester id. */
		snprintf(fault, len,
			 "virtio_iommu [^ ]+: [a-z]+ fault from EP %u at %s \\[R?W?X?\\]",
			 bus << 8 | slot << 3 | fn, page);
		return true;
	case IOMMU_UNKNOWN:
		break;
	}
	return false;
}

/*
 * The kernel log line (an extended regex, into @ere) that @u's driver may
 * print when the emulated IOMMU refuses a page response: QEMU's VT-d in
 * legacy mode takes no page group response descriptor and raises an
 * invalidation queue error, which the fault interrupt reports. "" when
 * none is known.
 */
static inline void iommu_page_response_ere(const struct iommu_unit *u,
					   char *ere, size_t len)
{
	ere[0] = '\0';
	if (u->kind == IOMMU_VTD || u->kind == IOMMU_VTD_SM)
		snprintf(ere, len,
			 "DMAR: DRHD: handling fault status reg [0-9a-f]+$");
}

/*
 * Tells the test runner's kernel log scan (lib/dmesg-scan.awk) that lines
 * matching @ere are provoked on purpose from now on.
 */
static inline bool kmsg_expect(const char *ere)
{
	char rec[1024];
	int fd, n;
	bool ok;

	/* One write() is one record (dprintf() fails on /dev/kmsg). */
	n = snprintf(rec, sizeof(rec), "iopfmap-selftest: expect %s\n", ere);
	if (n < 0 || n >= (int)sizeof(rec))
		return false;
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = write(fd, rec, n) == n;
	close(fd);
	return ok;
}

#endif /* IOPFMAP_EDU_UTILS_H */
