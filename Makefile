# SPDX-License-Identifier: GPL-2.0
#
# iopfmap: the kernel module (kmod/), the fault daemon (iopfd/), the tools
# (tools/) and the selftests (tests/). `make help` lists the targets.

top := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
SHELL := /bin/bash
BUILD ?= $(top)/build
VERSION := $(shell cat $(top)/VERSION)

# The kernel to build for: KVER names an installed kernel (on the host or
# in the trixie root: tools/kbuild.sh finds its headers); otherwise the
# running kernel's build tree, else the newest installed Debian headers.
ifneq ($(KVER),)
KDIR ?=
else
KDIR ?= $(or $(wildcard /lib/modules/$(shell uname -r)/build),\
	     $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))
KVER := $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
endif

PREFIX ?= /usr/local
DESTDIR ?=
DKMS_SRC := /usr/src/iopfmap-$(VERSION)

export BUILD VERSION

.PHONY: all module modules userspace tests tools iopfd deps check check-debug \
	demo bench sparse checkpatch netlink-gen vm-payload install uninstall \
	dkms-install dkms-uninstall clean help

all: module userspace

help:
	@echo 'make [all]        module for KDIR/KVER ($(KVER)), iopfd, tools, tests'
	@echo 'make check        the test command: every kernel of the matrix'
	@echo 'make demo         a guest per kernel: on-demand DMA, iopfd, a report'
	@echo 'make bench        benchmarks in a guest per kernel: ratios to in-run references'
	@echo 'make deps         install what the above need (root, Debian 12)'
	@echo 'make modules      the module for every kernel of the matrix (KERNELS, BUILD_KERNELS)'
	@echo 'make check-debug  the suite and the fail_nth sweep on KASAN, lockdep and kmemleak kernels'
	@echo 'make sparse       sparse over kmod/ for every kernel of the matrix'
	@echo 'make checkpatch   checkpatch.pl --strict over kmod/ and include/'
	@echo 'make netlink-gen  regenerate the netlink uapi header from docs/netlink/specs'
	@echo 'make install      module, uapi header, iopfd and iopfctl (root)'
	@echo 'make dkms-install register the module with DKMS (root)'

module:
	@test -n "$(KVER)" || { echo "no kernel build tree found: set KDIR or KVER (make deps)"; exit 1; }
	@tools/kbuild.sh build $(KVER) $(KDIR)

modules:
	@set -e; . tools/lib.sh; for k in $$KERNELS $$BUILD_KERNELS; do \
		kv=$$(kver_of $$k) || die "kernel $$k is not installed (make deps)"; \
		echo "  MODULE  $$kv"; tools/kbuild.sh build $$kv; done

sparse:
	@set -e; . tools/lib.sh; for k in $$KERNELS $$BUILD_KERNELS; do \
		kv=$$(kver_of $$k) || die "kernel $$k is not installed (make deps)"; \
		echo "  SPARSE  $$kv"; tools/kbuild.sh sparse $$kv; done

checkpatch:
	@tools/checkpatch.sh

netlink-gen:
	@tools/netlink-gen.sh

userspace: tests tools iopfd

tests:
	@$(MAKE) -s -C tests

tools:
	@$(MAKE) -s -C tools/iopfctl
	@$(MAKE) -s -C tools/bench
	@$(MAKE) -s -C tools/demo

iopfd:
	@$(MAKE) -s -C iopfd

# What tools/vm/run puts into a guest for kernel KVER.
vm-payload: module userspace

deps:
	@tools/deps.sh

check:
	@tools/check.sh

check-debug:
	@tools/check-debug.sh

demo:
	@tools/demo.sh

bench:
	@tools/bench.sh

install: module userspace
	$(MAKE) -C $(or $(KDIR),/lib/modules/$(KVER)/build) M=$(BUILD)/$(KVER)/kmod \
		INSTALL_MOD_DIR=extra modules_install
	depmod -a $(KVER) || true
	install -D -m 0644 include/uapi/linux/iopfmap.h $(DESTDIR)$(PREFIX)/include/linux/iopfmap.h
	install -D -m 0644 include/uapi/linux/iopfmap_netlink.h $(DESTDIR)$(PREFIX)/include/linux/iopfmap_netlink.h
	install -D -m 0644 docs/netlink/specs/iopfmap.yaml $(DESTDIR)$(PREFIX)/share/iopfmap/netlink/iopfmap.yaml
	install -D -m 0755 $(BUILD)/bin/iopfctl $(DESTDIR)$(PREFIX)/sbin/iopfctl
	install -D -m 0755 $(BUILD)/bin/iopfd $(DESTDIR)$(PREFIX)/sbin/iopfd
	install -D -m 0644 docs/man/iopfmap.4 $(DESTDIR)$(PREFIX)/share/man/man4/iopfmap.4
	install -D -m 0644 docs/man/iopfd.8 $(DESTDIR)$(PREFIX)/share/man/man8/iopfd.8
	install -D -m 0644 docs/man/iopfctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/iopfctl.8
	install -D -m 0644 iopfd/iopfd_proto.h $(DESTDIR)$(PREFIX)/include/iopfd/iopfd_proto.h
	install -D -m 0644 iopfd/iopfd.conf $(DESTDIR)$(PREFIX)/share/doc/iopfmap/iopfd.conf.example
	sed 's|/usr/local/sbin|$(PREFIX)/sbin|g' iopfd/iopfd.service > iopfd.service.tmp
	install -D -m 0644 iopfd.service.tmp $(DESTDIR)/etc/systemd/system/iopfd.service
	rm -f iopfd.service.tmp

uninstall:
	rm -f /lib/modules/$(KVER)/extra/iopfmap.ko*
	depmod -a $(KVER) || true
	rm -f $(DESTDIR)$(PREFIX)/include/linux/iopfmap.h \
	      $(DESTDIR)$(PREFIX)/include/linux/iopfmap_netlink.h \
	      $(DESTDIR)$(PREFIX)/share/iopfmap/netlink/iopfmap.yaml \
	      $(DESTDIR)$(PREFIX)/sbin/iopfctl $(DESTDIR)$(PREFIX)/sbin/iopfd \
	      $(DESTDIR)$(PREFIX)/share/man/man4/iopfmap.4 \
	      $(DESTDIR)$(PREFIX)/share/man/man8/iopfd.8 \
	      $(DESTDIR)$(PREFIX)/share/man/man8/iopfctl.8 \
	      $(DESTDIR)$(PREFIX)/include/iopfd/iopfd_proto.h \
	      $(DESTDIR)$(PREFIX)/share/doc/iopfmap/iopfd.conf.example \
	      $(DESTDIR)/etc/systemd/system/iopfd.service

# DKMS rebuilds the module for every kernel the system installs later.
dkms-install:
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)
	cp -r kmod include VERSION $(DKMS_SRC)/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf > $(DKMS_SRC)/dkms.conf
	dkms add -m iopfmap -v $(VERSION)
	dkms build -m iopfmap -v $(VERSION) -k $(KVER)
	dkms install -m iopfmap -v $(VERSION) -k $(KVER)

dkms-uninstall:
	dkms remove -m iopfmap -v $(VERSION) --all || true
	rm -rf $(DKMS_SRC)

clean:
	rm -rf $(BUILD)
