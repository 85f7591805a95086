// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap_pri: the selftests' driver for iopfmap-pri, the emulated PCIe
 * device with ATS, PASID and PRI (tools/qemu/README.md). A test tool,
 * never installed.
 *
 * Unlike edu, the device raises its own page requests: this driver only
 * loads its buffer, starts a DMA and waits for the device to finish. The
 * page requests go through the emulated VT-d's page request queue, the
 * Intel driver and the IOMMU core to the handler of the domain attached
 * at the DMA's PASID, and the response goes back the same way.
 *
 * The driver binds with driver_managed_dma, so that iopfmap can claim the
 * group's DMA ownership while it is bound. The ioctls on /dev/iopfmap_pri
 * are described in iopfmap_pri.h.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/iopoll.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "edu_autoconf.h"
#include "iopfmap_pri.h"

#define PRI_VENDOR_ID		0x1234
#define PRI_DEVICE_ID		0x11e9
#define PRI_MAGIC		0x46504f49	/* "IOPF" */

/* Registers in BAR0 (tools/qemu/README.md) */
#define PRI_REG_MAGIC		0x00
#define PRI_REG_PASID		0x08
#define PRI_REG_IOVA		0x10
#define PRI_REG_LENGTH		0x18
#define PRI_REG_BUF_OFF		0x1c
#define PRI_REG_CMD		0x20
#define PRI_REG_STATUS		0x24
#define PRI_REG_ERROR		0x28
#define PRI_REG_ROUNDS		0x2c
#define PRI_REG_PAGE_REQUESTS	0x30
#define PRI_REG_GROUPS		0x38
#define PRI_REG_RESPONSES	0x40
#define PRI_REG_STRAY		0x48
#define PRI_REG_LAST_CODE	0x5c
#define PRI_REG_DMA_FAULTS	0x60
#define PRI_BUF			0x10000

#define PRI_PASID_VALID		BIT(31)
#define PRI_CMD_START		BIT(0)
#define PRI_CMD_TO_RAM		BIT(1)
#define PRI_CMD_RAW		BIT(2)
#define PRI_CMD_ABORT		BIT(3)

#define PRI_ST_BUSY		1
#define PRI_ST_DONE		2

/*
 * The device gives up waiting for a response after 10 s of virtual time;
 * the driver waits longer, then aborts.
 */
#define PRI_POLL_US		20
#define PRI_TIMEOUT_US		(15 * USEC_PER_SEC)

struct pri_dev {
	struct list_head node;		/* in pri_devs */
	struct kref ref;
	struct pci_dev *pdev;		/* holds a reference */
	/* One DMA at a time; remove() clears @mmio under it. */
	struct mutex dma_lock;
	void __iomem *mmio;
};

static LIST_HEAD(pri_devs);
static DEFINE_MUTEX(pri_devs_lock);

static void pri_release(struct kref *ref)
{
	struct pri_dev *pri = container_of(ref, struct pri_dev, ref);

	pci_dev_put(pri->pdev);
	mutex_destroy(&pri->dma_lock);
	kfree(pri);
}

static void pri_put(struct pri_dev *pri)
{
	kref_put(&pri->ref, pri_release);
}

/* @name must be NUL-terminated. Returns a reference, or NULL. */
static struct pri_dev *pri_get(const char *name)
{
	struct pri_dev *pri, *found = NULL;

	mutex_lock(&pri_devs_lock);
	list_for_each_entry(pri, &pri_devs, node) {
		if (!strcmp(dev_name(&pri->pdev->dev), name)) {
			kref_get(&pri->ref);
			found = pri;
			break;
		}
	}
	mutex_unlock(&pri_devs_lock);
	return found;
}

