// SPDX-License-Identifier: GPL-2.0
/*
 * The configuration file: `key = value` lines, `#` starts a comment,
 * blank lines are ignored. An unknown key, a bad value or a key given
 * twice (resolve_map excepted) is an error reported as file:line, so a
 * typo never silently leaves a default in place. iopfd.conf in this
 * directory is the annotated example; iopfd.8 is the reference.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "iopfd.h"

static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->default_handler = IOPFD_HANDLER_FORWARD;
	cfg->serve = SERVE_AUTO;
	cfg->slots = 32;
	cfg->queue_depth = IOPFMAP_QUEUE_DEPTH_DEFAULT;
	cfg->client_timeout_ms = 1000;
	cfg->client_policy = IOPFMAP_PAGE_RESP_INVALID;
	cfg->resolve_offset_on = true;
	cfg->log_level = LOG_LVL_INFO;
}

void config_free(struct config *cfg)
{
	free(cfg->socket);
	free(cfg->windows);
	free(cfg->stats_file);
	cfg->socket = NULL;
	cfg->windows = NULL;
	cfg->stats_file = NULL;
	cfg->nr_windows = 0;
}

const char *handler_name(enum iopfd_handler h)
{
	switch (h) {
	case IOPFD_HANDLER_DEFAULT:
		return "default";
	case IOPFD_HANDLER_FORWARD:
		return "forward";
	case IOPFD_HANDLER_RESOLVE:
		return "resolve";
	case IOPFD_HANDLER_REJECT:
		return "reject";
	}
	return "unknown";
}

const char *serve_name(enum serve_mode m)
{
	static const char *const names[] = { "auto", "uring", "rw" };

	return names[m];
}

const char *resp_name(uint32_t code)
{
	switch (code) {
	case IOPFMAP_PAGE_RESP_SUCCESS:
		return "success";
	case IOPFMAP_PAGE_RESP_INVALID:
		return "invalid";
	case IOPFMAP_PAGE_RESP_FAILURE:
		return "failure";
	}
	return "unknown";
}

/* One line being parsed, for error messages. */
struct cfg_line {
	const char *file;
	unsigned int line;
	const char *key;
};

static int cfg_error(const struct cfg_line *l, const char *msg)
{
	char qf[256], qk[64], qm[160];

	if (l->key)
		log_err("config", "file=%s line=%u key=%s msg=%s",
			log_quote(qf, sizeof(qf), l->file), l->line,
			log_quote(qk, sizeof(qk), l->key),
			log_quote(qm, sizeof(qm), msg));
	else
		log_err("config", "file=%s line=%u msg=%s",
			log_quote(qf, sizeof(qf), l->file), l->line,
			log_quote(qm, sizeof(qm), msg));
	return -1;
}

