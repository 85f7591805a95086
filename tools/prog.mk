# SPDX-License-Identifier: GPL-2.0
#
# Builds one userspace program, PROG, from PROG.c in the including
# directory. The includer sets top (the repository root) and PROG, and may
# add to CFLAGS, to LDLIBS (libraries) and to the program's prerequisites
# after the include.

OUTPUT ?= $(or $(BUILD),$(top)/build)/bin
VERSION ?= $(shell cat $(top)/VERSION)

CFLAGS := -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror \
	  -I$(top)/include/uapi -DIOPFMAP_VERSION='"$(VERSION)"'
# Static, so the same binary runs in the test guests' busybox initramfs.
LDFLAGS := -static

$(OUTPUT)/$(PROG): $(PROG).c $(top)/include/uapi/linux/iopfmap.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)
