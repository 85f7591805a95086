// SPDX-License-Identifier: GPL-2.0
/*
 * Real devices in an iopfmap context: DEVICE_ATTACH and DEVICE_DETACH of
 * QEMU's edu device behind the emulated VT-d, and DMA through the IOMMU
 * domains iopfmap gives it, with pages mapped on demand.
 *
 * edu cannot raise page requests. Its test driver, iopfmap_edu.ko
 * (kmod/testdev), makes it behave as if it could: before a DMA it asks
 * the domain for each page's translation and raises a software page
 * request through iopfmap for each miss, then starts edu's DMA engine,
 * whose accesses go through the emulated IOMMU. edu moves data only
 * between memory and its 4 KiB internal buffer, so a device write of
 * IOVA X is two DMAs (a staging page -> buffer -> X), and so is a device
 * read (X -> buffer -> a staging page the CPU then compares). Each DMA
 * takes about 100 ms: every test keeps to a few of them.
 *
 * Needs root, the iopfmap module and iopfmap_edu.ko in
 * /lib/modules/$(uname -r)/extra (loaded here unless /dev/iopfmap_edu is
 * there, and then unloaded at exit), and edu devices (tools/vm/run gives the guest two, each in its
 * own IOMMU group). Without them the tests SKIP and say why.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>

#include "iopfmap_edu_utils.h"
#include "iopfmap_fail_nth.h"

/*
 * The harness's TEST_F() wrapper assigns its local "child" between its
 * setjmp() and a possible longjmp(); whether GCC warns depends on register
 * allocation, not on anything the tests do.
 */
#pragma GCC diagnostic ignored "-Wclobbered"

/* Binds only through driver_override; owns the device's DMA (DMA API). */
#define EDU_KDMA	"iopfmap_edu_kdma"
#define PCI_DEVICES	"/sys/bus/pci/devices/"
#define MAX_EDUS	4

#define SZ_256M		(256ULL << 20)
#define RW		(IOPFMAP_MAP_READ | IOPFMAP_MAP_WRITE)
#define XFER		IOPFMAP_EDU_DMA_MAX	/* bytes per DMA: 4095 */

/* IOVAs, all below edu's 256 MiB. */
#define IOVA_TGT	0x100000ULL	/* the memory under test */
#define IOVA_STG	0x400000ULL	/* staging pages */
#define IOVA_BIG	0x1000000ULL	/* fault streams */
#define IOVA_NONE	0x8000000ULL	/* in no range */
#define TGT_PAGES	8
#define STG_PAGES	4
#define STG_SRC		0	/* staging page the device reads from */
#define STG_DST		2	/* staging page the device writes to */
#define BIG_PAGES	4096

static size_t psz;

enum mem_kind { KIND_ANON, KIND_MEMFD };

/*
 * fd: the context; efd: /dev/iopfmap_edu; edu: the edu devices found.
 * stg: STG_PAGES of anonymous memory; tgt: TGT_PAGES of the fixture's
 * kind (memfd: its file); big: BIG_PAGES of untouched anonymous memory.
 * dma_faults: page requests of the DMAs the helpers ran; stg_faults: those
 * of the last helper's staging DMA. kdma: a device a test bound to
 * EDU_KDMA, that the teardown binds back.
 */
struct dev_state {
	int fd;
	int efd;
	int nedus;
	char edu[MAX_EDUS][IOPFMAP_DEVICE_NAME_MAX];
	char *stg;
	char *tgt;
	int memfd;
	char *big;
	__u64 dma_faults;
	__u32 stg_faults;
	char kdma[IOPFMAP_DEVICE_NAME_MAX];
};

/* ---- helpers: sysfs, the edu driver and its devices ------------------ */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The driver bound to PCI device @dev into @drv ("" if none). */
static void pci_driver(const char *dev, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "%s/driver", dev);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = '\0';
	base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	n = strlen(base) < len ? strlen(base) : len - 1;
	memcpy(drv, base, n);
	drv[n] = '\0';
}

/* driver_override of @dev is set (it reads "(null)" when not). */
static bool pci_overridden(const char *dev)
{
	char path[PATH_MAX], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), PCI_DEVICES "%s/driver_override", dev);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] && strncmp(buf, "(null)", 6) && buf[0] != '\n';
}

/*
 * Binds @dev to @driver through driver_override, or with @driver NULL
 * clears the override and lets the matching driver (iopfmap_edu) bind:
 * 0 or -errno. The caller checks where it ended up.
 */
static int pci_rebind(const char *dev, const char *driver)
{
	char path[PATH_MAX], cur[64];
	int ret;

	snprintf(path, sizeof(path), PCI_DEVICES "%s/driver_override", dev);
	ret = write_str(path, driver ? driver : "\n");
	if (ret)
		return ret;
	pci_driver(dev, cur, sizeof(cur));
	if (cur[0]) {
		snprintf(path, sizeof(path), PCI_DEVICES "%s/driver/unbind",
			 dev);
		ret = write_str(path, dev);
		if (ret)
			return ret;
	}
	return write_str("/sys/bus/pci/drivers_probe", dev);
}

/* @len bytes at @off of @dev's PCI config space (sysfs): 0 or -errno. */
static int pci_config_read(const char *dev, unsigned int off, void *buf,
			   size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PCI_DEVICES "%s/config", dev);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

#define PCI_EXT_CAP_ID_PRI	0x13

/* Whether PCI device @dev has extended capability @id. */
static bool pci_has_ext_cap(const char *dev, unsigned int id)
{
	unsigned int off = 0x100, hops = 0;
	__u32 hdr;

	while (off >= 0x100 && hops++ < 64 &&
	       !pci_config_read(dev, off, &hdr, sizeof(hdr)) && hdr) {
		if ((hdr & 0xffff) == id)
			return true;
		off = hdr >> 20;
	}
	return false;
}

/*
 * Why edu's synthesized page request, whose iommu_report_device_fault()
 * returned @report_ret, cannot reach iopfmap on this kernel, or NULL: on
 * 7.x iopfmap's domains get their fault handler only for devices with
 * PRI, so the core answers edu's requests itself (EINVAL).
 */
static const char *no_fault_handler(const char *dev, int report_ret,
				    char *why, size_t len)
{
	struct utsname u;

	if (report_ret != -EINVAL || !iopfmap_kernel_at_least(7, 0) ||
	    pci_has_ext_cap(dev, PCI_EXT_CAP_ID_PRI) || uname(&u))
		return NULL;
	snprintf(why, len,
		 "kernel %s: iopfmap gives its fault handler only to the domains of devices with PRI enabled (VT-d refuses such a domain to any other), and edu has no PRI capability",
		 u.release);
	return why;
}

#define NO_PASID_ATTACH_HERE \
	"no PASID attach in this kernel (iommu_attach_device_pasid() with a handle: 6.10)"

/* Whether this machine is an x86 one (the IOMMU drivers differ). */
static bool on_x86(void)
{
	struct utsname u;

	return !uname(&u) && !strcmp(u.machine, "x86_64");
}

struct resv_region {
	__u64 start, last;
	char type[32];
};

/* The reserved regions of @dev's IOMMU group: how many, or -errno. */
static int group_reserved(const char *dev, struct resv_region *r, int max)
{
	char path[PATH_MAX];
	unsigned long long s, l;
	char type[32];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 PCI_DEVICES "%s/iommu_group/reserved_regions", dev);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (n < max && fscanf(f, "%llx %llx %31s", &s, &l, type) == 3) {
		r[n].start = s;
		r[n].last = l;
		snprintf(r[n].type, sizeof(r[n].type), "%s", type);
		n++;
	}
	fclose(f);
	return n;
}

/* ---- helpers: DMA ---------------------------------------------------- */

/*
 * @dev reads @len bytes at @iova: into its buffer, then out to the
 * staging page STG_DST, which the CPU copies to @out. Returns the page
 * requests of the DMA on @iova.
 */
static __u32 dev_read(struct __test_metadata *_metadata, struct dev_state *s,
		      const char *dev, __u64 iova, void *out, size_t len)
{
	char *dst = s->stg + STG_DST * psz;
	struct iopfmap_edu_dma d1, d2;

	memset(dst, 0xee, len);	/* stale staging data must not pass */
	d1 = edu_dma_done(_metadata, s->efd, dev, 0, iova, len, 0);
	d2 = edu_dma_done(_metadata, s->efd, dev, IOPFMAP_EDU_TO_RAM,
			  IOVA_STG + STG_DST * psz, len, 0);
	memcpy(out, dst, len);
	s->stg_faults = d2.out_faults;
	s->dma_faults += d1.out_faults + d2.out_faults;
	return d1.out_faults;
}

/*
 * @dev writes @len bytes of @data at @iova: the CPU puts them in the
 * staging page STG_SRC, the device moves them into its buffer and out to
 * @iova. Returns the page requests of the DMA on @iova.
 */
static __u32 dev_write(struct __test_metadata *_metadata, struct dev_state *s,
		       const char *dev, __u64 iova, const void *data,
		       size_t len)
{
	struct iopfmap_edu_dma d1, d2;

	memcpy(s->stg + STG_SRC * psz, data, len);
	d1 = edu_dma_done(_metadata, s->efd, dev, 0,
			  IOVA_STG + STG_SRC * psz, len, 0);
	d2 = edu_dma_done(_metadata, s->efd, dev, IOPFMAP_EDU_TO_RAM, iova,
			  len, 0);
	s->stg_faults = d1.out_faults;
	s->dma_faults += d1.out_faults + d2.out_faults;
	return d2.out_faults;
}

/*
 * @dev reads XFER bytes at @off in the target memory, and must get what
 * the CPU has there (@what names the check). Returns the page requests of
 * the DMA on the target.
 */
static __u32 dev_read_tgt(struct __test_metadata *_metadata,
			  struct dev_state *s, const char *dev, size_t off,
			  const char *what)
{
	char got[XFER];
	__u32 f = dev_read(_metadata, s, dev, IOVA_TGT + off, got, XFER);

	same(_metadata, what, got, s->tgt + off, XFER);
	return f;
}

