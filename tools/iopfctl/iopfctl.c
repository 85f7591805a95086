// SPDX-License-Identifier: GPL-2.0
/*
 * iopfctl: inspect and steer iopfmap from the command line.
 *
 *	iopfctl [-j] [-p] OBJECT [COMMAND [ARGS...]]
 *
 * The command line is OBJECT [COMMAND [ARGS...]], as in iproute2, and so
 * is the matching: a word may be cut short, and the first row that it
 * begins wins ("iopfctl r s" is "range show"). Each object is a row of
 * objects[] with its own table of commands, the first being the default;
 * a new object or command is one new row.
 *
 * Everything but "info" speaks the generic netlink family "iopfmap"
 * (docs/netlink/specs/iopfmap.yaml) through libnl; "info" is the ioctl
 * GET_INFO of /dev/iopfmap. Objects are printed by walking a table of
 * their attributes (struct field) once, either into text or into json-c
 * objects, so text and JSON never disagree. Attributes and counters that
 * the tables do not know (a newer module) are shown as "attrN".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/iopfmap.h>
#include <linux/iopfmap_netlink.h>

/* The spec's names: generated from it by tools/netlink-gen.sh. */
#include <iopfmap_nl_names.h>

#ifndef IOPFMAP_VERSION
#define IOPFMAP_VERSION "unknown"
#endif

#define IOPFMAP_DEV "/dev/iopfmap"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes: 2 is the usual one for a command line that makes no sense. */
#define EXIT_USAGE 2

/* Text output: continuation lines are indented and wrapped. */
#define TEXT_INDENT	4
#define TEXT_WIDTH	80

static struct {
	bool json;
	bool pretty;
} opts;

/* "OBJECT COMMAND" of the running command, for messages. */
static char what[64];

struct command {
	const char *name;
	const char *args;	/* for usage: what follows the command name */
	const char *help;
	int (*run)(int argc, char **argv);
};

struct object {
	const char *name;
	const struct command *cmds;	/* NULL-terminated; [0] is the default */
};

/* A command line that makes no sense: says why, returns EXIT_USAGE. */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "iopfctl: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* iproute2's rule: @word names @name if it is a non-empty prefix of it. */
static bool matches(const char *word, const char *name)
{
	size_t len = strlen(word);

	return len && len <= strlen(name) && !strncmp(word, name, len);
}

/* ---- output ----------------------------------------------------------- */

/* json-c fails only when out of memory: nothing sensible is left to do. */
static void __attribute__((noreturn)) oom(void)
{
	fprintf(stderr, "iopfctl: out of memory\n");
	exit(EXIT_FAILURE);
}

static json_object *jnew(json_object *v)
{
	if (!v)
		oom();
	return v;
}

/* JSON keys are the spec's names with '_' for '-', as iproute2 has them. */
static void jadd(json_object *o, const char *name, json_object *v)
{
	char key[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof(key) - 1; i++)
		key[i] = name[i] == '-' ? '_' : name[i];
	key[i] = '\0';
	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		oom();
	}
}

static void jappend(json_object *arr, json_object *v)
{
	if (!v || json_object_array_add(arr, v)) {
		json_object_put(v);
		oom();
	}
}

/* Prints @v as one line (several with -p) and drops it. */
static void jprint(json_object *v)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *s;

	flags |= opts.pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED :
			       JSON_C_TO_STRING_PLAIN;
	s = json_object_to_json_string_ext(v, flags);
	if (!s)
		oom();
	puts(s);
	json_object_put(v);
}

/*
 * Text output goes through these: words separated by one space, and
 * "pairs" lines (counters) indented and wrapped at TEXT_WIDTH.
 */
static unsigned int text_col;

static void text_word(const char *s)
{
	if (text_col)
		putchar(' ');
	text_col += (text_col ? 1 : 0) + printf("%s", s);
}

static void text_kv(const char *label, const char *value)
{
	if (*label)
		text_word(label);
	text_word(value);
}

static void text_pair(const char *label, const char *value)
{
	size_t w = strlen(label) + 1 + strlen(value);

	if (text_col > TEXT_INDENT && text_col + 1 + w > TEXT_WIDTH) {
		putchar('\n');
		text_col = 0;
	}
	if (!text_col)
		text_col = printf("%*s%s", TEXT_INDENT, "", label);
	else
		text_word(label);
	text_word(value);
}

static void text_eol(void)
{
	if (text_col)
		putchar('\n');
	text_col = 0;
}

/* ---- attribute tables ------------------------------------------------- */

enum ftype {
	FT_UINT,	/* decimal, whatever its width */
	FT_X64,		/* text: hexadecimal; JSON: a number */
	FT_STRING,
	FT_FLAG,	/* text: the label when set; JSON: true or false */
	FT_ENUM,	/* names[value], a number when unnamed */
	FT_MAP_FLAGS,	/* IOPFMAP_MAP_* bits by name */
	FT_COUNTERS,	/* a nest of counters named by names[attr] */
};

struct field {
	unsigned short attr;
	unsigned char type;
	bool json_only;		/* text says it another way */
	const char *name;	/* the spec's attribute name: the JSON key */
	const char *label;	/* text: NULL for name, "" for no label */
	const char *const *names;	/* FT_ENUM, FT_COUNTERS */
	unsigned int nr_names;
	unsigned short pad;	/* FT_COUNTERS: the nest's pad attribute */
};

/* An attribute set of the spec: what a text line starts with, its fields. */
struct attr_set {
	const char *word;
	unsigned short max;	/* highest attribute known here */
	const struct field *fields;	/* in output order */
	unsigned int nr_fields;
};

/* Big enough for every set of the header; checked below. */
#define TB_SIZE 32

#define NAMES(n) .names = n, .nr_names = ARRAY_SIZE(n)

/* IOPFMAP_MAP_* by bit number. */
static const char *const map_flag_names[] = {
	"read", "write", "pin", "forward",
};

#define STATS_FIELD(_attr)						\
	{ .attr = _attr, .type = FT_COUNTERS, .name = "stats",		\
	  NAMES(iopfmap_nl_stats_names), .pad = IOPFMAP_A_STATS_PAD }

