/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopfmap's tracepoints (TRACE_SYSTEM iopfmap), for perf, trace-cmd and
 * bpftrace: a fault and its outcome with its latency, IO page table maps
 * and unmaps, invalidations, groups pushed to a fault queue, and the
 * response a device gets. Contexts are
 * named by their id (the netlink family reports the same ids).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM iopfmap

#if !defined(IOPFMAP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define IOPFMAP_TRACE_H

#include <linux/pci.h>
#include <linux/tracepoint.h>

TRACE_EVENT(iopfmap_fault,
	TP_PROTO(u32 ctx, u64 iova, u32 flags, u32 pasid, u32 grpid),
	TP_ARGS(ctx, iova, flags, pasid, grpid),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u64, iova)
		__field(u32, flags)
		__field(u32, pasid)
		__field(u32, grpid)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->iova = iova;
		__entry->flags = flags;
		__entry->pasid = pasid;
		__entry->grpid = grpid;
	),
	TP_printk("ctx=%u iova=%#llx access=%s%s pasid=%u grpid=%u",
		  __entry->ctx, __entry->iova,
		  __entry->flags & IOPFMAP_FAULT_READ ? "r" : "",
		  __entry->flags & IOPFMAP_FAULT_WRITE ? "w" : "",
		  __entry->pasid, __entry->grpid)
);

TRACE_EVENT(iopfmap_fault_done,
	TP_PROTO(u32 ctx, u64 iova, u32 response, u64 latency_ns),
	TP_ARGS(ctx, iova, response, latency_ns),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u64, iova)
		__field(u32, response)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->iova = iova;
		__entry->response = response;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("ctx=%u iova=%#llx response=%s latency_ns=%llu",
		  __entry->ctx, __entry->iova,
		  __print_symbolic(__entry->response,
				   { IOPFMAP_PAGE_RESP_SUCCESS, "success" },
				   { IOPFMAP_PAGE_RESP_INVALID, "invalid" },
				   { IOPFMAP_PAGE_RESP_FAILURE, "failure" }),
		  __entry->latency_ns)
);

DECLARE_EVENT_CLASS(iopfmap_iopt_op,
	TP_PROTO(u32 ctx, u64 iova, u64 size, u64 done, int prot),
	TP_ARGS(ctx, iova, size, done, prot),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u64, iova)
		__field(u64, size)
		__field(u64, done)
		__field(int, prot)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->iova = iova;
		__entry->size = size;
		__entry->done = done;
		__entry->prot = prot;
	),
	TP_printk("ctx=%u iova=%#llx size=%#llx done=%#llx prot=%s%s",
		  __entry->ctx, __entry->iova, __entry->size, __entry->done,
		  __entry->prot & IOMMU_READ ? "r" : "",
		  __entry->prot & IOMMU_WRITE ? "w" : "")
);

/* One IO page table map call: @done is @size, or 0 if it failed. */
DEFINE_EVENT(iopfmap_iopt_op, iopfmap_map,
	TP_PROTO(u32 ctx, u64 iova, u64 size, u64 done, int prot),
	TP_ARGS(ctx, iova, size, done, prot)
);

/* One unmap call: @done may exceed @size (a whole huge entry). */
DEFINE_EVENT(iopfmap_iopt_op, iopfmap_unmap,
	TP_PROTO(u32 ctx, u64 iova, u64 size, u64 done, int prot),
	TP_ARGS(ctx, iova, size, done, prot)
);

TRACE_EVENT(iopfmap_invalidate,
	TP_PROTO(u32 ctx, unsigned long start, unsigned long end, u32 event,
		 unsigned long pages_unmapped),
	TP_ARGS(ctx, start, end, event, pages_unmapped),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(unsigned long, start)
		__field(unsigned long, end)
		__field(u32, event)
		__field(unsigned long, pages_unmapped)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->start = start;
		__entry->end = end;
		__entry->event = event;
		__entry->pages_unmapped = pages_unmapped;
	),
	TP_printk("ctx=%u va=%#lx-%#lx event=%u pages_unmapped=%lu",
		  __entry->ctx, __entry->start, __entry->end, __entry->event,
		  __entry->pages_unmapped)
);