/*
 * @dev writes XFER bytes of pattern @seed at @off in the target memory,
 * and the CPU must read them there (@what names the check). Returns the
 * page requests of the DMA on the target.
 */
static __u32 dev_write_tgt(struct __test_metadata *_metadata,
			   struct dev_state *s, const char *dev, size_t off,
			   unsigned int seed, const char *what)
{
	char want[XFER];
	__u32 f;

	iopfmap_fill(want, XFER, seed);
	f = dev_write(_metadata, s, dev, IOVA_TGT + off, want, XFER);
	same(_metadata, what, s->tgt + off, want, XFER);
	return f;
}

/* ---- helpers: the context -------------------------------------------- */

static struct iopfmap_device_attach attach(struct __test_metadata *_metadata,
					   int fd, const char *dev,
					   __u32 flags)
{
	struct iopfmap_device_attach a;
	int ret = _test_attach(fd, dev, flags, &a);

	ASSERT_EQ(0, ret) TH_LOG("ATTACH %s flags %#x: %s", dev, flags,
				 strerror(-ret));
	ASSERT_NE(0U, a.out_dev_id);
	return a;
}

static void map(struct __test_metadata *_metadata, int fd, __u64 iova,
		void *va, size_t len, __u32 flags)
{
	int ret = _test_map(fd, iova, va, len, flags, 0);

	ASSERT_EQ(0, ret) TH_LOG("MAP %#llx -> %p len %#zx flags %#x: %s",
				 (unsigned long long)iova, va, len, flags,
				 strerror(-ret));
}

/* The staging range and the target range, map-on-fault (or @extra). */
static void map_both(struct __test_metadata *_metadata, struct dev_state *s,
		     __u32 extra)
{
	map(_metadata, s->fd, IOVA_STG, s->stg, STG_PAGES * psz, RW | extra);
	map(_metadata, s->fd, IOVA_TGT, s->tgt, TGT_PAGES * psz, RW | extra);
}

/* Every page request was answered exactly one way. */
static void expect_answered(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_stats st = iopfmap_get_stats(_metadata, fd, ~0ULL);

	EXPECT_EQ(st.out_faults, st.out_faults_handled +
		  st.out_faults_invalid + st.out_faults_forwarded)
		TH_LOG("faults %llu: handled %llu invalid %llu forwarded %llu",
		       (unsigned long long)st.out_faults,
		       (unsigned long long)st.out_faults_handled,
		       (unsigned long long)st.out_faults_invalid,
		       (unsigned long long)st.out_faults_forwarded);
}

static __u32 iopt_type(struct __test_metadata *_metadata, int fd)
{
	struct iopfmap_info info = { .size = sizeof(info) };

	test_cmd_get_info(fd, &info);
	return info.out_iopt_type;
}

/* ---- helpers: fault streams ------------------------------------------ */

/* An IOPFMAP_EDU_FAULT over a big span, run by its own thread. */
struct stream {
	pthread_t thread;
	int efd;
	struct iopfmap_edu_fault f;
	int ret;
	int done;
};

static void *stream_run(void *arg)
{
	struct stream *st = arg;

	/* No harness macros here: they longjmp on the main thread's stack. */
	st->ret = _test_ioctl(st->efd, IOPFMAP_EDU_FAULT, &st->f);
	__atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Starts read page requests for every page of [iova, iova + len) on
 * @dev, and returns once the context @fd counted 32 of them (or the
 * stream ended first): what follows then races a running stream.
 */
static void stream_start(struct __test_metadata *_metadata, struct stream *st,
			 int efd, const char *dev, int fd, __u64 iova,
			 __u64 len)
{
	const struct timespec tick = { .tv_nsec = 1000 * 1000 };
	__u64 base = iopfmap_get_stats(_metadata, fd, ~0ULL).out_faults;
	int i, ret;

	memset(st, 0, sizeof(*st));
	st->efd = efd;
	snprintf(st->f.name, sizeof(st->f.name), "%s", dev);
	st->f.iova = iova;
	st->f.length = len;
	ret = pthread_create(&st->thread, NULL, stream_run, st);
	ASSERT_EQ(0, ret) TH_LOG("pthread_create: %s", strerror(ret));
	for (i = 0; i < 10000; i++) {
		if (__atomic_load_n(&st->done, __ATOMIC_ACQUIRE) ||
		    iopfmap_get_stats(_metadata, fd, ~0ULL).out_faults >=
		    base + 32)
			return;
		nanosleep(&tick, NULL);
	}
	ASSERT_TRUE(false) TH_LOG("the fault stream raised no page request in 10 s");
}

/* Waits for the stream's end, which must come within @secs. */
static void stream_join(struct __test_metadata *_metadata, struct stream *st,
			int secs)
{
	struct timespec deadline;
	int ret;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += secs;
	ret = pthread_timedjoin_np(st->thread, NULL, &deadline);
	ASSERT_EQ(0, ret) TH_LOG("the fault stream has not ended %d s later: %s",
				 secs, strerror(ret));
	EXPECT_EQ(0, st->ret) TH_LOG("EDU_FAULT: %s", strerror(-st->ret));
}

/* ---- the fixtures ----------------------------------------------------- */

/*
 * Brings every edu device back to iopfmap_edu: a test killed by its
 * timeout never ran the teardown that would have.
 */
static void edu_rebind_all(struct __test_metadata *_metadata,
			   struct dev_state *s)
{
	char drv[64];
	int i, ret;

	for (i = 0; i < s->nedus; i++) {
		pci_driver(s->edu[i], drv, sizeof(drv));
		if (!strcmp(drv, EDU_DRIVER) && !pci_overridden(s->edu[i]))
			continue;
		TH_LOG("%s was bound to \"%s\": binding it to " EDU_DRIVER,
		       s->edu[i], drv);
		ret = pci_rebind(s->edu[i], NULL);
		ASSERT_EQ(0, ret) TH_LOG("rebinding %s: %s", s->edu[i],
					 strerror(-ret));
		pci_driver(s->edu[i], drv, sizeof(drv));
		ASSERT_STREQ(EDU_DRIVER, drv);
	}
}

static void dev_setup(struct __test_metadata *_metadata, struct dev_state *s,
		      enum mem_kind kind)
{
	size_t tlen;

	psz = sysconf(_SC_PAGESIZE);
	tlen = TGT_PAGES * psz;
	s->fd = -1;
	s->efd = -1;
	s->memfd = -1;

	OPEN_CONTEXT(&s->fd);
	s->nedus = edu_require(_metadata, s->fd, s->edu, MAX_EDUS);
	if (!s->nedus)
		return;
	edu_rebind_all(_metadata, s);
	s->efd = open(EDU_NODE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, s->efd) TH_LOG("open " EDU_NODE ": %s", strerror(errno));

	s->stg = mmap(NULL, STG_PAGES * psz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s->stg);
	if (kind == KIND_MEMFD) {
		s->memfd = memfd_create("iopfmap_device", MFD_CLOEXEC);
		ASSERT_LE(0, s->memfd) TH_LOG("memfd_create: %s",
					      strerror(errno));
		ASSERT_EQ(0, ftruncate(s->memfd, tlen));
		s->tgt = mmap(NULL, tlen, PROT_READ | PROT_WRITE, MAP_SHARED,
			      s->memfd, 0);
	} else {
		s->tgt = mmap(NULL, tlen, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	ASSERT_NE(MAP_FAILED, s->tgt);
	s->big = mmap(NULL, BIG_PAGES * psz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, s->big);
	/* Base pages only, so that counters count what the tests expect. */
	madvise(s->stg, STG_PAGES * psz, MADV_NOHUGEPAGE);
	madvise(s->tgt, tlen, MADV_NOHUGEPAGE);
	madvise(s->big, BIG_PAGES * psz, MADV_NOHUGEPAGE);
}

static void dev_teardown(struct __test_metadata *_metadata,
			 struct dev_state *s)
{
	char drv[64];
	int ret;

	if (s->fd >= 0) {
		expect_answered(_metadata, s->fd);
		close(s->fd);
	}
	if (s->efd >= 0)
		close(s->efd);
	if (s->stg && s->stg != MAP_FAILED)
		munmap(s->stg, STG_PAGES * psz);
	if (s->tgt && s->tgt != MAP_FAILED)
		munmap(s->tgt, TGT_PAGES * psz);
	if (s->big && s->big != MAP_FAILED)
		munmap(s->big, BIG_PAGES * psz);
	if (s->memfd >= 0)
		close(s->memfd);
	if (s->kdma[0]) {
		ret = pci_rebind(s->kdma, NULL);
		EXPECT_EQ(0, ret) TH_LOG("binding %s back: %s", s->kdma,
					 strerror(-ret));
		pci_driver(s->kdma, drv, sizeof(drv));
		EXPECT_STREQ(EDU_DRIVER, drv);
	}
}

/* Control plane and single-kind data tests: anonymous target memory. */
FIXTURE(device)
{
	struct dev_state s;
};

FIXTURE_SETUP(device)
{
	dev_setup(_metadata, &self->s, KIND_ANON);
}

FIXTURE_TEARDOWN(device)
{
	dev_teardown(_metadata, &self->s);
}

/* The on-demand data path, on each kind of target memory. */
FIXTURE(device_dma)
{
	struct dev_state s;
};

FIXTURE_VARIANT(device_dma)
{
	enum mem_kind kind;
};

FIXTURE_VARIANT_ADD(device_dma, anon) { .kind = KIND_ANON };
FIXTURE_VARIANT_ADD(device_dma, memfd) { .kind = KIND_MEMFD };

FIXTURE_SETUP(device_dma)
{
	dev_setup(_metadata, &self->s, variant->kind);
}

FIXTURE_TEARDOWN(device_dma)
{
	dev_teardown(_metadata, &self->s);
}

/* ---- attach ------------------------------------------------------------ */

TEST_F(device, attach)
{
	struct dev_state *s = &self->s;
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_device_attach a;
	const char *dev = s->edu[0];

	/* No device yet: no IO page table, nothing to map into. */
	test_cmd_get_info(s->fd, &info);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, info.out_iopt_type);
	EXPECT_EQ(-ENODEV, _test_map(s->fd, IOVA_TGT, s->tgt, psz, RW, 0));

	a = attach(_metadata, s->fd, dev, 0);
	EXPECT_STREQ(dev, a.name);
	EXPECT_EQ(0U, a.out_flags & IOPFMAP_DEVICE_HW_IOPF)
		TH_LOG("edu has no PRI: out_flags %#x", a.out_flags);
	EXPECT_EQ(0U, a.out_flags & ~(__u32)(IOPFMAP_DEVICE_HW_IOPF |
					     IOPFMAP_DEVICE_MSI_ISOLATED));
	EXPECT_EQ((__u64)psz, a.out_pgsize_bitmap & psz)
		TH_LOG("pgsize_bitmap %#llx", (unsigned long long)a.out_pgsize_bitmap);
	EXPECT_EQ(0ULL, a.out_pgsize_bitmap & (psz - 1));
	/* Everything edu can address. */
	EXPECT_EQ(0ULL, a.out_iova_start);
	EXPECT_LE(SZ_256M - 1, a.out_iova_last);

	/* The context's IO page table is now that domain. */
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	test_cmd_get_info(s->fd, &info);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_DOMAIN, info.out_iopt_type);
	EXPECT_EQ(a.out_iova_start, info.out_iova_start);
	EXPECT_EQ(a.out_iova_last, info.out_iova_last);
	EXPECT_EQ((__u64)psz, info.out_pgsize_bitmap & psz);
	EXPECT_EQ(0ULL, info.out_pgsize_bitmap & ~a.out_pgsize_bitmap)
		TH_LOG("context %#llx, domain %#llx",
		       (unsigned long long)info.out_pgsize_bitmap,
		       (unsigned long long)a.out_pgsize_bitmap);

	EXPECT_EQ(0, _test_map(s->fd, IOVA_TGT, s->tgt, psz, RW, 0));
	EXPECT_EQ(0, _test_detach(s->fd, a.out_dev_id));
}

/*
 * The features follow the kernel's fault API, and a device without PRI
 * is refused when I/O page faults are required, without side effects.
 */
TEST_F(device, features_require_iopf)
{
	struct dev_state *s = &self->s;
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_device_attach a;
	const char *dev = s->edu[0];
	int ret;

	test_cmd_get_info(s->fd, &info);
	EXPECT_EQ(IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_DEVICE,
		  info.out_features &
		  (IOPFMAP_FEATURE_MAP | IOPFMAP_FEATURE_DEVICE));
	/* The core's faults reach iopfmap on every kernel. */
	EXPECT_EQ(IOPFMAP_FEATURE_CORE_FAULTS,
		  info.out_features & IOPFMAP_FEATURE_CORE_FAULTS);
	/*
	 * Whether the IOMMU drivers deliver requests by requester ID: before
	 * 7.0 x86's do not (VT-d answers them INVALID itself, AMD-Vi reports
	 * PASID-tagged ones only).
	 */
	if (!on_x86() || iopfmap_kernel_at_least(7, 0)) {
		EXPECT_EQ(IOPFMAP_FEATURE_HW_IOPF,
			  info.out_features & IOPFMAP_FEATURE_HW_IOPF)
			TH_LOG("features %#llx",
			       (unsigned long long)info.out_features);
	} else {
		EXPECT_EQ(0ULL, info.out_features & IOPFMAP_FEATURE_HW_IOPF)
			TH_LOG("x86 before 7.0 delivers no page request without a PASID: features %#llx",
			       (unsigned long long)info.out_features);
	}

	ret = _test_attach(s->fd, dev, IOPFMAP_ATTACH_REQUIRE_IOPF, NULL);
	EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("edu has no PRI: %s",
					   strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));

	/* The refused attach left the group free. */
	a = attach(_metadata, s->fd, dev, 0);
	EXPECT_EQ(0U, a.out_flags & IOPFMAP_DEVICE_HW_IOPF);
	EXPECT_EQ((__u32)IOPFMAP_IOPT_DOMAIN, iopt_type(_metadata, s->fd));
}