static const struct field ctx_fields[] = {
	{ IOPFMAP_A_CTX_ID, FT_UINT, .name = "id", .label = "" },
	{ IOPFMAP_A_CTX_PID, FT_UINT, .name = "pid" },
	{ IOPFMAP_A_CTX_COMM, FT_STRING, .name = "comm" },
	{ IOPFMAP_A_CTX_IOPT_TYPE, FT_ENUM, .name = "iopt-type",
	  .label = "iopt", NAMES(iopfmap_nl_iopt_type_names) },
	/* Text: "iopt sim" says it; only SIM_CREATE sets either. */
	{ IOPFMAP_A_CTX_SIM, FT_FLAG, .json_only = true, .name = "sim" },
	{ IOPFMAP_A_CTX_NR_RANGES, FT_UINT, .name = "nr-ranges",
	  .label = "ranges" },
	{ IOPFMAP_A_CTX_NR_DEVICES, FT_UINT, .name = "nr-devices",
	  .label = "devices" },
	{ IOPFMAP_A_CTX_QUEUE, FT_FLAG, .name = "queue" },
	STATS_FIELD(IOPFMAP_A_CTX_STATS),
};

static const struct field dev_fields[] = {
	{ IOPFMAP_A_DEV_ID, FT_UINT, .name = "id", .label = "" },
	{ IOPFMAP_A_DEV_CTX_ID, FT_UINT, .name = "ctx-id", .label = "ctx" },
	{ IOPFMAP_A_DEV_NAME, FT_STRING, .name = "name" },
	{ IOPFMAP_A_DEV_IOMMU_GROUP, FT_UINT, .name = "iommu-group" },
	{ IOPFMAP_A_DEV_FAULT_PATH, FT_ENUM, .name = "fault-path",
	  NAMES(iopfmap_nl_fault_path_names) },
	{ IOPFMAP_A_DEV_IOPF, FT_FLAG, .name = "iopf" },
	{ IOPFMAP_A_DEV_OWN_DOMAIN, FT_FLAG, .name = "own-domain" },
};

static const struct field range_fields[] = {
	{ IOPFMAP_A_RANGE_ID, FT_UINT, .name = "id", .label = "" },
	{ IOPFMAP_A_RANGE_CTX_ID, FT_UINT, .name = "ctx-id", .label = "ctx" },
	{ IOPFMAP_A_RANGE_IOVA, FT_X64, .name = "iova" },
	{ IOPFMAP_A_RANGE_LENGTH, FT_X64, .name = "length" },
	{ IOPFMAP_A_RANGE_FLAGS, FT_MAP_FLAGS, .name = "flags" },
	{ IOPFMAP_A_RANGE_MODE, FT_ENUM, .name = "mode",
	  NAMES(iopfmap_nl_range_mode_names) },
	{ IOPFMAP_A_RANGE_POLICY, FT_ENUM, .name = "policy",
	  NAMES(iopfmap_nl_policy_names) },
	{ IOPFMAP_A_RANGE_PREFETCH, FT_UINT, .name = "prefetch" },
	{ IOPFMAP_A_RANGE_PAGES_MAPPED, FT_UINT, .name = "pages-mapped" },
	STATS_FIELD(IOPFMAP_A_RANGE_STATS),
};

static const struct field queue_fields[] = {
	{ IOPFMAP_A_QUEUE_CTX_ID, FT_UINT, .name = "ctx-id", .label = "ctx" },
	{ IOPFMAP_A_QUEUE_DEPTH, FT_UINT, .name = "depth" },
	{ IOPFMAP_A_QUEUE_TIMEOUT_MS, FT_UINT, .name = "timeout-ms" },
	{ IOPFMAP_A_QUEUE_PENDING, FT_UINT, .name = "pending" },
	{ IOPFMAP_A_QUEUE_INFLIGHT, FT_UINT, .name = "inflight" },
	{ IOPFMAP_A_QUEUE_ARMED, FT_UINT, .name = "armed" },
	{ IOPFMAP_A_QUEUE_ATTACHED, FT_FLAG, .name = "attached" },
	{ IOPFMAP_A_QUEUE_STATS, FT_COUNTERS, .name = "stats",
	  NAMES(iopfmap_nl_queue_stats_names),
	  .pad = IOPFMAP_A_QUEUE_STATS_PAD },
};

static const struct field global_fields[] = {
	{ IOPFMAP_A_GLOBAL_CONTEXTS, FT_UINT, .name = "contexts" },
	{ IOPFMAP_A_GLOBAL_DEVICES, FT_UINT, .name = "devices" },
	STATS_FIELD(IOPFMAP_A_GLOBAL_STATS),
};

static const struct field event_fields[] = {
	{ IOPFMAP_A_EVENT_CTX_ID, FT_UINT, .name = "ctx-id", .label = "ctx" },
	{ IOPFMAP_A_EVENT_DEV_ID, FT_UINT, .name = "dev-id", .label = "dev" },
	{ IOPFMAP_A_EVENT_DEV_NAME, FT_STRING, .name = "dev-name",
	  .label = "name" },
	{ IOPFMAP_A_EVENT_REASON, FT_ENUM, .name = "reason",
	  NAMES(iopfmap_nl_detach_reason_names) },
	{ IOPFMAP_A_EVENT_COUNT, FT_UINT, .name = "count" },
	{ IOPFMAP_A_EVENT_WINDOW_MS, FT_UINT, .name = "window-ms" },
};

#define SET(_word, _max, _fields)					\
	{ .word = _word, .max = _max, .fields = _fields,		\
	  .nr_fields = ARRAY_SIZE(_fields) }

static const struct attr_set ctx_set =
	SET("ctx", IOPFMAP_A_CTX_MAX, ctx_fields);
static const struct attr_set dev_set =
	SET("dev", IOPFMAP_A_DEV_MAX, dev_fields);
static const struct attr_set range_set =
	SET("range", IOPFMAP_A_RANGE_MAX, range_fields);
static const struct attr_set queue_set =
	SET("queue", IOPFMAP_A_QUEUE_MAX, queue_fields);
static const struct attr_set global_set =
	SET("", IOPFMAP_A_GLOBAL_MAX, global_fields);
/* Events: a line starts with the event's name. */
static const struct attr_set event_set =
	SET("", IOPFMAP_A_EVENT_MAX, event_fields);

_Static_assert(IOPFMAP_A_CTX_MAX < TB_SIZE && IOPFMAP_A_DEV_MAX < TB_SIZE &&
	       IOPFMAP_A_RANGE_MAX < TB_SIZE && IOPFMAP_A_QUEUE_MAX < TB_SIZE &&
	       IOPFMAP_A_GLOBAL_MAX < TB_SIZE && IOPFMAP_A_EVENT_MAX < TB_SIZE,
	       "TB_SIZE too small for an attribute set");