/*
 * A number: decimal, or hexadecimal with 0x (never octal: "010" is ten),
 * with an optional binary suffix K, M or G.
 */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;
	int base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	/* strtoull accepts signs and blanks: a number starts with a digit. */
	if (base == 16 ? !isxdigit((unsigned char)s[0]) :
			 !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno)
		return -1;
	switch (*end) {
	case 'K':
		shift = 10;
		end++;
		break;
	case 'M':
		shift = 20;
		end++;
		break;
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end)
		return -1;
	if (shift && v > (ULLONG_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned int min, unsigned int max,
		      unsigned int *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static bool page_aligned(uint64_t v)
{
	return !(v & (IOPFD_PAGE_SIZE - 1));
}

static int set_string(const struct cfg_line *l, char **dst, const char *v,
		      bool empty_ok, size_t max)
{
	if (!v[0] && empty_ok) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if (v[0] != '/')
		return cfg_error(l, "must be an absolute path");
	if (strlen(v) >= max)
		return cfg_error(l, "path too long");
	free(*dst);
	*dst = strdup(v);
	if (!*dst)
		return cfg_error(l, "out of memory");
	return 0;
}

static int parse_handler(const char *v, enum iopfd_handler *h)
{
	static const enum iopfd_handler all[] = {
		IOPFD_HANDLER_FORWARD, IOPFD_HANDLER_RESOLVE,
		IOPFD_HANDLER_REJECT,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(all); i++) {
		if (!strcmp(v, handler_name(all[i]))) {
			*h = all[i];
			return 0;
		}
	}
	return -1;
}

static int parse_serve(const char *v, enum serve_mode *m)
{
	enum serve_mode i;

	for (i = SERVE_AUTO; i <= SERVE_RW; i++) {
		if (!strcmp(v, serve_name(i))) {
			*m = i;
			return 0;
		}
	}
	return -1;
}

static int parse_offset(const struct cfg_line *l, struct config *cfg,
			const char *v)
{
	bool neg = v[0] == '-';
	uint64_t off;

	if (!strcmp(v, "none")) {
		cfg->resolve_offset_on = false;
		cfg->resolve_offset = 0;
		return 0;
	}
	if (parse_u64(neg ? v + 1 : v, &off))
		return cfg_error(l, "expected a number or none");
	if (!page_aligned(off))
		return cfg_error(l, "must be a multiple of 4096");
	cfg->resolve_offset_on = true;
	cfg->resolve_offset = neg ? -off : off;
	return 0;
}

/* resolve_map = IOVA LENGTH IPA */
static int parse_window(const struct cfg_line *l, struct config *cfg,
			char *v)
{
	struct resolve_window w, *tmp;
	char *f[4], *save = NULL;
	unsigned int n = 0, i;

	for (f[n] = strtok_r(v, " \t", &save); f[n] && n < 3;
	     f[n] = strtok_r(NULL, " \t", &save))
		n++;
	if (n != 3)
		return cfg_error(l, "expected IOVA LENGTH IPA");
	if (parse_u64(f[0], &w.iova) || parse_u64(f[1], &w.length) ||
	    parse_u64(f[2], &w.ipa))
		return cfg_error(l, "expected three numbers");
	if (!w.length || !page_aligned(w.iova) || !page_aligned(w.length) ||
	    !page_aligned(w.ipa))
		return cfg_error(l, "IOVA, LENGTH, IPA must be multiples of 4096, LENGTH not 0");
	if (w.iova + w.length - 1 < w.iova || w.ipa + w.length - 1 < w.ipa)
		return cfg_error(l, "window wraps around");
	for (i = 0; i < cfg->nr_windows; i++) {
		const struct resolve_window *o = &cfg->windows[i];

		if (w.iova <= o->iova + o->length - 1 &&
		    o->iova <= w.iova + w.length - 1)
			return cfg_error(l, "overlaps an earlier resolve_map");
	}
	if (cfg->nr_windows >= IOPFD_WINDOWS_MAX)
		return cfg_error(l, "too many resolve_map lines");
	tmp = realloc(cfg->windows, (cfg->nr_windows + 1) * sizeof(*tmp));
	if (!tmp)
		return cfg_error(l, "out of memory");
	cfg->windows = tmp;
	cfg->windows[cfg->nr_windows++] = w;
	return 0;
}

enum cfg_key {
	K_SOCKET,
	K_DEFAULT_HANDLER,
	K_SERVE,
	K_SLOTS,
	K_QUEUE_DEPTH,
	K_CLIENT_TIMEOUT_MS,
	K_CLIENT_POLICY,
	K_RESOLVE_OFFSET,
	K_RESOLVE_MAP,
	K_LOG_LEVEL,
	K_STATS_FILE,
	K_NR,
};

static const char *const key_names[K_NR] = {
	[K_SOCKET] = "socket",
	[K_DEFAULT_HANDLER] = "default_handler",
	[K_SERVE] = "serve",
	[K_SLOTS] = "slots",
	[K_QUEUE_DEPTH] = "queue_depth",
	[K_CLIENT_TIMEOUT_MS] = "client_timeout_ms",
	[K_CLIENT_POLICY] = "client_policy",
	[K_RESOLVE_OFFSET] = "resolve_offset",
	[K_RESOLVE_MAP] = "resolve_map",
	[K_LOG_LEVEL] = "log_level",
	[K_STATS_FILE] = "stats_file",
};

static int set_key(const struct cfg_line *l, struct config *cfg,
		   enum cfg_key k, char *v)
{
	struct sockaddr_un sun;

	switch (k) {
	case K_SOCKET:
		return set_string(l, &cfg->socket, v, false,
				  sizeof(sun.sun_path));
	case K_DEFAULT_HANDLER:
		if (parse_handler(v, &cfg->default_handler))
			return cfg_error(l, "expected forward, resolve or reject");
		return 0;
	case K_SERVE:
		if (parse_serve(v, &cfg->serve))
			return cfg_error(l, "expected auto, uring or rw");
		return 0;
	case K_SLOTS:
		if (parse_uint(v, 1, IOPFMAP_QUEUE_DEPTH_MAX, &cfg->slots))
			return cfg_error(l, "expected 1 to 4096");
		return 0;
	case K_QUEUE_DEPTH:
		if (parse_uint(v, 0, IOPFMAP_QUEUE_DEPTH_MAX,
			       &cfg->queue_depth))
			return cfg_error(l, "expected 0 to 4096");
		if (!cfg->queue_depth)
			cfg->queue_depth = IOPFMAP_QUEUE_DEPTH_DEFAULT;
		return 0;
	case K_CLIENT_TIMEOUT_MS:
		if (parse_uint(v, 0, 3600000, &cfg->client_timeout_ms))
			return cfg_error(l, "expected 0 to 3600000");
		return 0;
	case K_CLIENT_POLICY:
		/* FAILURE would turn the device's PRI off: the kernel refuses it. */
		if (strcmp(v, "invalid"))
			return cfg_error(l, "expected invalid (the only answer for a group nobody answered)");
		cfg->client_policy = IOPFMAP_PAGE_RESP_INVALID;
		return 0;
	case K_RESOLVE_OFFSET:
		return parse_offset(l, cfg, v);
	case K_RESOLVE_MAP:
		return parse_window(l, cfg, v);
	case K_LOG_LEVEL:
		if (log_level_parse(v, &cfg->log_level))
			return cfg_error(l, "expected error, warn, info or debug");
		return 0;
	case K_STATS_FILE:
		return set_string(l, &cfg->stats_file, v, true, PATH_MAX - 8);
	case K_NR:
		break;
	}
	return cfg_error(l, "unknown key");
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int parse_file(FILE *f, const char *path, struct config *cfg)
{
	bool seen[K_NR] = { false };
	struct cfg_line l = { .file = path };
	size_t cap = 0;
	char *buf = NULL;
	int ret = 0;

	while (getline(&buf, &cap, f) >= 0) {
		char *s, *eq, *key, *val;
		enum cfg_key k;

		l.line++;
		l.key = NULL;
		s = strchr(buf, '#');
		if (s)
			*s = '\0';
		s = trim(buf);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			ret = cfg_error(&l, "expected key = value");
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		l.key = key;
		for (k = 0; k < K_NR; k++)
			if (!strcmp(key, key_names[k]))
				break;
		if (k == K_NR) {
			ret = cfg_error(&l, "unknown key");
			break;
		}
		if (seen[k] && k != K_RESOLVE_MAP) {
			ret = cfg_error(&l, "given twice");
			break;
		}
		seen[k] = true;
		if (!val[0] && k != K_STATS_FILE) {
			ret = cfg_error(&l, "empty value");
			break;
		}
		ret = set_key(&l, cfg, k, val);
		if (ret)
			break;
	}
	if (!ret && ferror(f)) {
		l.key = NULL;
		ret = cfg_error(&l, strerror(errno));
	}
	free(buf);
	return ret;
}

int config_load(struct config *cfg, const char *path, bool must_exist)
{
	char qp[256];
	FILE *f;
	int ret;

	config_defaults(cfg);
	/* The file may override or (stats_file = ) clear these. */
	cfg->socket = strdup(IOPFD_SOCKET_PATH);
	cfg->stats_file = strdup(IOPFD_STATS_PATH);
	if (!cfg->socket || !cfg->stats_file) {
		log_err("config", "msg=\"out of memory\"");
		config_free(cfg);
		return -1;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist) {
			log_info("config", "file=%s msg=\"not found, using defaults\"",
				 log_quote(qp, sizeof(qp), path));
			ret = 0;
		} else {
			log_err("config", "file=%s error=%s",
				log_quote(qp, sizeof(qp), path),
				log_strerror(errno));
			ret = -1;
		}
	} else {
		ret = parse_file(f, path, cfg);
		fclose(f);
	}
	if (ret)
		config_free(cfg);
	return ret;
}

/* Windows first, then the offset; a sum that wraps is no translation. */
bool config_resolve(const struct config *cfg, uint64_t iova, uint64_t *ipa)
{
	unsigned int i;
	uint64_t out;

	for (i = 0; i < cfg->nr_windows; i++) {
		const struct resolve_window *w = &cfg->windows[i];

		if (iova >= w->iova && iova - w->iova < w->length) {
			*ipa = w->ipa + (iova - w->iova);
			return true;
		}
	}
	if (!cfg->resolve_offset_on)
		return false;
	out = iova + cfg->resolve_offset;
	/* Negative offsets are added modulo 2^64: check the direction. */
	if ((int64_t)cfg->resolve_offset >= 0 ? out < iova : out > iova)
		return false;
	*ipa = out;
	return true;
}

/* The effective configuration in the file's own syntax, for -t. */
void config_print(FILE *f, const struct config *cfg)
{
	unsigned int i;

	fprintf(f, "socket = %s\n", cfg->socket);
	fprintf(f, "default_handler = %s\n",
		handler_name(cfg->default_handler));
	fprintf(f, "serve = %s\n", serve_name(cfg->serve));
	fprintf(f, "slots = %u\n", cfg->slots);
	fprintf(f, "queue_depth = %u\n", cfg->queue_depth);
	fprintf(f, "client_timeout_ms = %u\n", cfg->client_timeout_ms);
	fprintf(f, "client_policy = %s\n", resp_name(cfg->client_policy));
	if (!cfg->resolve_offset_on)
		fprintf(f, "resolve_offset = none\n");
	else if ((int64_t)cfg->resolve_offset < 0)
		fprintf(f, "resolve_offset = -%#llx\n",
			(unsigned long long)-cfg->resolve_offset);
	else
		fprintf(f, "resolve_offset = %#llx\n",
			(unsigned long long)cfg->resolve_offset);
	for (i = 0; i < cfg->nr_windows; i++)
		fprintf(f, "resolve_map = %#llx %#llx %#llx\n",
			(unsigned long long)cfg->windows[i].iova,
			(unsigned long long)cfg->windows[i].length,
			(unsigned long long)cfg->windows[i].ipa);
	fprintf(f, "log_level = %s\n", log_level_name(cfg->log_level));
	fprintf(f, "stats_file = %s\n", cfg->stats_file ? cfg->stats_file : "");
}
