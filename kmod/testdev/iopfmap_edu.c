// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap_edu: the selftests' driver for QEMU's edu device. A test tool,
 * never installed.
 *
 * edu can neither send ATS translation requests nor PCIe page requests.
 * This driver plays that part in software: before it starts edu's DMA
 * engine it looks each page up in the device's IOMMU domain, as an ATS
 * request would, and raises a page request through iopfmap for each miss.
 * The DMA itself is real and goes through the emulated VT-d, so a page
 * that iopfmap did not map (or unmapped meanwhile) is blocked by the IOMMU.
 *
 * Two PCI drivers:
 *  - "iopfmap_edu" binds every edu device with driver_managed_dma, so that
 *    iopfmap can claim the IOMMU group's DMA ownership while it is bound.
 *  - "iopfmap_edu_kdma" binds only through driver_override and stands for
 *    an ordinary kernel driver that owns the device's DMA.
 *
 * The ioctls on /dev/iopfmap_edu are described in iopfmap_edu.h.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/iommu.h>
#include <linux/iopoll.h>
#include <linux/jiffies.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <uapi/linux/iopfmap.h>

#include "../compat.h"
#include "../iopfmap_driver.h"
#include "edu_autoconf.h"
#include "iopfmap_edu.h"

#define EDU_VENDOR_ID		0x1234
#define EDU_DEVICE_ID		0x11e8

/* edu's DMA registers in BAR0 (QEMU hw/misc/edu.c) */
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_COUNT	0x90
#define EDU_REG_DMA_CMD		0x98
#define EDU_DMA_CMD_RUN		BIT(0)	/* cleared by edu on completion */
#define EDU_DMA_CMD_TO_RAM	BIT(1)	/* buffer -> RAM; else RAM -> buffer */

/* The internal buffer, as edu's DMA engine addresses it */
#define EDU_BUF_ADDR		0x40000

/* edu completes a DMA 100 ms (virtual time) after it starts. */
#define EDU_DMA_POLL_US		1000
#define EDU_DMA_TIMEOUT_S	5

/* Page requests per page before a DMA gives up (IOPFMAP_EDU_NO_PROGRESS) */
#define EDU_PRQ_TRIES		4

#define EDU_REPORT_GRPID_MAX	511
#define EDU_REPORT_NPAGES_MAX	32
#define EDU_REPORT_PASID_MAX	((1U << 20) - 1)
#define EDU_REPORT_WAIT_MS	5000

struct edu_dev {
	struct list_head node;		/* in edu_devs */
	struct kref ref;
	struct pci_dev *pdev;		/* holds a reference */
	/*
	 * One DMA at a time: edu has a single engine. dma_lock also orders
	 * a DMA against remove(), which clears @mmio under it.
	 */
	struct mutex dma_lock;
	void __iomem *mmio;
#ifdef IOPFMAP_EDU_HAVE_IOPF_QUEUE
	/* edu's own, for REPORT: no IOMMU driver adds a device without PRI. */
	struct iopf_queue *iopfq;	/* under dma_lock */
#endif
};

/* The edu devices bound to "iopfmap_edu" */
static LIST_HEAD(edu_devs);
static DEFINE_MUTEX(edu_devs_lock);

static void edu_release(struct kref *ref)
{
	struct edu_dev *edu = container_of(ref, struct edu_dev, ref);

	pci_dev_put(edu->pdev);
	mutex_destroy(&edu->dma_lock);
	kfree(edu);
}

static void edu_put(struct edu_dev *edu)
{
	kref_put(&edu->ref, edu_release);
}

/* @name must be NUL-terminated. Returns a reference, or NULL. */
static struct edu_dev *edu_get(const char *name)
{
	struct edu_dev *edu, *found = NULL;

	mutex_lock(&edu_devs_lock);
	list_for_each_entry(edu, &edu_devs, node) {
		if (!strcmp(dev_name(&edu->pdev->dev), name)) {
			kref_get(&edu->ref);
			found = edu;
			break;
		}
	}
	mutex_unlock(&edu_devs_lock);
	return found;
}