TEST_F(device, attach_errors)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a = { .size = sizeof(a) };
	int ret;

	ret = _test_attach(s->fd, "0000:ff:1f.7", 0, NULL);
	EXPECT_EQ(-ENODEV, ret) TH_LOG("no such device: %s", strerror(-ret));
	/* A name that fills the field without a NUL. */
	memset(a.name, '0', sizeof(a.name));
	ret = _test_cmd_device_attach(s->fd, &a);
	EXPECT_EQ(-EINVAL, ret) TH_LOG("unterminated name: %s", strerror(-ret));

	/* No device has ever been attached: no id is known. */
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, 0));
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, 1));
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, ~0U));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));

	a = attach(_metadata, s->fd, s->edu[0], 0);
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, a.out_dev_id + 1));
	EXPECT_EQ(0, _test_detach(s->fd, a.out_dev_id));
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, a.out_dev_id));
}

/*
 * DEVICE_ATTACH with its struct in read-only memory: EFAULT, and nothing
 * attached: the context has no IO page table, another context can take
 * the device, and this one can still become a simulated device's.
 */
TEST_F(device, attach_efault_changes_nothing)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a = { .size = sizeof(a) };
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	struct iopfmap_info info = { .size = sizeof(info) };
	void *ro;
	int fd2, ret;

	snprintf(a.name, sizeof(a.name), "%s", s->edu[0]);
	ro = mmap(NULL, psz, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memcpy(ro, &a, sizeof(a));
	ASSERT_EQ(0, mprotect(ro, psz, PROT_READ));
	ret = ioctl(s->fd, IOPFMAP_DEVICE_ATTACH, ro) ? -errno : 0;
	munmap(ro, psz);
	EXPECT_EQ(-EFAULT, ret) TH_LOG("ATTACH from read-only memory: %s",
				       strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));

	OPEN_CONTEXT(&fd2);
	a = attach(_metadata, fd2, s->edu[0], 0);
	EXPECT_EQ(0, _test_detach(fd2, a.out_dev_id));
	close(fd2);

	test_cmd_get_info(s->fd, &info);
	if (info.out_features & IOPFMAP_FEATURE_SIM)
		EXPECT_EQ(0, _test_cmd_sim_create(s->fd, &sc));
}

/*
 * A domain's aperture (48 bits on VT-d) holds ranges far larger than the
 * module can track: MAP refuses a range longer than IOPFMAP_MAP_LENGTH_MAX
 * with EINVAL, and nothing tries to allocate its bitmaps.
 */
TEST_F(device, map_length_bound)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a;
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = RW,
		.iova = 0,
		.vaddr = 1ULL << 32,
	};
	const __u64 lens[] = { IOPFMAP_MAP_LENGTH_MAX + psz, 64ULL << 40 };
	unsigned int i;

	a = attach(_metadata, s->fd, s->edu[0], 0);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		if (a.out_iova_last < lens[i] - 1)
			continue;
		m.length = lens[i];
		EXPECT_EQ(-EINVAL, _test_ioctl(s->fd, IOPFMAP_MAP, &m))
			TH_LOG("MAP of %llu bytes",
			       (unsigned long long)lens[i]);
	}
	EXPECT_EQ(0, _test_detach(s->fd, a.out_dev_id));
}

/* PCI_COMMAND of PCI device @dev, from sysfs, or -errno. */
static int pci_command(const char *dev)
{
	__u16 cmd = 0;
	int ret = pci_config_read(dev, 4, &cmd, sizeof(cmd));

	return ret ? ret : cmd;
}

#define PCI_COMMAND_MASTER	0x4

/*
 * DETACH stops the device's DMA for good: bus mastering is off once it
 * returns, whatever the device was doing, so nothing it still sends can
 * reach memory through the group's default domain. Its driver turns bus
 * mastering on for the next DMA (the edu driver does, per transfer).
 */
TEST_F(device, detach_turns_bus_mastering_off)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	int cmd;

	a = attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	dev_write_tgt(_metadata, s, dev, 0, 'M', "DMA before DETACH");
	cmd = pci_command(dev);
	ASSERT_LE(0, cmd) TH_LOG("config of %s: %s", dev, strerror(-cmd));
	EXPECT_TRUE(!!(cmd & PCI_COMMAND_MASTER)) TH_LOG("command %#x", cmd);

	EXPECT_EQ(0, _test_detach(s->fd, a.out_dev_id));
	cmd = pci_command(dev);
	ASSERT_LE(0, cmd);
	EXPECT_FALSE(!!(cmd & PCI_COMMAND_MASTER))
		TH_LOG("bus mastering still on after DETACH: command %#x", cmd);

	/* Closing the context with the device attached does the same. */
	attach(_metadata, s->fd, dev, 0);
	dev_write_tgt(_metadata, s, dev, psz, 'N', "DMA after a new ATTACH");
	EXPECT_TRUE(!!(pci_command(dev) & PCI_COMMAND_MASTER));
	close(s->fd);
	s->fd = -1;
	EXPECT_FALSE(!!(pci_command(dev) & PCI_COMMAND_MASTER));
}

#define UNSAFE_PARAM	"/sys/module/iopfmap/parameters/allow_unsafe_interrupts"

/*
 * A device whose MSIs the IOMMU does not isolate is refused (EPERM),
 * unless allow_unsafe_interrupts is set; ATTACH says which it is. QEMU's
 * virtio-iommu remaps no interrupts, the VT-d and AMD-Vi models do when
 * the kernel enables interrupt remapping.
 */
