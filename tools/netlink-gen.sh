#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Generates include/uapi/linux/iopfmap_netlink.h from the netlink spec
# docs/netlink/specs/iopfmap.yaml with the kernel's own generator
# (tools/net/ynl/ynl-gen-c.py of linux-source-6.12), which also checks the
# spec against the kernel's genetlink-c schema. With --check, fails if the
# checked-in header differs from what the spec generates.

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

ksrc=$("$top/tools/ksrc.sh" 6.12)
header=$top/include/uapi/linux/iopfmap_netlink.h

# The generator finds the schema beside the specs directory and names the
# spec relative to the tree that holds a MAINTAINERS file: give it a tree
# shaped like ours.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/docs/netlink"
touch "$tree/MAINTAINERS"
ln -s "$ksrc/Documentation/netlink/genetlink-c.yaml" "$tree/docs/netlink/"
ln -s "$top/docs/netlink/specs" "$tree/docs/netlink/specs"

# Debian's python3-yaml and python3-jsonschema serve /usr/bin/python3,
# which may not be the first python3 on PATH.
python=python3
python3 -c 'import yaml, jsonschema' 2> /dev/null || python=/usr/bin/python3
"$python" "$ksrc/tools/net/ynl/ynl-gen-c.py" --mode uapi --header \
	--spec "$tree/docs/netlink/specs/iopfmap.yaml" -o "$tree/out.h"

if [ "${1:-}" = --check ]; then
	diff -u "$header" "$tree/out.h" ||
		die "$header is not what the spec generates: run make netlink-gen"
else
	cp "$tree/out.h" "$header"
fi