static bool edu_name_valid(const char *name)
{
	return memchr(name, '\0', IOPFMAP_EDU_NAME_MAX);
}

/*
 * The domain iopfmap attached, or NULL. Anything else (the DMA API's
 * default domain, a blocking domain) must never see a DMA of ours. On 6.1
 * the Intel driver has no blocking domain type, and the core puts a claimed
 * but detached group in an empty UNMANAGED domain instead: that one passes
 * here, and blocks the DMA.
 *
 * iommu_get_domain_for_dev() takes no reference on the domain: a DETACH
 * racing with this lookup and iommu_iova_to_phys() can free it. Tests race
 * IOPFMAP_EDU_FAULT, never IOPFMAP_EDU_DMA, against DETACH and close().
 */
static struct iommu_domain *edu_iopfmap_domain(struct device *dev)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(dev);

	if (!domain || domain->type != IOMMU_DOMAIN_UNMANAGED)
		return NULL;
	return domain;
}

/*
 * One software page request. Returns 0 and sets *@status to
 * IOPFMAP_EDU_DONE (SUCCESS), _INVALID or _DETACHED; a negative errno when
 * no request was raised for another reason.
 */
static int edu_page_request(struct device *dev, u64 iova, u32 access,
			    u32 *status, u32 *faults)
{
	u32 resp;
	int ret;

	ret = iopfmap_sw_page_request(dev, iova, access, &resp);
	if (ret == -ENODEV) {
		*status = IOPFMAP_EDU_DETACHED;
		return 0;
	}
	if (ret)
		return ret;
	(*faults)++;
	*status = resp == IOPFMAP_PAGE_RESP_SUCCESS ? IOPFMAP_EDU_DONE :
						      IOPFMAP_EDU_INVALID;
	return 0;
}

/*
 * What an ATS device with PRI does before it DMAs: translate each page,
 * and raise a page request for each miss. Sets @arg->out_status.
 */
static int edu_dma_translate(struct device *dev, struct iopfmap_edu_dma *arg)
{
	u32 access = arg->flags & IOPFMAP_EDU_TO_RAM ? IOPFMAP_SW_PRQ_WRITE :
						       IOPFMAP_SW_PRQ_READ;
	u64 last = (arg->iova + arg->length - 1) & PAGE_MASK;
	struct iommu_domain *domain;
	u64 page;
	int tries, ret;

	for (page = arg->iova & PAGE_MASK; page <= last; page += PAGE_SIZE) {
		for (tries = 0;; tries++) {
			/* The domain changes when iopfmap detaches. */
			domain = edu_iopfmap_domain(dev);
			if (!domain) {
				arg->out_status = IOPFMAP_EDU_DETACHED;
				return 0;
			}
			if (iommu_iova_to_phys(domain, page))
				break;
			if (tries == EDU_PRQ_TRIES) {
				arg->out_status = IOPFMAP_EDU_NO_PROGRESS;
				return 0;
			}
			ret = edu_page_request(dev, page, access,
					       &arg->out_status,
					       &arg->out_faults);
			if (ret || arg->out_status != IOPFMAP_EDU_DONE)
				return ret;
		}
	}
	return 0;
}

/* Runs one transfer on edu's engine and waits for its completion. */
static int edu_dma_run(struct edu_dev *edu, u64 src, u64 dst, u32 count,
		       u64 cmd)
{
	void __iomem *mmio = edu->mmio;
	u64 val;
	int ret;

	/* edu ignores register writes while a DMA runs (one timed out). */
	if (readq(mmio + EDU_REG_DMA_CMD) & EDU_DMA_CMD_RUN)
		return -EBUSY;
	/* iopfmap's DETACH turns bus mastering off: the owner turns it on. */
	pci_set_master(edu->pdev);
	writeq(src, mmio + EDU_REG_DMA_SRC);
	writeq(dst, mmio + EDU_REG_DMA_DST);
	writeq(count, mmio + EDU_REG_DMA_COUNT);
	/* No EDU_DMA_IRQ: this driver polls and has no interrupt handler. */
	writeq(cmd | EDU_DMA_CMD_RUN, mmio + EDU_REG_DMA_CMD);
	ret = readq_poll_timeout(mmio + EDU_REG_DMA_CMD, val,
				 !(val & EDU_DMA_CMD_RUN), EDU_DMA_POLL_US,
				 EDU_DMA_TIMEOUT_S * USEC_PER_SEC);
	if (ret)
		pci_warn(edu->pdev, "DMA did not complete in %d s\n",
			 EDU_DMA_TIMEOUT_S);
	return ret;
}