/* Under dma_lock, with @mmio set. */
static int pri_dma(struct pri_dev *pri, struct iopfmap_pri_dma *arg)
{
	void __iomem *mmio = pri->mmio;
	u64 requests, groups, responses, stray;
	u32 cmd = PRI_CMD_START, status;
	ktime_t start;
	int ret;

	if (arg->data && arg->flags & IOPFMAP_PRI_TO_RAM) {
		void *tmp = memdup_user(u64_to_user_ptr(arg->data),
					arg->length);

		if (IS_ERR(tmp))
			return PTR_ERR(tmp);
		memcpy_toio(mmio + PRI_BUF + arg->offset, tmp, arg->length);
		kfree(tmp);
	}
	if (arg->flags & IOPFMAP_PRI_TO_RAM)
		cmd |= PRI_CMD_TO_RAM;
	if (arg->flags & IOPFMAP_PRI_RAW)
		cmd |= PRI_CMD_RAW;

	requests = readq(mmio + PRI_REG_PAGE_REQUESTS);
	groups = readq(mmio + PRI_REG_GROUPS);
	responses = readq(mmio + PRI_REG_RESPONSES);
	stray = readq(mmio + PRI_REG_STRAY);

	/* iopfmap's DETACH turns bus mastering off: the owner turns it on. */
	pci_set_master(pri->pdev);
	writel(arg->flags & IOPFMAP_PRI_PASID ?
	       PRI_PASID_VALID | arg->pasid : 0, mmio + PRI_REG_PASID);
	writeq(arg->iova, mmio + PRI_REG_IOVA);
	writel(arg->length, mmio + PRI_REG_LENGTH);
	writel(arg->offset, mmio + PRI_REG_BUF_OFF);
	start = ktime_get();
	writel(cmd, mmio + PRI_REG_CMD);
	ret = readl_poll_timeout(mmio + PRI_REG_STATUS, status,
				 status != PRI_ST_BUSY, PRI_POLL_US,
				 PRI_TIMEOUT_US);
	arg->out_ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	if (ret) {
		writel(PRI_CMD_ABORT, mmio + PRI_REG_CMD);
		pci_warn(pri->pdev, "DMA did not complete: aborted\n");
		return ret;
	}
	arg->out_status = status == PRI_ST_DONE ? IOPFMAP_PRI_DONE :
			  readl(mmio + PRI_REG_ERROR);
	arg->out_page_requests = readq(mmio + PRI_REG_PAGE_REQUESTS) - requests;
	arg->out_groups = readq(mmio + PRI_REG_GROUPS) - groups;
	arg->out_responses = readq(mmio + PRI_REG_RESPONSES) - responses;
	arg->out_stray = readq(mmio + PRI_REG_STRAY) - stray;
	arg->out_rounds = readl(mmio + PRI_REG_ROUNDS);
	arg->out_last_code = readl(mmio + PRI_REG_LAST_CODE);

	if (arg->data && !(arg->flags & IOPFMAP_PRI_TO_RAM) &&
	    arg->out_status == IOPFMAP_PRI_DONE) {
		void *tmp = kmalloc(arg->length, GFP_KERNEL);

		if (!tmp)
			return -ENOMEM;
		memcpy_fromio(tmp, mmio + PRI_BUF + arg->offset, arg->length);
		ret = copy_to_user(u64_to_user_ptr(arg->data), tmp,
				   arg->length) ? -EFAULT : 0;
		kfree(tmp);
	}
	return ret;
}

static long pri_ioctl_dma(struct iopfmap_pri_dma __user *uarg)
{
	struct iopfmap_pri_dma arg;
	struct pri_dev *pri;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~(IOPFMAP_PRI_TO_RAM | IOPFMAP_PRI_RAW |
			  IOPFMAP_PRI_PASID) || arg.__reserved)
		return -EOPNOTSUPP;
	if (!memchr(arg.name, '\0', sizeof(arg.name)) || !arg.length ||
	    arg.length > IOPFMAP_PRI_BUF_SIZE ||
	    arg.offset > IOPFMAP_PRI_BUF_SIZE - arg.length ||
	    arg.pasid >= (arg.flags & IOPFMAP_PRI_PASID ? 1U << 20 : 1))
		return -EINVAL;

	pri = pri_get(arg.name);
	if (!pri)
		return -ENODEV;
	ret = mutex_lock_killable(&pri->dma_lock);
	if (!ret) {
		ret = pri->mmio ? pri_dma(pri, &arg) : -ENODEV;
		mutex_unlock(&pri->dma_lock);
	}
	pri_put(pri);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static u32 pri_caps(struct pci_dev *pdev)
{
	u32 caps = 0;
	u16 ctrl;
	int pos;

	if (pdev->ats_enabled)
		caps |= IOPFMAP_PRI_CAP_ATS;
	pos = pci_find_ext_capability(pdev, PCI_EXT_CAP_ID_PASID);
	if (pos) {
		pci_read_config_word(pdev, pos + PCI_PASID_CTRL, &ctrl);
		if (ctrl & PCI_PASID_CTRL_ENABLE)
			caps |= IOPFMAP_PRI_CAP_PASID;
	}
	pos = pci_find_ext_capability(pdev, PCI_EXT_CAP_ID_PRI);
	if (pos) {
		pci_read_config_word(pdev, pos + PCI_PRI_CTRL, &ctrl);
		if (ctrl & PCI_PRI_CTRL_ENABLE)
			caps |= IOPFMAP_PRI_CAP_PRI;
		pci_read_config_word(pdev, pos + PCI_PRI_STATUS, &ctrl);
		if (ctrl & PCI_PRI_STATUS_RF)
			caps |= IOPFMAP_PRI_CAP_PRI_RF;
	}
	return caps;
}

