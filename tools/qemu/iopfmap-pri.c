/*
 * iopfmap-pri: a PCIe endpoint with ATS, PASID and PRI and a small DMA
 * engine, for iopfmap's tests. It sends real page requests through the
 * emulated IOMMU (hw/pci/pci.c: pci_ats_request_translation(),
 * pci_pri_request_page()) and waits for the page response.
 *
 * Written for the iopfmap project; built into QEMU by tools/qemu/build.sh.
 * The register interface is described in tools/qemu/README.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/module.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "system/address-spaces.h"
#include "system/dma.h"
#include "qom/object.h"

#define TYPE_IOPFMAP_PRI "iopfmap-pri"
OBJECT_DECLARE_SIMPLE_TYPE(IopfmapPriState, IOPFMAP_PRI)

#define PRI_DEVICE_ID           0x11e9
#define PRI_MAGIC               0x46504f49      /* "IOPF" */
#define PRI_VERSION             1

#define PRI_BUF_OFFSET          0x10000
#define PRI_BUF_SIZE            (64 * KiB)
#define PRI_BAR_SIZE            (PRI_BUF_OFFSET + PRI_BUF_SIZE)
#define PRI_PAGE_SIZE           4096
#define PRI_MAX_PAGES           (PRI_BUF_SIZE / PRI_PAGE_SIZE + 1)

/* Registers: see README.md */
#define REG_MAGIC               0x00
#define REG_VERSION             0x04
#define REG_PASID               0x08
#define REG_BUF_SIZE            0x0c
#define REG_IOVA                0x10
#define REG_LENGTH              0x18
#define REG_BUF_OFF             0x1c
#define REG_CMD                 0x20
#define REG_STATUS              0x24
#define REG_ERROR               0x28
#define REG_ROUNDS              0x2c
#define REG_PAGE_REQUESTS       0x30
#define REG_GROUPS              0x38
#define REG_RESPONSES           0x40
#define REG_STRAY               0x48
#define REG_TRANSLATIONS        0x50
#define REG_LAST_PRGI           0x58
#define REG_LAST_CODE           0x5c
#define REG_DMA_FAULTS          0x60

#define PASID_VALID             (1u << 31)
#define PASID_MASK              0xfffff

#define CMD_START               (1u << 0)
#define CMD_TO_RAM              (1u << 1)       /* else memory to buffer */
#define CMD_RAW                 (1u << 2)       /* no ATS, no PRI: plain DMA */
#define CMD_ABORT               (1u << 3)

enum pri_status { ST_IDLE, ST_BUSY, ST_DONE, ST_ERROR };

enum pri_error {
    ERR_NONE,
    ERR_INVALID,                /* a response said Invalid Request */
    ERR_FAILURE,                /* Response Failure: PRI is now stopped */
    ERR_NO_PROGRESS,    /* SUCCESS, yet the page still does not translate */
    ERR_REFUSED,                /* ATS or PRI disabled, or the IOMMU refused */
    ERR_ABORTED,
    ERR_TIMEOUT,                /* no response in PRI_RESPONSE_TIMEOUT_MS */
    ERR_DMA,            /* the memory access itself failed */
    ERR_BAD_ARGS,
};

/* Page request rounds per DMA: a page that SUCCESS did not map fails. */
#define PRI_MAX_ROUNDS          4
#define PRI_RESPONSE_TIMEOUT_MS 10000

struct IopfmapPriState {
    PCIDevice parent_obj;
    MemoryRegion mmio;
    QEMUBH *bh;
    QEMUTimer timeout;
    IOMMUPRINotifier pri_notifier;
    uint32_t notifier_pasid;    /* PCI_NO_PASID: none registered */

    uint32_t pasid;
    uint64_t iova;
    uint32_t length;
    uint32_t buf_off;
    uint32_t cmd;
    uint32_t status;
    uint32_t error;
    uint32_t rounds;

    bool waiting;                       /* a group is outstanding */
    uint16_t next_prgi;
    uint16_t wait_prgi;

    uint64_t page_requests;
    uint64_t groups;
    uint64_t responses;
    uint64_t stray;
    uint64_t translations;
    uint32_t last_prgi;
    uint32_t last_code;
    uint64_t dma_faults;