/* ---- attribute values --------------------------------------------------- */

/* An unsigned attribute of any width the kernel may use: false if none. */
static bool attr_uint(const struct nlattr *a, __u64 *v)
{
	switch (nla_len(a)) {
	case 1:
		*v = nla_get_u8((struct nlattr *)a);
		return true;
	case 2:
		*v = nla_get_u16((struct nlattr *)a);
		return true;
	case 4:
		*v = nla_get_u32((struct nlattr *)a);
		return true;
	case 8:
		*v = nla_get_u64((struct nlattr *)a);
		return true;
	}
	return false;
}

/* A string attribute, terminated even if the kernel did not. */
static void attr_str(const struct nlattr *a, char *buf, size_t len)
{
	size_t n = nla_len(a);

	if (n >= len)
		n = len - 1;
	memcpy(buf, nla_data(a), n);
	buf[n] = '\0';
}

static const char *attr_name(unsigned int type, char *buf, size_t len)
{
	snprintf(buf, len, "attr%u", type);
	return buf;
}

/* An attribute no table names: a number, a flag, or left out. */
static void put_unknown(json_object *o, const struct nlattr *a, bool pairs)
{
	char name[16], val[24];
	__u64 v;

	attr_name(nla_type(a), name, sizeof(name));
	if (!nla_len(a)) {
		if (o)
			jadd(o, name, json_object_new_boolean(1));
		else
			text_word(name);
		return;
	}
	if (!attr_uint(a, &v))
		return;
	if (o) {
		jadd(o, name, json_object_new_uint64(v));
		return;
	}
	snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	if (pairs)
		text_pair(name, val);
	else
		text_kv(name, val);
}

/* Counters: every u64 in the nest, named or not. */
static void put_counters(json_object *o, const struct field *f,
			 const struct nlattr *nest)
{
	json_object *c = o ? jnew(json_object_new_object()) : NULL;
	const struct nlattr *a;
	const char *label;
	char val[24];
	unsigned int type;
	__u64 v;
	int rem;

	nla_for_each_nested(a, (struct nlattr *)nest, rem) {
		type = nla_type(a);
		if (f->pad && type == f->pad)
			continue;
		label = type < f->nr_names && f->names[type] ?
			f->names[type] : NULL;
		if (!label) {
			put_unknown(c, a, true);
			continue;
		}
		if (!attr_uint(a, &v))
			continue;
		if (c) {
			jadd(c, label, json_object_new_uint64(v));
		} else {
			snprintf(val, sizeof(val), "%llu",
				 (unsigned long long)v);
			text_pair(label, val);
		}
	}
	if (c)
		jadd(o, f->name, c);
	else
		text_eol();
}

static const char *enum_name(const struct field *f, __u64 v)
{
	return v < f->nr_names && f->names[v] ? f->names[v] : NULL;
}

static void put_map_flags(json_object *o, const struct field *f, __u64 v)
{
	json_object *arr = o ? jnew(json_object_new_array()) : NULL;
	char text[128] = "", bit[16];
	const char *name;
	unsigned int i;

	for (i = 0; i < 64; i++) {
		if (!(v & (1ULL << i)))
			continue;
		if (i < ARRAY_SIZE(map_flag_names)) {
			name = map_flag_names[i];
		} else {
			snprintf(bit, sizeof(bit), "bit%u", i);
			name = bit;
		}
		if (arr)
			jappend(arr, json_object_new_string(name));
		else
			snprintf(text + strlen(text), sizeof(text) - strlen(text),
				 "%s%s", *text ? "," : "", name);
	}
	if (arr)
		jadd(o, f->name, arr);
	else
		text_kv(f->label ? f->label : f->name, *text ? text : "none");
}

/*
 * One field of an object, @a its attribute or NULL; @o is the JSON
 * object, NULL for text. Counters wait for the end of the text line.
 */
static void put_field(json_object *o, const struct field *f,
		      const struct nlattr *a)
{
	const char *label = f->label ? f->label : f->name;
	const char *name;
	char val[256];
	__u64 v = 0;

	if (f->type == FT_FLAG) {
		if (o)
			jadd(o, f->name, json_object_new_boolean(!!a));
		else if (a)
			text_word(label);
		return;
	}
	if (!a)
		return;
	if (f->type == FT_STRING) {
		attr_str(a, val, sizeof(val));
		if (o)
			jadd(o, f->name, json_object_new_string(val));
		else
			text_kv(label, val);
		return;
	}
	if (f->type == FT_COUNTERS || !attr_uint(a, &v))
		return;

	switch (f->type) {
	case FT_MAP_FLAGS:
		put_map_flags(o, f, v);
		return;
	case FT_ENUM:
		/* JSON: the name as a string, else the number. */
		name = enum_name(f, v);
		if (o && name) {
			jadd(o, f->name, json_object_new_string(name));
			return;
		}
		break;
	case FT_X64:
		snprintf(val, sizeof(val), "%#llx", (unsigned long long)v);
		name = val;
		break;
	default:
		name = NULL;
		break;
	}
	if (o) {
		jadd(o, f->name, json_object_new_uint64(v));
		return;
	}
	if (!name) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
		name = val;
	}
	text_kv(label, name);
}

/*
 * Prints the object in the attributes at @head: a text line (and its
 * counters' lines), or a JSON object appended to @arr (or, when @arr is
 * NULL, printed alone). An @event's name starts its line and is its
 * JSON "event".
 */
static int put_object(const struct attr_set *set, const char *event,
		      struct nlattr *head, int len, json_object *arr)
{
	json_object *o = NULL;
	struct nlattr *tb[TB_SIZE] = { NULL };
	const struct field *counters = NULL;
	struct nlattr *a;
	unsigned int i;
	int rem, ret;

	ret = nla_parse(tb, set->max, head, len, NULL);
	if (ret < 0) {
		fprintf(stderr, "iopfctl: %s: malformed message from the kernel: %s\n",
			what, nl_geterror(ret));
		return -EINVAL;
	}
	if (opts.json) {
		o = jnew(json_object_new_object());
		if (event)
			jadd(o, "event", json_object_new_string(event));
	} else if (event || *set->word) {
		text_word(event ? event : set->word);
	}
	for (i = 0; i < set->nr_fields; i++) {
		const struct field *f = &set->fields[i];

		if (f->type == FT_COUNTERS && !o) {
			if (tb[f->attr])
				counters = f;
			continue;
		}
		if (f->json_only && !o)
			continue;
		if (f->type == FT_COUNTERS && tb[f->attr])
			put_counters(o, f, tb[f->attr]);
		else
			put_field(o, f, tb[f->attr]);
	}
	/* What a newer module added to the set. */
	nla_for_each_attr(a, head, len, rem)
		if (nla_type(a) > set->max)
			put_unknown(o, a, false);

