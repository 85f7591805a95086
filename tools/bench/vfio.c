// SPDX-License-Identifier: GPL-2.0
/*
 * The upstream peer of the setup scenario: VFIO's type1 IOMMU driver on
 * one of QEMU's edu devices, bound to vfio-pci through driver_override.
 * tools/vm/run puts Debian's vfio modules, decompressed, in
 * /lib/modules/KVER/vfio with their load order; they are loaded here with
 * finit_module() because busybox's insmod cannot read every compression.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "bench.h"

#define FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

static int load_modules(char *why, size_t whylen)
{
	char dir[128], path[256], *order, *name, *save = NULL;
	struct utsname u;

	if (uname(&u))
		die("uname: %s", strerror(errno));
	snprintf(dir, sizeof(dir), "/lib/modules/%s/vfio", u.release);
	snprintf(path, sizeof(path), "%s/order", dir);
	if (access(path, R_OK)) {
		if (!access("/dev/vfio/vfio", F_OK))
			return 0;	/* a host with VFIO loaded */
		FAIL("no VFIO modules in %s (tools/vm/run puts them there)",
		     dir);
	}
	order = read_all(path);
	for (name = strtok_r(order, "\n", &save); name;
	     name = strtok_r(NULL, "\n", &save)) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %s", path, strerror(errno));
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			die("finit_module(%s): %s", path, strerror(errno));
		close(fd);
	}
	free(order);
	return 0;
}

static bool bound_to_vfio(const char *bdf)
{
	char path[128], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return !strcmp(basename(link), "vfio-pci");
}

int vfio_open(struct vfio *v, const char *bdf, char *why, size_t whylen)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[128], link[256];
	ssize_t n;

	*v = (struct vfio){ .container = -1, .group = -1 };
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	if (load_modules(why, whylen))
		return -1;
	if (!bound_to_vfio(bdf)) {
		if (pci_has_driver(bdf))
			FAIL("%s has a driver bound", bdf);
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/%s/driver_override", bdf);
		if (write_file(path, "vfio-pci"))
			die("write vfio-pci to %s: %s", path, strerror(errno));
		if (write_file("/sys/bus/pci/drivers_probe", bdf))
			die("bind %s to vfio-pci (drivers_probe): %s", bdf,
			    strerror(errno));
		if (!bound_to_vfio(bdf))
			die("%s did not bind to vfio-pci", bdf);
		v->bound = true;
	}

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		die("readlink %s: %s", path, strerror(errno));
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		die("open /dev/vfio/vfio: %s", strerror(errno));
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		die("VFIO_GET_API_VERSION: not %d", VFIO_API_VERSION);
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
		FAIL("VFIO type1v2 is not available");
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		die("open %s: %s", path, strerror(errno));
	xioctl(v->group, VFIO_GROUP_GET_STATUS, &st, "VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		FAIL("IOMMU group %s is not viable", path);
	xioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container,
	       "VFIO_GROUP_SET_CONTAINER");
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU): %s", strerror(errno));
	return 0;
}

void vfio_map(struct vfio *v, uint64_t iova, const void *va, uint64_t len)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)va,
		.iova = iova,
		.size = len,
	};

	xioctl(v->container, VFIO_IOMMU_MAP_DMA, &m, "VFIO_IOMMU_MAP_DMA");
}

void vfio_unmap(struct vfio *v, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .iova = iova, .size = len,
	};

	xioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u, "VFIO_IOMMU_UNMAP_DMA");
	if (u.size != len)
		die("VFIO_IOMMU_UNMAP_DMA unmapped %llu of %llu bytes",
		    (unsigned long long)u.size, (unsigned long long)len);
}

/* Gives the device back as it was found: no driver, no override. */
void vfio_close(struct vfio *v)
{
	char path[128];

	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	if (!v->bound)
		return;
	if (write_file("/sys/bus/pci/drivers/vfio-pci/unbind", v->bdf))
		die("unbind %s from vfio-pci: %s", v->bdf, strerror(errno));
	snprintf(path, sizeof(path),
		 "/sys/bus/pci/devices/%s/driver_override", v->bdf);
	if (write_file(path, "\n"))
		die("clear %s: %s", path, strerror(errno));
}