    uint8_t buf[PRI_BUF_SIZE];
};

static uint32_t pri_pasid(IopfmapPriState *s)
{
    return s->pasid & PASID_VALID ? s->pasid & PASID_MASK : PCI_NO_PASID;
}

static void pri_finish(IopfmapPriState *s, enum pri_error err)
{
    timer_del(&s->timeout);
    s->error = err;
    s->status = err == ERR_NONE ? ST_DONE : ST_ERROR;
}

/* Plain DMA through the IOMMU's address space of the requester ID. */
static void pri_run_raw(IopfmapPriState *s, bool to_ram)
{
    MemTxResult res;

    res = pci_dma_rw(&s->parent_obj, s->iova, s->buf + s->buf_off,
                     s->length, to_ram ? DMA_DIRECTION_FROM_DEVICE :
                     DMA_DIRECTION_TO_DEVICE,
                     MEMTXATTRS_UNSPECIFIED);
    if (res != MEMTX_OK) {
        s->dma_faults++;
        pri_finish(s, ERR_DMA);
        return;
    }
    pri_finish(s, ERR_NONE);
}

/* Sends one page request group for the pages that did not translate. */
static void pri_request(IopfmapPriState *s, const uint64_t *miss, int nmiss,
                        bool to_ram)
{
    uint16_t prgi = s->next_prgi;
    int i, ret;

    s->next_prgi = (s->next_prgi + 1) & PCI_PRI_PRGI_MASK;
    for (i = 0; i < nmiss; i++) {
        ret = pci_pri_request_page(&s->parent_obj, pri_pasid(s), false,
                                   false, miss[i], i == nmiss - 1, prgi,
                                   true, to_ram);
        if (ret) {
            /* A group without its last page is never answered. */
            pri_finish(s, ERR_REFUSED);
            return;
        }
        s->page_requests++;
    }
    s->groups++;
    s->last_prgi = prgi;
    s->wait_prgi = prgi;
    s->waiting = true;
    timer_mod(&s->timeout, qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) +
              PRI_RESPONSE_TIMEOUT_MS);
}

/*
 * One round: translate every page with ATS; if all translate, move the
 * data at once to the translated addresses; else ask for the missing
 * pages in one group. The translations are used within this round only
 * (the device keeps no ATC), so an invalidation needs nothing from it.
 */
static void pri_run(IopfmapPriState *s)
{
    bool to_ram = s->cmd & CMD_TO_RAM;
    uint64_t first = s->iova & ~(uint64_t)(PRI_PAGE_SIZE - 1);
    uint64_t end = s->iova + s->length;
    uint64_t miss[PRI_MAX_PAGES];
    hwaddr phys[PRI_MAX_PAGES];
    IOMMUAccessFlags want = to_ram ? IOMMU_RW : IOMMU_RO;
    uint32_t err_count;
    IOMMUTLBEntry entry;
    uint64_t page, done;
    int n = 0, nmiss = 0;
    ssize_t ret;

    for (page = first; page < end; page += PRI_PAGE_SIZE, n++) {
        ret = pci_ats_request_translation(&s->parent_obj, pri_pasid(s),
                                          false, false, page,
                                          PRI_PAGE_SIZE, !to_ram,
                                          &entry, 1, &err_count);
        if (ret < 0) {
            pri_finish(s, ERR_REFUSED);
            return;
        }
        s->translations++;
        if ((entry.perm & want) != want) {
            miss[nmiss++] = page;
            continue;
        }
        phys[n] = (entry.translated_addr & ~entry.addr_mask) |
              (page & entry.addr_mask);
    }

    if (nmiss) {
        if (s->rounds++ == PRI_MAX_ROUNDS) {
            pri_finish(s, ERR_NO_PROGRESS);
            return;
        }
        pri_request(s, miss, nmiss, to_ram);
        return;
    }

    for (done = 0, n = 0; done < s->length; n++) {
        uint64_t addr = s->iova + done;
        uint64_t chunk = MIN(s->length - done,
                             PRI_PAGE_SIZE - (addr % PRI_PAGE_SIZE));
        hwaddr pa = phys[n] + addr % PRI_PAGE_SIZE;

        if (address_space_rw(&address_space_memory, pa,
                             MEMTXATTRS_UNSPECIFIED,
                             s->buf + s->buf_off + done, chunk,
                             to_ram) != MEMTX_OK) {
            s->dma_faults++;
            pri_finish(s, ERR_DMA);
            return;
        }
        done += chunk;
    }
    pri_finish(s, ERR_NONE);
}

