// SPDX-License-Identifier: GPL-2.0
/*
 * iopfd: the iopfmap fault daemon.
 *
 * It will serve the faults that the kernel cannot resolve itself. This
 * version only probes the kernel side once at start, as the daemon will,
 * and reports what it found: the module has no fault queue to serve yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/iopfmap.h>

#ifndef IOPFMAP_VERSION
#define IOPFMAP_VERSION "unknown"
#endif

static int probe_kernel(const char *path)
{
	struct iopfmap_info info = { .size = sizeof(info) };
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "iopfd: %s: %s%s\n", path, strerror(errno),
			errno == ENOENT ? " (is the iopfmap module loaded?)" : "");
		return -1;
	}
	ret = ioctl(fd, IOPFMAP_GET_INFO, &info);
	close(fd);
	if (ret) {
		fprintf(stderr, "iopfd: IOPFMAP_GET_INFO: %s\n", strerror(errno));
		return -1;
	}
	printf("iopfd: iopfmap ABI %u, features 0x%llx\n", info.out_abi_version,
	       (unsigned long long)info.out_features);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: iopfd [-d DEVICE] [-h] [-V]\n");
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/iopfmap";
	int c;

	while ((c = getopt(argc, argv, "d:hV")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("iopfd %s\n", IOPFMAP_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (probe_kernel(dev))
		return EX_UNAVAILABLE;
	fprintf(stderr, "iopfd: this iopfmap module has no fault queue: nothing to serve\n");
	return EX_UNAVAILABLE;
}
