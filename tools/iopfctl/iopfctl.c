// SPDX-License-Identifier: GPL-2.0
/*
 * iopfctl: inspect iopfmap from the command line.
 *
 *	iopfctl [-j] info [show]
 *
 * The command line is OBJECT [COMMAND [ARGS...]], as in iproute2. Each
 * object is a row of objects[] with its own table of commands; the first
 * command is the default. A new object or command is one new row.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iopfmap.h>

#ifndef IOPFMAP_VERSION
#define IOPFMAP_VERSION "unknown"
#endif

#define IOPFMAP_DEV "/dev/iopfmap"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes: 2 is the usual one for a command line that makes no sense. */
#define EXIT_USAGE 2

static struct {
	bool json;
} opts;

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

/* Names are our own identifiers and need no JSON escaping. */
static void print_info_json(const struct iopfmap_info *info)
{
	const char *sep = "";
	char buf[32];
	unsigned int bit;

	printf("{\"abi_version\":%u,\"features\":[", info->out_abi_version);
	for (bit = 0; bit < 64; bit++) {
		if (!(info->out_features & (1ULL << bit)))
			continue;
		printf("%s\"%s\"", sep, feature_name(bit, buf, sizeof(buf)));
		sep = ",";
	}
	printf("],\"pgsize_bitmap\":%llu,\"page_sizes\":[",
	       (unsigned long long)info->out_pgsize_bitmap);
	sep = "";
	for (bit = 0; bit < 64; bit++) {
		if (!(info->out_pgsize_bitmap & (1ULL << bit)))
			continue;
		format_pgsize(buf, sizeof(buf), bit);
		printf("%s\"%s\"", sep, buf);
		sep = ",";
	}
	printf("]}\n");
}

static int do_info_show(int argc, char **argv)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd;

	if (argc > 0) {
		fprintf(stderr, "iopfctl: info show: unexpected \"%s\"\n",
			argv[0]);
		return EXIT_USAGE;
	}
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

static const struct command info_cmds[] = {
	{ "show", "", "what the loaded module supports", do_info_show },
	{ NULL, NULL, NULL, NULL }
};

static const struct object objects[] = {
	{ "info", info_cmds },
};

static void usage(FILE *f)
{
	const struct command *c;
	char lhs[64];
	unsigned int i;

	fprintf(f,
		"Usage: iopfctl [OPTIONS] OBJECT [COMMAND [ARGS]]\n"
		"       iopfctl -h | -V\n"
		"OPTIONS: -j, --json     print JSON\n"
		"         -h, --help     print this help\n"
		"         -V, --version  print the version\n"
		"OBJECTS and COMMANDS (the first command is the default):\n");
	for (i = 0; i < ARRAY_SIZE(objects); i++)
		for (c = objects[i].cmds; c->name; c++) {
			snprintf(lhs, sizeof(lhs), "%s %s%s%s", objects[i].name,
				 c->name, *c->args ? " " : "", c->args);
			fprintf(f, "  %-24s %s\n", lhs, c->help);
		}
}

/* Runs OBJECT [COMMAND [ARGS...]]. */
static int dispatch(int argc, char **argv)
{
	const struct object *obj = NULL;
	const struct command *cmd;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(objects); i++)
		if (!strcmp(argv[0], objects[i].name))
			obj = &objects[i];
	if (!obj) {
		fprintf(stderr, "iopfctl: unknown object \"%s\"\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argc == 1)
		return obj->cmds[0].run(0, argv + 1);
	for (cmd = obj->cmds; cmd->name; cmd++)
		if (!strcmp(argv[1], cmd->name))
			return cmd->run(argc - 2, argv + 2);
	fprintf(stderr, "iopfctl: %s: unknown command \"%s\"\n", obj->name,
		argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	/* "+": options go before the object, as in "iopfctl -j info". */
	while ((c = getopt_long(argc, argv, "+jhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opts.json = true;
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