/* Called with edu->dma_lock held. */
static int edu_dma(struct edu_dev *edu, struct iopfmap_edu_dma *arg)
{
	struct device *dev = &edu->pdev->dev;
	u64 buf = EDU_BUF_ADDR + arg->offset;
	int ret;

	if (!edu->mmio)
		return -ENODEV;	/* unbound since the lookup */
	if (!edu_iopfmap_domain(dev)) {
		arg->out_status = IOPFMAP_EDU_DETACHED;
		return 0;
	}
	if (!(arg->flags & IOPFMAP_EDU_RAW)) {
		ret = edu_dma_translate(dev, arg);
		if (ret || arg->out_status != IOPFMAP_EDU_DONE)
			return ret;
	}
	if (arg->flags & IOPFMAP_EDU_TO_RAM)
		return edu_dma_run(edu, buf, arg->iova, arg->length,
				   EDU_DMA_CMD_TO_RAM);
	return edu_dma_run(edu, arg->iova, buf, arg->length, 0);
}

static long edu_ioctl_dma(struct iopfmap_edu_dma __user *uarg)
{
	struct iopfmap_edu_dma arg;
	struct edu_dev *edu;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~(IOPFMAP_EDU_TO_RAM | IOPFMAP_EDU_RAW) ||
	    arg.__reserved)
		return -EOPNOTSUPP;
	/*
	 * QEMU 7.2's edu aborts QEMU when a transfer reaches the buffer's
	 * last byte (its range check is off by one), not only on a 4096-byte
	 * transfer: keep @offset + @length within IOPFMAP_EDU_DMA_MAX.
	 */
	if (!edu_name_valid(arg.name) || !arg.length ||
	    arg.length > IOPFMAP_EDU_DMA_MAX ||
	    arg.offset > IOPFMAP_EDU_DMA_MAX - arg.length ||
	    arg.iova > IOPFMAP_EDU_IOVA_LIMIT - arg.length)
		return -EINVAL;

	edu = edu_get(arg.name);
	if (!edu)
		return -ENODEV;
	arg.out_status = IOPFMAP_EDU_DONE;
	arg.out_faults = 0;
	ret = mutex_lock_killable(&edu->dma_lock);
	if (!ret) {
		ret = edu_dma(edu, &arg);
		mutex_unlock(&edu->dma_lock);
	}
	edu_put(edu);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long edu_ioctl_fault(struct iopfmap_edu_fault __user *uarg)
{
	struct iopfmap_edu_fault arg;
	struct edu_dev *edu;
	u64 i, npages, last;
	u32 access;
	int ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~IOPFMAP_EDU_TO_RAM || arg.__reserved)
		return -EOPNOTSUPP;
	if (!edu_name_valid(arg.name) || !arg.length ||
	    !PAGE_ALIGNED(arg.iova) || !PAGE_ALIGNED(arg.length) ||
	    check_add_overflow(arg.iova, arg.length - 1, &last))
		return -EINVAL;
	npages = arg.length >> PAGE_SHIFT;
	access = arg.flags & IOPFMAP_EDU_TO_RAM ? IOPFMAP_SW_PRQ_WRITE :
						  IOPFMAP_SW_PRQ_READ;

	edu = edu_get(arg.name);
	if (!edu)
		return -ENODEV;
	arg.out_status = IOPFMAP_EDU_DONE;
	arg.out_faults = 0;
	for (i = 0; i < npages; i++) {
		/* Each request may wait seconds; a span may be long. */
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		ret = edu_page_request(&edu->pdev->dev,
				       arg.iova + (i << PAGE_SHIFT), access,
				       &arg.out_status, &arg.out_faults);
		if (ret || arg.out_status != IOPFMAP_EDU_DONE)
			break;
	}
	edu_put(edu);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