	if (!o) {
		text_eol();
		if (counters)
			put_counters(NULL, counters, tb[counters->attr]);
	} else if (arr) {
		jappend(arr, o);
	} else {
		jprint(o);
	}
	return 0;
}

/* ---- netlink ------------------------------------------------------------ */

struct ctl {
	struct nl_sock *sk;
	int family;
};

/* One request in flight: where its replies go, and how it ended. */
struct req {
	int (*reply)(struct genlmsghdr *g, struct nlattr *head, int len,
		     void *arg);
	void *arg;
	__u8 cmd;
	bool done;
	int error;		/* the kernel's errno */
	char msg[256];		/* its extended ack message */
	int miss_type;		/* a required attribute it missed, or -1 */
	int offs;		/* where the attribute it blames is, or -1 */
	bool policy;		/* the family's policy refused it */
	struct nl_msg *sent;	/* the request, to find that attribute in */
	const struct attr_set *set;	/* ... and to name it */
};

static void ctl_close(struct ctl *nl)
{
	nl_socket_free(nl->sk);
	nl->sk = NULL;
}

/* Connects and finds the family: EXIT_SUCCESS, or says why not. */
static int ctl_open(struct ctl *nl)
{
	int one = 1, ret;

	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		oom();
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		fprintf(stderr, "iopfctl: cannot open a generic netlink socket: %s\n",
			nl_geterror(ret));
		goto err;
	}
	/*
	 * Without NETLINK_EXT_ACK the kernel keeps its error messages to
	 * itself; an old kernel without it still works, just tersely.
	 */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	/* Dumps arrive in messages as big as our receive buffer allows. */
	ret = nl_socket_set_msg_buf_size(nl->sk, 64 * 1024);
	if (ret < 0) {
		fprintf(stderr, "iopfctl: %s\n", nl_geterror(ret));
		goto err;
	}
	nl_socket_enable_msg_peek(nl->sk);
	/* Do requests ask for their ack themselves; dumps end with DONE. */
	nl_socket_disable_auto_ack(nl->sk);

	nl->family = genl_ctrl_resolve(nl->sk, IOPFMAP_FAMILY_NAME);
	if (nl->family == -NLE_OBJ_NOTFOUND) {
		fprintf(stderr,
			"iopfctl: the " IOPFMAP_FAMILY_NAME " netlink family is not available: is the iopfmap module loaded? (modprobe iopfmap)\n");
		goto err;
	}
	if (nl->family < 0) {
		fprintf(stderr, "iopfctl: resolving the " IOPFMAP_FAMILY_NAME " netlink family: %s\n",
			nl_geterror(nl->family));
		goto err;
	}
	return EXIT_SUCCESS;
err:
	ctl_close(nl);
	return EXIT_FAILURE;
}

/* The TLVs of an extended ack, @len bytes at @head. */
static void parse_extack(struct req *r, struct nlattr *head, int len)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (len <= 0 || nla_parse(tb, NLMSGERR_ATTR_MAX, head, len, NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		attr_str(tb[NLMSGERR_ATTR_MSG], r->msg, sizeof(r->msg));
	if (tb[NLMSGERR_ATTR_MISS_TYPE] && nla_len(tb[NLMSGERR_ATTR_MISS_TYPE]) >= 4)
		r->miss_type = nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);
	if (tb[NLMSGERR_ATTR_OFFS] && nla_len(tb[NLMSGERR_ATTR_OFFS]) >= 4)
		r->offs = nla_get_u32(tb[NLMSGERR_ATTR_OFFS]);
	r->policy = tb[NLMSGERR_ATTR_POLICY];
}

/*
 * NLMSG_ERROR, an error or (error 0) an ack. With NLM_F_ACK_TLVS the
 * extended ack follows the payload, which is the nlmsgerr alone
 * (NLM_F_CAPPED) or the nlmsgerr followed by our request's payload.
 */
static void parse_nlmsgerr(struct req *r, struct nlmsgerr *e)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	char *end = (char *)nlh + nlh->nlmsg_len, *tlvs;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (nlh->nlmsg_flags & NLM_F_CAPPED)
		tlvs = (char *)e + sizeof(*e);
	else
		tlvs = (char *)&e->msg + NLMSG_ALIGN(e->msg.nlmsg_len);
	if (tlvs < end)
		parse_extack(r, (struct nlattr *)tlvs, end - tlvs);
}

static int cb_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct req *r = arg;

	(void)who;
	r->error = e->error < 0 ? -e->error : e->error;
	parse_nlmsgerr(r, e);
	r->done = true;
	return NL_STOP;
}

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct req *r = arg;

	/* A successful ack may carry a warning. */
	parse_nlmsgerr(r, nlmsg_data(nlmsg_hdr(msg)));
	if (*r->msg)
		fprintf(stderr, "iopfctl: %s: Warning: %s\n", what, r->msg);
	r->done = true;
	return NL_STOP;
}

/* NLMSG_DONE ends a dump; a failed dump says why in it. */
static int cb_done(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int *err = nlmsg_data(nlh), off = NLMSG_ALIGN(sizeof(*err));
	struct req *r = arg;

	if (nlmsg_datalen(nlh) >= (int)sizeof(*err) && *err < 0) {
		r->error = -*err;
		if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
			parse_extack(r, (struct nlattr *)((char *)err + off),
				     nlmsg_datalen(nlh) - off);
	}
	r->done = true;
	return NL_STOP;
}

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct req *r = arg;
	struct genlmsghdr *g;

	if (!genlmsg_valid_hdr(nlh, 0))
		return NL_SKIP;
	g = genlmsg_hdr(nlh);
	if (r->cmd && g->cmd != r->cmd)
		return NL_SKIP;
	if (r->reply(g, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0), r->arg))
		return NL_STOP;
	return NL_OK;
}