/* A page request group's one answer, to the IOMMU core or a driver. */
TRACE_EVENT(iopfmap_respond,
	TP_PROTO(u32 ctx, struct pci_dev *pdev, bool hw, u32 grpid, u32 pasid,
		 u32 response, u32 nr_faults),
	TP_ARGS(ctx, pdev, hw, grpid, pasid, response, nr_faults),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u32, segment)
		__field(u16, devid)
		__field(bool, hw)
		__field(u32, grpid)
		__field(u32, pasid)
		__field(u32, response)
		__field(u32, nr_faults)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->segment = pci_domain_nr(pdev->bus);
		__entry->devid = pci_dev_id(pdev);
		__entry->hw = hw;
		__entry->grpid = grpid;
		__entry->pasid = pasid;
		__entry->response = response;
		__entry->nr_faults = nr_faults;
	),
	TP_printk("ctx=%u dev=%04x:%02x:%02x.%u from=%s grpid=%u pasid=%u resp=%s n=%u",
		  __entry->ctx, __entry->segment, PCI_BUS_NUM(__entry->devid),
		  PCI_SLOT(__entry->devid), PCI_FUNC(__entry->devid),
		  __entry->hw ? "iommu" : "driver",
		  __entry->grpid, __entry->pasid,
		  __print_symbolic(__entry->response,
				   { IOPFMAP_PAGE_RESP_SUCCESS, "success" },
				   { IOPFMAP_PAGE_RESP_INVALID, "invalid" },
				   { IOPFMAP_PAGE_RESP_FAILURE, "failure" }),
		  __entry->nr_faults)
);

/*
 * A group offered to a context's fault queue: @ret is 0 (queued, @cookie
 * names it), -ENOSPC (full) or -ENODEV (closed): then it is answered
 * INVALID at once.
 */
TRACE_EVENT(iopfmap_queue_push,
	TP_PROTO(u32 ctx, u32 dev, u64 addr, u32 nr, u32 flags, u64 cookie,
		 u32 pending, int ret),
	TP_ARGS(ctx, dev, addr, nr, flags, cookie, pending, ret),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u32, dev)
		__field(u64, addr)
		__field(u32, nr)
		__field(u32, flags)
		__field(u64, cookie)
		__field(u32, pending)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->dev = dev;
		__entry->addr = addr;
		__entry->nr = nr;
		__entry->flags = flags;
		__entry->cookie = cookie;
		__entry->pending = pending;
		__entry->ret = ret;
	),
	TP_printk("ctx=%u dev=%u addr=%#llx n=%u stage=%u cookie=%#llx pending=%u ret=%d",
		  __entry->ctx, __entry->dev, __entry->addr, __entry->nr,
		  __entry->flags & IOPFMAP_RECORD_STAGE1 ? 1 : 2,
		  __entry->cookie, __entry->pending, __entry->ret)
);

/*
 * A group leaves a fault queue: @how says who answered it (0 userspace,
 * 1 timeout, 2 closed, 3 withdrawn by its device); @latency_ns counts
 * from its arrival.
 */
TRACE_EVENT(iopfmap_queue_answer,
	TP_PROTO(u32 ctx, u64 cookie, u32 response, u32 how, u64 latency_ns),
	TP_ARGS(ctx, cookie, response, how, latency_ns),
	TP_STRUCT__entry(
		__field(u32, ctx)
		__field(u64, cookie)
		__field(u32, response)
		__field(u32, how)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->cookie = cookie;
		__entry->response = response;
		__entry->how = how;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("ctx=%u cookie=%#llx resp=%s by=%s latency_ns=%llu",
		  __entry->ctx, __entry->cookie,
		  __print_symbolic(__entry->response,
				   { IOPFMAP_PAGE_RESP_SUCCESS, "success" },
				   { IOPFMAP_PAGE_RESP_INVALID, "invalid" },
				   { IOPFMAP_PAGE_RESP_FAILURE, "failure" }),
		  __print_symbolic(__entry->how,
				   { 0, "user" }, { 1, "timeout" },
				   { 2, "closed" }, { 3, "withdrawn" }),
		  __entry->latency_ns)
);

#endif /* IOPFMAP_TRACE_H */

/* Out of tree: the header is found through -I$(src) (see Kbuild). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE iopfmap_trace
#include <trace/define_trace.h>