TEST_F(device, attach_needs_isolated_msis)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	struct iommu_unit iommu;
	bool isolated;
	int fd2, ret;

	ASSERT_EQ(0, write_str(UNSAFE_PARAM, "1"));
	a = attach(_metadata, s->fd, dev, 0);
	isolated = a.out_flags & IOPFMAP_DEVICE_MSI_ISOLATED;
	ASSERT_EQ(0, _test_detach(s->fd, a.out_dev_id));
	ASSERT_EQ(0, iommu_of_device(dev, &iommu));
	TH_LOG("%s behind %s: MSIs %sisolated", dev,
	       iommu_kind_name(iommu.kind), isolated ? "" : "not ");
	if (iommu.kind == IOMMU_VIRTIO)
		EXPECT_FALSE(isolated);

	/* A new context: a refused ATTACH leaves it without a table. */
	OPEN_CONTEXT(&fd2);
	ASSERT_EQ(0, write_str(UNSAFE_PARAM, "0"));
	ret = _test_attach(fd2, dev, 0, &a);
	if (isolated) {
		EXPECT_EQ(0, ret) TH_LOG("ATTACH: %s", strerror(-ret));
		EXPECT_TRUE(!!(a.out_flags & IOPFMAP_DEVICE_MSI_ISOLATED));
		if (!ret)
			EXPECT_EQ(0, _test_detach(fd2, a.out_dev_id));
	} else {
		EXPECT_EQ(-EPERM, ret) TH_LOG("ATTACH without isolated MSIs: %s",
					      ret ? strerror(-ret) : "worked");
		EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, fd2));
	}
	EXPECT_EQ(0, write_str(UNSAFE_PARAM, "1"));
	close(fd2);
}

/*
 * A device removed while attached (sysfs remove, as hot unplug) is
 * detached first: its id names nothing afterwards, the context goes on,
 * and the device, found again by a rescan, attaches and runs DMA.
 */
TEST_F(device, removed_while_attached)
{
	struct dev_state *s = &self->s;
	char dev[IOPFMAP_DEVICE_NAME_MAX], path[PATH_MAX];
	struct iopfmap_device_attach a;
	int i;

	snprintf(dev, sizeof(dev), "%s", s->edu[s->nedus - 1]);
	a = attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	dev_write_tgt(_metadata, s, dev, 0, 'R', "DMA before the removal");

	snprintf(path, sizeof(path), PCI_DEVICES "%s/remove", dev);
	ASSERT_EQ(0, write_str(path, "1"));
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, a.out_dev_id));
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));

	ASSERT_EQ(0, write_str("/sys/bus/pci/rescan", "1"));
	snprintf(path, sizeof(path), PCI_DEVICES "%s/driver", dev);
	for (i = 0; i < 100 && access(path, F_OK); i++)
		iopfmap_sleep_ms(50);
	ASSERT_EQ(0, access(path, F_OK)) TH_LOG("%s did not come back", dev);
	attach(_metadata, s->fd, dev, 0);
	dev_write_tgt(_metadata, s, dev, psz, 'S', "DMA after the rescan");
}

/* One owner at a time: this context, then another one once it lets go. */
TEST_F(device, attach_busy)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	char want[XFER], got[XFER];
	int fd2, ret;

	OPEN_CONTEXT(&fd2);
	a = attach(_metadata, s->fd, dev, 0);
	ret = _test_attach(s->fd, dev, 0, NULL);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("same device twice: %s", strerror(-ret));
	ret = _test_attach(fd2, dev, 0, NULL);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("owned by another context: %s",
				      strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, fd2));

	ASSERT_EQ(0, _test_detach(s->fd, a.out_dev_id));
	a = attach(_metadata, fd2, dev, 0);

	/* Its DMA now translates through the second context's ranges. */
	map(_metadata, fd2, IOVA_STG, s->stg, STG_PAGES * psz, RW);
	iopfmap_fill(want, sizeof(want), 'b');
	memcpy(s->stg + STG_SRC * psz, want, sizeof(want));
	dev_read(_metadata, s, dev, IOVA_STG + STG_SRC * psz, got,
		 sizeof(got));
	same(_metadata, "DMA in the second context", got, want, sizeof(want));
	expect_answered(_metadata, fd2);
	close(fd2);
}

TEST_F(device, attach_sim_context)
{
	struct dev_state *s = &self->s;
	struct iopfmap_sim_create sc = { .size = sizeof(sc) };
	int ret;

	if (!iopfmap_sim_available(s->fd))
		SKIP(return, "no simulated device: load iopfmap with sim=1");
	test_cmd(sim_create, s->fd, &sc);
	ret = _test_attach(s->fd, s->edu[0], 0, NULL);
	EXPECT_EQ(-EEXIST, ret) TH_LOG("context with a simulated device: %s",
				       strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_SIM, iopt_type(_metadata, s->fd));
}

/* A kernel driver that uses the DMA API owns the group. */
TEST_F(device, attach_kernel_driver)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	char drv[64];
	int ret;

	if (access("/sys/bus/pci/drivers/" EDU_KDMA, F_OK))
		SKIP(return, "no " EDU_KDMA " driver: iopfmap_edu.ko is too old");
	/* From here on the teardown binds it back, whatever happens. */
	snprintf(s->kdma, sizeof(s->kdma), "%s", dev);
	ret = pci_rebind(dev, EDU_KDMA);
	ASSERT_EQ(0, ret) TH_LOG("binding %s to " EDU_KDMA ": %s", dev,
				 strerror(-ret));
	pci_driver(dev, drv, sizeof(drv));
	ASSERT_STREQ(EDU_KDMA, drv);

	ret = _test_attach(s->fd, dev, 0, NULL);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("%s bound to " EDU_KDMA ": %s", dev,
				      strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));
}

/* The group's MSI window is a hole in the IOVA space, exactly. */
TEST_F(device, reserved_msi_window)
{
	struct dev_state *s = &self->s;
	struct resv_region r[16];
	struct iopfmap_device_attach a;
	__u64 start = 0, last = 0;
	bool above_free = true;
	int i, n;

	n = group_reserved(s->edu[0], r, 16);
	ASSERT_LE(0, n) TH_LOG("reserved_regions of %s: %s", s->edu[0],
			       strerror(-n));
	for (i = 0; i < n; i++)
		if (!strcmp(r[i].type, "msi")) {
			start = r[i].start;
			last = r[i].last;
		}
	if (!last)
		SKIP(return, "%s's IOMMU group lists no msi region",
		     s->edu[0]);
	for (i = 0; i < n; i++)
		if (r[i].start <= last + 1 && last + psz <= r[i].last)
			above_free = false;

	a = attach(_metadata, s->fd, s->edu[0], 0);
	ASSERT_LE(last, a.out_iova_last) TH_LOG("MSI window outside the aperture");
	EXPECT_EQ(-EADDRINUSE, _test_map(s->fd, start, s->tgt, psz, RW, 0));
	EXPECT_EQ(-EADDRINUSE, _test_map(s->fd, last + 1 - psz, s->tgt, psz,
					 RW, 0));
	/* Spans that only cut into it, at either end. */
	EXPECT_EQ(-EADDRINUSE, _test_map(s->fd, start - psz, s->tgt, 2 * psz,
					 RW, 0));
	EXPECT_EQ(-EADDRINUSE, _test_map(s->fd, last + 1 - psz, s->tgt,
					 2 * psz, RW, 0));
	/* One that covers it whole (s->big is larger than the window). */
	ASSERT_LE(last + 1 - start + 2 * psz, BIG_PAGES * psz);
	EXPECT_EQ(-EADDRINUSE, _test_map(s->fd, start - psz, s->big,
					 last + 1 - start + 2 * psz, RW, 0));

	EXPECT_EQ(0, _test_map(s->fd, start - psz, s->tgt, psz, RW, 0))
		TH_LOG("the page below the window %#llx",
		       (unsigned long long)start);
	if (above_free) {
		EXPECT_EQ(0, _test_map(s->fd, last + 1, s->tgt, psz, RW, 0))
			TH_LOG("the page above the window %#llx",
			       (unsigned long long)last);
	}
}

/* ---- the data path ---------------------------------------------------- */

/*
 * The device reads what the CPU wrote and the CPU reads what the device
 * wrote; pages enter the domain on the first DMA only.
 */
TEST_F(device_dma, fault_in_both_directions)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	size_t half = psz / 2;
	struct iopfmap_stats st0, st1;
	__u32 f;

	attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);

	/* Device reads across pages 0 and 1, which the CPU filled. */
	iopfmap_fill(s->tgt, 2 * psz, 'A');
	f = dev_read_tgt(_metadata, s, dev, half, "device read of CPU data");
	EXPECT_EQ(2U, f) TH_LOG("one page request per page");
	/* Mapped now: no request, and the CPU's new data is seen. */
	iopfmap_fill(s->tgt, 2 * psz, 'B');
	f = dev_read_tgt(_metadata, s, dev, half, "device read again");
	EXPECT_EQ(0U, f);
	EXPECT_EQ(0U, s->stg_faults);

	/* Device writes across pages 2 and 3, which the CPU never touched. */
	f = dev_write_tgt(_metadata, s, dev, 2 * psz + half, 'C',
			  "CPU read of device data");
	EXPECT_EQ(2U, f) TH_LOG("one page request per page");
	all_zero(_metadata, "bytes before the device write", s->tgt + 2 * psz,
		 half);
	f = dev_write_tgt(_metadata, s, dev, 2 * psz + half, 'D',
			  "CPU read of device data again");
	EXPECT_EQ(0U, f);
	EXPECT_EQ(0U, s->stg_faults);

	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + s->dma_faults, st1.out_faults);
	EXPECT_EQ(st0.out_faults_handled + s->dma_faults,
		  st1.out_faults_handled);
	EXPECT_EQ(st0.out_faults_invalid, st1.out_faults_invalid);
	EXPECT_LE(st0.out_pages_mapped + 6, st1.out_pages_mapped);
	EXPECT_EQ(0ULL, st1.out_pages_pinned);
	/* Pages 0-3 and the two staging pages, as the domain has them. */
	EXPECT_EQ(4, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	EXPECT_EQ(2, mapped_in(_metadata, s->fd, IOVA_STG, STG_PAGES * psz));
}