static void pri_bh(void *opaque)
{
    IopfmapPriState *s = opaque;

    if (s->status == ST_BUSY && !s->waiting) {
        pri_run(s);
    }
}

static void pri_timeout(void *opaque)
{
    IopfmapPriState *s = opaque;

    if (s->status == ST_BUSY && s->waiting) {
        s->waiting = false;
        pri_finish(s, ERR_TIMEOUT);
    }
}

/* Called by the IOMMU when software posts a page group response. */
static void pri_response(IOMMUPRINotifier *notifier, IOMMUPRIResponse *resp)
{
    IopfmapPriState *s = container_of(notifier, IopfmapPriState,
                                      pri_notifier);

    if (!s->waiting || resp->prgi != s->wait_prgi) {
        s->stray++;     /* a group answered twice, or never asked */
        return;
    }
    s->waiting = false;
    s->responses++;
    s->last_code = resp->response_code;
    timer_del(&s->timeout);
    if (s->status != ST_BUSY) {
        return;         /* aborted meanwhile */
    }
    switch (resp->response_code) {
    case IOMMU_PRI_RESP_SUCCESS:
        qemu_bh_schedule(s->bh);
        break;
    case IOMMU_PRI_RESP_INVALID_REQUEST:
        pri_finish(s, ERR_INVALID);
        break;
    default:
        /* PCIe: Response Failure stops the Page Request Interface. */
        if (s->parent_obj.exp.pri_cap) {
            uint8_t *st = s->parent_obj.config +
                      s->parent_obj.exp.pri_cap + PCI_PRI_STATUS;

            pci_set_word(st, pci_get_word(st) | PCI_PRI_STATUS_RF);
        }
        pri_finish(s, ERR_FAILURE);
        break;
    }
}

static void pri_set_notifier(IopfmapPriState *s)
{
    uint32_t pasid = pri_pasid(s);

    if (s->notifier_pasid == pasid) {
        return;
    }
    if (s->notifier_pasid != PCI_NO_PASID) {
        pci_pri_unregister_notifier(&s->parent_obj, s->notifier_pasid);
        s->notifier_pasid = PCI_NO_PASID;
    }
    if (pasid != PCI_NO_PASID &&
        !pci_pri_register_notifier(&s->parent_obj, pasid,
                                   &s->pri_notifier)) {
        s->notifier_pasid = pasid;
    }
}

static void pri_start(IopfmapPriState *s, uint32_t cmd)
{
    if (s->status == ST_BUSY) {
        return;
    }
    s->cmd = cmd;
    s->rounds = 0;
    s->waiting = false;
    s->status = ST_BUSY;
    if (!s->length || s->length > PRI_BUF_SIZE ||
        s->buf_off > PRI_BUF_SIZE - s->length ||
        s->iova + s->length < s->iova) {
        pri_finish(s, ERR_BAD_ARGS);
        return;
    }
    if (cmd & CMD_RAW) {
        pri_run_raw(s, cmd & CMD_TO_RAM);
        return;
    }
    pri_set_notifier(s);
    qemu_bh_schedule(s->bh);
}

static uint64_t pri_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    IopfmapPriState *s = opaque;

    if (addr >= PRI_BUF_OFFSET) {
        return ldn_le_p(s->buf + addr - PRI_BUF_OFFSET, size);
    }
    switch (addr) {
    case REG_MAGIC:             return PRI_MAGIC;
    case REG_VERSION:   return PRI_VERSION;
    case REG_PASID:             return s->pasid;
    case REG_BUF_SIZE:  return PRI_BUF_SIZE;
    case REG_IOVA:              return s->iova;
    case REG_LENGTH:    return s->length;
    case REG_BUF_OFF:   return s->buf_off;
    case REG_CMD:               return s->cmd;
    case REG_STATUS:    return s->status;
    case REG_ERROR:             return s->error;
    case REG_ROUNDS:    return s->rounds;
    case REG_PAGE_REQUESTS:     return s->page_requests;
    case REG_GROUPS:    return s->groups;
    case REG_RESPONSES: return s->responses;
    case REG_STRAY:             return s->stray;
    case REG_TRANSLATIONS:      return s->translations;
    case REG_LAST_PRGI: return s->last_prgi;
    case REG_LAST_CODE: return s->last_code;
    case REG_DMA_FAULTS:        return s->dma_faults;
    default:            return 0;
    }
}

