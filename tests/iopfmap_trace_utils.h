/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The selftests' access to iopfmap's tracepoints through tracefs:
 * mounting it, switching events, and counting the lines of the trace
 * buffer that hold given text.
 */
#ifndef IOPFMAP_TRACE_UTILS_H
#define IOPFMAP_TRACE_UTILS_H

#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "iopfmap_utils.h"

#define TRACEFS		"/sys/kernel/tracing"

/*
 * Mounts tracefs if need be; false, and why in @why, when iopfmap's events
 * cannot be traced here.
 */
static inline bool tracefs_ready(char *why, size_t len)
{
	struct stat st;

	if (stat(TRACEFS "/trace", &st) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		snprintf(why, len, "no tracefs at " TRACEFS ": %s",
			 strerror(errno));
		return false;
	}
	if (stat(TRACEFS "/events/iopfmap", &st)) {
		snprintf(why, len, "no iopfmap events in " TRACEFS "/events");
		return false;
	}
	return true;
}

static inline int tracefs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* The trace buffer's text; the caller frees it. */
static inline char *tracefs_read(void)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	int fd = open(TRACEFS "/trace", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len == cap) {
			char *more = realloc(buf, 2 * cap + 1);

			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* Lines of @text holding every one of the NULL-terminated needles. */
static inline int count_lines(const char *text, ...)
{
	const char *line = text;
	int n = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *needle;
		bool all = true;
		va_list ap;

		va_start(ap, text);
		while ((needle = va_arg(ap, const char *))) {
			if (!memmem(line, len, needle, strlen(needle))) {
				all = false;
				break;
			}
		}
		va_end(ap);
		n += all;
		line = end ? end + 1 : NULL;
	}
	return n;
}

#endif /* IOPFMAP_TRACE_UTILS_H */