/* PIN ranges on a real domain: everything mapped up front, no fault. */
TEST_F(device, pin_range)
{
	struct dev_state *s = &self->s;
	struct iopfmap_edu_fault req = { 0 };
	const char *dev = s->edu[0];
	size_t half = psz / 2;
	struct iopfmap_stats st0, st1;
	__u32 f;

	attach(_metadata, s->fd, dev, 0);
	iopfmap_fill(s->tgt, TGT_PAGES * psz, 'P');
	map_both(_metadata, s, IOPFMAP_MAP_PIN);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ((__u64)(STG_PAGES + TGT_PAGES), st0.out_pages_pinned);
	EXPECT_EQ(TGT_PAGES, mapped_in(_metadata, s->fd, IOVA_TGT,
				       TGT_PAGES * psz));
	EXPECT_EQ(STG_PAGES, mapped_in(_metadata, s->fd, IOVA_STG,
				       STG_PAGES * psz));

	f = dev_read_tgt(_metadata, s, dev, half,
			 "device read of pinned pages");
	EXPECT_EQ(0U, f);
	EXPECT_EQ(0U, s->stg_faults);
	f = dev_write_tgt(_metadata, s, dev, 4 * psz + half, 'Q',
			  "CPU read of device data in pinned pages");
	EXPECT_EQ(0U, f);
	EXPECT_EQ(0U, s->stg_faults);

	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults, st1.out_faults);
	EXPECT_EQ(st0.out_pages_pinned, st1.out_pages_pinned);

	/* A page request on a pinned range means a confused device. */
	req.iova = IOVA_TGT;
	req.length = psz;
	strcpy(req.name, dev);
	ASSERT_EQ(0, _test_ioctl(s->efd, IOPFMAP_EDU_FAULT, &req));
	EXPECT_EQ((__u32)IOPFMAP_EDU_INVALID, req.out_status)
		TH_LOG("page request on a PIN range: %s",
		       edu_status_name(req.out_status));
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 1, st1.out_faults);
	EXPECT_EQ(st0.out_faults_invalid + 1, st1.out_faults_invalid);
	EXPECT_EQ(TGT_PAGES, mapped_in(_metadata, s->fd, IOVA_TGT,
				       TGT_PAGES * psz));
}

/*
 * A page the CPU maps read-only: a device write gets INVALID and no DMA
 * runs; a device read works.
 */
TEST_F(device, write_to_readonly_page)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	size_t half = psz / 2;
	char *before = malloc(TGT_PAGES * psz);
	char got[XFER];
	struct iopfmap_stats st0, st1;
	struct iopfmap_edu_dma d;

	ASSERT_NE(NULL, before);
	attach(_metadata, s->fd, dev, 0);
	iopfmap_fill(s->tgt, TGT_PAGES * psz, 'R');
	memcpy(before, s->tgt, TGT_PAGES * psz);
	ASSERT_EQ(0, mprotect(s->tgt, TGT_PAGES * psz, PROT_READ));
	map_both(_metadata, s, 0);

	/* edu's buffer gets other data, then the device tries to write it. */
	iopfmap_fill(s->stg + STG_SRC * psz, XFER, 'W');
	edu_dma_done(_metadata, s->efd, dev, 0, IOVA_STG + STG_SRC * psz,
		     XFER, 0);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	d = edu_dma(_metadata, s->efd, dev, IOPFMAP_EDU_TO_RAM,
		    IOVA_TGT + half, XFER, 0);
	EXPECT_EQ((__u32)IOPFMAP_EDU_INVALID, d.out_status)
		TH_LOG("device write to a read-only page: %s",
		       edu_status_name(d.out_status));
	EXPECT_LE(1U, d.out_faults);
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_LE(st0.out_faults_invalid + 1, st1.out_faults_invalid);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	same(_metadata, "read-only memory after the device write", s->tgt,
	     before, TGT_PAGES * psz);

	/* The positive control: reading the same pages is allowed. */
	dev_read(_metadata, s, dev, IOVA_TGT + half, got, XFER);
	same(_metadata, "device read of read-only memory", got, before + half,
	     XFER);
	EXPECT_EQ(2, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	free(before);
}

/* ---- several devices ---------------------------------------------------- */

TEST_F(device, two_devices)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a0, a1;
	size_t half = psz / 2;

	if (s->nedus < 2)
		SKIP(return, "one edu device: QEMU needs -device edu twice");
	a0 = attach(_metadata, s->fd, s->edu[0], 0);
	a1 = attach(_metadata, s->fd, s->edu[1], 0);
	EXPECT_NE(a0.out_dev_id, a1.out_dev_id);
	map_both(_metadata, s, 0);

	dev_write_tgt(_metadata, s, s->edu[0], half, 'x',
		      "CPU read of the first device's data");
	dev_write_tgt(_metadata, s, s->edu[1], 2 * psz + half, 'y',
		      "CPU read of the second device's data");
	EXPECT_EQ(4, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
}

/*
 * A device with a domain of its own gets what the context maps already:
 * it repeats the first device's accesses without a page request. It keeps
 * working when the first device leaves.
 */
TEST_F(device, own_domain_replay)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a0, a1;
	const char *e0 = s->edu[0], *e1 = s->edu[1];
	size_t half = psz / 2;
	struct iopfmap_edu_dma d;
	__u32 f;

	if (s->nedus < 2)
		SKIP(return, "one edu device: QEMU needs -device edu twice");
	a0 = attach(_metadata, s->fd, e0, 0);
	map_both(_metadata, s, 0);
	/* e0 reads pages 2-3 and writes pages 0-1. */
	iopfmap_fill(s->tgt + 2 * psz, 2 * psz, 'r');
	dev_read_tgt(_metadata, s, e0, 2 * psz + half, "first device's read");
	dev_write_tgt(_metadata, s, e0, half, 'w', "first device's write");

	a1 = attach(_metadata, s->fd, e1, IOPFMAP_ATTACH_OWN_DOMAIN);
	EXPECT_NE(a0.out_dev_id, a1.out_dev_id);
	EXPECT_EQ(4, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));

	/* The same accesses from e1: all replayed, no page request. */
	iopfmap_fill(s->tgt + 2 * psz, 2 * psz, 's');
	f = dev_read_tgt(_metadata, s, e1, 2 * psz + half,
			 "second device's read");
	EXPECT_EQ(0U, f) TH_LOG("pages e0 faulted in are not in e1's domain");
	EXPECT_EQ(0U, s->stg_faults);
	f = dev_write_tgt(_metadata, s, e1, half, 'v', "second device's write");
	EXPECT_EQ(0U, f) TH_LOG("pages e0 faulted in are not in e1's domain");
	EXPECT_EQ(0U, s->stg_faults);

	/* e0 leaves; its domain goes, e1's stays. */
	ASSERT_EQ(0, _test_detach(s->fd, a0.out_dev_id));
	d = edu_dma(_metadata, s->efd, e0, 0, IOVA_TGT, 16, 0);
	EXPECT_EQ((__u32)IOPFMAP_EDU_DETACHED, d.out_status)
		TH_LOG("detached e0's DMA: %s", edu_status_name(d.out_status));
	iopfmap_fill(s->tgt + 2 * psz, 2 * psz, 't');
	f = dev_read_tgt(_metadata, s, e1, 2 * psz + half,
			 "second device's read after the first left");
	EXPECT_EQ(0U, f);
	EXPECT_EQ(4, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
}

/* ---- detach and close against running faults ----------------------------- */

static void expect_stream_end(struct __test_metadata *_metadata,
			      const struct stream *st, __u32 npages)
{
	__u32 status = st->f.out_status;

	EXPECT_TRUE(status == IOPFMAP_EDU_DETACHED ||
		    status == IOPFMAP_EDU_INVALID ||
		    status == IOPFMAP_EDU_DONE)
		TH_LOG("the stream ended %s", edu_status_name(status));
	EXPECT_GE(npages, st->f.out_faults);
	if (status == IOPFMAP_EDU_DONE) {
		EXPECT_EQ(npages, st->f.out_faults);
		TH_LOG("the stream finished before the detach: nothing raced");
	} else {
		TH_LOG("the stream ended %s after %u of %u page requests",
		       edu_status_name(status), st->f.out_faults, npages);
	}
}

/* After the device came back: its DMA works and the bitmaps are right. */
static void expect_reattached_works(struct __test_metadata *_metadata,
				    struct dev_state *s, const char *dev)
{
	iopfmap_fill(s->tgt, psz, 'n');
	dev_read_tgt(_metadata, s, dev, 0, "DMA after attaching again");
	EXPECT_EQ(1, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
}

TEST_F_TIMEOUT(device, detach_during_fault_stream, 90)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	struct iopfmap_edu_dma d;
	struct stream st;
	int ret;

	a = attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	map(_metadata, s->fd, IOVA_BIG, s->big, BIG_PAGES * psz, RW);

	stream_start(_metadata, &st, s->efd, dev, s->fd, IOVA_BIG,
		     BIG_PAGES * psz);
	ret = _test_detach(s->fd, a.out_dev_id);
	EXPECT_EQ(0, ret) TH_LOG("DETACH during the stream: %s",
				 strerror(-ret));
	stream_join(_metadata, &st, 30);
	expect_stream_end(_metadata, &st, BIG_PAGES);
	expect_answered(_metadata, s->fd);

	/* Detached: refused before any DMA. */
	d = edu_dma(_metadata, s->efd, dev, 0, IOVA_TGT, 16, 0);
	EXPECT_EQ((__u32)IOPFMAP_EDU_DETACHED, d.out_status)
		TH_LOG("DMA after DETACH: %s", edu_status_name(d.out_status));

	attach(_metadata, s->fd, dev, 0);
	expect_reattached_works(_metadata, s, dev);
	/* The detached domain's pages left the bitmaps with it. */
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_BIG, BIG_PAGES * psz));
}