/* The command line's word for the attribute at r->offs of the request. */
static const char *blamed_attr(const struct req *r)
{
	struct nlmsghdr *nlh = nlmsg_hdr(r->sent);
	const struct field *f;
	struct nlattr *a;
	unsigned int i;

	if (r->offs < (int)(NLMSG_HDRLEN + GENL_HDRLEN) ||
	    (__u32)r->offs + NLA_HDRLEN > nlh->nlmsg_len)
		return NULL;
	a = (struct nlattr *)((char *)nlh + r->offs);
	for (i = 0; i < r->set->nr_fields; i++) {
		f = &r->set->fields[i];
		if (f->attr == nla_type(a))
			return f->label && *f->label ? f->label : f->name;
	}
	return NULL;
}

/* Says why the kernel refused a request, as iproute2 does. */
static void report(const struct req *r)
{
	/* GENL_ADMIN_PERM refuses without a message. */
	const char *hint = r->error == EPERM ?
		": it needs CAP_NET_ADMIN (run it as root)" : "";
	/* The policy's messages ("integer out of range") name nothing. */
	const char *attr = r->policy ? blamed_attr(r) : NULL;
	char miss[64] = "";

	if (r->miss_type >= 0)
		snprintf(miss, sizeof(miss), "attribute %d missing: ",
			 r->miss_type);
	else if (attr)
		snprintf(miss, sizeof(miss), "%s: ", attr);
	if (*r->msg)
		fprintf(stderr, "iopfctl: %s: Error: %s%s (%s)%s\n", what, miss,
			r->msg, strerror(r->error), hint);
	else
		fprintf(stderr, "iopfctl: %s: %s%s%s\n", what, miss,
			strerror(r->error), hint);
}

static struct nl_msg *ctl_new(struct ctl *nl, __u8 cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		oom();
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, IOPFMAP_FAMILY_VERSION))
		oom();
	return msg;
}

static void put_u32(struct nl_msg *msg, int type, __u32 v)
{
	/* Only a message too small for a few words fails: ours are not. */
	if (nla_put_u32(msg, type, v) < 0)
		oom();
}

/*
 * Sends @msg (and frees it), whose attributes are of @set, and hands
 * every reply to @reply until the ack or the end of the dump. Returns
 * EXIT_SUCCESS, or EXIT_FAILURE after saying why.
 */
static int ctl_run(struct ctl *nl, struct nl_msg *msg,
		   const struct attr_set *set,
		   int (*reply)(struct genlmsghdr *, struct nlattr *, int,
				void *),
		   void *arg)
{
	struct req r = {
		.reply = reply,
		.arg = arg,
		.cmd = genlmsg_hdr(nlmsg_hdr(msg))->cmd,
		.miss_type = -1,
		.offs = -1,
		.sent = msg,
		.set = set,
	};
	struct nl_cb *cb;
	int ret;

	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		fprintf(stderr, "iopfctl: %s: sending the request: %s\n", what,
			nl_geterror(ret));
		ret = EXIT_FAILURE;
		goto out_free;
	}
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		oom();
	if (nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, &r) ||
	    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, &r) ||
	    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, cb_done, &r) ||
	    nl_cb_err(cb, NL_CB_CUSTOM, cb_error, &r))
		oom();
	ret = EXIT_SUCCESS;
	while (!r.done) {
		int err = nl_recvmsgs(nl->sk, cb);

		if (err < 0 && !r.error) {
			fprintf(stderr, "iopfctl: %s: %s\n", what,
				nl_geterror(err));
			ret = EXIT_FAILURE;
			break;
		}
	}
	nl_cb_put(cb);
	if (r.error) {
		report(&r);
		ret = EXIT_FAILURE;
	}
out_free:
	nlmsg_free(msg);
	return ret;
}

/* ---- command lines ------------------------------------------------------ */

/* A "KEYWORD VALUE" argument; parse turns VALUE into *val. */
struct arg {
	const char *kw;
	int (*parse)(const char *s, __u32 *val);
	__u32 val;
	bool seen;
};

static int parse_u32(const char *s, __u32 *val)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > UINT_MAX)
		return -EINVAL;
	*val = v;
	return 0;
}

