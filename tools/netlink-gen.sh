#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Generates from the netlink spec docs/netlink/specs/iopfmap.yaml:
#  - include/uapi/linux/iopfmap_netlink.h, with the kernel's own generator
#    (tools/net/ynl/ynl-gen-c.py of linux-source-6.12), which also checks
#    the spec against the kernel's genetlink-c schema;
#  - tools/include/iopfmap_nl_names.h, the names of counters, enum values
#    and notifications that iopfctl and iopfd print, with
#    tools/netlink-names.py.
# With --check, fails if a checked-in header differs from what the spec
# generates.

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

ksrc=$("$top/tools/ksrc.sh" 6.12)
spec=$top/docs/netlink/specs/iopfmap.yaml
header=$top/include/uapi/linux/iopfmap_netlink.h
names=$top/tools/include/iopfmap_nl_names.h

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
"$python" "$top/tools/netlink-names.py" "$spec" "$tree/names.h"

# check FILE GENERATED: says so if FILE is not GENERATED.
check() {
	diff -u "$1" "$2" && return 0
	echo "${0##*/}: $1 is not what the spec generates" >&2
	return 1
}

if [ "${1:-}" = --check ]; then
	ok=true
	check "$header" "$tree/out.h" || ok=false
	check "$names" "$tree/names.h" || ok=false
	$ok || die "generated headers are stale: run make netlink-gen"
else
	cp "$tree/out.h" "$header"
	cp "$tree/names.h" "$names"
fi