TEST_F_TIMEOUT(device, close_during_fault_stream, 90)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct stream st;
	int ret;

	attach(_metadata, s->fd, dev, 0);
	map(_metadata, s->fd, IOVA_BIG, s->big, BIG_PAGES * psz, RW);

	stream_start(_metadata, &st, s->efd, dev, s->fd, IOVA_BIG,
		     BIG_PAGES * psz);
	ret = close(s->fd);
	s->fd = -1;
	EXPECT_EQ(0, ret) TH_LOG("close: %s", strerror(errno));
	stream_join(_metadata, &st, 30);
	expect_stream_end(_metadata, &st, BIG_PAGES);

	/* The closed context let the device go. */
	OPEN_CONTEXT(&s->fd);
	attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	expect_reattached_works(_metadata, s, dev);
}

/* ---- the kernel's own fault path (per-device handlers, before 6.9) ------ */

static int report(int efd, const char *dev, __u32 flags, __u64 iova,
		  __u32 grpid, __u32 npages, struct iopfmap_edu_report *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", dev);
	r->flags = flags;
	r->iova = iova;
	r->grpid = grpid;
	r->npages = npages;
	return _test_ioctl(efd, IOPFMAP_EDU_REPORT, r);
}

/*
 * Page responses go to the emulated IOMMU, which may refuse them and say
 * so in the log: declared to the runner's log scan first.
 */
static void expect_page_responses(struct __test_metadata *_metadata,
				  const char *dev)
{
	struct iommu_unit iommu;
	char ere[256];

	iommu_of_device(dev, &iommu);
	iommu_page_response_ere(&iommu, ere, sizeof(ere));
	ASSERT_TRUE(!ere[0] || kmsg_expect(ere));
}

/* A read group of @npages tagged with @pasid. */
static int report_pasid(int efd, const char *dev, __u32 pasid, __u64 iova,
			__u32 grpid, __u32 npages,
			struct iopfmap_edu_report *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", dev);
	r->flags = IOPFMAP_EDU_REPORT_PASID;
	r->pasid = pasid;
	r->iova = iova;
	r->grpid = grpid;
	r->npages = npages;
	return _test_ioctl(efd, IOPFMAP_EDU_REPORT, r);
}

/*
 * Page requests synthesized through iommu_report_device_fault() reach
 * iopfmap and are answered once per group: through the per-device
 * handler before 6.9, through the attach handle and the domain's
 * iopf_handler since. No PASID.
 */
TEST_F(device, report_page_requests)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_edu_report r;
	struct iopfmap_stats st0, st1;
	struct utsname u;
	char why[256];
	int ret;

	attach(_metadata, s->fd, dev, 0);
	map_both(_metadata, s, 0);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	expect_page_responses(_metadata, dev);

	ret = report(s->efd, dev, 0, IOVA_TGT, 1, 1, &r);
	if (ret == -ENXIO) {
		struct iommu_unit iommu;

		iommu_of_device(dev, &iommu);
		uname(&u);
		SKIP(return, "kernel %s: the %s driver of %s sends no page responses (no page_response op): nothing can answer a page request there",
		     u.release, iommu_kind_name(iommu.kind), dev);
	}
	ASSERT_EQ(0, ret) TH_LOG("EDU_REPORT: %s", strerror(-ret));
	if (no_fault_handler(dev, r.out_report_ret, why, sizeof(why)))
		SKIP(return, "%s", why);
	EXPECT_EQ(0, r.out_report_ret) TH_LOG("iommu_report_device_fault: %s",
					      strerror(-r.out_report_ret));
	EXPECT_EQ(0U, r.out_pending) TH_LOG("the request was not answered");
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 1, st1.out_faults);
	EXPECT_EQ(st0.out_faults_handled + 1, st1.out_faults_handled);
	EXPECT_EQ(1, mapped_in(_metadata, s->fd, IOVA_TGT, psz));

	/* A group of four write requests, one answer. */
	st0 = st1;
	ret = report(s->efd, dev, IOPFMAP_EDU_REPORT_WRITE, IOVA_TGT + 2 * psz,
		     2, 4, &r);
	ASSERT_EQ(0, ret) TH_LOG("EDU_REPORT group: %s", strerror(-ret));
	EXPECT_EQ(0, r.out_report_ret);
	EXPECT_EQ(0U, r.out_pending) TH_LOG("the group was not answered");
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 4, st1.out_faults);
	EXPECT_EQ(st0.out_faults_handled + 4, st1.out_faults_handled);
	EXPECT_EQ(4, mapped_in(_metadata, s->fd, IOVA_TGT + 2 * psz, 4 * psz));
	EXPECT_EQ(5, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));

	/* Outside every range: answered, INVALID. */
	st0 = st1;
	ret = report(s->efd, dev, 0, IOVA_NONE, 3, 1, &r);
	ASSERT_EQ(0, ret) TH_LOG("EDU_REPORT outside the ranges: %s",
				 strerror(-ret));
	EXPECT_EQ(0, r.out_report_ret);
	EXPECT_EQ(0U, r.out_pending) TH_LOG("the request was not answered");
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 1, st1.out_faults);
	EXPECT_EQ(st0.out_faults_invalid + 1, st1.out_faults_invalid);
	EXPECT_EQ(st0.out_faults_handled, st1.out_faults_handled);
}

/* ---- PASID attachments --------------------------------------------- */

/* Why ATTACH at a PASID was refused (EOPNOTSUPP) for @dev. */
static const char *no_pasid_attach(const char *dev, char *why, size_t len)
{
	struct iommu_unit iommu;

	iommu_of_device(dev, &iommu);
	snprintf(why, len,
		 "the %s driver attaches no paging domain at a PASID of %s (AMD-Vi: SVA domains only; virtio-iommu: no PASIDs)",
		 iommu_kind_name(iommu.kind), dev);
	return why;
}

/* Every refusal of a PASID attach, each changing nothing. */
TEST_F(device, pasid_attach_errors)
{
	struct dev_state *s = &self->s;
	struct iopfmap_info info = { .size = sizeof(info) };
	struct iopfmap_device_attach a, rid;
	const char *dev = s->edu[0];
	char why[256];
	int ret;

	test_cmd_get_info(s->fd, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH)) {
		EXPECT_FALSE(iopfmap_kernel_at_least(6, 12))
			TH_LOG("6.12 and later attach at a PASID");
		EXPECT_EQ(-EOPNOTSUPP, _test_attach_pasid(s->fd, dev,
				IOPFMAP_ATTACH_PASID, 5, NULL));
		EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));
		return;
	}
	/* A PASID needs the requester ID's attachment first. */
	EXPECT_EQ(-ENOENT, _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID,
					      5, NULL));
	EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, s->fd));
	/* A PASID without the flag, or none with it, or out of range. */
	EXPECT_EQ(-EINVAL, _test_attach_pasid(s->fd, dev, 0, 5, NULL));
	EXPECT_EQ(-EINVAL, _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID,
					      0, NULL));
	EXPECT_EQ(-EINVAL, _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID,
					      IOPFMAP_PASID_MAX + 1, NULL));

	rid = attach(_metadata, s->fd, dev, 0);
	EXPECT_EQ(0U, rid.out_flags & IOPFMAP_DEVICE_PASID);
	EXPECT_EQ(-EINVAL, _test_attach_pasid(s->fd, dev,
					      IOPFMAP_ATTACH_PASID |
					      IOPFMAP_ATTACH_OWN_DOMAIN, 5,
					      NULL));
	ret = _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID, 5, &a);
	if (ret == -EOPNOTSUPP)
		SKIP(return, "%s", no_pasid_attach(dev, why, sizeof(why)));
	ASSERT_EQ(0, ret) TH_LOG("ATTACH at PASID 5: %s", strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_DEVICE_PASID,
		  a.out_flags & IOPFMAP_DEVICE_PASID);
	EXPECT_EQ(-EBUSY, _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID,
					     5, NULL));
	/* The requester ID's detach takes its PASIDs along. */
	EXPECT_EQ(0, _test_detach(s->fd, rid.out_dev_id));
	EXPECT_EQ(-ENOENT, _test_detach(s->fd, a.out_dev_id));
}

/*
 * Page requests tagged with an attached PASID reach iopfmap through the
 * core and map their page; one of a PASID that is not attached is
 * answered INVALID by the core and never reaches iopfmap. DETACH of the
 * PASID leaves the requester ID attached.
 */
TEST_F(device, pasid_page_requests)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a, p;
	struct iopfmap_stats st0, st1;
	struct iopfmap_edu_report r;
	struct iopfmap_info info = { .size = sizeof(info) };
	char why[256];
	int ret;

	test_cmd_get_info(s->fd, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH))
		SKIP(return, NO_PASID_ATTACH_HERE);
	a = attach(_metadata, s->fd, dev, 0);
	ret = _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID, 7, &p);
	if (ret == -EOPNOTSUPP)
		SKIP(return, "%s", no_pasid_attach(dev, why, sizeof(why)));
	ASSERT_EQ(0, ret) TH_LOG("ATTACH at PASID 7: %s", strerror(-ret));
	map_both(_metadata, s, 0);
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	expect_page_responses(_metadata, dev);

	ret = report_pasid(s->efd, dev, 7, IOVA_TGT + psz, 2, 3, &r);
	ASSERT_EQ(0, ret) TH_LOG("EDU_REPORT: %s", strerror(-ret));
	if (no_fault_handler(dev, r.out_report_ret, why, sizeof(why)))
		SKIP(return, "%s", why);
	EXPECT_EQ(0, r.out_report_ret) TH_LOG("iommu_report_device_fault: %s",
					      strerror(-r.out_report_ret));
	EXPECT_EQ(0U, r.out_pending) TH_LOG("the group was not answered");
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 3, st1.out_faults);
	EXPECT_EQ(st0.out_faults_handled + 3, st1.out_faults_handled);
	EXPECT_EQ(3, mapped_in(_metadata, s->fd, IOVA_TGT + psz, 3 * psz));

	/* A PASID not attached: the core answers, iopfmap sees nothing. */
	st0 = st1;
	ASSERT_EQ(0, report_pasid(s->efd, dev, 8, IOVA_TGT + 5 * psz, 4, 1,
				  &r));
	EXPECT_EQ(-EINVAL, r.out_report_ret);
	EXPECT_EQ(0U, r.out_pending);
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults, st1.out_faults);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT + 5 * psz, psz));

	/* Detached, PASID 7 goes nowhere either; the requester ID stays. */
	ASSERT_EQ(0, _test_detach(s->fd, p.out_dev_id));
	ASSERT_EQ(0, report_pasid(s->efd, dev, 7, IOVA_TGT + 6 * psz, 5, 1,
				  &r));
	EXPECT_EQ(-EINVAL, r.out_report_ret);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT + 6 * psz, psz));
	EXPECT_EQ(0, _test_detach(s->fd, a.out_dev_id));
}