static int parse_policy(const char *s, __u32 *val)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(iopfmap_nl_policy_names); i++) {
		if (iopfmap_nl_policy_names[i] &&
		    matches(s, iopfmap_nl_policy_names[i])) {
			*val = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Fills @args from the command line: 0, or EXIT_USAGE after a message. */
static int parse_args(int argc, char **argv, struct arg *args,
		      unsigned int nr)
{
	unsigned int i;

	while (argc > 0) {
		for (i = 0; i < nr; i++)
			if (matches(argv[0], args[i].kw))
				break;
		if (i == nr)
			return usage_error("unexpected \"%s\"", argv[0]);
		if (args[i].seen)
			return usage_error("\"%s\" given twice", args[i].kw);
		if (argc < 2)
			return usage_error("\"%s\" needs a value", args[i].kw);
		if (args[i].parse(argv[1], &args[i].val)) {
			fprintf(stderr, "iopfctl: %s: invalid %s \"%s\"\n",
				what, args[i].kw, argv[1]);
			return EXIT_USAGE;
		}
		args[i].seen = true;
		argc -= 2;
		argv += 2;
	}
	return 0;
}

/* ---- show commands ------------------------------------------------------ */

/* What a dump's replies are printed as, and which of them. */
struct show {
	const struct attr_set *set;
	json_object *arr;	/* with -j: the array the objects go to */
	int filter_attr;	/* print only objects whose ... */
	__u32 filter_val;	/* ... attribute equals this; 0 for all */
	int ret;
};

static int show_reply(struct genlmsghdr *g, struct nlattr *head, int len,
		      void *arg)
{
	struct nlattr *tb[TB_SIZE] = { NULL };
	struct show *s = arg;
	__u64 v;

	(void)g;
	if (s->filter_attr) {
		if (nla_parse(tb, s->set->max, head, len, NULL) < 0 ||
		    !tb[s->filter_attr] || !attr_uint(tb[s->filter_attr], &v) ||
		    v != s->filter_val)
			return 0;
	}
	s->ret = put_object(s->set, NULL, head, len, s->arr);
	return s->ret;
}

/*
 * Runs the request @msg whose replies are objects of @set and prints
 * them: one JSON array with -j (an object when @single).
 */
static int show(struct ctl *nl, struct nl_msg *msg, const struct attr_set *set,
		int filter_attr, __u32 filter_val, bool single)
{
	struct show s = {
		.set = set,
		.filter_attr = filter_attr,
		.filter_val = filter_val,
	};
	int ret;

	if (opts.json && !single)
		s.arr = jnew(json_object_new_array());
	ret = ctl_run(nl, msg, set, show_reply, &s);
	if (!ret && s.ret)
		ret = EXIT_FAILURE;
	if (s.arr) {
		if (!ret)
			jprint(s.arr);
		else
			json_object_put(s.arr);
	}
	return ret;
}

/*
 * A dump of @cmd filtered by context when "ctx N" is given (and by
 * @id_attr when "id M" is given and @id_attr is not 0).
 */
static int show_dump(int argc, char **argv, __u8 cmd, int ctx_attr,
		     int id_attr, const struct attr_set *set)
{
	struct arg args[] = {
		{ "ctx", parse_u32, 0, false },
		{ "id", parse_u32, 0, false },
	};
	struct nl_msg *msg;
	struct ctl nl;
	int ret;

	ret = parse_args(argc, argv, args, id_attr ? 2 : 1);
	if (ret)
		return ret;
	if (id_attr && args[1].seen && !args[0].seen)
		return usage_error("\"id\" needs \"ctx\"");
	if (ctl_open(&nl))
		return EXIT_FAILURE;
	msg = ctl_new(&nl, cmd, NLM_F_DUMP);
	if (args[0].seen)
		put_u32(msg, ctx_attr, args[0].val);
	ret = show(&nl, msg, set, args[1].seen ? id_attr : 0, args[1].val,
		   false);
	ctl_close(&nl);
	return ret;
}

static int do_ctx_show(int argc, char **argv)
{
	struct arg args[] = { { "id", parse_u32, 0, false } };
	struct nl_msg *msg;
	struct ctl nl;
	int ret;

	ret = parse_args(argc, argv, args, ARRAY_SIZE(args));
	if (ret)
		return ret;
	if (ctl_open(&nl))
		return EXIT_FAILURE;
	/* One context is a do, still printed as a list of one. */
	if (args[0].seen) {
		msg = ctl_new(&nl, IOPFMAP_NL_CMD_CTX_GET, NLM_F_ACK);
		put_u32(msg, IOPFMAP_A_CTX_ID, args[0].val);
	} else {
		msg = ctl_new(&nl, IOPFMAP_NL_CMD_CTX_GET, NLM_F_DUMP);
	}
	ret = show(&nl, msg, &ctx_set, 0, 0, false);
	ctl_close(&nl);
	return ret;
}

static int do_dev_show(int argc, char **argv)
{
	return show_dump(argc, argv, IOPFMAP_NL_CMD_DEV_GET,
			 IOPFMAP_A_DEV_CTX_ID, 0, &dev_set);
}

static int do_range_show(int argc, char **argv)
{
	return show_dump(argc, argv, IOPFMAP_NL_CMD_RANGE_GET,
			 IOPFMAP_A_RANGE_CTX_ID, IOPFMAP_A_RANGE_ID,
			 &range_set);
}

static int do_queue_show(int argc, char **argv)
{
	return show_dump(argc, argv, IOPFMAP_NL_CMD_QUEUE_GET,
			 IOPFMAP_A_QUEUE_CTX_ID, 0, &queue_set);
}

static int do_stats_show(int argc, char **argv)
{
	struct nl_msg *msg;
	struct ctl nl;
	int ret;

	if (argc > 0)
		return usage_error("unexpected \"%s\"", argv[0]);
	if (ctl_open(&nl))
		return EXIT_FAILURE;
	msg = ctl_new(&nl, IOPFMAP_NL_CMD_STATS_GET, NLM_F_ACK);
	ret = show(&nl, msg, &global_set, 0, 0, true);
	ctl_close(&nl);
	return ret;
}

static int no_reply(struct genlmsghdr *g, struct nlattr *head, int len,
		    void *arg)
{
	(void)g, (void)head, (void)len, (void)arg;
	return 0;
}

static int do_range_set(int argc, char **argv)
{
	struct arg args[] = {
		{ "ctx", parse_u32, 0, false },
		{ "id", parse_u32, 0, false },
		{ "prefetch", parse_u32, 0, false },
		{ "policy", parse_policy, 0, false },
	};
	struct nl_msg *msg;
	struct ctl nl;
	int ret;

	ret = parse_args(argc, argv, args, ARRAY_SIZE(args));
	if (ret)
		return ret;
	if (!args[0].seen || !args[1].seen)
		return usage_error("which range? give \"ctx N id M\"");
	if (!args[2].seen && !args[3].seen)
		return usage_error("nothing to set: give \"prefetch P\" or \"policy resolve|forward|reject\"");
	if (ctl_open(&nl))
		return EXIT_FAILURE;
	/* The kernel checks the values and says what is wrong with them. */
	msg = ctl_new(&nl, IOPFMAP_NL_CMD_RANGE_SET, NLM_F_ACK);
	put_u32(msg, IOPFMAP_A_RANGE_CTX_ID, args[0].val);
	put_u32(msg, IOPFMAP_A_RANGE_ID, args[1].val);
	if (args[2].seen)
		put_u32(msg, IOPFMAP_A_RANGE_PREFETCH, args[2].val);
	if (args[3].seen)
		put_u32(msg, IOPFMAP_A_RANGE_POLICY, args[3].val);
	ret = ctl_run(&nl, msg, &range_set, no_reply, NULL);
	ctl_close(&nl);
	return ret;
}

/* ---- monitor ------------------------------------------------------------ */

struct monitor {
	__u32 ctx;	/* only this context's events; 0 for all */
	int ret;
};

static int event_reply(struct genlmsghdr *g, struct nlattr *head, int len,
		       void *arg)
{
	struct nlattr *tb[TB_SIZE] = { NULL };
	struct monitor *m = arg;
	char buf[16];
	const char *name;
	__u64 v;

	if (m->ctx && (nla_parse(tb, IOPFMAP_A_EVENT_MAX, head, len, NULL) < 0 ||
		       !tb[IOPFMAP_A_EVENT_CTX_ID] ||
		       !attr_uint(tb[IOPFMAP_A_EVENT_CTX_ID], &v) || v != m->ctx))
		return 0;
	name = g->cmd < ARRAY_SIZE(iopfmap_nl_ntf_names) ?
	       iopfmap_nl_ntf_names[g->cmd] : NULL;
	if (!name) {
		snprintf(buf, sizeof(buf), "cmd%u", g->cmd);
		name = buf;
	}
	put_object(&event_set, name, head, len, NULL);
	/* A reader of a pipe sees each event when it happens. */
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "iopfctl: writing output: %s\n",
			strerror(errno));
		m->ret = EXIT_FAILURE;
		return -1;
	}
	return 0;
}