static long pri_ioctl_info(struct iopfmap_pri_info __user *uarg)
{
	struct iopfmap_pri_info arg;
	struct pri_dev *pri;
	int ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.__reserved)
		return -EOPNOTSUPP;
	if (!memchr(arg.name, '\0', sizeof(arg.name)))
		return -EINVAL;
	pri = pri_get(arg.name);
	if (!pri)
		return -ENODEV;
	mutex_lock(&pri->dma_lock);
	if (pri->mmio) {
		arg.out_caps = pri_caps(pri->pdev);
		arg.out_page_requests = readq(pri->mmio +
					      PRI_REG_PAGE_REQUESTS);
		arg.out_groups = readq(pri->mmio + PRI_REG_GROUPS);
		arg.out_responses = readq(pri->mmio + PRI_REG_RESPONSES);
		arg.out_stray = readq(pri->mmio + PRI_REG_STRAY);
		arg.out_dma_faults = readq(pri->mmio + PRI_REG_DMA_FAULTS);
	} else {
		ret = -ENODEV;
	}
	mutex_unlock(&pri->dma_lock);
	pri_put(pri);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

/* An open file of /dev/iopfmap_pri: the SVA bindings it made. */
struct pri_file {
	struct mutex lock;		/* orders this file's binds */
	struct list_head binds;
};

struct pri_bind {
	struct list_head node;		/* in pri_file.binds */
	struct pri_dev *pri;		/* referenced */
	struct iommu_sva *handle;
	bool own_iopf;			/* 6.12: this binding enabled IOPF */
};

#ifdef IOPFMAP_EDU_HAVE_SVA_BIND
/*
 * 6.12: a device's SVA needs its IOPF and SVA features. IOPF may be on
 * already (EBUSY): iopfmap's PASID attachment turned it on, and turns it
 * off.
 */
static int pri_sva_enable(struct pri_bind *b)
{
#ifdef IOPFMAP_EDU_HAVE_DEV_FEAT_SVA
	struct device *dev = &b->pri->pdev->dev;
	int ret;

	ret = iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	if (ret && ret != -EBUSY)
		return ret;
	b->own_iopf = !ret;
	ret = iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_SVA);
	if (ret && b->own_iopf)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
	return ret;
#else
	return 0;
#endif
}

static void pri_sva_disable(struct pri_bind *b)
{
#ifdef IOPFMAP_EDU_HAVE_DEV_FEAT_SVA
	struct device *dev = &b->pri->pdev->dev;

	iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_SVA);
	if (b->own_iopf)
		iommu_dev_disable_feature(dev, IOMMU_DEV_FEAT_IOPF);
#endif
}

static void pri_unbind(struct pri_bind *b)
{
	list_del(&b->node);
	iommu_sva_unbind_device(b->handle);
	pri_sva_disable(b);
	pri_put(b->pri);
	kfree(b);
}

static struct pri_bind *pri_find_bind(struct pri_file *pf,
				      const struct pri_dev *pri)
{
	struct pri_bind *b;

	list_for_each_entry(b, &pf->binds, node)
		if (b->pri == pri)
			return b;
	return NULL;
}

/* Under pf->lock. Takes over the reference on @pri. */
static int pri_bind(struct pri_file *pf, struct pri_dev *pri, u32 *pasid)
{
	struct iommu_sva *handle;
	struct pri_bind *b;
	int ret;

	if (pri_find_bind(pf, pri)) {
		pri_put(pri);
		return -EEXIST;
	}
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b) {
		pri_put(pri);
		return -ENOMEM;
	}
	b->pri = pri;
	ret = pri_sva_enable(b);
	if (ret)
		goto err_free;
	handle = iommu_sva_bind_device(&pri->pdev->dev, current->mm);
	if (IS_ERR(handle)) {
		ret = PTR_ERR(handle);
		goto err_disable;
	}
	b->handle = handle;
	*pasid = iommu_sva_get_pasid(handle);
	list_add(&b->node, &pf->binds);
	return 0;

err_disable:
	pri_sva_disable(b);
err_free:
	kfree(b);
	pri_put(pri);
	return ret;
}
#else
static void pri_unbind(struct pri_bind *b)
{
}

static struct pri_bind *pri_find_bind(struct pri_file *pf,
				      const struct pri_dev *pri)
{
	return NULL;
}

static int pri_bind(struct pri_file *pf, struct pri_dev *pri, u32 *pasid)
{
	pri_put(pri);
	return -EOPNOTSUPP;
}
#endif