/* ---- FORWARD ranges: the device's faults go to the fault queue ------ */

/* One edu DMA run by its own thread, while the test serves the queue. */
struct bg_dma {
	pthread_t thread;
	int efd;
	struct iopfmap_edu_dma d;
	int ret;
};

static void *bg_dma_run(void *arg)
{
	struct bg_dma *b = arg;

	b->ret = _test_ioctl(b->efd, IOPFMAP_EDU_DMA, &b->d);
	return NULL;
}

static void bg_dma_start(struct __test_metadata *_metadata, struct bg_dma *b,
			 int efd, const char *dev, __u32 flags, __u64 iova,
			 __u32 len)
{
	memset(b, 0, sizeof(*b));
	b->efd = efd;
	snprintf(b->d.name, sizeof(b->d.name), "%s", dev);
	b->d.flags = flags;
	b->d.iova = iova;
	b->d.length = len;
	ASSERT_EQ(0, pthread_create(&b->thread, NULL, bg_dma_run, b));
}

/* The target range as FORWARD, and a queue of the context: its fd. */
static int forward_setup(struct __test_metadata *_metadata,
			 struct dev_state *s, __u32 *range_id)
{
	struct iopfmap_queue_alloc qa = { .size = sizeof(qa) };
	struct iopfmap_map m = {
		.size = sizeof(m),
		.flags = RW | IOPFMAP_MAP_FORWARD,
		.iova = IOVA_TGT,
		.vaddr = (__u64)(unsigned long)s->tgt,
		.length = TGT_PAGES * psz,
	};
	int ret;

	map(_metadata, s->fd, IOVA_STG, s->stg, STG_PAGES * psz, RW);
	ret = _test_ioctl(s->fd, IOPFMAP_MAP, &m);
	EXPECT_EQ(0, ret) TH_LOG("MAP FORWARD: %s", strerror(-ret));
	*range_id = m.out_range_id;
	ret = _test_ioctl(s->fd, IOPFMAP_QUEUE_ALLOC, &qa);
	EXPECT_EQ(0, ret) TH_LOG("QUEUE_ALLOC: %s", strerror(-ret));
	return ret ? -1 : qa.out_fd;
}

static void queue_answer(struct __test_metadata *_metadata, int qfd,
			 __u64 cookie, __u32 code, int want_errno)
{
	struct iopfmap_fault_response r = { .cookie = cookie, .code = code };
	ssize_t n = write(qfd, &r, sizeof(r));

	if (want_errno) {
		EXPECT_EQ(-want_errno, n < 0 ? -errno : (int)n);
	} else {
		EXPECT_EQ((ssize_t)sizeof(r), n) TH_LOG("answer: %s",
							 strerror(errno));
	}
}

/*
 * A device read of a FORWARD page: the group reaches the queue with the
 * device's and the range's ids, userspace says SUCCESS, the kernel maps
 * the page and the device reads what the CPU wrote.
 */
TEST_F(device, forward_range_served)
{
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct iopfmap_edu_dma d2;
	struct bg_dma b;
	char got[XFER];
	__u32 range_id;
	int qfd;

	a = attach(_metadata, s->fd, dev, 0);
	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);
	iopfmap_fill(s->tgt, psz, 'F');

	bg_dma_start(_metadata, &b, s->efd, dev, 0, IOVA_TGT + 8, XFER - 8);
	ASSERT_EQ((ssize_t)sizeof(rec[0]), read(qfd, rec, sizeof(rec)));
	EXPECT_EQ(IOVA_TGT, rec[0].addr);
	EXPECT_EQ((__u32)IOPFMAP_RECORD_LAST, rec[0].flags);
	EXPECT_EQ((__u32)IOPFMAP_PRQ_READ, rec[0].perm);
	EXPECT_EQ(a.out_dev_id, rec[0].dev_id);
	EXPECT_EQ(range_id, rec[0].range_id);
	EXPECT_NE(0U, range_id);
	/* Userspace decides: not mapped before it says so. */
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	queue_answer(_metadata, qfd, rec[0].cookie, IOPFMAP_PAGE_RESP_SUCCESS,
		     0);
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	ASSERT_EQ(0, b.ret);
	EXPECT_EQ((__u32)IOPFMAP_EDU_DONE, b.d.out_status)
		TH_LOG("%s", edu_status_name(b.d.out_status));
	EXPECT_EQ(1U, b.d.out_faults);
	EXPECT_EQ(1, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));

	/* The buffer out to a staging page: the CPU's data came through. */
	memset(s->stg + STG_DST * psz, 0xee, XFER);
	d2 = edu_dma_done(_metadata, s->efd, dev, IOPFMAP_EDU_TO_RAM,
			  IOVA_STG + STG_DST * psz, XFER - 8, 0);
	(void)d2;
	memcpy(got, s->stg + STG_DST * psz, XFER - 8);
	same(_metadata, "device read of a FORWARD page", got, s->tgt + 8,
	     XFER - 8);

	/* INVALID goes to the device as it is. */
	bg_dma_start(_metadata, &b, s->efd, dev, 0, IOVA_TGT + psz, 64);
	ASSERT_EQ((ssize_t)sizeof(rec[0]), read(qfd, rec, sizeof(rec)));
	EXPECT_EQ(IOVA_TGT + psz, rec[0].addr);
	queue_answer(_metadata, qfd, rec[0].cookie, IOPFMAP_PAGE_RESP_INVALID,
		     0);
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	EXPECT_EQ((__u32)IOPFMAP_EDU_INVALID, b.d.out_status)
		TH_LOG("%s", edu_status_name(b.d.out_status));
	EXPECT_EQ(1, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	EXPECT_EQ(2ULL, iopfmap_get_stats(_metadata, s->fd, IOVA_TGT)
				.out_faults_forwarded);
	close(qfd);
}

/* One EDU_REPORT of a PASID group, run by its own thread. */
struct bg_report {
	pthread_t thread;
	int efd;
	struct iopfmap_edu_report r;
	int ret;
};

static void *bg_report_run(void *arg)
{
	struct bg_report *b = arg;

	b->ret = _test_ioctl(b->efd, IOPFMAP_EDU_REPORT, &b->r);
	return NULL;
}

/*
 * A PASID attachment's group on a FORWARD range reaches the queue with
 * its PASID and the PASID attachment's id; SUCCESS maps its pages and
 * answers the group once.
 */
TEST_F(device, pasid_forwarded)
{
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct iopfmap_info info = { .size = sizeof(info) };
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach p;
	struct bg_report b = { .efd = s->efd };
	struct pollfd pfd;
	char why[256];
	__u32 range_id;
	int qfd, ret;

	test_cmd_get_info(s->fd, &info);
	if (!(info.out_features & IOPFMAP_FEATURE_PASID_ATTACH))
		SKIP(return, NO_PASID_ATTACH_HERE);
	attach(_metadata, s->fd, dev, 0);
	ret = _test_attach_pasid(s->fd, dev, IOPFMAP_ATTACH_PASID, 9, &p);
	if (ret == -EOPNOTSUPP)
		SKIP(return, "%s", no_pasid_attach(dev, why, sizeof(why)));
	ASSERT_EQ(0, ret) TH_LOG("ATTACH at PASID 9: %s", strerror(-ret));
	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);
	expect_page_responses(_metadata, dev);

	snprintf(b.r.name, sizeof(b.r.name), "%s", dev);
	b.r.flags = IOPFMAP_EDU_REPORT_PASID;
	b.r.pasid = 9;
	b.r.iova = IOVA_TGT + 2 * psz;
	b.r.grpid = 3;
	b.r.npages = 2;
	ASSERT_EQ(0, pthread_create(&b.thread, NULL, bg_report_run, &b));
	pfd = (struct pollfd){ .fd = qfd, .events = POLLIN };
	if (poll(&pfd, 1, 10000) != 1) {
		ASSERT_EQ(0, pthread_join(b.thread, NULL));
		if (no_fault_handler(dev, b.r.out_report_ret, why,
				     sizeof(why)))
			SKIP(return, "%s", why);
		ASSERT_TRUE(false) TH_LOG("no record: EDU_REPORT %d, report %d",
					  b.ret, b.r.out_report_ret);
	}
	ASSERT_EQ((ssize_t)(2 * sizeof(rec[0])), read(qfd, rec, sizeof(rec)));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(9U, rec[i].pasid);
		EXPECT_EQ(3U, rec[i].grpid);
		EXPECT_EQ(p.out_dev_id, rec[i].dev_id);
		EXPECT_EQ(range_id, rec[i].range_id);
		EXPECT_NE(0U, rec[i].flags & IOPFMAP_RECORD_PASID);
		EXPECT_EQ(rec[0].cookie, rec[i].cookie);
	}
	EXPECT_NE(0U, (rec[0].flags | rec[1].flags) & IOPFMAP_RECORD_LAST);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	queue_answer(_metadata, qfd, rec[0].cookie, IOPFMAP_PAGE_RESP_SUCCESS,
		     0);
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	ASSERT_EQ(0, b.ret);
	EXPECT_EQ(0, b.r.out_report_ret);
	EXPECT_EQ(0U, b.r.out_pending) TH_LOG("the group was not answered");
	EXPECT_EQ(2, mapped_in(_metadata, s->fd, IOVA_TGT + 2 * psz, 2 * psz));
	close(qfd);
}