static int do_monitor(int argc, char **argv)
{
	struct arg args[] = { { "ctx", parse_u32, 0, false } };
	struct monitor m = { 0 };
	struct req r = { .reply = event_reply, .arg = &m, .miss_type = -1 };
	struct nl_cb *cb;
	struct ctl nl;
	int grp, ret;

	ret = parse_args(argc, argv, args, ARRAY_SIZE(args));
	if (ret)
		return ret;
	m.ctx = args[0].val;
	if (ctl_open(&nl))
		return EXIT_FAILURE;
	grp = genl_ctrl_resolve_grp(nl.sk, IOPFMAP_FAMILY_NAME,
				    IOPFMAP_MCGRP_EVENTS);
	if (grp < 0) {
		fprintf(stderr, "iopfctl: %s: no multicast group \"%s\": %s\n",
			what, IOPFMAP_MCGRP_EVENTS, nl_geterror(grp));
		goto err;
	}
	/* Events are not answers to anything: they carry no sequence. */
	nl_socket_disable_seq_check(nl.sk);
	ret = nl_socket_add_membership(nl.sk, grp);
	if (ret < 0) {
		fprintf(stderr, "iopfctl: %s: joining \"%s\": %s\n", what,
			IOPFMAP_MCGRP_EVENTS, nl_geterror(ret));
		goto err;
	}
	/* Room for a burst; an overrun is reported, not fatal. */
	ret = nl_socket_set_buffer_size(nl.sk, 1 << 20, 0);
	if (ret < 0)
		fprintf(stderr, "iopfctl: %s: receive buffer: %s\n", what,
			nl_geterror(ret));

	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		oom();
	if (nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, &r)) {
		nl_cb_put(cb);
		oom();
	}
	for (;;) {
		ret = nl_recvmsgs(nl.sk, cb);
		if (m.ret)
			break;
		if (ret >= 0)
			continue;
		/* libnl says ENOBUFS, a socket overrun, as NLE_NOMEM. */
		if (ret == -NLE_NOMEM) {
			fprintf(stderr, "iopfctl: %s: events were lost (receive buffer overrun)\n",
				what);
			continue;
		}
		fprintf(stderr, "iopfctl: %s: %s\n", what, nl_geterror(ret));
		m.ret = EXIT_FAILURE;
		break;
	}
	nl_cb_put(cb);
	ctl_close(&nl);
	return m.ret;
err:
	ctl_close(&nl);
	return EXIT_FAILURE;
}

/* ---- info (ioctl) ------------------------------------------------------- */

/*
 * Names of the IOPFMAP_FEATURE_* bits, for output. A bit this table does
 * not name (a newer module) is shown as "bitN".
 */
static const struct {
	__u64 bit;
	const char *name;
} feature_names[] = {
	{ IOPFMAP_FEATURE_MAP, "map" },
	{ IOPFMAP_FEATURE_SIM, "sim" },
	{ IOPFMAP_FEATURE_DEVICE, "device" },
	{ IOPFMAP_FEATURE_HW_IOPF, "hw-iopf" },
	{ IOPFMAP_FEATURE_QUEUE, "queue" },
	{ IOPFMAP_FEATURE_CORE_FAULTS, "core-faults" },
	{ IOPFMAP_FEATURE_PASID_ATTACH, "pasid-attach" },
	{ 0, NULL }
};

static const char *feature_name(unsigned int bit, char *buf, size_t len)
{
	unsigned int i;

	for (i = 0; feature_names[i].name; i++)
		if (feature_names[i].bit == 1ULL << bit)
			return feature_names[i].name;
	snprintf(buf, len, "bit%u", bit);
	return buf;
}

/* 2^@shift bytes as "512", "4K", "2M", "1G", ... */
static void format_pgsize(char *buf, size_t len, unsigned int shift)
{
	static const char suffix[] = "KMGTPE";
	unsigned int unit = 0;

	if (shift < 10) {
		snprintf(buf, len, "%llu", 1ULL << shift);
		return;
	}
	while (unit + 1 < sizeof(suffix) - 1 && shift >= 10 * (unit + 2))
		unit++;
	snprintf(buf, len, "%llu%c", 1ULL << (shift - 10 * (unit + 1)),
		 suffix[unit]);
}

/* Opens the device; on failure says why in words and returns -1. */
static int open_dev(int flags)
{
	int fd = open(IOPFMAP_DEV, flags | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		fprintf(stderr,
			"iopfctl: " IOPFMAP_DEV " not found: is the iopfmap module loaded? (modprobe iopfmap)\n");
		break;
	case ENODEV:
	case ENXIO:
		/* A stale node without a driver behind it. */
		fprintf(stderr,
			"iopfctl: " IOPFMAP_DEV ": %s: is the iopfmap module loaded? (modprobe iopfmap)\n",
			strerror(errno));
		break;
	case EACCES:
	case EPERM:
		fprintf(stderr, "iopfctl: " IOPFMAP_DEV ": %s: iopfctl needs root\n",
			strerror(errno));
		break;
	default:
		fprintf(stderr, "iopfctl: " IOPFMAP_DEV ": %s\n",
			strerror(errno));
	}
	return -1;
}

static void print_info_text(const struct iopfmap_info *info)
{
	char buf[32];
	unsigned int bit;

	printf("abi version: %u\n", info->out_abi_version);

	printf("features:    0x%llx", (unsigned long long)info->out_features);
	if (!info->out_features)
		printf(" (none)");
	for (bit = 0; bit < 64; bit++)
		if (info->out_features & (1ULL << bit))
			printf(" %s", feature_name(bit, buf, sizeof(buf)));
	printf("\n");

	printf("page sizes: ");
	for (bit = 0; bit < 64; bit++) {
		if (!(info->out_pgsize_bitmap & (1ULL << bit)))
			continue;
		format_pgsize(buf, sizeof(buf), bit);
		printf(" %s", buf);
	}
	printf("\n");
}

