// SPDX-License-Identifier: GPL-2.0
/*
 * iopfmap module lifecycle: load, the device node it creates, unload, and
 * what keeps it loaded. Needs root and the module's .ko ($IOPFMAP_KO or
 * /lib/modules/$(uname -r)/extra/iopfmap.ko). Every test leaves the module
 * loaded, for the tests and programs that run after it.
 */
#include <limits.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>

#include "iopfmap_utils.h"

static char ko_buf[PATH_MAX];

#define REQUIRE_ROOT()								\
	do {									\
		if (geteuid() != 0)						\
			SKIP(return, "needs root to load and unload modules"); \
	} while (0)

/* Sets @ko to the module file, or SKIPs the test if it cannot be read. */
#define REQUIRE_KO(ko)								\
	do {									\
		ko = iopfmap_ko_path(ko_buf, sizeof(ko_buf));			\
		if (!ko || access(ko, R_OK))					\
			SKIP(return, "cannot read %.512s: %s (set IOPFMAP_KO)",	\
			     ko ? ko : "iopfmap.ko", strerror(errno));		\
	} while (0)

/* What a loaded module must have created. */
static void check_loaded(struct __test_metadata *_metadata)
{
	unsigned int major, minor;
	struct stat st;
	FILE *f;
	int n;

	ASSERT_TRUE(iopfmap_wait_path(IOPFMAP_DEV, true))
		TH_LOG(IOPFMAP_DEV " did not appear");
	ASSERT_EQ(0, stat(IOPFMAP_DEV, &st))
		TH_LOG("stat " IOPFMAP_DEV ": %s", strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	/* Root only: a context can make a device write to memory. */
	EXPECT_EQ(0600U, st.st_mode & 07777)
		TH_LOG("mode %04o", st.st_mode & 07777);
	EXPECT_EQ(0U, st.st_uid);
	EXPECT_TRUE(iopfmap_module_loaded());

	/* The node is the misc device that the module registered. */
	f = fopen(IOPFMAP_SYSFS_MISC "/dev", "r");
	ASSERT_TRUE(f != NULL)
		TH_LOG(IOPFMAP_SYSFS_MISC "/dev: %s", strerror(errno));
	n = fscanf(f, "%u:%u", &major, &minor);
	fclose(f);
	ASSERT_EQ(2, n);
	EXPECT_EQ(makedev(major, minor), st.st_rdev);
}

static void check_unloaded(struct __test_metadata *_metadata)
{
	EXPECT_TRUE(iopfmap_wait_path(IOPFMAP_DEV, false))
		TH_LOG(IOPFMAP_DEV " still exists after unload");
	EXPECT_TRUE(iopfmap_wait_path(IOPFMAP_SYSFS_MODULE, false))
		TH_LOG(IOPFMAP_SYSFS_MODULE " still exists after unload");
}

/* Loads the module from @ko unless it is loaded already. */
static void ensure_loaded(struct __test_metadata *_metadata, const char *ko)
{
	int ret;

	if (!iopfmap_module_loaded()) {
		ret = iopfmap_load(ko);
		/* EEXIST: someone else loaded it meanwhile, fine. */
		ASSERT_TRUE(ret == 0 || ret == -EEXIST)
			TH_LOG("loading %s: %s", ko, strerror(-ret));
	}
	ASSERT_TRUE(iopfmap_wait_path(IOPFMAP_DEV, true))
		TH_LOG(IOPFMAP_DEV " did not appear");
}

/* Unloads the module, checks it is gone, loads it again, checks it is back. */
static void reload(struct __test_metadata *_metadata, const char *ko)
{
	int ret = iopfmap_unload();

	ASSERT_EQ(0, ret) TH_LOG("unloading: %s", strerror(-ret));
	check_unloaded(_metadata);

	ret = iopfmap_load(ko);
	ASSERT_EQ(0, ret) TH_LOG("loading %s again: %s", ko, strerror(-ret));
	check_loaded(_metadata);
}

TEST(load_unload)
{
	const char *ko;
	int ret;

	REQUIRE_ROOT();
	/* Before unloading anything: it must be loadable again afterwards. */
	REQUIRE_KO(ko);

	if (iopfmap_module_loaded()) {
		ret = iopfmap_unload();
		ASSERT_EQ(0, ret)
			TH_LOG("iopfmap is loaded and cannot be unloaded: %s (is "
			       IOPFMAP_DEV " open?)", strerror(-ret));
		check_unloaded(_metadata);
	}

	ret = iopfmap_load(ko);
	ASSERT_EQ(0, ret) TH_LOG("loading %s: %s", ko, strerror(-ret));
	check_loaded(_metadata);

	reload(_metadata, ko);
}

TEST(load_twice)
{
	const char *ko;
	int ret;

	REQUIRE_ROOT();
	REQUIRE_KO(ko);
	ensure_loaded(_metadata, ko);

	ret = iopfmap_load(ko);
	EXPECT_EQ(-EEXIST, ret)
		TH_LOG("second load: %s", ret ? strerror(-ret) : "succeeded");
	check_loaded(_metadata);
}

TEST(open_file_pins_module)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	const char *ko;
	int fd, ret;

	REQUIRE_ROOT();
	REQUIRE_KO(ko);
	ensure_loaded(_metadata, ko);

	fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("open " IOPFMAP_DEV ": %s", strerror(errno));

	/* fops->owner: the open file holds a reference on the module. */
	ret = iopfmap_unload();
	ASSERT_EQ(-EWOULDBLOCK, ret)
		TH_LOG("unload with a context open: %s",
		       ret ? strerror(-ret) : "succeeded");
	test_cmd_get_info(fd, &info);
	EXPECT_TRUE(iopfmap_dev_present());

	/* The last fput() runs release before close() returns to us. */
	ASSERT_EQ(0, close(fd));
	reload(_metadata, ko);
}

