#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# checkpatch.pl --strict (from Debian's linux-source-6.12) over the module
# and the uapi header. Fails on any error, warning or check.

set -euo pipefail
# shellcheck source=tools/lib.sh
. "$(dirname "$0")/lib.sh"

ksrc=$("$top/tools/ksrc.sh" 6.12)
cd "$top"
mapfile -t files < <(ls kmod/*.[ch] kmod/Kbuild kmod/*.sh include/uapi/linux/*.h)
"$ksrc/scripts/checkpatch.pl" --no-tree --strict --terse --show-types \
	--max-line-length=80 -f "${files[@]}" > "$build/checkpatch.log" || true
grep -v -E '^total: 0 errors, 0 warnings, 0 checks' "$build/checkpatch.log" || true
if grep -q -E '^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK)' "$build/checkpatch.log"; then
	echo "checkpatch: see above" >&2
	exit 1
fi
echo "checkpatch: ${#files[@]} files clean"
