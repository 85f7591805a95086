/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fail_nth sweeps' fault injection, shared by the programs that
 * sweep a command (iopfmap_fail_nth, and the queue's, netlink's and the
 * devices' programs for their own commands): the debugfs fi_knobs, the
 * module's ALLOW_ERROR_INJECTION points, and the per-thread counter of
 * /proc/thread-self/fail-nth.
 *
 * A sweep runs a command with its 1st, 2nd, 3rd ... injection point made
 * to fail until a run reaches no more points: every slab and page
 * allocation (failslab, fail_page_alloc, sleeping ones included), every
 * user copy (fail_usercopy) and the module's own points (fail_function).
 * The counter is the task's: what runs in the task (the syscall, its task
 * work) is swept; a worker thread is reached only through fail_function
 * with a probability (fi_fail_next_call()).
 *
 * Needs CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB, FAIL_PAGE_ALLOC,
 * FAIL_FUNCTION and FAULT_INJECTION_USERCOPY: the debug kernel of make
 * check-debug. fi_unavailable() says why a kernel cannot.
 */
#ifndef IOPFMAP_FAIL_NTH_H
#define IOPFMAP_FAIL_NTH_H

#include "iopfmap_utils.h"

#define FI_DEBUGFS		"/sys/kernel/debug/"
#define FI_NTH_MAX		400U	/* more points than any command has today */

/* One debugfs knob set for the sweep, and what it was. */
struct fi_knob {
	const char *path;
	const char *value;
	char saved[64];
	bool set;
};

static struct fi_knob fi_knobs[] __attribute__((unused)) = {
	{ .path = FI_DEBUGFS "failslab/ignore-gfp-wait", .value = "N" },
	{ .path = FI_DEBUGFS "failslab/verbose", .value = "0" },
	{ .path = FI_DEBUGFS "fail_page_alloc/ignore-gfp-wait", .value = "N" },
	{ .path = FI_DEBUGFS "fail_page_alloc/ignore-gfp-highmem", .value = "N" },
	{ .path = FI_DEBUGFS "fail_page_alloc/min-order", .value = "0" },
	{ .path = FI_DEBUGFS "fail_page_alloc/verbose", .value = "0" },
	{ .path = FI_DEBUGFS "fail_usercopy/verbose", .value = "0" },
	{ .path = FI_DEBUGFS "fail_function/verbose", .value = "0" },
};

/*
 * The module's injection points and the errno each fails with, as
 * fail_function's retval takes it: an unsigned 64-bit number.
 */
static const struct {
	const char *func;
	const char *retval;
} fi_points[] __attribute__((unused)) = {
	{ "iopfmap_iopt_map_entry", "18446744073709551604" },	/* -ENOMEM */
	{ "iopfmap_domain_replay_map", "18446744073709551604" },
	{ "iopfmap_range_fault", "18446744073709551604" },
	{ "iopfmap_qslot_copy_records", "18446744073709551602" }, /* -EFAULT */
};

static inline int fi_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? n : n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static inline int fi_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Why the sweep cannot run here, or NULL. */
static inline const char *fi_unavailable(void)
{
	if (access("/proc/thread-self/fail-nth", W_OK))
		return "no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION off: make check-debug)";
	if (access(FI_DEBUGFS "failslab", F_OK) ||
	    access(FI_DEBUGFS "fail_page_alloc", F_OK) ||
	    access(FI_DEBUGFS "fail_usercopy", F_OK) ||
	    access(FI_DEBUGFS "fail_function/inject", W_OK))
		return "failslab, fail_page_alloc, fail_usercopy or fail_function missing in debugfs (make check-debug)";
	return NULL;
}

static inline void fi_arm(struct __test_metadata *_metadata)
{
	char path[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fi_knobs); i++) {
		ASSERT_EQ(0, fi_read(fi_knobs[i].path, fi_knobs[i].saved,
				      sizeof(fi_knobs[i].saved)))
			TH_LOG("%s", fi_knobs[i].path);
		ASSERT_EQ(0, fi_write(fi_knobs[i].path, fi_knobs[i].value))
			TH_LOG("%s", fi_knobs[i].path);
		fi_knobs[i].set = true;
	}
	/* A space clears the list, which a test cut short may have left. */
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/inject", " "));
	for (i = 0; i < ARRAY_SIZE(fi_points); i++) {
		ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/inject",
				       fi_points[i].func))
			TH_LOG("fail_function cannot reach %s: is it ALLOW_ERROR_INJECTION?",
			       fi_points[i].func);
		snprintf(path, sizeof(path), FI_DEBUGFS "fail_function/%s/retval",
			 fi_points[i].func);
		ASSERT_EQ(0, fi_write(path, fi_points[i].retval));
	}
	/* Only the nth point of a thread fails, never one at random. */
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/probability", "0"));
}

