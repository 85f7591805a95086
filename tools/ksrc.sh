#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Takes the few files iopfmap's build uses from Debian's linux-source
# package of a kernel series (the kselftest harness, checkpatch.pl and its
# data, extract-vmlinux, the netlink spec generator and its schema) and puts them under build/ksrc/SERIES. They are
# never copied into the repository.
#
# Usage: ksrc.sh SERIES    (prints the directory)

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

series=${1:?usage: ksrc.sh SERIES}
dest=$(ksrc_dir "$series")
files=(
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/extract-vmlinux
	tools/net/ynl/ynl-gen-c.py
	tools/net/ynl/lib/__init__.py
	tools/net/ynl/lib/nlspec.py
	tools/net/ynl/lib/ynl.py
	Documentation/netlink/genetlink-c.yaml
)
tarball=/usr/src/linux-source-$series.tar.xz
unpacked=/usr/src/linux-source-$series

# The stamp lists the files: a new entry above refreshes the directory.
if [ -f "$dest/.stamp" ] && [ "$dest/.stamp" -nt "$tarball" ] &&
   [ "$(cat "$dest/.stamp")" = "${files[*]}" ]; then
	echo "$dest"
	exit 0
fi

rm -rf "$dest"
mkdir -p "$dest"
if [ -d "$unpacked/scripts" ]; then
	for f in "${files[@]}"; do
		mkdir -p "$dest/$(dirname "$f")"
		cp "$unpacked/$f" "$dest/$f"
	done
elif [ -f "$tarball" ]; then
	echo "ksrc: extracting ${#files[@]} files from $tarball" >&2
	tar -xJf "$tarball" -C "$dest" --strip-components=1 \
		"${files[@]/#/linux-source-$series/}"
else
	die "linux-source-$series is not installed (make deps)"
fi
echo "${files[*]}" > "$dest/.stamp"
echo "$dest"