/*
 * DETACH with a group in userspace's hands: the device gets its answer
 * (INVALID) before DETACH returns, and the late response finds nothing.
 */
TEST_F(device, forward_detach_answers)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };
	struct dev_state *s = &self->s;
	const char *dev = s->edu[0];
	struct iopfmap_device_attach a;
	struct iopfmap_fault_record rec[IOPFMAP_FAULT_GROUP_MAX];
	struct bg_dma b;
	__u32 range_id;
	int qfd, ret;

	a = attach(_metadata, s->fd, dev, 0);
	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);

	bg_dma_start(_metadata, &b, s->efd, dev, IOPFMAP_EDU_TO_RAM,
		     IOVA_TGT + 2 * psz, 64);
	ASSERT_EQ((ssize_t)sizeof(rec[0]), read(qfd, rec, sizeof(rec)));
	EXPECT_EQ((__u32)IOPFMAP_PRQ_WRITE, rec[0].perm);
	ret = _test_detach(s->fd, a.out_dev_id);
	EXPECT_EQ(0, ret) TH_LOG("DETACH: %s", strerror(-ret));
	ASSERT_EQ(0, pthread_join(b.thread, NULL));
	EXPECT_NE((__u32)IOPFMAP_EDU_DONE, b.d.out_status)
		TH_LOG("the device wrote after DETACH");
	queue_answer(_metadata, qfd, rec[0].cookie, IOPFMAP_PAGE_RESP_SUCCESS,
		     ENOENT);
	ASSERT_EQ(0, ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi));
	EXPECT_EQ(1ULL, qi.out_closed);
	EXPECT_EQ(0U, qi.out_inflight + qi.out_pending);
	all_zero(_metadata, "the page the device never got", s->tgt + 2 * psz,
		 psz);
	close(qfd);
}

/*
 * A device never waits forever: with no reader, and a queue without a
 * timeout, the device's group is answered INVALID after
 * IOPFMAP_QUEUE_DEVICE_TIMEOUT_MS and counted as a timeout; the driver's
 * software page request returns.
 */
TEST_F(device, forward_without_reader_is_bounded)
{
	struct iopfmap_queue_info qi = { .size = sizeof(qi) };
	struct iopfmap_edu_fault f = { .flags = IOPFMAP_EDU_TO_RAM };
	struct dev_state *s = &self->s;
	__u32 range_id;
	int qfd, ret;

	attach(_metadata, s->fd, s->edu[0], 0);
	qfd = forward_setup(_metadata, s, &range_id);
	ASSERT_LE(0, qfd);
	snprintf(f.name, sizeof(f.name), "%s", s->edu[0]);
	f.iova = IOVA_TGT + psz;
	f.length = psz;
	ret = _test_ioctl(s->efd, IOPFMAP_EDU_FAULT, &f);
	ASSERT_EQ(0, ret) TH_LOG("EDU_FAULT: %s", strerror(-ret));
	EXPECT_EQ((__u32)IOPFMAP_EDU_INVALID, f.out_status)
		TH_LOG("EDU_FAULT: %s", edu_status_name(f.out_status));
	ASSERT_EQ(0, ioctl(qfd, IOPFMAP_QUEUE_GET_INFO, &qi));
	EXPECT_EQ(1ULL, qi.out_groups);
	EXPECT_EQ(1ULL, qi.out_timeouts);
	EXPECT_EQ(0U, qi.out_inflight + qi.out_pending);
	EXPECT_EQ(0U, qi.out_timeout_ms);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	close(qfd);
}

/* ---- fail_nth: ATTACH, DETACH and the device's fault worker ------- */

FIXTURE(device_fail_nth)
{
	struct dev_state s;
	struct fi_nth nth;
	long refcnt;
};

FIXTURE_SETUP(device_fail_nth)
{
	const char *why = fi_unavailable();

	self->nth.fd = -1;
	self->s.fd = -1;
	self->s.efd = -1;
	self->s.memfd = -1;
	if (why)
		SKIP(return, "%s", why);
	dev_setup(_metadata, &self->s, KIND_ANON);
	if (!self->s.nedus)
		return;
	/* With the setup's context and iopfmap_edu.ko's reference. */
	self->refcnt = fi_module_refcnt();
	why = fi_begin(_metadata, &self->nth);
	ASSERT_EQ(NULL, why) TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(device_fail_nth)
{
	fi_end(_metadata, &self->nth);
	dev_teardown(_metadata, &self->s);
}

/*
 * A failed ATTACH leaves the context without an IO page table and the
 * device with its driver: attaching it again works, in this context or,
 * after close(), in the next run's.
 */
TEST_F(device_fail_nth, attach)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a;
	bool fired;
	int fd, ret;

	FI_SWEEP(&self->nth) {
		OPEN_CONTEXT(&fd);
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_attach(fd, s->edu[0], 0, &a);
		fired = fi_nth_fired(_metadata, &self->nth);
		if (!fired) {
			ASSERT_EQ(0, ret) TH_LOG("ATTACH: %s", strerror(-ret));
			close(fd);
			break;
		}
		if (ret) {
			EXPECT_TRUE(fi_injected_errno(ret))
				TH_LOG("run %u: ATTACH: %s", self->nth.n,
				       strerror(-ret));
			EXPECT_EQ((__u32)IOPFMAP_IOPT_NONE, iopt_type(_metadata, fd))
				TH_LOG("run %u: a failed ATTACH left an IO page table",
				       self->nth.n);
			attach(_metadata, fd, s->edu[0], 0);
		}
		map(_metadata, fd, IOVA_TGT, s->tgt, psz, RW);
		close(fd);
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
	fi_expect_idle(_metadata, self->refcnt);
}

/*
 * DETACH either detached (a second one finds nothing) or did nothing.
 * Only the allocations that cannot sleep fail: DETACH gives the group back
 * to its default domain, an attach that the IOMMU core makes with
 * IOMMU_SET_DOMAIN_MUST_SUCCEED and WARNs about when the driver's
 * allocations fail (__iommu_group_set_domain_nofail()).
 */
TEST_F(device_fail_nth, detach)
{
	struct dev_state *s = &self->s;
	struct iopfmap_device_attach a;
	bool fired;
	int fd, ret;

	fi_sleeping_allocs_never_fail(_metadata);
	FI_SWEEP(&self->nth) {
		OPEN_CONTEXT(&fd);
		a = attach(_metadata, fd, s->edu[0], 0);
		map(_metadata, fd, IOVA_TGT, s->tgt, psz, RW);
		fi_nth_arm(_metadata, &self->nth);
		ret = _test_detach(fd, a.out_dev_id);
		fired = fi_nth_fired(_metadata, &self->nth);
		if (ret) {
			EXPECT_TRUE(fired && fi_injected_errno(ret))
				TH_LOG("run %u: DETACH: %s", self->nth.n,
				       strerror(-ret));
			EXPECT_EQ(0, _test_detach(fd, a.out_dev_id))
				TH_LOG("run %u: a failed DETACH detached",
				       self->nth.n);
		} else {
			EXPECT_EQ(-ENOENT, _test_detach(fd, a.out_dev_id));
		}
		close(fd);
		if (!fired)
			break;
	}
	ASSERT_LT(self->nth.n, FI_NTH_MAX);
	fi_expect_idle(_metadata, self->refcnt);
}

/*
 * The device's page requests are resolved by its workqueue, out of reach
 * of the caller's counter: the fault fails once in the worker. The
 * request is answered INVALID and counted so, nothing is mapped, and the
 * next request for the page succeeds.
 */
TEST_F(device_fail_nth, fault_fails_in_the_worker)
{
	struct dev_state *s = &self->s;
	struct iopfmap_edu_fault req;
	struct iopfmap_stats st0, st1;
	int left;

	attach(_metadata, s->fd, s->edu[0], 0);
	map_both(_metadata, s, 0);
	fi_only(_metadata, "iopfmap_range_fault");
	st0 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);

	memset(&req, 0, sizeof(req));
	snprintf(req.name, sizeof(req.name), "%s", s->edu[0]);
	req.iova = IOVA_TGT;
	req.length = psz;
	fi_fail_next_call(_metadata);
	ASSERT_EQ(0, _test_ioctl(s->efd, IOPFMAP_EDU_FAULT, &req));
	left = fi_calls_left();
	fi_fail_never();
	self->nth.injected += left == 0;
	EXPECT_EQ(0, left) TH_LOG("the worker's fault was not reached");
	EXPECT_EQ((__u32)IOPFMAP_EDU_INVALID, req.out_status)
		TH_LOG("a fault that failed in the worker: %s",
		       edu_status_name(req.out_status));
	st1 = iopfmap_get_stats(_metadata, s->fd, ~0ULL);
	EXPECT_EQ(st0.out_faults + 1, st1.out_faults);
	EXPECT_EQ(st0.out_faults_invalid + 1, st1.out_faults_invalid);
	EXPECT_EQ(0, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
	EXPECT_EQ(0, iopfmap_bitmap_vs_iopt(s->fd, IOVA_TGT, TGT_PAGES * psz,
					    NULL));

	ASSERT_EQ(0, _test_ioctl(s->efd, IOPFMAP_EDU_FAULT, &req));
	EXPECT_EQ((__u32)IOPFMAP_EDU_DONE, req.out_status)
		TH_LOG("the same request again: %s",
		       edu_status_name(req.out_status));
	EXPECT_EQ(1, mapped_in(_metadata, s->fd, IOVA_TGT, TGT_PAGES * psz));
}

TEST_HARNESS_MAIN
