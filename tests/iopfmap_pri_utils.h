/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the selftests that drive iopfmap-pri, the emulated PCIe
 * device with ATS, PASID and PRI (tools/qemu), through its test driver
 * iopfmap_pri.ko: finding the device, loading the driver (and unloading
 * it at exit when this program loaded it), and naming a DMA's outcome.
 */
#ifndef IOPFMAP_PRI_UTILS_H
#define IOPFMAP_PRI_UTILS_H

#include <sys/mman.h>
#include <sys/syscall.h>

#include "iopfmap_utils.h"
#include "iopfmap_pri.h"

#define PRI_VENDOR	0x1234
#define PRI_DEVICE	0x11e9
#define PRI_NODE	"/dev/iopfmap_pri"
#define PRI_DRIVER	"iopfmap_pri"

/* Whether this program loaded iopfmap_pri.ko (shared with the forks). */
static int *pri_loaded_here;

static void __attribute__((constructor)) pri_flag_init(void)
{
	void *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	pri_loaded_here = p == MAP_FAILED ? NULL : p;
}

static void __attribute__((destructor)) pri_unload(void)
{
	if (pri_loaded_here && *pri_loaded_here)
		syscall(SYS_delete_module, PRI_DRIVER, O_NONBLOCK);
}

static inline const char *pri_status_name(__u32 status)
{
	static const char *const names[] = {
		"DONE", "INVALID", "FAILURE", "NO_PROGRESS", "REFUSED",
		"ABORTED", "TIMEOUT", "DMA_FAULT", "BAD_ARGS",
	};

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "?";
}

/*
 * The PRI device's name into @dev and an fd of /dev/iopfmap_pri (its
 * driver loaded here if need be); -1 after SKIPping the test, saying why.
 */
static inline int pri_require(struct __test_metadata *_metadata,
			      char dev[IOPFMAP_DEVICE_NAME_MAX])
{
	char names[1][IOPFMAP_DEVICE_NAME_MAX];
	char why[512];
	int ret, fd;

	if (!iopfmap_find_pci(PRI_VENDOR, PRI_DEVICE, names, 1))
		SKIP(return -1, "no iopfmap-pri device (%04x:%04x): the guest needs tools/vm/run --iommu vtd-pri",
		     PRI_VENDOR, PRI_DEVICE);
	memcpy(dev, names[0], IOPFMAP_DEVICE_NAME_MAX);
	ret = iopfmap_load_test_module(PRI_DRIVER, "IOPFMAP_PRI_KO", PRI_NODE,
				       why, sizeof(why));
	if (ret < 0)
		SKIP(return -1, "%s", why);
	if (ret == 1 && pri_loaded_here)
		*pri_loaded_here = 1;
	fd = open(PRI_NODE, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, fd) TH_LOG("open " PRI_NODE ": %s", strerror(errno));
	return fd;
}

#endif /* IOPFMAP_PRI_UTILS_H */