static void pri_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    IopfmapPriState *s = opaque;

    if (addr >= PRI_BUF_OFFSET) {
        stn_le_p(s->buf + addr - PRI_BUF_OFFSET, size, val);
        return;
    }
    /* Registers other than CMD are frozen while a DMA runs. */
    if (s->status == ST_BUSY && addr != REG_CMD) {
        return;
    }
    switch (addr) {
    case REG_PASID:
        s->pasid = val & (PASID_VALID | PASID_MASK);
        break;
    case REG_IOVA:
        s->iova = size == 8 ? val :
              (s->iova & ~0xffffffffull) | (uint32_t)val;
        break;
    case REG_IOVA + 4:
        s->iova = (s->iova & 0xffffffffull) | (val << 32);
        break;
    case REG_LENGTH:
        s->length = val;
        break;
    case REG_BUF_OFF:
        s->buf_off = val;
        break;
    case REG_CMD:
        if (val & CMD_ABORT) {
            if (s->status == ST_BUSY) {
                s->waiting = false;
                pri_finish(s, ERR_ABORTED);
            }
        } else if (val & CMD_START) {
            pri_start(s, val);
        }
        break;
    }
}

static const MemoryRegionOps pri_mmio_ops = {
    .read = pri_mmio_read,
    .write = pri_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

static void pri_realize(PCIDevice *pdev, Error **errp)
{
    IopfmapPriState *s = IOPFMAP_PRI(pdev);

    if (pcie_endpoint_cap_init(pdev, 0x80) < 0) {
        error_setg(errp, "iopfmap-pri: no PCIe capability");
        return;
    }
    pcie_ats_init(pdev, 0x100, true);
    pcie_pasid_init(pdev, 0x110, PCI_EXT_CAP_PASID_MAX_WIDTH, false, false);
    pcie_pri_init(pdev, 0x120, 64, true);

    s->bh = qemu_bh_new_guarded(pri_bh, s,
                                &DEVICE(pdev)->mem_reentrancy_guard);
    timer_init_ms(&s->timeout, QEMU_CLOCK_VIRTUAL, pri_timeout, s);
    s->pri_notifier.notify = pri_response;
    s->notifier_pasid = PCI_NO_PASID;

    memory_region_init_io(&s->mmio, OBJECT(s), &pri_mmio_ops, s,
                          "iopfmap-pri-mmio", PRI_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
}

static void pri_exit(PCIDevice *pdev)
{
    IopfmapPriState *s = IOPFMAP_PRI(pdev);

    if (s->notifier_pasid != PCI_NO_PASID) {
        pci_pri_unregister_notifier(pdev, s->notifier_pasid);
    }
    timer_del(&s->timeout);
    qemu_bh_delete(s->bh);
}

static void pri_reset_hold(Object *obj, ResetType type)
{
    IopfmapPriState *s = IOPFMAP_PRI(obj);

    timer_del(&s->timeout);
    s->status = ST_IDLE;
    s->error = ERR_NONE;
    s->waiting = false;
    s->pasid = 0;
    s->iova = 0;
    s->length = 0;
    s->buf_off = 0;
    s->cmd = 0;
}

static void pri_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = pri_realize;
    k->exit = pri_exit;
    k->vendor_id = PCI_VENDOR_ID_QEMU;
    k->device_id = PRI_DEVICE_ID;
    k->revision = PRI_VERSION;
    k->class_id = PCI_CLASS_OTHERS;
    rc->phases.hold = pri_reset_hold;
    dc->desc = "iopfmap test device: ATS, PASID, PRI and a DMA engine";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo pri_types[] = {
    {
        .name = TYPE_IOPFMAP_PRI,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(IopfmapPriState),
        .class_init = pri_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(pri_types)