static long pri_ioctl_sva(struct pri_file *pf,
			  struct iopfmap_pri_sva __user *uarg, bool bind)
{
	struct iopfmap_pri_sva arg;
	struct pri_bind *b;
	struct pri_dev *pri;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags)
		return -EOPNOTSUPP;
	if (!memchr(arg.name, '\0', sizeof(arg.name)))
		return -EINVAL;
	pri = pri_get(arg.name);
	if (!pri)
		return -ENODEV;
	mutex_lock(&pf->lock);
	if (bind) {
		ret = pri_bind(pf, pri, &arg.out_pasid);
	} else {
		b = pri_find_bind(pf, pri);
		ret = b ? 0 : -ENOENT;
		if (b)
			pri_unbind(b);
		pri_put(pri);
	}
	mutex_unlock(&pf->lock);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long pri_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case IOPFMAP_PRI_DMA:
		return pri_ioctl_dma(uarg);
	case IOPFMAP_PRI_INFO:
		return pri_ioctl_info(uarg);
	case IOPFMAP_PRI_SVA_BIND:
		return pri_ioctl_sva(file->private_data, uarg, true);
	case IOPFMAP_PRI_SVA_UNBIND:
		return pri_ioctl_sva(file->private_data, uarg, false);
	default:
		return -ENOTTY;
	}
}

static int pri_fop_open(struct inode *inode, struct file *file)
{
	struct pri_file *pf = kzalloc(sizeof(*pf), GFP_KERNEL);

	if (!pf)
		return -ENOMEM;
	mutex_init(&pf->lock);
	INIT_LIST_HEAD(&pf->binds);
	file->private_data = pf;
	return 0;
}

static int pri_fop_release(struct inode *inode, struct file *file)
{
	struct pri_file *pf = file->private_data;
	struct pri_bind *b, *tmp;

	list_for_each_entry_safe(b, tmp, &pf->binds, node)
		pri_unbind(b);
	mutex_destroy(&pf->lock);
	kfree(pf);
	return 0;
}

static const struct file_operations pri_fops = {
	.owner = THIS_MODULE,
	.open = pri_fop_open,
	.release = pri_fop_release,
	.unlocked_ioctl = pri_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice pri_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "iopfmap_pri",
	.fops = &pri_fops,
	.mode = 0600,
};

static int pri_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct pri_dev *pri;
	int ret;

	pri = kzalloc(sizeof(*pri), GFP_KERNEL);
	if (!pri)
		return -ENOMEM;
	kref_init(&pri->ref);
	mutex_init(&pri->dma_lock);
	pri->pdev = pci_dev_get(pdev);

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_put;
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	pri->mmio = pci_iomap(pdev, 0, 0);
	if (!pri->mmio) {
		ret = -ENOMEM;
		goto err_release;
	}
	if (readl(pri->mmio + PRI_REG_MAGIC) != PRI_MAGIC) {
		pci_err(pdev, "not an iopfmap-pri device\n");
		ret = -ENODEV;
		goto err_unmap;
	}
	/* No DMA mask: its DMAs go only through iopfmap's domains. */
	pci_set_master(pdev);
	pci_set_drvdata(pdev, pri);

	mutex_lock(&pri_devs_lock);
	list_add_tail(&pri->node, &pri_devs);
	mutex_unlock(&pri_devs_lock);
	return 0;

err_unmap:
	pci_iounmap(pdev, pri->mmio);
err_release:
	pci_release_region(pdev, 0);
err_disable:
	pci_disable_device(pdev);
err_put:
	pri_put(pri);
	return ret;
}

static void pri_remove(struct pci_dev *pdev)
{
	struct pri_dev *pri = pci_get_drvdata(pdev);

	mutex_lock(&pri_devs_lock);
	list_del(&pri->node);
	mutex_unlock(&pri_devs_lock);

	/* Waits for a DMA in progress; later ones see no @mmio. */
	mutex_lock(&pri->dma_lock);
	pci_iounmap(pdev, pri->mmio);
	pri->mmio = NULL;
	mutex_unlock(&pri->dma_lock);

	pci_clear_master(pdev);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
	pri_put(pri);
}

/* No MODULE_DEVICE_TABLE: the tests load the module, never the boot. */
static const struct pci_device_id pri_ids[] = {
	{ PCI_DEVICE(PRI_VENDOR_ID, PRI_DEVICE_ID) },
	{ }
};

static struct pci_driver pri_driver = {
	.name = "iopfmap_pri",
	.id_table = pri_ids,
	.probe = pri_probe,
	.remove = pri_remove,
	/* iopfmap claims the group's DMA ownership while we are bound. */
	.driver_managed_dma = true,
};

static int __init pri_init(void)
{
	int ret;

	ret = pci_register_driver(&pri_driver);
	if (ret)
		return ret;
	ret = misc_register(&pri_misc);
	if (ret)
		pci_unregister_driver(&pri_driver);
	return ret;
}

static void __exit pri_exit(void)
{
	misc_deregister(&pri_misc);
	pci_unregister_driver(&pri_driver);
}

module_init(pri_init);
module_exit(pri_exit);

MODULE_DESCRIPTION("iopfmap selftests: the emulated iopfmap-pri device");
MODULE_LICENSE("GPL");