static inline void fi_disarm(void)
{
	size_t i;

	fi_write(FI_DEBUGFS "fail_function/inject", " ");
	for (i = 0; i < ARRAY_SIZE(fi_knobs); i++)
		if (fi_knobs[i].set)
			fi_write(fi_knobs[i].path, fi_knobs[i].saved);
}

/*
 * The per-thread counter. After a run, "0" means the nth point was reached
 * and failed; anything else means the run reached fewer points. Reading
 * and clearing it are themselves points (a user copy): an EFAULT there
 * means the run did not use up the count.
 */
struct fi_nth {
	int fd;
	unsigned int n;
	unsigned int injected;
};

static inline void fi_nth_arm(struct __test_metadata *_metadata,
			      struct fi_nth *nth)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", nth->n);

	ASSERT_EQ(len, pwrite(nth->fd, buf, len, 0));
}

/* Whether the run just made failed at its nth point. */
static inline bool fi_nth_fired(struct __test_metadata *_metadata,
				struct fi_nth *nth)
{
	char buf[16] = "";
	bool fired;
	ssize_t n;

	n = pread(nth->fd, buf, sizeof(buf) - 1, 0);
	fired = n > 0 && buf[0] == '0' && buf[1] == '\n';
	if (pwrite(nth->fd, "0", 1, 0) != 1)
		EXPECT_EQ(1, pwrite(nth->fd, "0", 1, 0));
	if (fired)
		nth->injected++;
	return fired;
}

/* The errnos a command may return for a failure injected into it. */
static inline bool fi_injected_errno(int ret)
{
	return ret == -ENOMEM || ret == -EFAULT;
}

/* The module's reference count, or -1. */
static inline long fi_module_refcnt(void)
{
	char buf[32];

	if (fi_read(IOPFMAP_SYSFS_MODULE "/refcnt", buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

/* Every context of the sweep is closed: the module is idle again. */
static inline void fi_expect_idle(struct __test_metadata *_metadata,
				  long refcnt)
{
	int i;

	for (i = 0; i < 50 && fi_module_refcnt() != refcnt; i++)
		iopfmap_sleep_ms(100);
	EXPECT_EQ(refcnt, fi_module_refcnt());
}

/*
 * A sweep's start in a fixture's setup: NULL, or why this kernel cannot
 * inject (then nothing was changed). Opens the counter and arms the
 * points.
 */
static inline const char *fi_begin(struct __test_metadata *_metadata,
				   struct fi_nth *nth)
{
	const char *why = fi_unavailable();

	nth->fd = -1;
	nth->injected = 0;
	if (why)
		return why;
	nth->fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (nth->fd < 0)
		return "cannot open /proc/thread-self/fail-nth";
	fi_arm(_metadata);
	return NULL;
}

/* The end of a sweep: the knobs as they were, the count in the log. */
static inline void fi_end(struct __test_metadata *_metadata,
			  struct fi_nth *nth)
{
	if (nth->fd < 0)
		return;
	fi_disarm();
	close(nth->fd);
	nth->fd = -1;
	TH_LOG("%u injected failures", nth->injected);
}

/*
 * From here on the sweep fails only allocations that cannot sleep, user
 * copies and the module's points: for a command that calls a kernel path
 * that must not fail (fi_disarm() restores the knobs).
 */
static inline void
fi_sleeping_allocs_never_fail(struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "failslab/ignore-gfp-wait", "Y"));
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_page_alloc/ignore-gfp-wait",
			      "Y"));
}

/*
 * Outside the sweep: only the module's point @func stays in fail_function's
 * list, and fi_fail_next_call() makes its next call fail, in any thread
 * (a worker's too), once.
 */
static inline void fi_only(struct __test_metadata *_metadata,
			   const char *func)
{
	char path[128];
	size_t i;

	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/inject", " "));
	for (i = 0; i < ARRAY_SIZE(fi_points); i++)
		if (!strcmp(fi_points[i].func, func))
			break;
	ASSERT_LT(i, ARRAY_SIZE(fi_points)) TH_LOG("%s is no point", func);
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/inject", func));
	snprintf(path, sizeof(path), FI_DEBUGFS "fail_function/%s/retval",
		 func);
	ASSERT_EQ(0, fi_write(path, fi_points[i].retval));
}

static inline void fi_fail_next_call(struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/times", "1"));
	ASSERT_EQ(0, fi_write(FI_DEBUGFS "fail_function/probability", "100"));
}

static inline void fi_fail_never(void)
{
	fi_write(FI_DEBUGFS "fail_function/probability", "0");
	fi_write(FI_DEBUGFS "fail_function/times", "-1");
}

/* 0 once the failure fi_fail_next_call() armed was injected. */
static inline int fi_calls_left(void)
{
	char buf[16];

	if (fi_read(FI_DEBUGFS "fail_function/times", buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

#define FI_SWEEP(nth) for ((nth)->n = 1; (nth)->n < FI_NTH_MAX; (nth)->n++)

#endif /* IOPFMAP_FAIL_NTH_H */