#if defined(IOPFMAP_EDU_HAVE_FAULT_EVENT)
/*
 * Page requests of @arg's group (with its PASID, if it has one) that the
 * IOMMU core still holds for a response. It keeps only a group's last
 * request on the list (iommu_report_device_fault()).
 */
static u32 edu_report_pending(struct edu_dev *edu,
			      const struct iopfmap_edu_report *arg)
{
	bool pasid_valid = arg->flags & IOPFMAP_EDU_REPORT_PASID;
	struct dev_iommu *param = edu->pdev->dev.iommu;
	struct iommu_fault_page_request *prm;
	struct iommu_fault_param *fparam;
	struct iommu_fault_event *evt;
	u32 pending = 0;
	bool has_pasid;

	if (!param)
		return 0;
	/* param->lock keeps fault_param from being unregistered and freed. */
	mutex_lock(&param->lock);
	fparam = param->fault_param;
	if (fparam) {
		mutex_lock(&fparam->lock);
		list_for_each_entry(evt, &fparam->faults, list) {
			prm = &evt->fault.prm;
			has_pasid = prm->flags &
				    IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
			if (evt->fault.type == IOMMU_FAULT_PAGE_REQ &&
			    prm->grpid == arg->grpid &&
			    has_pasid == pasid_valid &&
			    (!pasid_valid || prm->pasid == arg->pasid))
				pending++;
		}
		mutex_unlock(&fparam->lock);
	}
	mutex_unlock(&param->lock);
	return pending;
}

/* The core could never retire the group: iopfmap takes none then. */
static int edu_report_begin(struct edu_dev *edu)
{
	struct device *dev = &edu->pdev->dev;

	if (!device_iommu_mapped(dev) || !dev_iommu_ops(dev)->page_response)
		return -ENXIO;
	return 0;
}

static void edu_report_end(struct edu_dev *edu)
{
}

static int edu_report_one(struct device *dev, const struct iommu_fault *fault)
{
	struct iommu_fault_event evt = { .fault = *fault };

	return iommu_report_device_fault(dev, &evt);
}
#elif defined(IOPFMAP_EDU_HAVE_IOPF_QUEUE)
/*
 * Groups the IOMMU core holds for edu and has not answered: each holds a
 * reference on the fault_param, whose own is the queue's. Under dma_lock,
 * which keeps the device in edu's queue.
 */
static u32 edu_report_pending(struct edu_dev *edu,
			      const struct iopfmap_edu_report *arg)
{
	struct iommu_fault_param *fparam;
	u32 pending = 0;

	rcu_read_lock();
	fparam = rcu_dereference(edu->pdev->dev.iommu->fault_param);
	if (fparam)
		pending = refcount_read(&fparam->users) - 1;
	rcu_read_unlock();
	return pending;
}

/* Puts @edu's device in its own iopf queue, once. Under dma_lock. */
static int edu_join_iopf_queue(struct edu_dev *edu)
{
	struct device *dev = &edu->pdev->dev;
	struct iopf_queue *q;
	int ret;

	if (edu->iopfq)
		return 0;
	q = iopf_queue_alloc(pci_name(edu->pdev));
	if (!q)
		return -ENOMEM;
	/* ENODEV: the IOMMU driver cannot send page responses. */
	ret = iopf_queue_add_device(q, dev);
	if (ret) {
		iopf_queue_free(q);
		return ret == -ENODEV ? -ENXIO : ret;
	}
	edu->iopfq = q;
	return 0;
}

static void edu_leave_iopf_queue(struct edu_dev *edu)
{
	if (!edu->iopfq)
		return;
	iopf_queue_remove_device(edu->iopfq, &edu->pdev->dev);
	iopf_queue_free(edu->iopfq);
	edu->iopfq = NULL;
}