static void print_info_json(const struct iopfmap_info *info)
{
	json_object *o = jnew(json_object_new_object());
	json_object *features = jnew(json_object_new_array());
	json_object *sizes = jnew(json_object_new_array());
	const char *name;
	char buf[32];
	unsigned int bit;

	jadd(o, "abi_version", json_object_new_int64(info->out_abi_version));
	for (bit = 0; bit < 64; bit++) {
		if (info->out_features & (1ULL << bit)) {
			name = feature_name(bit, buf, sizeof(buf));
			jappend(features, json_object_new_string(name));
		}
		if (info->out_pgsize_bitmap & (1ULL << bit)) {
			format_pgsize(buf, sizeof(buf), bit);
			jappend(sizes, json_object_new_string(buf));
		}
	}
	jadd(o, "features", features);
	jadd(o, "pgsize_bitmap", json_object_new_uint64(info->out_pgsize_bitmap));
	jadd(o, "page_sizes", sizes);
	jprint(o);
}

static int do_info_show(int argc, char **argv)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd;

	if (argc > 0)
		return usage_error("unexpected \"%s\"", argv[0]);
	/* GET_INFO changes nothing: read access is enough. */
	fd = open_dev(O_RDONLY);
	if (fd < 0)
		return EXIT_FAILURE;
	if (ioctl(fd, IOPFMAP_GET_INFO, &info)) {
		fprintf(stderr, "iopfctl: IOPFMAP_GET_INFO: %s%s\n",
			strerror(errno), errno == ENOTTY ?
			": is " IOPFMAP_DEV " really the iopfmap device?" : "");
		close(fd);
		return EXIT_FAILURE;
	}
	close(fd);

	if (opts.json)
		print_info_json(&info);
	else
		print_info_text(&info);
	return EXIT_SUCCESS;
}

/* ---- the tables --------------------------------------------------------- */

static const struct command ctx_cmds[] = {
	{ "show", "[id N]", "contexts (opens of " IOPFMAP_DEV ")", do_ctx_show },
	{ NULL, NULL, NULL, NULL }
};

static const struct command dev_cmds[] = {
	{ "show", "[ctx N]", "attached devices", do_dev_show },
	{ NULL, NULL, NULL, NULL }
};

static const struct command range_cmds[] = {
	{ "show", "[ctx N [id M]]", "DMA ranges", do_range_show },
	{ "set", "ctx N id M [prefetch P] [policy resolve|forward|reject]",
	  "change a range (root)", do_range_set },
	{ NULL, NULL, NULL, NULL }
};

static const struct command queue_cmds[] = {
	{ "show", "[ctx N]", "fault queues", do_queue_show },
	{ NULL, NULL, NULL, NULL }
};

static const struct command stats_cmds[] = {
	{ "show", "", "the module's counters", do_stats_show },
	{ NULL, NULL, NULL, NULL }
};

/* monitor has no commands: its one row is named by the object. */
static const struct command monitor_cmds[] = {
	{ "", "[ctx N]", "print events as they happen", do_monitor },
	{ NULL, NULL, NULL, NULL }
};

static const struct command info_cmds[] = {
	{ "show", "", "what the loaded module supports", do_info_show },
	{ NULL, NULL, NULL, NULL }
};

/* In the order prefixes are tried: "s" is stats, "i" info. */
static const struct object objects[] = {
	{ "ctx", ctx_cmds },
	{ "dev", dev_cmds },
	{ "range", range_cmds },
	{ "queue", queue_cmds },
	{ "stats", stats_cmds },
	{ "monitor", monitor_cmds },
	{ "info", info_cmds },
};

static void usage(FILE *f)
{
	const struct command *c;
	char lhs[96];
	unsigned int i;

	fprintf(f,
		"Usage: iopfctl [OPTIONS] OBJECT [COMMAND [ARGS]]\n"
		"       iopfctl -h | -V\n"
		"OPTIONS: -j, --json     print JSON\n"
		"         -p, --pretty   print JSON, indented\n"
		"         -h, --help     print this help\n"
		"         -V, --version  print the version\n"
		"OBJECTS and COMMANDS (the first command is the default; words may be\n"
		"shortened, as in \"iopfctl r s\"):\n");
	for (i = 0; i < ARRAY_SIZE(objects); i++)
		for (c = objects[i].cmds; c->name; c++) {
			snprintf(lhs, sizeof(lhs), "%s%s%s%s%s",
				 objects[i].name, *c->name ? " " : "", c->name,
				 *c->args ? " " : "", c->args);
			if (strlen(lhs) > 30)
				fprintf(f, "  %s\n  %-30s %s\n", lhs, "", c->help);
			else
				fprintf(f, "  %-30s %s\n", lhs, c->help);
		}
}

/* Runs OBJECT [COMMAND [ARGS...]]. */
static int dispatch(int argc, char **argv)
{
	const struct object *obj = NULL;
	const struct command *cmd = NULL;
	unsigned int i;

	if (matches(argv[0], "help")) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	for (i = 0; i < ARRAY_SIZE(objects) && !obj; i++)
		if (matches(argv[0], objects[i].name))
			obj = &objects[i];
	if (!obj) {
		fprintf(stderr, "iopfctl: unknown object \"%s\"\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	if (!*obj->cmds[0].name || argc == 0) {
		/* The default command, and monitor's only one. */
		cmd = &obj->cmds[0];
	} else {
		if (matches(argv[0], "help")) {
			usage(stdout);
			return EXIT_SUCCESS;
		}
		for (cmd = obj->cmds; cmd->name; cmd++)
			if (matches(argv[0], cmd->name))
				break;
		if (!cmd->name) {
			fprintf(stderr, "iopfctl: %s: unknown command \"%s\"\n",
				obj->name, argv[0]);
			usage(stderr);
			return EXIT_USAGE;
		}
		argc--;
		argv++;
	}
	snprintf(what, sizeof(what), "%s%s%s", obj->name,
		 *cmd->name ? " " : "", cmd->name);
	return cmd->run(argc, argv);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	/* "+": options go before the object, as in "iopfctl -j ctx". */
	while ((c = getopt_long(argc, argv, "+jphV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opts.json = true;
			break;
		case 'p':
			/* Pretty is a way of printing JSON: it implies -j. */
			opts.json = true;
			opts.pretty = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("iopfctl %s\n", IOPFMAP_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	ret = dispatch(argc - optind, argv + optind);
	/* Output that did not make it out (e.g. a full disk) is a failure. */
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "iopfctl: writing output: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	return ret;
}
