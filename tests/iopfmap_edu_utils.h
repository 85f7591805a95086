/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the selftests that drive QEMU's edu device through its test
 * driver iopfmap_edu.ko (kmod/testdev): loading the driver, and unloading
 * it at exit when this program loaded it; finding the edu devices; and
 * edu DMA.
 */
#ifndef IOPFMAP_EDU_UTILS_H
#define IOPFMAP_EDU_UTILS_H

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

#endif /* IOPFMAP_EDU_UTILS_H */