TEST(two_contexts)
{
	struct iopfmap_info info1 = { .size = sizeof(info1) };
	struct iopfmap_info info2 = { .size = sizeof(info2) };
	const char *ko;
	int fd1, fd2;

	REQUIRE_ROOT();
	if (!iopfmap_module_loaded()) {
		REQUIRE_KO(ko);
		ensure_loaded(_metadata, ko);
	}

	fd1 = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd1) TH_LOG("open " IOPFMAP_DEV ": %s", strerror(errno));
	fd2 = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2) TH_LOG("open " IOPFMAP_DEV ": %s", strerror(errno));

	test_cmd_get_info(fd1, &info1);
	test_cmd_get_info(fd2, &info2);
	EXPECT_EQ(info1.out_abi_version, info2.out_abi_version);
	EXPECT_EQ(info1.out_features, info2.out_features);

	/* Releasing one context leaves the other working. */
	ASSERT_EQ(0, close(fd1));
	info2 = (struct iopfmap_info){ .size = sizeof(info2) };
	test_cmd_get_info(fd2, &info2);
	EXPECT_EQ((__u32)IOPFMAP_ABI_VERSION, info2.out_abi_version);
	ASSERT_EQ(0, close(fd2));
}

/* Moves this thread to @cpu (modulo the CPUs it may use). */
static void run_on(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % get_nprocs(), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * The last reference on a fault queue goes in RCU's hands (lockless
 * lookups may still see it), and module unload must not leave RCU a
 * callback into the module's freed text. The queue's last reference is
 * dropped on one CPU and the module unloaded from another, again and
 * again: a grace period then ends without that CPU's callbacks having
 * run, which is the window a callback into the module would need. With
 * callbacks offloaded (rcu_nocbs=), Debian's 6.12 and 7.x defer them up to
 * 10 s (CONFIG_RCU_LAZY): the test waits that long before it loads the
 * module again, and make check boots with rcu_nocbs=all.
 */
FIXTURE(unload) {};
FIXTURE_SETUP(unload) {}
FIXTURE_TEARDOWN(unload) {}

/* 20 loads take minutes on a KASAN kernel under TCG (make check-debug). */
TEST_F_TIMEOUT(unload, right_after_queue_close, 300)
{
	struct iopfmap_queue_alloc qa;
	const char *ko;
	int i, fd, ret;

	REQUIRE_ROOT();
	REQUIRE_KO(ko);
	for (i = 0; i < 20; i++) {
		ensure_loaded(_metadata, ko);
		run_on(0);
		fd = open(IOPFMAP_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("open " IOPFMAP_DEV ": %s",
					strerror(errno));
		qa = (struct iopfmap_queue_alloc){ .size = sizeof(qa) };
		ret = _test_ioctl(fd, IOPFMAP_QUEUE_ALLOC, &qa);
		ASSERT_EQ(0, ret) TH_LOG("QUEUE_ALLOC: %s", strerror(-ret));
		ASSERT_EQ(0, close(qa.out_fd));
		/* The context's reference is the queue's last. */
		ASSERT_EQ(0, close(fd));
		run_on(1);
		ret = iopfmap_unload();
		ASSERT_EQ(0, ret) TH_LOG("unloading: %s", strerror(-ret));
	}
	/* Whatever RCU still had queued has run by now. */
	sleep(11);
	run_on(0);
	ensure_loaded(_metadata, ko);
	check_loaded(_metadata);
}

TEST_HARNESS_MAIN