/* dma_lock keeps remove() from taking the device out of the queue. */
static int edu_report_begin(struct edu_dev *edu)
{
	int ret = -ENODEV;

	mutex_lock(&edu->dma_lock);
	if (edu->mmio && device_iommu_mapped(&edu->pdev->dev))
		ret = edu_join_iopf_queue(edu);
	if (ret)
		mutex_unlock(&edu->dma_lock);
	return ret;
}

static void edu_report_end(struct edu_dev *edu)
{
	mutex_unlock(&edu->dma_lock);
}

static int edu_report_one(struct device *dev, const struct iommu_fault *fault)
{
	struct iopf_fault evt = { .fault = *fault };

	return iommu_report_device_fault(dev, &evt);
}
#endif

#if defined(IOPFMAP_EDU_HAVE_FAULT_EVENT) || \
	defined(IOPFMAP_EDU_HAVE_IOPF_QUEUE)
/* Request @i of the group @arg asks for, as an IOMMU driver reports it. */
static void edu_report_fault(struct iommu_fault *fault,
			     const struct iopfmap_edu_report *arg, u32 i)
{
	struct iommu_fault_page_request *prm = &fault->prm;

	memset(fault, 0, sizeof(*fault));
	fault->type = IOMMU_FAULT_PAGE_REQ;
	if (i == arg->npages - 1)
		prm->flags |= IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
	/* As the Intel driver reports a PRQ that carries a PASID */
	if (arg->flags & IOPFMAP_EDU_REPORT_PASID)
		prm->flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID |
			      IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
	prm->perm = arg->flags & IOPFMAP_EDU_REPORT_WRITE ?
		    IOMMU_FAULT_PERM_WRITE : IOMMU_FAULT_PERM_READ;
	prm->addr = arg->iova + ((u64)i << PAGE_SHIFT);
	prm->grpid = arg->grpid;
	prm->pasid = arg->pasid;
}

static long edu_ioctl_report(struct iopfmap_edu_report __user *uarg)
{
	struct iopfmap_edu_report arg;
	struct iommu_fault fault;
	unsigned long deadline;
	struct edu_dev *edu;
	bool pasid_valid;
	u64 last;
	u32 i;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~(IOPFMAP_EDU_REPORT_WRITE | IOPFMAP_EDU_REPORT_PASID))
		return -EOPNOTSUPP;
	pasid_valid = arg.flags & IOPFMAP_EDU_REPORT_PASID;
	if (!edu_name_valid(arg.name) || arg.grpid > EDU_REPORT_GRPID_MAX ||
	    !arg.npages || arg.npages > EDU_REPORT_NPAGES_MAX ||
	    !PAGE_ALIGNED(arg.iova) ||
	    check_add_overflow(arg.iova,
			       ((u64)arg.npages << PAGE_SHIFT) - 1, &last) ||
	    arg.pasid > (pasid_valid ? EDU_REPORT_PASID_MAX : 0))
		return -EINVAL;

	edu = edu_get(arg.name);
	if (!edu)
		return -ENODEV;
	ret = edu_report_begin(edu);
	if (ret)
		goto out_put;
	for (i = 0; i < arg.npages; i++) {
		edu_report_fault(&fault, &arg, i);
		arg.out_report_ret = edu_report_one(&edu->pdev->dev, &fault);
	}

	/* The handler may answer later, from a workqueue: wait for it. */
	deadline = jiffies + msecs_to_jiffies(EDU_REPORT_WAIT_MS);
	for (;;) {
		arg.out_pending = edu_report_pending(edu, &arg);
		if (!arg.out_pending || time_after(jiffies, deadline))
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		usleep_range(1000, 2000);
	}
	edu_report_end(edu);
out_put:
	edu_put(edu);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}
#else
static long edu_ioctl_report(struct iopfmap_edu_report __user *uarg)
{
	return -EOPNOTSUPP;
}
#endif

