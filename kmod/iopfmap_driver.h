/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfmap's in-kernel interface for device drivers, exported in the symbol
 * namespace IOPFMAP: MODULE_IMPORT_NS(IOPFMAP_NS), with IOPFMAP_NS from
 * compat.h ("IOPFMAP" since v6.13, the bare token IOPFMAP before).
 *
 * A driver whose device cannot raise PCIe page requests itself, but wants
 * to behave as if it could (a device model that asks for translations like
 * ATS, a test driver), raises software page requests here. They enter the
 * same per-device fault queue as the page requests the IOMMU driver
 * reports, and are answered through the same path.
 */
#ifndef IOPFMAP_DRIVER_H
#define IOPFMAP_DRIVER_H

#include <linux/device.h>
#include <linux/types.h>

/* iopfmap_sw_page_request() @access */
#define IOPFMAP_SW_PRQ_READ	BIT(0)
#define IOPFMAP_SW_PRQ_WRITE	BIT(1)

/*
 * Raises a one-page page request group for @iova on behalf of @dev, which
 * must be attached to an iopfmap context, and waits for its answer (at
 * most a few seconds: a fault never waits forever). Sleeps.
 *
 * Returns 0 with *@response set to IOPFMAP_PAGE_RESP_SUCCESS (the page is
 * mapped with the access asked for) or IOPFMAP_PAGE_RESP_INVALID; -ENODEV
 * when @dev is not attached, or is being detached; -EINVAL for a bad
 * @access; -ENOMEM.
 */
int iopfmap_sw_page_request(struct device *dev, u64 iova, u32 access,
			    u32 *response);

#endif /* IOPFMAP_DRIVER_H */
