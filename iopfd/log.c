// SPDX-License-Identifier: GPL-2.0
/*
 * Structured logs: one logfmt line per event,
 *
 *	level=info event=handover ctx=3 queue_fd=7 serve=uring handler=resolve
 *
 * to stderr in the foreground (systemd's journal adds the time) or to
 * syslog once daemonized. Values that clients choose (names, error texts)
 * go through log_quote(), so a client cannot forge fields or lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "iopfd.h"

static bool log_syslog;
static enum log_level log_max = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const int level_prio[] = {
	[LOG_LVL_ERROR] = LOG_ERR,
	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

void log_init(bool use_syslog)
{
	if (use_syslog && !log_syslog)
		openlog("iopfd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void log_set_level(enum log_level level)
{
	log_max = level;
}

bool log_enabled(enum log_level level)
{
	return level <= log_max;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

int log_level_parse(const char *s, enum log_level *level)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i])) {
			*level = i;
			return 0;
		}
	}
	return -1;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "level=%s event=%s",
		     level_names[level], event);
	if (fmt[0] && n > 0 && (size_t)n < sizeof(line) - 1) {
		line[n++] = ' ';
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
	}
	if (log_syslog) {
		syslog(level_prio[level], "%s", line);
	} else {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	}
}

const char *log_quote(char *buf, size_t len, const char *s)
{
	bool plain = s[0] != '\0';
	size_t i, o = 0;

	for (i = 0; s[i] && plain; i++) {
		unsigned char ch = s[i];

		if (ch <= ' ' || ch >= 0x7f || ch == '=' || ch == '"' ||
		    ch == '\\')
			plain = false;
	}
	if (plain) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	/* Room for the closing quote and the NUL, always. */
	if (len < 3)
		return "\"\"";
	buf[o++] = '"';
	for (i = 0; s[i] && o + 5 < len; i++) {
		unsigned char ch = s[i];

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = ch;
		} else if (ch < ' ' || ch >= 0x7f) {
			o += snprintf(buf + o, len - o, "\\x%02x", ch);
		} else {
			buf[o++] = ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *log_strerror(int err)
{
	static char bufs[4][80];
	static unsigned int next;
	char *b = bufs[next++ % ARRAY_SIZE(bufs)];

	return log_quote(b, sizeof(bufs[0]), strerror(err));
}