static long edu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case IOPFMAP_EDU_DMA:
		return edu_ioctl_dma(uarg);
	case IOPFMAP_EDU_FAULT:
		return edu_ioctl_fault(uarg);
	case IOPFMAP_EDU_REPORT:
		return edu_ioctl_report(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations edu_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = edu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice edu_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "iopfmap_edu",
	.fops = &edu_fops,
	.mode = 0600,
};

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu_dev *edu;
	int ret;

	edu = kzalloc(sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	kref_init(&edu->ref);
	mutex_init(&edu->dma_lock);
	edu->pdev = pci_dev_get(pdev);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_put;
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	edu->mmio = pci_iomap(pdev, 0, 0);
	if (!edu->mmio) {
		ret = -ENOMEM;
		goto err_release;
	}
	/*
	 * No DMA mask: edu's DMAs go only through the domain iopfmap
	 * attaches, never through the DMA API.
	 */
	pci_set_master(pdev);
	pci_set_drvdata(pdev, edu);

	mutex_lock(&edu_devs_lock);
	list_add_tail(&edu->node, &edu_devs);
	mutex_unlock(&edu_devs_lock);
	return 0;

err_release:
	pci_release_region(pdev, 0);
err_disable:
	pci_disable_device(pdev);
err_put:
	edu_put(edu);
	return ret;
}

static void edu_remove(struct pci_dev *pdev)
{
	struct edu_dev *edu = pci_get_drvdata(pdev);

	mutex_lock(&edu_devs_lock);
	list_del(&edu->node);
	mutex_unlock(&edu_devs_lock);

	/* Waits for a DMA in progress; later ones see no @mmio. */
	mutex_lock(&edu->dma_lock);
	pci_iounmap(pdev, edu->mmio);
	edu->mmio = NULL;
#ifdef IOPFMAP_EDU_HAVE_IOPF_QUEUE
	/* The core answers INVALID what it still holds for edu. */
	edu_leave_iopf_queue(edu);
#endif
	mutex_unlock(&edu->dma_lock);

	pci_clear_master(pdev);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
	/* An ioctl may still hold a reference (FAULT, REPORT). */
	edu_put(edu);
}

/*
 * No MODULE_DEVICE_TABLE: the module must not load by itself at boot;
 * the tests load it.
 */
static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(EDU_VENDOR_ID, EDU_DEVICE_ID) },
	{ }
};

static struct pci_driver edu_driver = {
	.name = "iopfmap_edu",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
	/* iopfmap claims the group's DMA ownership while we are bound. */
	.driver_managed_dma = true,
};

/*
 * "iopfmap_edu_kdma": an ordinary kernel driver that owns its device's DMA
 * through the DMA API (the core attaches the default domain for it). It
 * has no ID table, so it binds only a device whose driver_override names
 * it; iopfmap must refuse to attach that device.
 */
static int edu_kdma_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	/* edu's DMA engine drives 28 address bits. */
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(28));
	if (ret) {
		pci_disable_device(pdev);
		return ret;
	}
	return 0;
}

static void edu_kdma_remove(struct pci_dev *pdev)
{
	pci_disable_device(pdev);
}

static struct pci_driver edu_kdma_driver = {
	.name = "iopfmap_edu_kdma",
	.probe = edu_kdma_probe,
	.remove = edu_kdma_remove,
};

static int __init edu_init(void)
{
	int ret;

	ret = pci_register_driver(&edu_driver);
	if (ret)
		return ret;
	ret = pci_register_driver(&edu_kdma_driver);
	if (ret)
		goto err_edu;
	ret = misc_register(&edu_misc);
	if (ret)
		goto err_kdma;
	return 0;

err_kdma:
	pci_unregister_driver(&edu_kdma_driver);
err_edu:
	pci_unregister_driver(&edu_driver);
	return ret;
}

static void __exit edu_exit(void)
{
	/* No ioctl runs: each holds an open file, so a module reference. */
	misc_deregister(&edu_misc);
	pci_unregister_driver(&edu_kdma_driver);
	pci_unregister_driver(&edu_driver);
}

module_init(edu_init);
module_exit(edu_exit);

MODULE_DESCRIPTION("iopfmap selftests: QEMU edu device as a PRI device");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(IOPFMAP_NS);
